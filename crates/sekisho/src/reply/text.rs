//! A backend's reply text made safe for where each channel shows it: plain text whatever the markup of the
//! format around it.

/// The text with its lines kept as LF and no other control character (XML 1.0 cannot even carry most of
/// them), cut to `max_chars` characters.
pub fn plain_text(text: &str, max_chars: usize) -> String {
    limit_chars(&crate::control_chars::multi_line(text), max_chars)
}

/// At most `max_chars` characters of `text`.
pub fn limit_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => text.get(..cut).unwrap_or(text).to_owned(),
        None => text.to_owned(),
    }
}

/// A CDATA section holding `text` literally: a `]]>` inside would end the section, so it is split across two
/// sections (`]]` + `>`), the usual way to carry it.
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// Slack's text formatting treats `<…>` as links and mentions (`<@U123>`, `<!channel>`) and `&` as the start of
/// an entity: the three are escaped, as Slack's own guide asks for text that must show as typed.
pub fn slack_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_carries_its_own_terminator_literally() {
        let section = cdata("a]]><x/>b");
        assert_eq!(section, "<![CDATA[a]]]]><![CDATA[><x/>b]]>");
        // Read back by a real XML parser, the text is exactly what was given.
        let xml = format!("<r>{section}</r>");
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut text = String::new();
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::CData(c) => {
                    text.push_str(std::str::from_utf8(&c.into_inner()).unwrap())
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(text, "a]]><x/>b");
    }

    #[test]
    fn plain_text_drops_control_characters_and_cuts_by_characters() {
        assert_eq!(
            plain_text("受け\r\n付け\u{1b}[31mました\0", 100),
            "受け\n付け[31mました"
        );
        assert_eq!(plain_text("あいうえお", 3), "あいう");
        assert_eq!(limit_chars("ab", 5), "ab");
    }

    #[test]
    fn slack_mentions_and_links_stay_text() {
        assert_eq!(
            slack_escaped("<!channel> <@U123> <https://x|y> & co"),
            "&lt;!channel&gt; &lt;@U123&gt; &lt;https://x|y&gt; &amp; co"
        );
    }
}
