//! E-mail as a channel. Cloudflare Email Routing hands the Worker's `email` handler the SMTP envelope and the
//! raw MIME message; this module turns it into one `message.received` event.
//!
//! It is not an HTTP route, so it is not in [`CHANNELS`](crate::channels::CHANNELS): the edge calls [`handle`]
//! directly and answers through the e-mail API (`setReject` for a permanent refusal, an exception for a
//! temporary one) instead of an HTTP status.
//!
//! Accounts are found by recipient: `EMAIL_{ACCOUNT}_ADDRESS` lists the addresses (comma-separated) that
//! belong to the account. MIME parsing, transfer encodings and charsets are `mail-parser`'s work, except the
//! charsets that need `encoding_rs` (ISO-2022-JP, Shift_JIS, EUC-JP, GBK, Big5, EUC-KR, …): those the caller's
//! [`CharsetDecoder`] decodes ([`charset`]), the runtime's `TextDecoder` in the Worker.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};
use serde_json::{json, Value};

use crate::config::{Account, Bindings};
use crate::control_chars::{multi_line, single_line};
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EmailAddress, EmailDetails, EmailEnvelope, Event,
    EventData, EventParts, Message, Raw, Sender, Verification,
};
use crate::forward;
use crate::gateway::{Accepted, Refusal};
use crate::Rejection;

use crate::channels::EdgeResponse;

mod authentication;
mod bounds;
pub mod charset;
mod content_digest;
mod content_type;
mod encoded_word;
mod html_entities;
mod recipient;
mod redecode;
mod rfc2231;
mod sniff;
mod stored;

pub use bounds::{MimeBound, MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_NESTED_MESSAGES, MAX_PARTS};
pub use charset::CharsetDecoder;
pub use recipient::account_for_recipient;
use stored::{store_attachments, PartBytes};
pub use stored::{AcceptedEmail, Bucket};

pub const CHANNEL: &str = "email";
pub const ADDRESS_FIELD: &str = "ADDRESS";

/// The fields of an e-mail account (the registry checks a write against them).
pub static FIELDS: &[crate::config::field::FieldSpec] =
    &[crate::config::field::FieldSpec::setting(
        ADDRESS_FIELD,
        crate::config::field::Format::Addresses,
    )
    .required()
    .help(
        "このアカウント宛てのアドレス（Email Routing でこの Worker に届くもの、カンマ区切り）",
        "The addresses of this account (routed to this Worker by Email Routing; comma-separated)",
    )];
pub const EVENT_TYPE: &str = "message.received";
/// Raw messages over this many bytes are refused (`EMAIL_MAX_BYTES` overrides it). Email Routing itself
/// accepts up to 25 MiB; parsing that much inside a 128 MB isolate leaves little room.
pub const MAX_BYTES_BINDING: &str = "EMAIL_MAX_BYTES";
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Email Routing checks SPF/DKIM/DMARC on receipt; the gateway verifies nothing itself and passes on Email
/// Routing's own results ([`authentication`]).
const VERIFICATION_SCHEME: &str = "cloudflare-email-routing";

/// A message as Email Routing delivers it to the Worker.
pub struct InboundEmail<'a> {
    /// SMTP `MAIL FROM`.
    pub envelope_from: &'a str,
    /// SMTP `RCPT TO`: one of the configured addresses.
    pub envelope_to: &'a str,
    pub raw: &'a [u8],
}

/// The configured size limit for raw messages.
pub fn max_bytes(bindings: &dyn Bindings) -> u64 {
    bindings
        .get(MAX_BYTES_BINDING)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_BYTES)
}

/// Refuses a message by its announced size, before its stream is read.
pub fn check_size(raw_size: u64, bindings: &dyn Bindings) -> Result<(), Rejection> {
    let limit = max_bytes(bindings);
    if raw_size > limit {
        return Err(Rejection::PayloadTooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        });
    }
    Ok(())
}

