//! Control characters in text that came from outside (decoded e-mail headers, provider fields) are neutralised
//! before the text lands where a line break means something: a Chatwork room message, a log line, a downstream
//! system that splits on lines. An RFC 2047 encoded-word can carry `=0D=0A` just as well as letters, and once
//! decoded it would forge a line of its own.
//!
//! Two rules:
//! - [`single_line`] for fields that are one line by nature (subjects, names, addresses, ids, file names): every
//!   control character except TAB — CR, LF, NUL, ESC, DEL, the C1 range (NEL…) — and the Unicode line and
//!   paragraph separators (U+2028, U+2029) become a space; CRLF counts as one.
//! - [`multi_line`] for bodies: CRLF and a lone CR become LF, LF and TAB stay, every other control character is
//!   dropped.

use std::borrow::Cow;

const LINE_SEPARATOR: char = '\u{2028}';
const PARAGRAPH_SEPARATOR: char = '\u{2029}';

fn breaks_a_line(c: char) -> bool {
    (c.is_control() && c != '\t') || c == LINE_SEPARATOR || c == PARAGRAPH_SEPARATOR
}

/// `text` on one line: see the module documentation.
pub fn single_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(breaks_a_line) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() == Some(&'\n') {
            chars.next();
        }
        out.push(if breaks_a_line(c) { ' ' } else { c });
    }
    Cow::Owned(out)
}

/// `text` with its lines kept as LF and no other control character: see the module documentation.
pub(crate) fn multi_line(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn single_line_fields_get_a_space_for_every_line_break_and_control() {
        assert_eq!(
            single_line("Invoice\r\nBcc: all@example.com"),
            "Invoice Bcc: all@example.com"
        );
        assert_eq!(
            single_line("a\nb\rc\u{0}d\u{1b}[31me\u{7f}f"),
            "a b c d [31me f"
        );
        assert_eq!(single_line("a\u{85}b\u{2028}c\u{2029}d"), "a b c d");
        assert_eq!(single_line("tab\tstays, 日本語も"), "tab\tstays, 日本語も");
        assert!(matches!(single_line("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn multi_line_bodies_keep_lf_and_tab_and_drop_other_controls() {
        assert_eq!(
            multi_line("one\r\ntwo\rthree\nfour"),
            "one\ntwo\nthree\nfour"
        );
        assert_eq!(
            multi_line("a\u{0}b\u{1b}[2Jc\u{7f}\u{85}d\te"),
            "ab[2Jcd\te"
        );
        assert_eq!(multi_line("line\u{2028}sep"), "line\u{2028}sep");
        assert!(matches!(multi_line("a\nb"), Cow::Borrowed("a\nb")));
    }

    proptest! {
        #[test]
        fn no_line_break_survives_single_line(text in any::<String>()) {
            let cleaned = single_line(&text);
            prop_assert!(!cleaned.chars().any(breaks_a_line));
            prop_assert_eq!(cleaned.chars().count() <= text.chars().count(), true);
        }

        #[test]
        fn only_lf_and_tab_survive_multi_line(text in any::<String>()) {
            prop_assert!(!multi_line(&text).chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
        }
    }
}
