//! RFC 2231 parameter continuations (`filename*0*=UTF-8''%E8%A6; filename*1*=%8B…`) joined as bytes before the
//! charset is decoded, as RFC 2231 §4.1 says. `mail-parser` decodes each continuation on its own, so a name cut
//! inside a multi-byte character (which Japanese mailers do, counting bytes) gets two U+FFFD. The joined reading
//! replaces `mail-parser`'s only when it has fewer malformed sequences.

use mail_parser::{HeaderName, MessagePart, MimeHeaders};

use super::charset::CharsetDecoder;
use super::encoded_word::decode_in_charset;

/// The part's file name as `mail-parser` reads it, or the joined reading of its continuations when that has
/// fewer malformed sequences. `raw` is the whole message (header offsets are into it).
pub(super) fn attachment_name(
    part: &MessagePart<'_>,
    raw: &[u8],
    decoder: &dyn CharsetDecoder,
) -> Option<String> {
    let parsed = part.attachment_name()?;
    let raw_value = |wanted: HeaderName<'static>| {
        part.headers
            .iter()
            .find(|header| header.name == wanted)
            .and_then(|header| raw.get(header.offset_start as usize..header.offset_end as usize))
    };
    let joined = raw_value(HeaderName::ContentDisposition)
        .and_then(|value| joined_parameter(value, "filename", decoder))
        .or_else(|| {
            raw_value(HeaderName::ContentType)
                .and_then(|value| joined_parameter(value, "name", decoder))
        });
    match joined {
        Some(joined) if replacements(&joined) < replacements(parsed) => Some(joined),
        _ => Some(parsed.to_owned()),
    }
}

fn replacements(text: &str) -> usize {
    text.chars().filter(|&c| c == '\u{FFFD}').count()
}

/// The parameter `name` of a raw Content-Type / Content-Disposition value, from its numbered continuations
/// (at least two), joined and then decoded in the first one's charset; `None` without such continuations.
pub(super) fn joined_parameter(
    value: &[u8],
    name: &str,
    decoder: &dyn CharsetDecoder,
) -> Option<String> {
    // Indexed by continuation number (RFC 2231 numbers them from 0, in any order on the wire).
    let mut segments: Vec<Option<Vec<u8>>> = Vec::new();
    let mut label: Option<Vec<u8>> = None;
    for parameter in split_parameters(value) {
        let Some(eq) = parameter.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, raw) = parameter.split_at(eq);
        let key = trim(key);
        let raw = trim(raw.get(1..).unwrap_or_default());
        let Some(rest) = key
            .get(..name.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|_| key.get(name.len()..))
            .and_then(|rest| rest.strip_prefix(b"*"))
        else {
            continue;
        };
        let (digits, encoded) = match rest.strip_suffix(b"*") {
            Some(digits) => (digits, true),
            None => (rest, false),
        };
        if digits.is_empty() || digits.len() > 2 || !digits.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let index = digits
            .iter()
            .fold(0usize, |n, digit| n * 10 + usize::from(digit - b'0'));
        let mut text = unquote(raw);
        if encoded && index == 0 {
            // `charset'language'` before the first encoded segment.
            let mut pieces = text.splitn(3, |&b| b == b'\'');
            let (Some(charset), Some(_language), Some(rest)) =
                (pieces.next(), pieces.next(), pieces.next())
            else {
                return None;
            };
            label = Some(charset.to_vec());
            text = rest.to_vec();
        }
        let bytes = if encoded { percent_decode(&text) } else { text };
        if segments.len() <= index {
            segments.resize(index + 1, None);
        }
        *segments.get_mut(index)? = Some(bytes);
    }
    if segments.len() < 2 {
        return None;
    }
    // A missing continuation: not a name to trust over mail-parser's reading.
    let joined: Vec<u8> = segments.into_iter().collect::<Option<Vec<_>>>()?.concat();
    Some(decode_in_charset(
        label.as_deref().unwrap_or(b"utf-8"),
        joined,
        decoder,
    ))
}

/// The `;`-separated parameters after the value's first token, `;` inside quotes not counting.
fn split_parameters(value: &[u8]) -> Vec<&[u8]> {
    let mut parameters = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, &byte) in value.iter().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                parameters.extend(value.get(start..at));
                start = at + 1;
            }
            _ => {}
        }
    }
    parameters.extend(value.get(start..));
    parameters.into_iter().skip(1).collect()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| b.is_ascii_whitespace();
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |end| end + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn unquote(raw: &[u8]) -> Vec<u8> {
    match raw
        .strip_prefix(b"\"")
        .and_then(|rest| rest.strip_suffix(b"\""))
    {
        Some(inner) => {
            let mut out = Vec::with_capacity(inner.len());
            let mut escaped = false;
            for &byte in inner {
                if byte == b'\\' && !escaped {
                    escaped = true;
                    continue;
                }
                escaped = false;
                out.push(byte);
            }
            out
        }
        None => raw.to_vec(),
    }
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while let Some(&byte) = text.get(at) {
        let nibble = |at: usize| text.get(at).and_then(|&b| char::from(b).to_digit(16));
        let hex = nibble(at + 1)
            .zip(nibble(at + 2))
            .and_then(|(high, low)| u8::try_from(high * 16 + low).ok());
        match (byte, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                at += 3;
            }
            _ => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::charset::EncodingRs;
    use super::*;

    fn joined(value: &str, name: &str) -> Option<String> {
        joined_parameter(value.as_bytes(), name, &EncodingRs)
    }

    #[test]
    fn continuations_are_joined_as_bytes_before_decoding() {
        // 見 = E8 A6 8B, cut after its second byte; the segments out of order.
        assert_eq!(
            joined(
                "attachment;\r\n filename*1*=%8B%E7%A9%8D.pdf;\r\n filename*0*=UTF-8''%E5%BE%A1%E8%A6",
                "filename"
            )
            .as_deref(),
            Some("御見積.pdf")
        );
        // Shift_JIS あい (82A0 82A2) cut inside い, a plain (quoted) last segment.
        assert_eq!(
            joined(
                "application/octet-stream; NAME*0*=shift_jis'ja'%82%A0%82; name*1*=%A2; name*2=\".txt\"",
                "name"
            )
            .as_deref(),
            Some("あい.txt")
        );
    }

    #[test]
    fn single_values_and_other_parameters_are_left_to_mail_parser() {
        assert_eq!(
            joined("attachment; filename*=UTF-8''%E8%A6%8B.pdf", "filename"),
            None
        );
        assert_eq!(joined("attachment; filename=\"a;b.pdf\"", "filename"), None);
        assert_eq!(joined("text/plain; name*0=a; name*1=b", "filename"), None);
        assert_eq!(
            joined("text/plain; x=\"y;name*0=a\"; name*1=b", "name"),
            None
        );
        assert_eq!(joined("", "name"), None);
        assert_eq!(
            joined(
                "attachment; filename*0*=no-quotes; filename*1*=x",
                "filename"
            ),
            None
        );
    }
}
