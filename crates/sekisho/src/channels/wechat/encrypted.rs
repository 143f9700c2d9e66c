//! The encrypted envelope of WeChat and WeCom, read in two steps so that no CPU is spent on an unauthenticated
//! body beyond finding the signed value:
//!
//! 1. [`find_encrypt`] / [`find_json_encrypt`] scan only as far as the `<Encrypt>` element (XML) or the
//!    `encrypt` member (AI-bot JSON) and return its text. The XML scanner is a small tokenizer: linear in the
//!    bytes it reads, no allocation except when the text is split into several pieces, nesting bounded by
//!    [`MAX_DEPTH`]. The first error stops it.
//! 2. Once the caller has checked `msg_signature` over that text, [`XmlEnvelope::check_rest`] /
//!    [`check_json_rest`] check the rest of the body with the same linear work: it must be well-formed and hold
//!    no second `Encrypt`. Only the signed text is ever used; the rest is refused if it is broken rather than
//!    ignored, so what the gateway accepts is exactly what the provider sends.
//!
//! The `Encrypt` that counts is the first child of the root element named `Encrypt` (an `Encrypt` nested
//! deeper, or inside CDATA or a comment, is not it). Its text is the concatenation of its text and CDATA
//! pieces, exactly as sent (the signature covers it byte for byte); it must be a leaf without entity
//! references (base64 needs none). `<Encrypt/>` or an empty one counts as missing.

use std::borrow::Cow;

use serde::de::{Deserializer as _, Error as _, IgnoredAny, MapAccess, Visitor};

use crate::Rejection;

/// Nesting deeper than this is not something WeChat or WeCom send.
pub(super) const MAX_DEPTH: usize = 32;

const MALFORMED_XML: Rejection = Rejection::MalformedBody { expected: "XML" };
const MALFORMED_JSON: Rejection = Rejection::MalformedBody { expected: "JSON" };
const MISSING_XML: Rejection = Rejection::MissingParameter("Encrypt");
const MISSING_JSON: Rejection = Rejection::MissingParameter("encrypt");
const ENCRYPT: &[u8] = b"Encrypt";

/// The `<Encrypt>` text of an XML envelope, and where the scan stopped.
#[derive(Debug)]
pub(super) struct XmlEnvelope<'a> {
    pub encrypt: Cow<'a, str>,
    body: &'a [u8],
    root: &'a [u8],
    /// Offset just past `</Encrypt>`.
    resume: usize,
}

/// Step 1 for XML: the text of the root's first `Encrypt` child, reading nothing after its end tag.
pub(super) fn find_encrypt(body: &[u8]) -> Result<XmlEnvelope<'_>, Rejection> {
    let mut scanner = Scanner::new(body);
    let mut stack: Vec<&[u8]> = Vec::new();
    let mut root: Option<&[u8]> = None;
    while let Some(token) = scanner.next()? {
        match token {
            Token::Start { name, empty } => {
                if stack.is_empty() && root.is_some() {
                    return Err(MALFORMED_XML);
                }
                if stack.len() == 1 && name == ENCRYPT {
                    if empty {
                        return Err(MISSING_XML);
                    }
                    let encrypt = scanner.leaf_text()?;
                    if encrypt.is_empty() {
                        return Err(MISSING_XML);
                    }
                    return Ok(XmlEnvelope {
                        encrypt,
                        body,
                        root: stack.first().copied().unwrap_or_default(),
                        resume: scanner.pos,
                    });
                }
                open(&mut stack, &mut root, name, empty)?;
            }
            Token::End(name) => close(&mut stack, name)?,
            Token::Text(text) => text_ok(&stack, text)?,
            Token::CData(_) if stack.is_empty() => return Err(MALFORMED_XML),
            Token::CData(_) | Token::Other => {}
        }
        if stack.is_empty() && root.is_some() {
            // The root closed without an Encrypt child.
            return Err(MISSING_XML);
        }
    }
    Err(if root.is_some() {
        MALFORMED_XML
    } else {
        MISSING_XML
    })
}