/// Size check → account → MIME parse → one event → delivery plan. Never panics on any input.
pub fn handle(
    inbound: &InboundEmail<'_>,
    bindings: &dyn Bindings,
    now_ms: u64,
    charsets: &dyn CharsetDecoder,
) -> Result<Accepted, Refusal> {
    let account =
        admit(inbound.envelope_to, inbound.raw.len() as u64, bindings).map_err(|e| Refusal {
            rejection: e,
            channel: Some(CHANNEL),
            account: None,
        })?;
    accept(
        inbound,
        &account,
        bindings,
        now_ms,
        charsets,
        Bucket::Absent,
    )
    .map(|email| email.accepted)
}

/// How a refused message is answered to Email Routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailAnswer {
    /// The sender's own problem (unknown recipient, too large, unreadable): a bounce with `<reason>: <detail>`.
    Bounce(String),
    /// Sekisho's own trouble (configuration, queue): a temporary SMTP failure, so the sending server retries
    /// and nothing is bounced for it.
    TemporaryFailure(String),
}

pub fn answer_for(rejection: &Rejection) -> EmailAnswer {
    if rejection.status().is_server_error() {
        EmailAnswer::TemporaryFailure(format!("temporary failure: {}", rejection.reason()))
    } else {
        EmailAnswer::Bounce(format!("{}: {}", rejection.reason(), rejection))
    }
}

/// What is decided before the message is read: its announced size, and the account of its recipient.
pub fn admit(
    envelope_to: &str,
    raw_size: u64,
    bindings: &dyn Bindings,
) -> Result<String, Rejection> {
    check_size(raw_size, bindings)?;
    account_for_recipient(envelope_to, bindings)
}

/// The rest, for a message [`admit`] let in: parse, normalize, plan its deliveries.
pub fn accept(
    inbound: &InboundEmail<'_>,
    account_name: &str,
    bindings: &dyn Bindings,
    now_ms: u64,
    charsets: &dyn CharsetDecoder,
    bucket: Bucket,
) -> Result<AcceptedEmail, Refusal> {
    let refuse = |rejection| Refusal {
        rejection,
        channel: Some(CHANNEL),
        account: Some(account_name.to_owned()),
    };
    let account = Account::new(CHANNEL, account_name, bindings);
    let (mut event, parts) = parse(inbound, account_name, now_ms, charsets).map_err(refuse)?;
    let (stored, link_problem) = match bucket {
        Bucket::Present => store_attachments(&mut event, parts, bindings, now_ms / 1000),
        Bucket::Absent => (Vec::new(), None),
    };
    // A queue message holds at most 128 KB: an HTML body that does not fit is left out (the text carries the
    // content); if the text alone is too large the message is refused rather than cut.
    let plan = match forward::plan(std::slice::from_ref(&event), &account) {
        Err(Rejection::EventTooLarge { .. }) if omit_html(&mut event) => {
            forward::plan(std::slice::from_ref(&event), &account)
        }
        planned => planned,
    }
    .map_err(refuse)?;
    Ok(AcceptedEmail {
        accepted: Accepted {
            channel: Some(CHANNEL),
            account: Some(account_name.to_owned()),
            response: EdgeResponse::accepted(1),
            deliveries: plan.deliveries,
            warnings: plan.warnings,
            replay_guard: None,
            reply: None,
        },
        stored,
        link_problem,
    })
}

/// Parses the message into one `message.received` event.
pub fn normalize(
    inbound: &InboundEmail<'_>,
    account: &str,
    now_ms: u64,
    charsets: &dyn CharsetDecoder,
) -> Result<Event, Rejection> {
    parse(inbound, account, now_ms, charsets).map(|(event, _)| event)
}

