//! `mail-parser`'s Content-Type / Content-Disposition parser, with its charsets decoded through a
//! [`CharsetDecoder`]: a port of `parse_content_type` from mail-parser 0.11.9 (`src/parsers/fields/
//! content_type.rs`, © 2020 Stalwart Labs LLC, Apache-2.0 OR MIT), changed only where it decodes a charset
//! (RFC 2231 values and RFC 2047 words in parameters) and where the crate's lints forbid `unwrap` and slice
//! indexing. Parameters are where `mail-parser`'s charset handling depends most on its own state (a charset
//! carried over to the next continuation, values read in pieces), so [`redecode`](super::redecode) parses these
//! two headers again with this parser rather than rewriting them (`parser.rs` holds the parser's state and
//! what it does with each token, this file the loop over the bytes); a test checks it against `mail-parser` on
//! generated headers in every charset `mail-parser` decodes itself.
use mail_parser::parsers::MessageStream;
use mail_parser::{ContentType, HeaderValue};

use self::parser::{ContentState, ContentTypeParser};
use super::charset::CharsetDecoder;
use super::encoded_word::decode_rfc2047;

mod parser;

/// `MessageStream::parse_content_type`, with charsets decoded through `decoder`.
pub(super) fn parse_content_type<'x>(
    stream: &mut MessageStream<'x>,
    decoder: &dyn CharsetDecoder,
) -> HeaderValue<'x> {
    let mut parser = ContentTypeParser {
        decoder,
        state: ContentState::Type,
        state_stack: Vec::new(),

        c_type: None,
        c_subtype: None,

        attr_name: None,
        attr_charset: None,
        attr_position: 0,

        attributes: Vec::new(),
        values: Vec::new(),
        continuations: None,

        is_continuation: false,
        is_encoded_attribute: false,
        is_lower_case: true,
        is_token_start: true,
        is_escaped: false,
        remove_crlf: false,

        token_start: 0,
        token_end: 0,
    };

    while let Some(&ch) = stream.next() {
        match ch {
            b' ' | b'\t' => {
                if !parser.is_token_start {
                    parser.is_token_start = true;
                }
                if let ContentState::AttributeQuotedValue = parser.state {
                    if parser.token_start == 0 {
                        parser.token_start = stream.offset();
                        parser.token_end = parser.token_start;
                    } else {
                        parser.token_end = stream.offset();
                    }
                }
                continue;
            }
            b'A'..=b'Z' if parser.is_lower_case => {
                if let ContentState::Type | ContentState::SubType | ContentState::AttributeName =
                    parser.state
                {
                    parser.is_lower_case = false;
                }
            }
            b'\n' => {
                let next_is_space = stream.peek_next_is_space();
                match parser.state {
                    ContentState::Type | ContentState::AttributeName | ContentState::SubType => {
                        parser.add_attribute(stream);
                    }
                    ContentState::AttributeValue => {
                        parser.add_value(stream);
                    }
                    ContentState::AttributeQuotedValue => {
                        if next_is_space {
                            stream.next();
                            parser.remove_crlf = true;
                            continue;
                        } else {
                            parser.add_value(stream);
                        }
                    }
                    _ => (),
                }

                if next_is_space {
                    if parser.state == ContentState::Type {
                        continue;
                    }
                    parser.state = ContentState::AttributeName;
                    stream.next();

                    if !parser.is_token_start {
                        parser.is_token_start = true;
                    }
                    continue;
                } else {
                    if parser.continuations.is_some() {
                        parser.merge_continuations();
                    }

                    return if let Some(content_type) = parser.c_type {
                        HeaderValue::ContentType(ContentType {
                            c_type: content_type,
                            c_subtype: parser.c_subtype.take(),
                            attributes: if !parser.attributes.is_empty() {
                                Some(parser.attributes)
                            } else {
                                None
                            },
                        })
                    } else {
                        HeaderValue::Empty
                    };
                }
            }
            b'/' if parser.state == ContentState::Type => {
                parser.add_attribute(stream);
                parser.state = ContentState::SubType;
                continue;
            }
            b';' => match parser.state {
                ContentState::Type | ContentState::SubType | ContentState::AttributeName => {
                    parser.add_attribute(stream);
                    parser.state = ContentState::AttributeName;
                    continue;
                }
                ContentState::AttributeValue => {
                    if !parser.is_escaped {
                        parser.add_value(stream);
                        parser.state = ContentState::AttributeName;
                    } else {
                        parser.is_escaped = false;
                    }
                    continue;
                }
                _ => (),
            },
            b'*' if parser.state == ContentState::AttributeName => {
                if !parser.is_continuation {
                    parser.is_continuation = parser.add_attribute(stream);
                } else if !parser.is_encoded_attribute {
                    parser.add_attr_position(stream);
                    parser.is_encoded_attribute = true;
                } else {
                    // Malformed data, reset parser.
                    parser.reset_parser();
                }
                continue;
            }
            b'=' => match parser.state {
                ContentState::AttributeName => {
                    if !parser.is_continuation {
                        if !parser.add_attribute(stream) {
                            continue;
                        }
                    } else if !parser.is_encoded_attribute {
                        // If is_continuation=true && is_encoded_attribute=false, the last character
                        // was a '*' which means encoding.
                        parser.is_encoded_attribute = !parser.add_attr_position(stream);
                    } else {
                        parser.reset_parser();
                    }
                    parser.state = ContentState::AttributeValue;
                    continue;
                }
                ContentState::AttributeValue | ContentState::AttributeQuotedValue
                    if parser.is_token_start && stream.peek_char(b'?') =>
                {
                    stream.checkpoint();
                    if let Some(token) = decode_rfc2047(stream, parser.decoder) {
                        parser.add_partial_value(stream, false);
                        parser.values.push(token.into());
                        continue;
                    }
                    stream.restore();
                }
                _ => (),
            },
            b'\"' => match parser.state {
                ContentState::AttributeValue => {
                    if !parser.is_token_start {
                        parser.is_token_start = true;
                    }
                    parser.state = ContentState::AttributeQuotedValue;
                    continue;
                }
                ContentState::AttributeQuotedValue => {
                    if !parser.is_escaped {
                        parser.add_value(stream);
                        parser.state = ContentState::AttributeName;
                        continue;
                    } else {
                        parser.is_escaped = false;
                    }
                }
                _ => continue,
            },
            b'\\' => match parser.state {
                ContentState::AttributeQuotedValue | ContentState::AttributeValue => {
                    if !parser.is_escaped {
                        parser.add_partial_value(stream, true);
                        parser.is_escaped = true;
                        continue;
                    } else {
                        parser.is_escaped = false;
                    }
                }
                ContentState::Comment => parser.is_escaped = !parser.is_escaped,
                _ => continue,
            },
            b'\''
                if parser.is_encoded_attribute
                    && !parser.is_escaped
                    && (parser.state == ContentState::AttributeValue
                        || parser.state == ContentState::AttributeQuotedValue) =>
            {
                parser.add_attribute_parameter(stream);
                continue;
            }
            b'(' if parser.state != ContentState::AttributeQuotedValue => {
                if !parser.is_escaped {
                    match parser.state {
                        ContentState::Type
                        | ContentState::AttributeName
                        | ContentState::SubType => {
                            parser.add_attribute(stream);
                        }
                        ContentState::AttributeValue => {
                            parser.add_value(stream);
                        }
                        _ => (),
                    }

                    parser.state_stack.push(parser.state);
                    parser.state = ContentState::Comment;
                } else {
                    parser.is_escaped = false;
                }
                continue;
            }
            b')' if parser.state == ContentState::Comment => {
                if !parser.is_escaped {
                    // Never empty here: entering a comment pushed the state it returns to.
                    parser.state = parser.state_stack.pop().unwrap_or(ContentState::Type);
                    parser.reset_parser();
                } else {
                    parser.is_escaped = false;
                }
                continue;
            }
            b'\r' => continue,
            _ => (),
        }

        if parser.is_escaped {
            parser.is_escaped = false;
        }

        if parser.is_token_start {
            parser.is_token_start = false;
        }

        if parser.token_start == 0 {
            parser.token_start = stream.offset();
            parser.token_end = parser.token_start;
        } else {
            parser.token_end = stream.offset();
        }
    }

    HeaderValue::Empty
}