impl XmlEnvelope<'_> {
    /// Step 2, after the signature: the rest of the body is well-formed UTF-8 XML with no second `Encrypt`
    /// child of the root.
    pub(super) fn check_rest(&self) -> Result<(), Rejection> {
        std::str::from_utf8(self.body).map_err(|_| MALFORMED_XML)?;
        let mut scanner = Scanner::new(self.body);
        scanner.pos = self.resume;
        let mut stack = vec![self.root];
        let mut root = Some(self.root);
        while let Some(token) = scanner.next()? {
            match token {
                Token::Start { name, .. } if stack.len() == 1 && name == ENCRYPT => {
                    return Err(MALFORMED_XML)
                }
                Token::Start { name, empty } => {
                    if stack.is_empty() {
                        return Err(MALFORMED_XML);
                    }
                    open(&mut stack, &mut root, name, empty)?;
                }
                Token::End(name) => close(&mut stack, name)?,
                Token::Text(text) => text_ok(&stack, text)?,
                Token::CData(_) if stack.is_empty() => return Err(MALFORMED_XML),
                Token::CData(_) | Token::Other => {}
            }
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err(MALFORMED_XML)
        }
    }
}

fn open<'a>(
    stack: &mut Vec<&'a [u8]>,
    root: &mut Option<&'a [u8]>,
    name: &'a [u8],
    empty: bool,
) -> Result<(), Rejection> {
    if stack.is_empty() {
        *root = Some(name);
    }
    if !empty {
        if stack.len() >= MAX_DEPTH {
            return Err(MALFORMED_XML);
        }
        stack.push(name);
    }
    Ok(())
}

fn close(stack: &mut Vec<&[u8]>, name: &[u8]) -> Result<(), Rejection> {
    match stack.pop() {
        Some(open) if open == name => Ok(()),
        _ => Err(MALFORMED_XML),
    }
}

/// Outside the root only whitespace; inside, entity references must be well-formed.
fn text_ok(stack: &[&[u8]], text: &[u8]) -> Result<(), Rejection> {
    if stack.is_empty() {
        return if text.iter().all(u8::is_ascii_whitespace) {
            Ok(())
        } else {
            Err(MALFORMED_XML)
        };
    }
    let mut rest = text;
    while let Some(at) = rest.iter().position(|&b| b == b'&') {
        let after = rest.get(at + 1..).unwrap_or_default();
        let end = after
            .iter()
            .take(12)
            .position(|&b| b == b';')
            .ok_or(MALFORMED_XML)?;
        let reference = after.get(..end).unwrap_or_default();
        let known = matches!(reference, b"lt" | b"gt" | b"amp" | b"quot" | b"apos")
            || reference
                .strip_prefix(b"#x")
                .is_some_and(|hex| !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit))
            || reference
                .strip_prefix(b"#")
                .is_some_and(|dec| !dec.is_empty() && dec.iter().all(u8::is_ascii_digit));
        if !known {
            return Err(MALFORMED_XML);
        }
        rest = after.get(end + 1..).unwrap_or_default();
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Start {
        name: &'a [u8],
        empty: bool,
    },
    End(&'a [u8]),
    Text(&'a [u8]),
    CData(&'a [u8]),
    /// A comment, processing instruction or XML declaration.
    Other,
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let pos = if bytes.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        Scanner { bytes, pos }
    }

    fn next(&mut self) -> Result<Option<Token<'a>>, Rejection> {
        let rest = self.bytes.get(self.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.first() != Some(&b'<') {
            let end = rest.iter().position(|&b| b == b'<').unwrap_or(rest.len());
            self.pos += end;
            return Ok(Some(Token::Text(rest.get(..end).unwrap_or_default())));
        }
        let (token, used) = if let Some(data) = rest.strip_prefix(b"<![CDATA[") {
            let end = find(data, b"]]>").ok_or(MALFORMED_XML)?;
            (
                Token::CData(data.get(..end).unwrap_or_default()),
                9 + end + 3,
            )
        } else if let Some(comment) = rest.strip_prefix(b"<!--") {
            (
                Token::Other,
                4 + find(comment, b"-->").ok_or(MALFORMED_XML)? + 3,
            )
        } else if let Some(pi) = rest.strip_prefix(b"<?") {
            (Token::Other, 2 + find(pi, b"?>").ok_or(MALFORMED_XML)? + 2)
        } else if rest.starts_with(b"<!") {
            // A DOCTYPE (entity declarations) is never sent by either provider.
            return Err(MALFORMED_XML);
        } else if let Some(tag) = rest.strip_prefix(b"</") {
            let name = name(tag)?;
            let after = tag.get(name.len()..).unwrap_or_default();
            let spaces = after.iter().take_while(|b| b.is_ascii_whitespace()).count();
            if after.get(spaces) != Some(&b'>') {
                return Err(MALFORMED_XML);
            }
            (Token::End(name), 2 + name.len() + spaces + 1)
        } else {
            let tag = rest.get(1..).unwrap_or_default();
            let name = name(tag)?;
            let (end, empty) = tag_end(tag.get(name.len()..).unwrap_or_default())?;
            (Token::Start { name, empty }, 1 + name.len() + end + 1)
        };
        self.pos += used;
        Ok(Some(token))
    }

    /// The content of a leaf element whose start tag was just read, through its end tag: text and CDATA
    /// pieces concatenated, UTF-8.
    fn leaf_text(&mut self) -> Result<Cow<'a, str>, Rejection> {
        let mut text: Cow<'a, [u8]> = Cow::Borrowed(&[]);
        loop {
            let piece = match self.next()?.ok_or(MALFORMED_XML)? {
                Token::Text(piece) if !piece.contains(&b'&') => piece,
                Token::CData(piece) => piece,
                Token::End(name) if name == ENCRYPT => break,
                _ => return Err(MALFORMED_XML),
            };
            if text.is_empty() {
                text = Cow::Borrowed(piece);
            } else {
                text.to_mut().extend_from_slice(piece);
            }
        }
        match text {
            Cow::Borrowed(bytes) => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| MALFORMED_XML),
            Cow::Owned(bytes) => String::from_utf8(bytes)
                .map(Cow::Owned)
                .map_err(|_| MALFORMED_XML),
        }
    }
}

