//! The state of the ported Content-Type parser and what it does with each token (see the module above).

use std::borrow::Cow;

use mail_parser::decoders::hex::decode_hex;
use mail_parser::parsers::MessageStream;
use mail_parser::Attribute;

use super::super::charset::CharsetDecoder;
use super::super::encoded_word::decode_in_charset;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum ContentState {
    Type,
    SubType,
    AttributeName,
    AttributeValue,
    AttributeQuotedValue,
    Comment,
}

type Continuation<'x> = (Cow<'x, str>, u32, Cow<'x, str>);

pub(super) struct ContentTypeParser<'x, 'd> {
    pub(super) decoder: &'d dyn CharsetDecoder,
    pub(super) state: ContentState,
    pub(super) state_stack: Vec<ContentState>,

    pub(super) c_type: Option<Cow<'x, str>>,
    pub(super) c_subtype: Option<Cow<'x, str>>,

    pub(super) attr_name: Option<Cow<'x, str>>,
    pub(super) attr_charset: Option<Cow<'x, str>>,
    pub(super) attr_position: u32,

    pub(super) values: Vec<Cow<'x, str>>,
    pub(super) attributes: Vec<Attribute<'x>>,
    pub(super) continuations: Option<Vec<Continuation<'x>>>,

    pub(super) token_start: usize,
    pub(super) token_end: usize,

    pub(super) is_continuation: bool,
    pub(super) is_encoded_attribute: bool,
    pub(super) is_escaped: bool,
    pub(super) remove_crlf: bool,
    pub(super) is_lower_case: bool,
    pub(super) is_token_start: bool,
}

impl<'x> ContentTypeParser<'x, '_> {
    pub(super) fn reset_parser(&mut self) {
        self.token_start = 0;
        self.is_token_start = true;
    }

    /// The current token (`token_start` is one past its first byte, 0 when there is none).
    pub(super) fn token(&self, stream: &MessageStream<'x>, end: usize) -> &'x [u8] {
        stream.bytes(self.token_start.saturating_sub(1)..end)
    }

    pub(super) fn add_attribute(&mut self, stream: &MessageStream<'x>) -> bool {
        if self.token_start > 0 {
            let mut attr = String::from_utf8_lossy(self.token(stream, self.token_end));

            if !self.is_lower_case {
                attr.to_mut().make_ascii_lowercase();
                self.is_lower_case = true;
            }

            match self.state {
                ContentState::AttributeName => self.attr_name = Some(attr),
                ContentState::Type => self.c_type = Some(attr),
                ContentState::SubType => self.c_subtype = Some(attr),
                _ => {}
            }

            self.reset_parser();
            true
        } else {
            false
        }
    }

    pub(super) fn add_attribute_parameter(&mut self, stream: &MessageStream<'x>) {
        if self.token_start > 0 {
            let attr_part = String::from_utf8_lossy(self.token(stream, self.token_end));

            if self.attr_charset.is_none() {
                self.attr_charset = Some(attr_part);
            } else {
                let attr_name =
                    self.attr_name.clone().unwrap_or_else(|| "unknown".into()) + "-language";

                if !self.attributes.iter().any(|a| a.name == attr_name) {
                    self.attributes.push(Attribute {
                        name: attr_name,
                        value: attr_part,
                    });
                } else {
                    self.values.push("'".into());
                    self.values.push(attr_part);
                }
            }

            self.reset_parser();
        }
    }

    pub(super) fn add_partial_value(&mut self, stream: &MessageStream<'x>, to_cur_pos: bool) {
        if self.token_start > 0 {
            let in_quote = self.state == ContentState::AttributeQuotedValue;
            let end = if in_quote && to_cur_pos {
                stream.offset() - 1
            } else {
                self.token_end
            };

            self.values
                .push(String::from_utf8_lossy(self.token(stream, end)));
            if !in_quote {
                self.values.push(" ".into());
            }

            self.reset_parser();
        }
    }

    pub(super) fn add_value(&mut self, stream: &MessageStream<'x>) {
        if self.attr_name.is_none() {
            return;
        }

        let has_values = !self.values.is_empty();
        let value = if self.token_start > 0 {
            let value = self.token(stream, self.token_end);
            Some(if !self.remove_crlf {
                String::from_utf8_lossy(value)
            } else {
                self.remove_crlf = false;
                match String::from_utf8(
                    value
                        .iter()
                        .filter(|&&ch| ch != b'\r' && ch != b'\n')
                        .copied()
                        .collect::<Vec<_>>(),
                ) {
                    Ok(value) => value.into(),
                    Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned().into(),
                }
            })
        } else {
            if !has_values {
                return;
            }
            None
        };

        let Some(attr_name) = self.attr_name.take() else {
            return;
        };
        if !self.is_continuation {
            self.attributes.push(Attribute {
                name: attr_name,
                value: match value {
                    Some(value) if !has_values => value,
                    value => {
                        self.values.extend(value);
                        self.values.concat().into()
                    }
                },
            });
        } else {
            let mut value = if let Some(value) = value {
                if has_values {
                    Cow::from(self.values.concat()) + value
                } else {
                    value
                }
            } else {
                self.values.concat().into()
            };

            if self.is_encoded_attribute {
                if let (true, decoded_bytes) = decode_hex(value.as_bytes()) {
                    // The one change: every charset through `decode_in_charset`.
                    value = match &self.attr_charset {
                        Some(label) => {
                            decode_in_charset(label.as_bytes(), decoded_bytes, self.decoder)
                        }
                        None => String::from_utf8(decoded_bytes)
                            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    }
                    .into();
                }
                self.is_encoded_attribute = false;
            }

            if self.attr_position > 0 {
                let continuation = (attr_name, self.attr_position, value);
                if let Some(continuations) = self.continuations.as_mut() {
                    continuations.push(continuation);
                } else {
                    self.continuations = Some(vec![continuation]);
                }

                self.attr_position = 0;
            } else {
                self.attributes.push(Attribute {
                    name: attr_name,
                    value,
                });
            }
            self.is_continuation = false;
            self.attr_charset = None;
        }

        if has_values {
            self.values.clear();
        }

        self.reset_parser();
    }

    pub(super) fn add_attr_position(&mut self, stream: &MessageStream<'_>) -> bool {
        if self.token_start > 0 {
            self.attr_position = String::from_utf8_lossy(
                stream.bytes(self.token_start.saturating_sub(1)..self.token_end),
            )
            .parse()
            .unwrap_or(0);

            self.reset_parser();
            true
        } else {
            false
        }
    }

    pub(super) fn merge_continuations(&mut self) {
        let Some(continuations) = self.continuations.as_mut() else {
            return;
        };
        continuations.sort();
        for (key, _, value) in continuations.drain(..) {
            if let Some(old) = self.attributes.iter_mut().find(|a| a.name == key) {
                old.value = format!("{}{value}", old.value).into();
            } else {
                self.attributes.push(Attribute { name: key, value });
            }
        }
    }
}
