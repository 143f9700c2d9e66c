//! Decodes again, in a parsed message, what `mail-parser` read as UTF-8 because its charset is one of those it
//! decodes only with `full_encoding` ([`charset`](super::charset)): text and HTML bodies, RFC 2047 encoded
//! words and RFC 2231 parameter values. The message is left as `full_encoding` would have parsed it, so the
//! normalizer reads it as before; the raw bytes (raw headers, content digest) are never touched.
//!
//! - A body is taken again from the raw message with `mail-parser`'s own transfer decoders, at the part's
//!   offsets and up to its boundary, and decoded with the part's charset. It replaces the parsed text only
//!   when it is what that text was read from (its lossy UTF-8 reading is the parsed text).
//! - Content-Type and Content-Disposition are parsed again by [`content_type`](super::content_type), a port of
//!   `mail-parser`'s own parser that decodes charsets through the decoder.
//! - Any other header with a lossy encoded word (Subject, From, To, …) is parsed again by `mail-parser` itself
//!   from its raw value with each word it decodes re-encoded as UTF-8 text under its own label, which
//!   `mail-parser` reads as UTF-8; so every rule of the header grammar (where a word is decoded, how words
//!   join) stays `mail-parser`'s.
//!
//! Checked against the Worker before this change (mail-parser with `full_encoding`) on 106,000 generated
//! messages in every such charset, damaged ones among them: the same events.

use std::borrow::Cow;

use base64::Engine as _;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Address, Encoding as TransferEncoding, HeaderName, HeaderValue, Message, MessageParser,
    MessagePart, MimeHeaders, PartType,
};

use super::charset::{self, lossy_charset, CharsetDecoder};
use super::{content_type, encoded_word, sniff};

/// Decodes again every body, encoded word and parameter value in a charset `mail-parser` read as UTF-8.
pub(super) fn redecode(message: &mut Message<'_>, decoder: &dyn CharsetDecoder) {
    let raw = message.raw_message.clone();
    // Bodies first: their charset is read from the headers as the parser read them.
    let boundaries = parent_boundaries(&message.parts);
    for (part, boundary) in message.parts.iter_mut().zip(&boundaries) {
        redecode_body(part, &raw, boundary.as_deref().unwrap_or_default(), decoder);
    }
    for part in &mut message.parts {
        for header in &mut part.headers {
            let (Some(field), Some(value)) = (
                raw.get(header.offset_field as usize..header.offset_start as usize),
                raw.get(header.offset_start as usize..header.offset_end as usize),
            ) else {
                continue;
            };
            if let Some(reparsed) =
                redecode_header(&header.name, field, value, &header.value, decoder)
            {
                header.value = reparsed;
            } else if let Some(subject) = raw_jis_subject(&header.name, value, decoder) {
                header.value = HeaderValue::Text(Cow::Owned(subject));
            }
        }
    }
}

/// A Subject written in ISO-2022-JP without RFC 2047 words (older Japanese mailers): 7-bit, with a JIS
/// designation and no `=?`, unfolded and decoded by the rule of [`sniff`] for a `us-ascii` part.
fn raw_jis_subject(
    name: &HeaderName<'_>,
    value: &[u8],
    decoder: &dyn CharsetDecoder,
) -> Option<String> {
    if *name != HeaderName::Subject || contains(value, b"=?") {
        return None;
    }
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let text = sniff::sniff(&unfolded, sniff::Label::UsAscii, decoder)?;
    Some(text.trim().to_owned())
}