/// An element or end-tag name: everything up to whitespace, `>` or `/`; never empty.
fn name(tag: &[u8]) -> Result<&[u8], Rejection> {
    let len = tag
        .iter()
        .position(|&b| b.is_ascii_whitespace() || b == b'>' || b == b'/' || b == b'<')
        .unwrap_or(tag.len());
    match tag.get(..len) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(MALFORMED_XML),
    }
}

/// After a start tag's name: the offset of its `>` (attribute values may contain `>`), and whether it is `/>`.
fn tag_end(rest: &[u8]) -> Result<(usize, bool), Rejection> {
    let mut quote: Option<u8> = None;
    let mut previous = 0u8;
    for (at, &byte) in rest.iter().enumerate() {
        match quote {
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None => match byte {
                b'"' | b'\'' => quote = Some(byte),
                b'<' => return Err(MALFORMED_XML),
                b'>' => return Ok((at, previous == b'/')),
                _ => {}
            },
        }
        previous = byte;
    }
    Err(MALFORMED_XML)
}

/// Linear: each candidate position is compared against a needle of at most 9 bytes.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(offset) = haystack.get(from..)?.iter().position(|&b| b == first) {
        let at = from + offset;
        if haystack.get(at..)?.starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Step 1 for the AI-bot JSON envelope `{"encrypt":"…"}`: the first `encrypt` member's string, read without
/// looking past it (members before it are skipped without being built).
pub(super) fn find_json_encrypt(body: &[u8]) -> Result<String, Rejection> {
    struct Find<'s>(&'s mut Option<String>);

    impl<'de> Visitor<'de> for Find<'_> {
        type Value = ();

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object with `encrypt`")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "encrypt" {
                    *self.0 = Some(map.next_value::<String>()?);
                    // Stop here: what follows is checked only after the signature.
                    return Err(A::Error::custom("found"));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut found = None;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let result = deserializer.deserialize_map(Find(&mut found));
    match (found, result) {
        (Some(encrypt), _) if !encrypt.is_empty() => Ok(encrypt),
        (Some(_), _) => Err(MISSING_JSON),
        (None, Ok(())) => deserializer
            .end()
            .map_or(Err(MALFORMED_JSON), |()| Err(MISSING_JSON)),
        (None, Err(_)) => Err(MALFORMED_JSON),
    }
}

