//! What identifies an e-mail for de-duplication.
//!
//! A Message-ID is written by the sender, so anyone can reuse one: keyed on it alone, a message sent ahead
//! with the Message-ID of a real one would make the real one a "duplicate" and drop it. The key therefore joins
//! the Message-ID with a SHA-256 digest of the message's content: the body, and the header fields the author
//! writes ([`ORIGINATOR_FIELDS`]).
//!
//! Left out on purpose: the trace and authentication fields that every hop adds and that differ between two
//! SMTP attempts of the same message — `Received`, `Return-Path`, `Delivered-To`, `ARC-*`, `DKIM-Signature`s
//! added by relays, `Authentication-Results`, `Received-SPF`, `X-Forwarded-*` and any other header not listed.
//! The sending server's retry, or Email Routing trying again, thus keeps its event id; a different message
//! reusing a Message-ID gets a new one.
//!
//! Both parts are compared the way DKIM's "relaxed" canonicalization (RFC 6376 §3.4.2, §3.4.4) compares them,
//! so a relay that refolds a header or changes line endings or trailing whitespace does not change the digest.

use mail_parser::Message;

use crate::crypto;

/// Header fields the author of a message writes, lower-case. Every occurrence counts, in order.
pub(super) const ORIGINATOR_FIELDS: &[&str] = &[
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
];

/// `message-id:{id}:content:sha256:{hex}`, or `content:sha256:{hex}` for a message without a Message-ID.
pub(super) fn dedupe_key(message: &Message<'_>, message_id: Option<&str>) -> String {
    let digest = crypto::hex_encode(&content_digest(message));
    match message_id {
        Some(id) => format!("message-id:{id}:content:sha256:{digest}"),
        None => format!("content:sha256:{digest}"),
    }
}

/// SHA-256 over the canonical originator fields, then the canonical body.
pub(super) fn content_digest(message: &Message<'_>) -> [u8; 32] {
    let raw: &[u8] = message.raw_message.as_ref();
    let root = message.root_part();
    let mut canonical = Vec::with_capacity(raw.len());
    for header in &root.headers {
        let name = header.name.as_str().to_ascii_lowercase();
        if !ORIGINATOR_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let value = raw
            .get(header.offset_start as usize..header.offset_end as usize)
            .unwrap_or_default();
        canonical.extend_from_slice(name.as_bytes());
        canonical.push(b':');
        push_collapsed(&mut canonical, value);
        canonical.extend_from_slice(b"\r\n");
    }
    canonical.extend_from_slice(b"\r\n");
    let body = raw.get(root.offset_body as usize..).unwrap_or_default();
    push_canonical_body(&mut canonical, body);
    crypto::sha256(&[&canonical])
}

/// A header value unfolded, each run of whitespace one space, none at either end.
fn push_collapsed(out: &mut Vec<u8>, value: &[u8]) {
    let mut words = value
        .split(|byte| byte.is_ascii_whitespace())
        .filter(|word| !word.is_empty());
    if let Some(first) = words.next() {
        out.extend_from_slice(first);
        for word in words {
            out.push(b' ');
            out.extend_from_slice(word);
        }
    }
}

/// Each line with its whitespace runs collapsed and its trailing whitespace removed, ending in CRLF; empty lines
/// at the end dropped.
fn push_canonical_body(out: &mut Vec<u8>, body: &[u8]) {
    let mut pending_empty_lines = 0usize;
    for line in body.split(|byte| *byte == b'\n') {
        let start = out.len();
        push_collapsed_keeping_leading(out, line);
        if out.len() == start {
            pending_empty_lines += 1;
            continue;
        }
        let line = out.split_off(start);
        for _ in 0..pending_empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        pending_empty_lines = 0;
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
}

/// RFC 6376 §3.4.4: whitespace runs become one space (a leading one stays), trailing whitespace goes.
fn push_collapsed_keeping_leading(out: &mut Vec<u8>, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut in_space = false;
    for &byte in line {
        if byte == b' ' || byte == b'\t' || byte == b'\r' {
            in_space = true;
        } else {
            if in_space {
                out.push(b' ');
                in_space = false;
            }
            out.push(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    fn digest(raw: &str) -> [u8; 32] {
        content_digest(&MessageParser::default().parse(raw.as_bytes()).unwrap())
    }

    const MESSAGE: &str = "From: a@example.jp\r\nSubject: hello\r\nMessage-ID: <m@example.jp>\r\n\r\nline one\r\n\r\nline two\r\n";

    #[test]
    fn trace_fields_and_relaxed_whitespace_do_not_change_the_digest() {
        let retried = format!(
            "Received: from mx by cf; Mon, 11 Mar 2024 09:15:00 +0000\r\nARC-Seal: i=1; cv=none; b=AAAA\r\n{}",
            MESSAGE.replace("Subject: hello", "Subject:   hello\r\n ")
        );
        assert_eq!(digest(MESSAGE), digest(&retried));
        assert_eq!(digest(MESSAGE), digest(&MESSAGE.replace("\r\n", "\n")));
        assert_eq!(digest(MESSAGE), digest(&format!("{MESSAGE}\r\n\r\n")));
        assert_eq!(
            digest(MESSAGE),
            digest(&MESSAGE.replace("line two", "line two  "))
        );
    }

    #[test]
    fn the_body_and_every_originator_field_change_the_digest() {
        let changed = [
            MESSAGE.replace("line two", "line 2"),
            MESSAGE.replace("\r\n\r\nline two", "\r\nline two"),
            MESSAGE.replace("line two\r\n", "line two\r\n\r\nline three\r\n"),
            MESSAGE.replace("Subject: hello", "Subject: hullo"),
            MESSAGE.replace("From: a@", "From: b@"),
            format!("Date: Mon, 11 Mar 2024 09:15:00 +0000\r\n{MESSAGE}"),
            format!("Cc: c@example.jp\r\n{MESSAGE}"),
        ];
        for raw in &changed {
            assert_ne!(digest(MESSAGE), digest(raw), "{raw}");
        }
    }
}