/// The MIME boundary each part was read up to: its enclosing multipart's.
fn parent_boundaries(parts: &[MessagePart<'_>]) -> Vec<Option<Vec<u8>>> {
    let mut boundaries = vec![None; parts.len()];
    for part in parts {
        let PartType::Multipart(children) = &part.body else {
            continue;
        };
        let boundary = part
            .content_type()
            .and_then(|ct| ct.attribute("boundary"))
            .map(|b| b.as_bytes().to_vec());
        for &child in children {
            if let Some(slot) = boundaries.get_mut(child as usize) {
                slot.clone_from(&boundary);
            }
        }
    }
    boundaries
}

/// How a body is decoded again: by its label, or by [`sniff`] when it has none (or `us-ascii`).
enum Decoding {
    Labelled(charset::Charset),
    Sniffed(sniff::Label),
}

fn redecode_body(
    part: &mut MessagePart<'_>,
    raw: &[u8],
    boundary: &[u8],
    decoder: &dyn CharsetDecoder,
) {
    let label = part.content_type().and_then(|ct| ct.attribute("charset"));
    let decoding = match (
        label.and_then(|label| lossy_charset(label.as_bytes())),
        sniff::Label::of(label),
    ) {
        (Some(charset), _) => Decoding::Labelled(charset),
        (None, Some(unlabelled)) => Decoding::Sniffed(unlabelled),
        (None, None) => return,
    };
    let (PartType::Text(parsed) | PartType::Html(parsed)) = &part.body else {
        return;
    };
    let Some(bytes) = body_bytes(part, raw, boundary) else {
        return;
    };
    if String::from_utf8_lossy(&bytes) != *parsed {
        return;
    }
    let text = match decoding {
        Decoding::Labelled(charset) => charset::decode(decoder, charset, &bytes),
        Decoding::Sniffed(label) => match sniff::sniff(&bytes, label, decoder) {
            Some(text) => text,
            None => return,
        },
    };
    let text = Cow::Owned(text);
    part.body = match part.body {
        PartType::Html(_) => PartType::Html(text),
        _ => PartType::Text(text),
    };
}

/// The part's body after its transfer encoding, as the parser decoded it: the same decoder from the same
/// offset up to the same boundary (`None` unless it ends where the part ends).
fn body_bytes<'a>(part: &MessagePart<'_>, raw: &'a [u8], boundary: &[u8]) -> Option<Cow<'a, [u8]>> {
    let (start, end) = (part.offset_body as usize, part.offset_end as usize);
    if part.is_encoding_problem {
        // The parser's recovery: the raw bytes, not decoded.
        return raw.get(start..end).map(Cow::Borrowed);
    }
    if start > raw.len() {
        return None;
    }
    let mut stream = MessageStream::new(raw);
    stream.skip_bytes(start);
    let (found_end, bytes) = match part.encoding {
        TransferEncoding::Base64 => stream.decode_base64_mime(boundary),
        TransferEncoding::QuotedPrintable => stream.decode_quoted_printable_mime(boundary),
        TransferEncoding::None => stream.mime_part(boundary),
    };
    (found_end == end).then_some(bytes)
}

/// A rewritten piece of a header value: where it was, what replaces it.
struct Rewrite {
    range: std::ops::Range<usize>,
    replacement: Vec<u8>,
}

/// The header read again with its lossy words and parameters decoded; `None` when there is nothing to decode
/// again, or when `mail-parser` would read the header differently.
fn redecode_header(
    name: &HeaderName<'_>,
    field: &[u8],
    value: &[u8],
    parsed: &HeaderValue<'_>,
    decoder: &dyn CharsetDecoder,
) -> Option<HeaderValue<'static>> {
    match parsed {
        // Parameters: parsed again by the port of mail-parser's own parser (see `content_type`).
        HeaderValue::ContentType(_)
            if matches!(
                name,
                HeaderName::ContentType | HeaderName::ContentDisposition
            ) =>
        {
            (has_lossy_label(value) || !encoded_words(value, decoder, false).is_empty()).then(
                || {
                    content_type::parse_content_type(&mut MessageStream::new(value), decoder)
                        .into_owned()
                },
            )
        }
        HeaderValue::Text(_) | HeaderValue::TextList(_) | HeaderValue::Address(_) => {
            rewrite_words(field, value, decoder)
        }
        _ => None,
    }
}