/// Step 2 for JSON, after the signature: the whole body is one object with exactly one `encrypt`.
pub(super) fn check_json_rest(body: &[u8]) -> Result<(), Rejection> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[allow(dead_code)]
        encrypt: IgnoredAny,
    }
    serde_json::from_slice::<Envelope>(body)
        .map(|_| ())
        .map_err(|_| MALFORMED_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encrypt_of(body: &str) -> Result<String, Rejection> {
        find_encrypt(body.as_bytes()).map(|envelope| envelope.encrypt.into_owned())
    }

    fn whole(body: &str) -> Result<String, Rejection> {
        let envelope = find_encrypt(body.as_bytes())?;
        envelope.check_rest()?;
        Ok(envelope.encrypt.into_owned())
    }

    #[test]
    fn encrypt_in_cdata_and_as_plain_text_both_extract() {
        let cdata = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc+/=]]></Encrypt></xml>";
        assert_eq!(whole(cdata), Ok("abc+/=".to_owned()));
        assert!(matches!(
            find_encrypt(cdata.as_bytes()).unwrap().encrypt,
            Cow::Borrowed(_)
        ));
        let plain = "<?xml version=\"1.0\"?>\n<xml>\n <Encrypt>abc+/=</Encrypt>\n <AgentID>1</AgentID>\n</xml>\n";
        assert_eq!(whole(plain), Ok("abc+/=".to_owned()));
        // Pieces are concatenated exactly as sent: the signature covers them byte for byte.
        let split = "<xml><Encrypt> ab<![CDATA[c]]>d<![CDATA[<e>]]></Encrypt></xml>";
        assert_eq!(whole(split), Ok(" abcd<e>".to_owned()));
        let attributes = "<xml a='>'><Encrypt x=\"1>2\">q</Encrypt ></xml >";
        assert_eq!(whole(attributes), Ok("q".to_owned()));
    }

    #[test]
    fn missing_or_empty_encrypt_is_a_missing_parameter() {
        for body in [
            "<xml><ToUserName>a</ToUserName></xml>",
            "<xml/>",
            "<xml><Encrypt/></xml>",
            "<xml><Encrypt></Encrypt></xml>",
            "<xml><Deep><Encrypt>abc</Encrypt></Deep></xml>",
            "<xml><Content><![CDATA[<Encrypt>fake</Encrypt>]]></Content></xml>",
            "<xml><!-- <Encrypt>fake</Encrypt> --></xml>",
            "<Encrypt>root is not a child</Encrypt>",
            // The scan stops when the root closes: a second root is not looked at.
            "<xml></xml><xml><Encrypt>x</Encrypt></xml>",
            "",
            "   ",
        ] {
            assert_eq!(encrypt_of(body), Err(MISSING_XML), "{body:?}");
        }
    }

    #[test]
    fn encrypt_inside_cdata_or_deeper_is_not_the_envelopes() {
        // Compatible mode carries the user's own text before Encrypt; what they type cannot become it.
        let body = "<xml><Content><![CDATA[<Encrypt>fake</Encrypt>]]></Content><Deep><Encrypt>no</Encrypt></Deep><Encrypt>real</Encrypt></xml>";
        assert_eq!(whole(body), Ok("real".to_owned()));
    }

    #[test]
    fn nested_and_duplicated_encrypt_have_defined_outcomes() {
        // Nested: Encrypt must be a leaf, refused while reading it.
        assert_eq!(
            encrypt_of("<xml><Encrypt><Encrypt>abc</Encrypt></Encrypt></xml>"),
            Err(MALFORMED_XML)
        );
        assert_eq!(
            encrypt_of("<xml><Encrypt>a<b/>c</Encrypt></xml>"),
            Err(MALFORMED_XML)
        );
        // Duplicated: the first is the signed value; the second makes step 2 refuse the body.
        let twice = "<xml><Encrypt>first</Encrypt><Encrypt>second</Encrypt></xml>";
        let envelope = find_encrypt(twice.as_bytes()).unwrap();
        assert_eq!(envelope.encrypt, "first");
        assert_eq!(envelope.check_rest(), Err(MALFORMED_XML));
        assert_eq!(
            whole("<xml><Encrypt>first</Encrypt><Encrypt/></xml>"),
            Err(MALFORMED_XML)
        );
    }

    #[test]
    fn nothing_after_encrypt_is_read_in_step_one() {
        let tail = format!(
            "<xml><Encrypt><![CDATA[abc]]></Encrypt>{}\u{0}\u{ff}</zzz>&bogus;",
            "<a>".repeat(100_000)
        );
        let mut body = tail.into_bytes();
        body.extend_from_slice(b"\xff\xfe not utf-8");
        let envelope = find_encrypt(&body).unwrap();
        assert_eq!(envelope.encrypt, "abc");
        assert_eq!(envelope.check_rest(), Err(MALFORMED_XML));
    }

    #[test]
    fn broken_xml_is_malformed() {
        for body in [
            "not xml",
            "{\"Encrypt\":\"abc\"}",
            "<xml><a>1</b><Encrypt>x</Encrypt></xml>",
            "<xml><a>&unknown;</a><Encrypt>x</Encrypt></xml>",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]><xml><Encrypt>x</Encrypt></xml>",
            "<xml><Encrypt>a&amp;b</Encrypt></xml>",
            "<xml><Encrypt>abc",
            "<xml><Encrypt>abc</Encrypted></xml>",
            "<xml><![CDATA[x",
            "<xml><a",
            "<xml><>",
            "</xml>",
        ] {
            assert_eq!(encrypt_of(body), Err(MALFORMED_XML), "{body:?}");
        }
        let deep = format!("<xml>{}<Encrypt>x</Encrypt></xml>", "<a>".repeat(MAX_DEPTH));
        assert_eq!(encrypt_of(&deep), Err(MALFORMED_XML));
        for rest in [
            "<xml><Encrypt>x</Encrypt>",
            "<xml><Encrypt>x</Encrypt></xml>trailing",
            "<xml><Encrypt>x</Encrypt></xml><xml/>",
            "<xml><Encrypt>x</Encrypt><a></b></xml>",
            "<xml><Encrypt>x</Encrypt><a>&e;</a></xml>",
        ] {
            assert_eq!(whole(rest), Err(MALFORMED_XML), "{rest:?}");
        }
        assert_eq!(
            whole(
                "\u{feff}<xml><Encrypt>x</Encrypt><a>&lt;&#20013;&#x4e2d;</a></xml><!-- end -->\n"
            ),
            Ok("x".to_owned())
        );
    }

    #[test]
    fn json_envelope_in_two_steps() {
        assert_eq!(find_json_encrypt(br#"{"encrypt":"abc"}"#), Ok("abc".into()));
        assert_eq!(
            find_json_encrypt(br#"{"other":[1,{"x":"y"}],"encrypt":"a\/b"}"#),
            Ok("a/b".into())
        );
        // Nothing after the member is read before the signature.
        let tail = br#"{"encrypt":"abc", garbage garbage"#;
        assert_eq!(find_json_encrypt(tail), Ok("abc".into()));
        assert_eq!(check_json_rest(tail), Err(MALFORMED_JSON));
        let twice = br#"{"encrypt":"abc","encrypt":"def"}"#;
        assert_eq!(find_json_encrypt(twice), Ok("abc".into()));
        assert_eq!(check_json_rest(twice), Err(MALFORMED_JSON));
        assert_eq!(check_json_rest(br#"{"encrypt":"abc","x":1}"#), Ok(()));
        for missing in [&br#"{}"#[..], br#"{"x":1}"#, br#"{"encrypt":""}"#] {
            assert_eq!(find_json_encrypt(missing), Err(MISSING_JSON));
        }
        for malformed in [
            &b"<xml><Encrypt>abc</Encrypt></xml>"[..],
            br#"{"encrypt":1}"#,
            br#"{"x":1"#,
            br#"{"x":1} trailing"#,
            br#"["encrypt"]"#,
            b"",
        ] {
            assert_eq!(
                find_json_encrypt(malformed),
                Err(MALFORMED_JSON),
                "{malformed:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(envelope) = find_encrypt(&body) {
                let _ = envelope.check_rest();
            }
            let _ = find_json_encrypt(&body);
            let _ = check_json_rest(&body);
        }

        #[test]
        fn never_panics_on_xml_shaped_input(parts in proptest::collection::vec(
            "(<xml>|</xml>|<Encrypt>|</Encrypt>|<Encrypt/>|<a>|</a>|<!\\[CDATA\\[|\\]\\]>|<!--|-->|<\\?|\\?>|&amp;|&|[a-z=+/ ]{0,4}|\"|'|<|>|/)", 0..24)) {
            let body = parts.concat();
            if let Ok(envelope) = find_encrypt(body.as_bytes()) {
                let _ = envelope.check_rest();
            }
        }
    }
}
