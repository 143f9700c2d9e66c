//! The structure of a message, bounded before it is parsed. `mail-parser` builds a header value for every
//! field and a part for every MIME part: a message of millions of one-line headers or empty parts (still under
//! `EMAIL_MAX_BYTES`) would take gigabytes. One pass over the raw bytes, in constant memory, counts what the
//! parser would build and refuses a message over any of these limits:
//!
//! - [`MAX_HEADER_FIELDS`] header fields and [`MAX_HEADER_BYTES`] of header blocks, counting every header
//!   block: the message's, its MIME parts', its attached messages';
//! - [`MAX_PARTS`] header blocks (the message and each part);
//! - [`MAX_NESTED_MESSAGES`] attached messages (`message/rfc822`, `message/global`), so nesting is shallow;
//! - an attached message in base64 or quoted-printable (RFC 2046 §5.2.1 forbids it; the parser would decode and
//!   parse it again, out of this pass's sight).
//!
//! The counts are upper bounds: every line that starts with `--` is taken for a part delimiter, whatever the
//! boundary. An ordinary message stays far below each limit.

/// Header fields in all header blocks of a message.
pub const MAX_HEADER_FIELDS: usize = 2_000;
/// Bytes of all header blocks of a message (one header line of this size is refused too).
pub const MAX_HEADER_BYTES: usize = 512 * 1024;
/// Header blocks: the message itself and each of its MIME parts and attached messages.
pub const MAX_PARTS: usize = 1_000;
/// Attached messages (`message/*` parts), nested or side by side.
pub const MAX_NESTED_MESSAGES: usize = 32;
/// How much of a `Content-Type` or `Content-Transfer-Encoding` value is looked at.
const VALUE_PREFIX: usize = 32;

/// Which limit a message is over. Each is the sender's doing: a permanent bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MimeBound {
    #[error("more than {MAX_HEADER_FIELDS} header fields")]
    TooManyHeaders,
    #[error("more than {MAX_HEADER_BYTES} bytes of headers")]
    HeadersTooLarge,
    #[error("more than {MAX_PARTS} MIME parts")]
    TooManyParts,
    #[error("more than {MAX_NESTED_MESSAGES} attached messages")]
    TooManyNestedMessages,
    #[error("an attached message in base64 or quoted-printable (RFC 2046 5.2.1)")]
    EncodedMessagePart,
}

impl MimeBound {
    pub fn reason(&self) -> &'static str {
        match self {
            MimeBound::TooManyHeaders => "too_many_headers",
            MimeBound::HeadersTooLarge => "headers_too_large",
            MimeBound::TooManyParts => "too_many_parts",
            MimeBound::TooManyNestedMessages => "too_many_nested_messages",
            MimeBound::EncodedMessagePart => "encoded_message_part",
        }
    }
}

/// What one header block says about its part, from every `Content-Type` and `Content-Transfer-Encoding` field
/// in it: a block with two of either counts as whichever of them makes it more (the parser may take either).
#[derive(Default)]
struct Block {
    /// The field the last line belonged to: its value continues on folded lines.
    field: Field,
    value: Prefix,
    typed: bool,
    message: bool,
    digest: bool,
    encoded: bool,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Field {
    #[default]
    Other,
    ContentType,
    TransferEncoding,
}

/// The start of a header value, lowercased, without whitespace and comments.
#[derive(Default)]
struct Prefix {
    bytes: [u8; VALUE_PREFIX],
    len: usize,
    comment_depth: usize,
}

impl Prefix {
    fn push(&mut self, value: &[u8]) {
        for &byte in value {
            match byte {
                b'(' => self.comment_depth += 1,
                b')' => self.comment_depth = self.comment_depth.saturating_sub(1),
                _ if self.comment_depth > 0 || byte.is_ascii_whitespace() => {}
                _ => {
                    if let Some(slot) = self.bytes.get_mut(self.len) {
                        *slot = byte.to_ascii_lowercase();
                        self.len += 1;
                    }
                }
            }
        }
    }

    fn value(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    fn starts_with(&self, prefix: &[u8]) -> bool {
        self.value().starts_with(prefix)
    }
}

impl Block {
    /// Takes in the value of the field that just ended.
    fn finish_field(&mut self) {
        match self.field {
            Field::ContentType => {
                self.typed = true;
                self.message |= self.value.starts_with(b"message/");
                self.digest |= self.value.starts_with(b"multipart/digest");
            }
            Field::TransferEncoding => {
                self.encoded |= self.value.starts_with(b"base64")
                    || self.value.starts_with(b"quoted-printable");
            }
            Field::Other => {}
        }
        self.value = Prefix::default();
    }