/// Whether the value has a `'` (as RFC 2231 values do: `name*=shift_jis''%82%A0`) and a lossy charset label
/// anywhere: where exactly mail-parser takes a label from is the parser's business.
fn has_lossy_label(value: &[u8]) -> bool {
    value.contains(&b'\'')
        && value
            .split(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
            .any(|token| !token.is_empty() && lossy_charset(token).is_some())
}

/// The header parsed again by `mail-parser` with each lossy word it decodes re-encoded as UTF-8 text.
///
/// Whether `mail-parser` decodes a word depends on where it stands (an address parser does not decode a word
/// inside a token, for instance), that is on the bytes before it, but not on its payload: a decoded word is
/// consumed whole, and its text is not parsed again. So the words are tried from left to right, each with the
/// ones before it as decided: a rewritten word that comes back literally was not decoded and is put back as it
/// was written (its literal text may matter to the parse, a `,` in a Q-encoded word for one).
fn rewrite_words(
    field: &[u8],
    value: &[u8],
    decoder: &dyn CharsetDecoder,
) -> Option<HeaderValue<'static>> {
    let candidates = encoded_words(value, decoder, true);
    if candidates.is_empty() {
        return None;
    }
    // Mostly every word is decoded: then one parse with all of them rewritten is what the word-by-word
    // decisions below give too (each word sees the same bytes before it).
    let all = parse_rewritten(field, value, &candidates)?;
    if !candidates
        .iter()
        .any(|rewrite| comes_back_literally(&all, rewrite))
    {
        return Some(all);
    }
    let mut decoded: Vec<Rewrite> = Vec::with_capacity(candidates.len());
    let mut reparsed = None;
    for candidate in candidates {
        decoded.push(candidate);
        let attempt = parse_rewritten(field, value, &decoded)?;
        if decoded
            .last()
            .is_some_and(|rewrite| comes_back_literally(&attempt, rewrite))
        {
            decoded.pop();
        } else {
            reparsed = Some(attempt);
        }
    }
    // The last attempt that kept its word has every decoded word rewritten.
    reparsed
}

fn comes_back_literally(reparsed: &HeaderValue<'_>, rewrite: &Rewrite) -> bool {
    texts(reparsed)
        .iter()
        .any(|text| contains(text.as_bytes(), &rewrite.replacement))
}

/// `field` (the name and colon) followed by `value` with the rewrites applied, parsed as a header.
fn parse_rewritten(
    field: &[u8],
    value: &[u8],
    rewrites: &[Rewrite],
) -> Option<HeaderValue<'static>> {
    let mut header = field.to_vec();
    let mut at = 0;
    for rewrite in rewrites {
        header.extend_from_slice(value.get(at..rewrite.range.start)?);
        header.extend_from_slice(&rewrite.replacement);
        at = rewrite.range.end;
    }
    header.extend_from_slice(value.get(at..)?);
    let mut headers = Vec::new();
    MessageStream::new(&header).parse_headers(&MessageParser::default(), &mut headers);
    headers
        .into_iter()
        .next()
        .map(|header| header.value.into_owned())
}

/// RFC 2047 words in a lossy charset, each re-encoded as `=?{label}*{n}?B?{base64 of the decoded text}?=`:
/// `mail-parser` reads the same label as UTF-8, so where it decodes the word it gets the decoded text. The
/// language suffix `*{n}` (which decoding ignores) makes each rewritten word unique, so that one that comes back
/// literally is told from the others.
///
/// With `join_split`, adjacent words (only whitespace between them, which RFC 2047 ignores) of one label in a
/// multi-byte charset (UTF-8 or a lossy one) are decoded together when that gives fewer malformed sequences than
/// decoding them one by one, that is when one of them ends inside a character (as Japanese subjects often do,
/// although RFC 2047 forbids it): one word replaces them all. (Joining self-contained ISO-2022-JP words would
/// put two escape sequences side by side, which the WHATWG decoder counts as malformed, so those stay apart.)
fn encoded_words(value: &[u8], decoder: &dyn CharsetDecoder, join_split: bool) -> Vec<Rewrite> {
    let words = read_words(value);
    let mut rewrites = Vec::new();
    let mut index = 0;
    while let Some(first) = words.get(index) {
        let label = value.get(first.label.clone()).unwrap_or_default();
        let run_length = if join_split && splittable(label) {
            1 + words
                .get(index..)
                .unwrap_or_default()
                .windows(2)
                .take_while(|pair| match pair {
                    [a, b] => {
                        value.get(a.end..b.start).is_some_and(|gap| {
                            gap.iter()
                                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                        }) && value
                            .get(b.label.clone())
                            .is_some_and(|other| other.eq_ignore_ascii_case(label))
                    }
                    _ => false,
                })
                .count()
        } else {
            1
        };
        let run = words.get(index..index + run_length).unwrap_or_default();
        index += run_length.max(1);
        let joined: Vec<u8> = run
            .iter()
            .flat_map(|word| word.payload.iter().copied())
            .collect();
        let together = decode_word_text(label, &joined, decoder);
        let apart: Option<String> = run
            .iter()
            .map(|word| decode_word_text(label, &word.payload, decoder))
            .collect();
        let words_to_rewrite: Vec<(std::ops::Range<usize>, String)> = match (run, together) {
            ([first, .., last], Some(together))
                if replacements(&together) < apart.as_deref().map_or(0, replacements) =>
            {
                vec![(first.start..last.end, together)]
            }
            _ if lossy_charset(label).is_some() => run
                .iter()
                .filter_map(|word| {
                    decode_word_text(label, &word.payload, decoder)
                        .map(|text| (word.start..word.end, text))
                })
                .collect(),
            _ => Vec::new(),
        };
        for (range, text) in words_to_rewrite {
            let mut replacement = b"=?".to_vec();
            replacement.extend_from_slice(label);
            replacement.extend_from_slice(format!("*{}?B?", rewrites.len()).as_bytes());
            replacement.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(text)
                    .as_bytes(),
            );
            replacement.extend_from_slice(b"?=");
            rewrites.push(Rewrite { range, replacement });
        }
    }
    rewrites
}