#[cfg(test)]
mod tests {
    use mail_parser::parsers::MessageStream;
    use proptest::prelude::*;

    use super::parse_content_type;
    use crate::mail::charset::{CharsetDecoder, Encoding};

    /// Reads every charset as UTF-8, as mail-parser without `full_encoding` does: with it the port must give
    /// exactly what mail-parser gives, whatever the header.
    struct AsUtf8;

    impl CharsetDecoder for AsUtf8 {
        fn decode(&self, _: Encoding, bytes: &[u8]) -> String {
            String::from_utf8_lossy(bytes).into_owned()
        }
    }

    /// Pieces of Content-Type and Content-Disposition values, the grammar's delimiters among them.
    const PIECES: &[&str] = &[
        "text/plain",
        "multipart/mixed",
        "application/pdf",
        "attachment",
        "inline",
        "TEXT/HTML",
        ";",
        "; ",
        " ",
        "\t",
        "\r\n ",
        "\r\n\t",
        "\n ",
        "\"",
        "'",
        "''",
        "*",
        "*0*",
        "*1*",
        "*2",
        "*0",
        "=",
        "\\",
        "(",
        ")",
        "(comment)",
        "/",
        "name",
        "filename",
        "charset",
        "boundary",
        "Name",
        "utf-8",
        "UTF-8",
        "iso-8859-1",
        "shift_jis",
        "ISO-2022-JP",
        "gbk",
        "us-ascii",
        "ja",
        "en-us",
        "%E3%81%82",
        "%82%A0",
        "%1B%24B%24%22%1B%28B",
        "%",
        "%4",
        "%ZZ",
        "abc",
        "a b",
        "x.pdf",
        "=?utf-8?B?44GC?=",
        "=?UTF-8?Q?caf=C3=A9?=",
        "=?iso-8859-1?Q?caf=E9?=",
        "=?shift_jis?B?gqA=?=",
        "=?ISO-2022-JP?B?GyRCJCIbKEI=?=",
        "=?gbk*zh?b?xOO6ww==?=",
        "=?",
        "?=",
        "=?x?",
        "日本",
        "\u{00e9}",
    ];

    fn header() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..40)
            .prop_map(|pieces| pieces.concat() + "\r\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn the_port_parses_as_mail_parser_parses(value in header()) {
            let bytes = value.as_bytes();
            let port = parse_content_type(&mut MessageStream::new(bytes), &AsUtf8);
            let original = MessageStream::new(bytes).parse_content_type();
            prop_assert_eq!(port, original, "{:?}", value);
        }
    }
}