    fn is_message(&self, in_digest: bool) -> bool {
        self.message || (!self.typed && in_digest)
    }
}

/// Refuses a message whose structure is over a limit; constant memory, one pass.
pub(super) fn check(raw: &[u8]) -> Result<(), MimeBound> {
    let mut fields = 0usize;
    let mut header_bytes = 0usize;
    let mut parts = 1usize;
    let mut messages = 0usize;
    // Untyped parts of a multipart/digest are messages; once a digest is seen, every untyped part counts as one.
    let mut in_digest = false;
    let mut in_headers = true;
    let mut at_block_start = true;
    let mut block = Block::default();
    for line in raw.split(|&byte| byte == b'\n') {
        if !in_headers {
            if line.starts_with(b"--") {
                parts += 1;
                if parts > MAX_PARTS {
                    return Err(MimeBound::TooManyParts);
                }
                in_headers = true;
                at_block_start = true;
                block = Block::default();
            }
            continue;
        }
        header_bytes = header_bytes.saturating_add(line.len() + 1);
        if header_bytes > MAX_HEADER_BYTES {
            return Err(MimeBound::HeadersTooLarge);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            // The end of a header block: an attached message's own header block follows it directly.
            block.finish_field();
            in_digest |= block.digest;
            if block.is_message(in_digest) {
                if block.encoded {
                    return Err(MimeBound::EncodedMessagePart);
                }
                messages += 1;
                parts += 1;
                if messages > MAX_NESTED_MESSAGES {
                    return Err(MimeBound::TooManyNestedMessages);
                }
                if parts > MAX_PARTS {
                    return Err(MimeBound::TooManyParts);
                }
                at_block_start = true;
                block = Block::default();
            } else {
                in_headers = false;
            }
            continue;
        }
        let folded = matches!(line.first(), Some(b' ' | b'\t')) && !at_block_start;
        at_block_start = false;
        let value = if folded {
            line
        } else {
            fields += 1;
            if fields > MAX_HEADER_FIELDS {
                return Err(MimeBound::TooManyHeaders);
            }
            let (name, value) = match line.iter().position(|&byte| byte == b':') {
                Some(colon) => (
                    line.get(..colon).unwrap_or_default(),
                    line.get(colon + 1..).unwrap_or_default(),
                ),
                None => (line, &b""[..]),
            };
            let name = name.trim_ascii();
            block.finish_field();
            block.field = if name.eq_ignore_ascii_case(b"content-type") {
                Field::ContentType
            } else if name.eq_ignore_ascii_case(b"content-transfer-encoding") {
                Field::TransferEncoding
            } else {
                Field::Other
            };
            value
        };
        if block.field != Field::Other {
            block.value.push(value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_message_passes() {
        let raw = b"From: a@example.jp\r\nSubject: hi\r\nContent-Type: multipart/mixed;\r\n boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.jp\r\nSubject: fwd\r\n\r\nforwarded\r\n--b--\r\n";
        assert_eq!(check(raw), Ok(()));
    }

    #[test]
    fn header_fields_are_counted_across_parts_and_folds_are_not_fields() {
        // One field at the top, then parts of four fields (one of them folded over two lines).
        let mut raw = String::from("Content-Type: multipart/mixed; boundary=b\r\n\r\n");
        for _ in 0..(MAX_HEADER_FIELDS - 1) / 4 {
            raw.push_str("--b\r\nA: 1\r\nB: 2\r\n  folded\r\nC: 3\r\nD: 4\r\n\r\nx\r\n");
        }
        let room = MAX_HEADER_FIELDS - 1 - (MAX_HEADER_FIELDS - 1) / 4 * 4;
        let last = |fields: usize| format!("--b\r\n{}\r\nx\r\n", "X: 1\r\n".repeat(fields));
        assert_eq!(check(format!("{raw}{}", last(room)).as_bytes()), Ok(()));
        assert_eq!(
            check(format!("{raw}{}", last(room + 1)).as_bytes()),
            Err(MimeBound::TooManyHeaders)
        );
    }

    #[test]
    fn one_long_header_line_is_refused() {
        let raw = format!(
            "To: {}\r\n\r\nbody",
            "a@b.jp, ".repeat(MAX_HEADER_BYTES / 8)
        );
        assert_eq!(check(raw.as_bytes()), Err(MimeBound::HeadersTooLarge));
    }

    #[test]
    fn every_dash_line_counts_as_a_part() {
        let raw = format!("Subject: x\r\n\r\n{}", "--\r\n\r\n".repeat(MAX_PARTS));
        assert_eq!(check(raw.as_bytes()), Err(MimeBound::TooManyParts));
    }

    #[test]
    fn attached_messages_are_counted_whatever_their_spelling() {
        let nested = |content_type: &str| {
            format!("Content-Type: {content_type}\r\n\r\n").repeat(MAX_NESTED_MESSAGES + 1)
        };
        for spelling in [
            "message/rfc822",
            "Message/RFC822",
            "(x) message / rfc822",
            "\r\n\tmessage/global",
        ] {
            assert_eq!(
                check(nested(spelling).as_bytes()),
                Err(MimeBound::TooManyNestedMessages),
                "{spelling:?}"
            );
        }
        let digest = format!(
            "Content-Type: multipart/digest; boundary=d\r\n\r\n{}",
            "--d\r\n\r\nSubject: x\r\n\r\n".repeat(MAX_NESTED_MESSAGES + 1)
        );
        assert_eq!(
            check(digest.as_bytes()),
            Err(MimeBound::TooManyNestedMessages)
        );
    }

    #[test]
    fn an_encoded_attached_message_is_refused() {
        let raw = b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: BASE64\r\n\r\nU3ViamVjdDogeA0KDQp4\r\n";
        assert_eq!(check(raw), Err(MimeBound::EncodedMessagePart));
        // Two of a field: whichever the parser takes, the block counts as the more dangerous.
        let doubled = b"Content-Transfer-Encoding: 7bit\r\nContent-Type: text/plain\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx\r\n";
        assert_eq!(check(doubled), Err(MimeBound::EncodedMessagePart));
        let plain_after = format!(
            "{}x\r\n",
            "Content-Type: message/rfc822\r\nContent-Type: text/plain\r\n\r\n"
                .repeat(MAX_NESTED_MESSAGES + 1)
        );
        assert_eq!(
            check(plain_after.as_bytes()),
            Err(MimeBound::TooManyNestedMessages)
        );
    }
}
