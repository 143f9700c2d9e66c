//! Japanese text in a part that does not say its charset (or says `us-ascii`), as older mailers and some
//! gateways send it. The rule is conservative and documented in `docs/channels/email.md`:
//!
//! 1. Valid UTF-8 (7-bit ASCII included) stays as it is, with one exception: 7-bit text that holds a JIS X 0208
//!    or JIS X 0201 designation (`ESC $ B`, `ESC $ @`, `ESC ( J`, `ESC ( I`) is ISO-2022-JP. That holds for a
//!    part labelled `us-ascii` too: ISO-2022-JP is 7-bit, so such a label is only ever wrong about it.
//! 2. 8-bit bytes that are not UTF-8, in a part with no charset at all, are decoded both as Shift_JIS (cp932)
//!    and as EUC-JP; the decoding with fewer malformed sequences wins, then the one with fewer half-width
//!    katakana (EUC-JP read as Shift_JIS turns into half-width katakana, Shift_JIS's hiragana and kanji are never
//!    valid EUC-JP), then EUC-JP. It is used only when it has fewer malformed sequences than reading the bytes as
//!    UTF-8 (what the part gets without this rule), so it never makes a part worse.

use super::charset::{CharsetDecoder, Encoding};

/// What the part's label allows the bytes to be taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Label {
    /// No `charset` parameter (or no Content-Type at all).
    Absent,
    /// `charset=us-ascii` (or `ascii`).
    UsAscii,
}

impl Label {
    /// The label of a part whose `charset` parameter is `charset`, when it is one this rule applies to.
    pub(super) fn of(charset: Option<&str>) -> Option<Label> {
        match charset {
            None => Some(Label::Absent),
            Some(label)
                if label.eq_ignore_ascii_case("us-ascii")
                    || label.eq_ignore_ascii_case("ascii") =>
            {
                Some(Label::UsAscii)
            }
            Some(_) => None,
        }
    }
}

/// The text of an unlabelled (or `us-ascii`) part's body, when the rule above finds it Japanese; `None` leaves
/// the part as parsed.
pub(super) fn sniff(bytes: &[u8], label: Label, decoder: &dyn CharsetDecoder) -> Option<String> {
    if bytes.is_ascii() {
        return has_jis_designation(bytes).then(|| decoder.decode(Encoding::Iso2022Jp, bytes));
    }
    if label != Label::Absent || std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    let as_utf8 = malformed(&String::from_utf8_lossy(bytes));
    let candidates = [Encoding::EucJp, Encoding::ShiftJis].map(|encoding| {
        let text = decoder.decode(encoding, bytes);
        (malformed(&text), half_width_katakana(&text), text)
    });
    // `min_by_key` keeps the first of equals: EUC-JP.
    let (errors, _, text) = candidates
        .into_iter()
        .min_by_key(|(errors, katakana, _)| (*errors, *katakana))?;
    (errors < as_utf8).then_some(text)
}

const JIS_DESIGNATIONS: [&[u8]; 4] = [b"\x1b$B", b"\x1b$@", b"\x1b(J", b"\x1b(I"];

fn has_jis_designation(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .any(|window| JIS_DESIGNATIONS.contains(&window))
}

fn malformed(text: &str) -> usize {
    text.chars().filter(|&c| c == '\u{FFFD}').count()
}

fn half_width_katakana(text: &str) -> usize {
    text.chars()
        .filter(|c| ('\u{FF61}'..='\u{FF9F}').contains(c))
        .count()
}

#[cfg(test)]
mod tests {
    //! The byte strings are written out by hand from the JIS X 0208 / cp932 / EUC-JP code tables.

    use super::super::charset::EncodingRs;
    use super::*;

    fn sniffed(bytes: &[u8], label: Label) -> Option<String> {
        sniff(bytes, label, &EncodingRs)
    }

    #[test]
    fn seven_bit_with_a_jis_designation_is_iso_2022_jp_whether_unlabelled_or_us_ascii() {
        // 日本 = JIS 0x467C 0x4B5C.
        let jis = b"Re: \x1b$BF|K\\\x1b(B ok";
        assert_eq!(sniffed(jis, Label::Absent).as_deref(), Some("Re: 日本 ok"));
        assert_eq!(sniffed(jis, Label::UsAscii).as_deref(), Some("Re: 日本 ok"));
        // JIS X 0208-1978 and JIS X 0201 Roman designations count too (¥ for 0x5C in Roman).
        assert_eq!(
            sniffed(b"\x1b$@F|\x1b(J\\\x1b(B", Label::Absent).as_deref(),
            Some("日¥")
        );
    }

    #[test]
    fn ascii_and_utf8_are_never_touched() {
        assert_eq!(sniffed(b"plain text, no escapes", Label::Absent), None);
        // A lone ESC that designates nothing (a terminal colour code) is not ISO-2022-JP.
        assert_eq!(sniffed(b"\x1b[31mred\x1b[0m", Label::Absent), None);
        // UTF-8 Japanese that would also decode without error as something else stays UTF-8.
        assert_eq!(sniffed("日本語〜～".as_bytes(), Label::Absent), None);
    }

    #[test]
    fn unlabelled_eight_bit_shift_jis_and_euc_jp_are_told_apart() {
        // お問い合わせ in cp932 / Shift_JIS: 82A8 96E2 82A2 8D87 82ED 82B9.
        let sjis = b"\x82\xa8\x96\xe2\x82\xa2\x8d\x87\x82\xed\x82\xb9 \x87\x40\x87\x8a";
        assert_eq!(
            sniffed(sjis, Label::Absent).as_deref(),
            Some("お問い合わせ ①㈱")
        );
        // The same in EUC-JP: A4AA CCE4 A4A4 B9E7 A4EF A4BB (which is also valid Shift_JIS: katakana and kanji).
        let euc = b"\xa4\xaa\xcc\xe4\xa4\xa4\xb9\xe7\xa4\xef\xa4\xbb";
        assert_eq!(sniffed(euc, Label::Absent).as_deref(), Some("お問い合わせ"));
        // Shift_JIS half-width katakana ｱｲｳ (B1 B2 B3) is odd-length EUC-JP: Shift_JIS wins.
        assert_eq!(
            sniffed(b"\xb1\xb2\xb3 OK", Label::Absent).as_deref(),
            Some("ｱｲｳ OK")
        );
    }

    #[test]
    fn a_us_ascii_label_or_undecodable_bytes_keep_the_part_as_parsed() {
        let sjis = b"\x82\xa8\x96\xe2\x82\xa2";
        assert_eq!(sniffed(sjis, Label::UsAscii), None);
        // Bytes neither encoding reads better than UTF-8 does.
        assert_eq!(sniffed(b"\xff\xff\xff", Label::Absent), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Valid UTF-8 is never re-read, unless it is 7-bit with a JIS designation; nothing panics.
        #[test]
        fn utf8_is_kept_and_nothing_panics(text in ".{0,40}", bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let read_again = sniffed(text.as_bytes(), Label::Absent);
            proptest::prop_assert_eq!(read_again.is_some(), text.is_ascii() && has_jis_designation(text.as_bytes()));
            let _ = sniffed(&bytes, Label::Absent);
            let _ = sniffed(&bytes, Label::UsAscii);
        }
    }

    #[test]
    fn labels() {
        assert_eq!(Label::of(None), Some(Label::Absent));
        assert_eq!(Label::of(Some("US-ASCII")), Some(Label::UsAscii));
        assert_eq!(Label::of(Some("utf-8")), None);
        assert_eq!(Label::of(Some("iso-8859-1")), None);
    }
}