/// One RFC 2047 word of a header value: where it stands, its label and its payload bytes.
struct Word {
    start: usize,
    end: usize,
    label: std::ops::Range<usize>,
    payload: Vec<u8>,
}

fn read_words(value: &[u8]) -> Vec<Word> {
    let mut words = Vec::new();
    let mut at = 0;
    while let Some(found) = value
        .get(at..)
        .and_then(|rest| rest.windows(2).position(|pair| pair == b"=?"))
    {
        let start = at + found;
        let mut stream = MessageStream::new(value);
        stream.skip_bytes(start + 1);
        let Some(word) = encoded_word::read_word(&mut stream) else {
            at = start + 1;
            continue;
        };
        let end = stream.offset();
        words.push(Word {
            start,
            end,
            label: word.label,
            payload: word.payload,
        });
        at = end;
    }
    words
}

/// Whether a word's payload may end inside a character: UTF-8, or a lossy (multi-byte) charset.
fn splittable(label: &[u8]) -> bool {
    is_utf8_label(label) || lossy_charset(label).is_some()
}

fn is_utf8_label(label: &[u8]) -> bool {
    label.eq_ignore_ascii_case(b"utf-8") || label.eq_ignore_ascii_case(b"utf8")
}

/// A word's text in `label`, decoded by the decoder (lossy charsets) or as UTF-8; `None` for other charsets,
/// which `mail-parser` decodes itself.
fn decode_word_text(label: &[u8], payload: &[u8], decoder: &dyn CharsetDecoder) -> Option<String> {
    match lossy_charset(label) {
        Some(charset) => Some(charset::decode(decoder, charset, payload)),
        None if is_utf8_label(label) => Some(String::from_utf8_lossy(payload).into_owned()),
        None => None,
    }
}

fn replacements(text: &str) -> usize {
    text.chars().filter(|&c| c == '\u{FFFD}').count()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Every text of a header value.
fn texts<'a>(value: &'a HeaderValue<'_>) -> Vec<&'a str> {
    let mut texts = Vec::new();
    match value {
        HeaderValue::Address(Address::List(list)) => push_addresses(&mut texts, list),
        HeaderValue::Address(Address::Group(groups)) => {
            for group in groups {
                texts.extend(group.name.as_deref());
                push_addresses(&mut texts, &group.addresses);
            }
        }
        HeaderValue::Text(text) => texts.push(text),
        HeaderValue::TextList(list) => texts.extend(list.iter().map(|text| text.as_ref())),
        HeaderValue::ContentType(ct) => {
            texts.push(&ct.c_type);
            texts.extend(ct.c_subtype.as_deref());
            texts.extend(ct.attributes.iter().flatten().map(|a| a.value.as_ref()));
        }
        _ => {}
    }
    texts
}

fn push_addresses<'a>(texts: &mut Vec<&'a str>, addresses: &'a [mail_parser::Addr<'_>]) {
    for addr in addresses {
        texts.extend(addr.name.as_deref());
        texts.extend(addr.address.as_deref());
    }
}

#[cfg(test)]
mod tests {
    //! The expectations are what mail-parser with `full_encoding` gave for the same messages (the Worker
    //! before this module), including where it decodes nothing.

    use super::super::charset::EncodingRs;
    use super::super::{normalize, InboundEmail};
    use crate::envelope::EmailDetails;

