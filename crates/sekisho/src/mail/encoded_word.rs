//! RFC 2047 encoded words as `mail-parser` reads them (its `decode_rfc2047`), and charsets decoded as
//! `mail-parser` with `full_encoding` decodes them, through a [`CharsetDecoder`] for the ones it cannot decode
//! itself.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;

use super::charset::{self, lossy_charset, CharsetDecoder};

/// Text in the charset `label`, decoded as `mail-parser` with `full_encoding` decodes it.
pub(super) fn decode_in_charset(
    label: &[u8],
    bytes: Vec<u8>,
    decoder: &dyn CharsetDecoder,
) -> String {
    if let Some(charset) = lossy_charset(label) {
        charset::decode(decoder, charset, &bytes)
    } else if let Some(decode) = charset_decoder(label) {
        decode(&bytes)
    } else {
        String::from_utf8(bytes)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    }
}

/// An RFC 2047 word read as `mail-parser`'s `decode_rfc2047` reads it, from just after its `=`: the charset
/// label (without a `*language`) and the decoded payload bytes.
pub(super) struct Word {
    pub(super) label: std::ops::Range<usize>,
    pub(super) payload: Vec<u8>,
}

pub(super) fn read_word(stream: &mut MessageStream<'_>) -> Option<Word> {
    if stream.next() != Some(&b'?') {
        return None;
    }
    let label_start = stream.offset();
    let mut label_stop = label_start;
    loop {
        match stream.next()? {
            b'?' => {
                if label_stop == label_start {
                    label_stop = stream.offset() - 1;
                }
                if label_stop - label_start < 2 {
                    return None;
                }
                break;
            }
            b'*' if label_stop == label_start => label_stop = stream.offset() - 1,
            b'\n' => return None,
            _ => {}
        }
    }
    let base64 = match stream.next()? {
        b'q' | b'Q' => false,
        b'b' | b'B' => true,
        _ => return None,
    };
    if stream.next() != Some(&b'?') {
        return None;
    }
    let payload = if base64 {
        stream.decode_base64_word()?
    } else {
        stream.decode_quoted_printable_word()?
    };
    Some(Word {
        label: label_start..label_stop,
        payload,
    })
}

/// `decode_rfc2047` with its charsets decoded through `decoder`.
pub(super) fn decode_rfc2047(
    stream: &mut MessageStream<'_>,
    decoder: &dyn CharsetDecoder,
) -> Option<String> {
    let word = read_word(stream)?;
    Some(decode_in_charset(
        stream.bytes(word.label),
        word.payload,
        decoder,
    ))
}