/// The event and the content of each of its attachments, in the order of `data.message.attachments`.
fn parse(
    inbound: &InboundEmail<'_>,
    account: &str,
    now_ms: u64,
    charsets: &dyn CharsetDecoder,
) -> Result<(Event, Vec<PartBytes>), Rejection> {
    bounds::check(inbound.raw)?;
    let mut message = MessageParser::default()
        .parse(inbound.raw)
        .filter(|message| !message.parts.is_empty())
        .ok_or(Rejection::MalformedBody {
            expected: "MIME message",
        })?;
    redecode::redecode(&mut message, charsets);

    let message_id = message
        .message_id()
        .map(clean_id)
        .filter(|id| !id.is_empty());
    let in_reply_to = id_list(message.in_reply_to());
    let references = id_list(message.references());
    let thread_root = references
        .first()
        .or(in_reply_to.first())
        .or(message_id.as_ref());

    let from = message
        .from()
        .and_then(|from| addresses(from).into_iter().next());
    let sender_address = from
        .as_ref()
        .map(|from| from.address.clone())
        .unwrap_or_else(|| single_line(inbound.envelope_from).into_owned());
    let sender = Sender {
        id: sender_address.to_lowercase(),
        name: from.as_ref().and_then(|from| from.name.clone()),
    };

    // `Date` is the sender's claim (kept in `data.email.date`); time and order are when the message arrived.
    let date = message.date().filter(|date| date.is_valid());
    let time_ms = now_ms;
    // A thread is the sender's own: `References` naming another customer's message cannot join their thread.
    let conversation_id = thread_root.map(|root| thread_id(&sender.id, root));

    let text = message
        .text_bodies()
        .filter_map(|part| match &part.body {
            PartType::Text(text) => Some(Cow::Borrowed(text.as_ref())),
            PartType::Html(html) => Some(Cow::Owned(html_entities::html_to_text(html))),
            _ => None,
        })
        .map(|text| multi_line(&text).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let text = text.trim_end().to_owned();
    let html = message.html_bodies().find_map(|part| match &part.body {
        mail_parser::PartType::Html(html) => Some(html.to_string()),
        _ => None,
    });

    let contents: Vec<PartBytes> = message
        .attachments()
        .map(|part| {
            let content_type = match part.content_type() {
                Some(ct) => match ct.subtype() {
                    Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
                    None => ct.ctype().to_owned(),
                },
                None => "application/octet-stream".to_owned(),
            };
            let content_type = single_line(&content_type.to_ascii_lowercase()).into_owned();
            let text = matches!(part.body, PartType::Text(_) | PartType::Html(_));
            PartBytes {
                content_type: if text {
                    format!("{content_type}; charset=utf-8")
                } else {
                    content_type
                },
                bytes: part.contents().to_vec(),
            }
        })
        .collect();
    let attachments = message
        .attachments()
        .map(|part| {
            let content_type = part.content_type().map(|ct| match ct.subtype() {
                Some(subtype) => format!("{}/{}", ct.ctype(), subtype),
                None => ct.ctype().to_owned(),
            });
            let kind = match content_type.as_deref().and_then(|ct| ct.split('/').next()) {
                Some(kind @ ("image" | "video" | "audio")) => kind.to_owned(),
                _ => "file".to_owned(),
            }
            .to_ascii_lowercase();
            Attachment {
                kind,
                id: part.content_id().map(clean_id).filter(|id| !id.is_empty()),
                url: None,
                name: rfc2231::attachment_name(part, &message.raw_message, charsets)
                    .map(|name| single_line(&name).into_owned()),
                content_type: content_type
                    .map(|ct| single_line(&ct.to_ascii_lowercase()).into_owned()),
                size: Some(part.len() as u64),
                duration_ms: None,
            }
        })
        .collect::<Vec<_>>();

    let headers: Vec<(String, String)> = message
        .root_part()
        .headers
        .iter()
        .map(|header| {
            let value = message
                .raw_message
                .get(header.offset_start as usize..header.offset_end as usize)
                .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
                .unwrap_or_default();
            (header.name.as_str().to_owned(), value)
        })
        .collect();
    let automatic = is_automatic(&headers, inbound.envelope_from);
    let verdict = authentication::verdict(&headers);
    let raw_headers: Vec<Value> = headers
        .into_iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();

    let details = EmailDetails {
        subject: message
            .subject()
            .map(|subject| single_line(subject).into_owned()),
        from,
        to: message.to().map(addresses).unwrap_or_default(),
        cc: message.cc().map(addresses).unwrap_or_default(),
        reply_to: message.reply_to().map(addresses).unwrap_or_default(),
        date: date.map(|date| date.to_rfc3339()),
        message_id: message_id.clone(),
        in_reply_to,
        references,
        envelope: EmailEnvelope {
            from: single_line(inbound.envelope_from).into_owned(),
            to: single_line(inbound.envelope_to).into_owned(),
        },
        authentication: verdict,
        html,
        html_omitted: false,
        auto_submitted: automatic,
        size: inbound.raw.len() as u64,
    };
    let dedupe_key = content_digest::dedupe_key(&message, message_id.as_deref());
    let data = EventData {
        conversation: conversation_id.map(|id| Conversation {
            id,
            kind: ConversationKind::Thread,
        }),
        sender: Some(sender),
        message: Some(Message {
            id: message_id,
            kind: "text".to_owned(),
            text: (!text.is_empty()).then_some(text),
            attachments,
            location: None,
            sticker: None,
        }),
        email: Some(details),
        ..EventData::new(
            "email".to_owned(),
            Verification {
                scheme: VERIFICATION_SCHEME.to_owned(),
                key_index: 0,
            },
            Raw::rendered(&json!({ "headers": raw_headers })),
        )
    };
    let event = Event::new(
        CHANNEL,
        account,
        EventParts {
            dedupe_key,
            event_type: EVENT_TYPE.to_owned(),
            time_ms,
            data,
        },
    );
    Ok((event, contents))
}

/// `data.conversation.id`: the thread's root Message-ID within the sender's address (`{sender} {root}`), so
/// that only the same sender continues a thread. The address goes without whitespace, so the first space
/// always separates the two.
pub fn thread_id(sender_id: &str, root: &str) -> String {
    let sender: String = sender_id.chars().filter(|c| !c.is_whitespace()).collect();
    format!("{sender} {root}")
}

/// Mail written by a machine: an auto-reply, a bounce, a mailing list. A helpdesk that answers it starts a
/// mail loop. RFC 3834 `Auto-Submitted` other than `no`; the older `Precedence: bulk|junk|list|auto_reply`;
/// `X-Autoreply`/`X-Autorespond`; and bounces, which come from the
/// null reverse path (`MAIL FROM:<>`).
fn is_automatic(headers: &[(String, String)], envelope_from: &str) -> bool {
    let value_of = |name: &str| {
        headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_ascii_lowercase())
    };
    let auto_submitted = value_of("Auto-Submitted").is_some_and(|v| !v.starts_with("no"));
    let precedence = value_of("Precedence")
        .is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply"));
    let autoreply = value_of("X-Autoreply").is_some() || value_of("X-Autorespond").is_some();
    let null_sender = matches!(envelope_from.trim(), "" | "<>");
    auto_submitted || precedence || autoreply || null_sender
}