    fn email(raw: &[u8]) -> (EmailDetails, crate::envelope::Message) {
        let inbound = InboundEmail {
            envelope_from: "bounce@example.jp",
            envelope_to: "support@example.com",
            raw,
        };
        let data = normalize(&inbound, "support", 0, &EncodingRs).unwrap().data;
        (data.email.unwrap(), data.message.unwrap())
    }

    fn names(list: &[crate::envelope::EmailAddress]) -> Vec<(&str, Option<&str>)> {
        list.iter()
            .map(|a| (a.address.as_str(), a.name.as_deref()))
            .collect()
    }

    #[test]
    fn words_are_decoded_where_mail_parser_decodes_them_and_left_as_written_elsewhere() {
        let raw = b"From: =?shift_jis?B?l+mW2A==?= <b@example.jp>\r\n\
            To: abc=?shift_jis?Q?=82=A0,x?= <a@example.jp>, \
            =?iso-2022-jp?B?GyRCOzNFRBsoQg==?==?iso-2022-jp?B?GyRCQkBPOhsoQg==?= <c@example.jp>\r\n\
            Subject: Re: =?euc-jp?B?uKvA0Q==?= =?utf-8?B?5L6d6aC8?= =?gbk?Q?=C4=E3=BA=C3?=\r\n\
            Message-ID: <u1@example.jp>\r\n\
            Content-Type: text/plain; charset=shift_jis\r\n\r\n\
            \xEF\xBB\xBF\xE6\x9C\xAC\xE6\x96\x87\xE3\x81\xA7\xE3\x81\x99\r\n";
        let (email, message) = email(raw);
        assert_eq!(email.subject.as_deref(), Some("Re: 見積依頼你好"));
        assert_eq!(
            names(email.from.as_slice()),
            [("b@example.jp", Some("鈴木"))]
        );
        // Inside a token the Q word is not decoded: its `,` still splits the address list.
        assert_eq!(
            names(&email.to),
            [
                ("a@example.jp", Some("x?=")),
                ("c@example.jp", Some("山田太郎"))
            ]
        );
        // A UTF-8 byte order mark overrides the declared Shift_JIS.
        assert_eq!(message.text.as_deref(), Some("本文です"));
    }

    #[test]
    fn a_raw_iso_2022_jp_subject_is_decoded_and_nothing_else_is() {
        let subject = |value: &str| {
            let raw = format!(
                "From: a@example.jp\r\nMessage-ID: <s@example.jp>\r\nSubject: {value}\r\n\r\nx\r\n"
            );
            email(raw.as_bytes()).0.subject
        };
        // 日本 = JIS 0x467C 0x4B5C.
        assert_eq!(
            subject("Re:\r\n \x1b$BF|K\\\x1b(B").as_deref(),
            Some("Re: 日本")
        );
        // With an encoded word the header is RFC 2047's business; an ESC that designates nothing is not JIS.
        assert_eq!(
            subject("=?utf-8?q?a?= \x1b$BF|K\\\x1b(B").as_deref(),
            Some("a  $BF|K\\ (B")
        );
        assert_eq!(subject("\x1b[1mbold").as_deref(), Some(" [1mbold"));
    }

    #[test]
    fn parameters_keep_mail_parsers_continuation_rules() {
        let raw = b"From: a@example.jp\r\nMessage-ID: <u2@example.jp>\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n--x\r\n\
            Content-Type: application/octet-stream\r\n\
            Content-Disposition: attachment; filename*0*=shift_jis''; filename*1*=%82%A0%82%A2.txt\r\n\r\n\
            xyz\r\n--x\r\n\
            Content-Type: text/csv; charset=ks_c_5601-1987; name*=euc-kr'ko'%C7%D1%B1%DB.csv\r\n\
            Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n\
            wMy4pyywqg0Ksei2w7z2LDENCg==\r\n--x--\r\n";
        let (_, message) = email(raw);
        let attachments: Vec<_> = message
            .attachments
            .iter()
            .map(|a| (a.name.as_deref(), a.size))
            .collect();
        // The first segment's charset carries over to the next one when its own value is empty (mail-parser's
        // parser); a text attachment counts the bytes of its decoded UTF-8 text.
        assert_eq!(
            attachments,
            [(Some("あい.txt"), Some(3)), (Some("한글.csv"), Some(25))]
        );
    }
}