/// Drops the HTML body; false when there was none.
fn omit_html(event: &mut Event) -> bool {
    match event.data.email.as_mut() {
        Some(details) if details.html.is_some() => {
            details.html = None;
            details.html_omitted = true;
            true
        }
        _ => false,
    }
}

/// Every mailbox of an address header, group members included. Names and addresses are one line each
/// ([`single_line`]): an encoded-word can decode to CR LF.
fn addresses(address: &Address<'_>) -> Vec<EmailAddress> {
    address
        .iter()
        .filter_map(|addr| {
            let address = single_line(addr.address()?).trim().to_owned();
            (!address.is_empty()).then(|| EmailAddress {
                address,
                name: addr
                    .name()
                    .map(|name| single_line(name).trim().to_owned())
                    .filter(|name| !name.is_empty()),
            })
        })
        .collect()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => vec![clean_id(id)],
        HeaderValue::TextList(ids) => ids.iter().map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

/// An id without its angle brackets, on one line ([`single_line`]).
fn clean_id(id: &str) -> String {
    single_line(id)
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn our_own_trouble_is_a_temporary_failure_and_the_senders_a_bounce() {
        use super::{answer_for, EmailAnswer};
        use crate::Rejection;
        assert_eq!(
            answer_for(&Rejection::EnqueueFailed),
            EmailAnswer::TemporaryFailure("temporary failure: enqueue_failed".into())
        );
        assert_eq!(
            answer_for(&Rejection::misconfigured("BACKEND_URL")),
            EmailAnswer::TemporaryFailure("temporary failure: misconfigured".into())
        );
        assert_eq!(
            answer_for(&Rejection::ClaimInProgress),
            EmailAnswer::TemporaryFailure("temporary failure: claim_in_progress".into())
        );
        assert!(matches!(
            answer_for(&Rejection::UnknownRecipient),
            EmailAnswer::Bounce(text) if text.starts_with("unknown_recipient: ")
        ));
        assert!(matches!(
            answer_for(&Rejection::PayloadTooLarge { limit: 10 }),
            EmailAnswer::Bounce(text) if text.starts_with("payload_too_large: ")
        ));
    }

    use std::collections::HashMap;

    use super::*;

    fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn size_limit_is_configurable() {
        let b = bindings(&[("EMAIL_MAX_BYTES", "100")]);
        assert!(check_size(100, &b).is_ok());
        assert_eq!(
            check_size(101, &b),
            Err(Rejection::PayloadTooLarge { limit: 100 })
        );
        assert!(check_size(DEFAULT_MAX_BYTES, &HashMap::new()).is_ok());
        assert!(check_size(DEFAULT_MAX_BYTES + 1, &HashMap::new()).is_err());
    }

    fn inbound(raw: &[u8]) -> InboundEmail<'_> {
        InboundEmail {
            envelope_from: "bounce@example.jp",
            envelope_to: "support@example.com",
            raw,
        }
    }

    #[test]
    fn oversized_html_is_omitted_and_oversized_text_refused() {
        let bindings = bindings(&[
            ("EMAIL_SUPPORT_ADDRESS", "support@example.com"),
            ("BACKEND_URL", "https://backend.example/events"),
            (
                "BACKEND_SIGNING_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ]);
        let filler = "x".repeat(crate::delivery::QUEUE_MESSAGE_MAX_BYTES);
        let multipart = |html: &str| {
            format!(
                "From: a@example.jp\r\nMessage-ID: <big@example.jp>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nshort text\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>{html}</p>\r\n--b--\r\n"
            )
        };
        let event_of = |raw: &str| -> Value {
            let accepted =
                handle(&inbound(raw.as_bytes()), &bindings, 0, &charset::EncodingRs).unwrap();
            serde_json::from_str(&accepted.deliveries[0].body).unwrap()
        };
        let event = event_of(&multipart(&filler));
        assert!(event["data"]["email"].get("html").is_none());
        assert_eq!(event["data"]["email"]["html_omitted"], true);
        assert_eq!(event["data"]["message"]["text"], "short text");

        // A small HTML part stays.
        let event = event_of(&multipart("hello"));
        assert_eq!(event["data"]["email"]["html"], "<p>hello</p>");
        assert!(event["data"]["email"].get("html_omitted").is_none());

        let raw =
            format!("From: a@example.jp\r\nMessage-ID: <big2@example.jp>\r\n\r\n{filler}\r\n");
        let refusal =
            handle(&inbound(raw.as_bytes()), &bindings, 0, &charset::EncodingRs).unwrap_err();
        assert_eq!(refusal.rejection.reason(), "event_too_large");
        assert_eq!(refusal.rejection.status().as_u16(), 413);
    }

    #[test]
    fn automatic_mail_is_flagged() {
        let flagged = |headers: &str, envelope_from: &str| {
            let raw = format!(
                "From: a@example.jp\r\nMessage-ID: <m@example.jp>\r\n{headers}\r\nhello\r\n"
            );
            let inbound = InboundEmail {
                envelope_from,
                envelope_to: "support@example.com",
                raw: raw.as_bytes(),
            };
            normalize(&inbound, "support", 0, &charset::EncodingRs)
                .unwrap()
                .data
                .email
                .unwrap()
                .auto_submitted
        };
        assert!(!flagged("Subject: hi\r\n", "a@example.jp"));
        assert!(!flagged("Auto-Submitted: no\r\n", "a@example.jp"));
        assert!(flagged("Auto-Submitted: auto-replied\r\n", "a@example.jp"));
        assert!(flagged(
            "auto-submitted: Auto-Generated\r\n",
            "a@example.jp"
        ));
        assert!(flagged("Precedence: bulk\r\n", "a@example.jp"));
        assert!(!flagged("Precedence: first-class\r\n", "a@example.jp"));
        assert!(flagged("X-Autoreply: yes\r\n", "a@example.jp"));
        assert!(flagged("Subject: Undelivered Mail\r\n", ""));
        assert!(flagged("Subject: Undelivered Mail\r\n", "<>"));
    }

    #[test]
    fn ids_and_addresses_are_one_line_whatever_their_encoded_words_decode_to() {
        let raw = "From: =?utf-8?q?Taro=0D=0AX-Approved=3A_yes?= <taro@example.jp>\r\n\
                   Reply-To: =?utf-8?b?DQpCY2M6IGFsbEBleGFtcGxlLmNvbQ==?= <reply@example.jp>\r\n\
                   Message-ID: <id\x1b[2J=?utf-8?q?=0D=0A?=@example.jp>\r\n\
                   In-Reply-To: <parent\x0b@example.jp>\r\n\
                   References: <root\x7f@example.jp> <parent\x0b@example.jp>\r\n\
                   Subject: =?utf-8?b?5pys5pelDQrmib/oqo3muIjjgb8=?=\r\n\r\nbody\r\n";
        let event =
            normalize(&inbound(raw.as_bytes()), "support", 0, &charset::EncodingRs).unwrap();
        let email = event.data.email.as_ref().unwrap();
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(email.subject.as_deref(), Some("本日 承認済み"));
        let from = email.from.as_ref().unwrap();
        assert_eq!(from.name.as_deref(), Some("Taro X-Approved: yes"));
        assert_eq!(
            email.reply_to[0].name.as_deref(),
            Some("Bcc: all@example.com")
        );
        let mut one_line_fields = vec![
            json["data"]["conversation"]["id"].clone(),
            json["data"]["sender"]["id"].clone(),
            json["data"]["email"]["message_id"].clone(),
            json["data"]["email"]["from"]["address"].clone(),
        ];
        one_line_fields.extend(email.in_reply_to.iter().map(|id| Value::from(id.as_str())));
        one_line_fields.extend(email.references.iter().map(|id| Value::from(id.as_str())));
        assert_eq!(email.references.len(), 2);
        for field in one_line_fields {
            let text = field.as_str().unwrap_or_default();
            assert!(
                !text.is_empty() && !text.chars().any(|c| c.is_control() && c != '\t'),
                "{text:?}"
            );
        }
    }

    #[test]
    fn empty_or_headerless_input_is_refused_or_tolerated_without_panicking() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"\xff\xfe\x00",
            b"no colon here",
            b"From:\r\n\r\n",
        ] {
            let _ = normalize(&inbound(raw), "support", 1, &charset::EncodingRs);
        }
    }
}
