//! Event envelope v1: a CloudEvents 1.0 JSON event with Sekisho's `data` shape.
//! The published JSON Schema is `schema/event-v1.schema.json`; tests validate every event against it.
//! It is generated from these types, natively, by the `schemars` derives and attributes below (never in the
//! Worker): see `src/schema.rs` for how to regenerate it and the tests that keep the file, the types and the
//! template paths in step.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::crypto;

/// The type given to any provider event Sekisho does not recognise. It is forwarded, never dropped:
/// `data.provider_type` carries the provider's own name and `data.raw` the whole event.
pub const UNRECOGNIZED_TYPE: &str = "unrecognized";

/// One normalized channel event, as POSTed to the backend. A CloudEvents 1.0 JSON event; `id` equals the
/// `webhook-id` header and is stable across provider retries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(
        deny_unknown_fields,
        title = "Sekisho event envelope v1",
        extend("$id" = "https://sekisho.dev/schema/event-v1.schema.json")
    )
)]
pub struct Event {
    #[cfg_attr(feature = "schema", schemars(extend("const" = "1.0")))]
    pub specversion: String,
    /// Stable across provider retries: also sent as `webhook-id`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^evt_[0-9a-f]{32}$")))]
    pub id: String,
    /// `/{channel}/{account}`.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^/[a-z0-9]+/[a-z0-9-]{1,64}$"))
    )]
    pub source: String,
    /// Normalized event type, e.g. message.received, message.unsent, message.edited, message.delivered,
    /// message.read, message.sent, follow, unfollow, conversation.joined, conversation.left,
    /// conversation.started, conversation.ended, conversation.assigned, member.joined, member.left, postback,
    /// form.submitted, webhook.received; `unrecognized` for provider events Sekisho does not know (never
    /// dropped).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub event_type: String,
    /// When the event happened, by the provider's clock when it gives one (RFC 3339, UTC).
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    pub time: String,
    #[cfg_attr(
        feature = "schema",
        schemars(extend("const" = "application/json"))
    )]
    pub datacontenttype: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[a-z0-9]+$")))]
    pub channel: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[a-z0-9-]{1,64}$")))]
    pub account: String,
    pub data: EventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, rename = "data"))]
pub struct EventData {
    /// The provider's own name for the event (e.g. LINE `memberJoined`).
    pub provider_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postback: Option<Postback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Users a membership event is about (LINE `memberJoined`, WeCom `change_contact`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Sender>,
    pub verification: Verification,
    /// `message.sent` and `message.send_failed` only: the send's id, as answered to `POST /send/…`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^snd_[0-9a-f]{32}$")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_id: Option<String>,
    /// `message.sent` and `message.send_failed` only: the send's `to`, as the backend gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<SendRecipient>,
    /// `message.sent` and `message.send_failed` only: the send's `in_reply_to`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// `message.send_failed` only: the provider's error code (or HTTP status) and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<SendFailure>,
    /// E-mail only: the headers and parts that have no place in the chat-shaped fields above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailDetails>,
    /// Filled by [`Event::new`]: Queues do not preserve order, so the backend orders by this.
    #[cfg_attr(
        feature = "schema",
        schemars(
            description = "Queues do not preserve order: the backend orders the events of one `key` by `sequence`."
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
    // The schema does not depend on how the bytes are held: any JSON value.
    #[cfg_attr(
        feature = "schema",
        schemars(
            with = "serde_json::Value",
            description = "The provider's event, unchanged (decrypted XML as a JSON object of its fields)."
        )
    )]
    /// The provider's event object, unchanged.
    pub raw: Raw,
}

impl EventData {
    /// An event's data with only what every event has; a channel fills the rest with struct-update syntax
    /// (`EventData { sender, message, ..EventData::new(..) }`).
    pub fn new(
        provider_type: impl Into<String>,
        verification: Verification,
        raw: Raw,
    ) -> EventData {
        EventData {
            provider_type: provider_type.into(),
            conversation: None,
            sender: None,
            message: None,
            postback: None,
            reply: None,
            members: Vec::new(),
            verification,
            send_id: None,
            recipient: None,
            in_reply_to: None,
            error: None,
            email: None,
            ordering: None,
            raw,
        }
    }
}

/// The provider's event as JSON text. Where the provider sent JSON, these are its very bytes (key order, every
/// digit, escapes); where it sent XML or a form, the JSON rendering of what it sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Raw(Box<RawValue>);

impl Raw {
    /// The provider's own JSON text for this event.
    pub fn verbatim(json: &RawValue) -> Raw {
        Raw(json.to_owned())
    }

    /// A whole body that is one JSON document (already parsed once by the channel, so it is valid JSON).
    pub fn from_body(body: &[u8]) -> Result<Raw, serde_json::Error> {
        serde_json::from_slice::<Box<RawValue>>(body).map(Raw)
    }

    /// The JSON rendering of a value the channel built (XML fields, a form, a narrowed Meta change).
    pub fn rendered(value: &Value) -> Raw {
        // Rendering a `Value` cannot fail: its map keys are strings and its numbers finite.
        Raw(serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The text read as a value (numbers beyond `f64` read as `null`, see [`crate::json::parse`]).
    pub fn value(&self) -> Value {
        crate::json::parse(self.0.get()).unwrap_or(Value::Null)
    }
}

impl PartialEq for Raw {
    fn eq(&self, other: &Raw) -> bool {
        self.0.get() == other.0.get()
    }
}

/// An ordering hint: events with the same `key` belong to one conversation; `sequence` is the provider's own
/// timestamp in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Ordering {
    /// Conversation key: events with the same key belong to one conversation.
    pub key: String,
    /// The provider's own timestamp (or sequence), in milliseconds, for ordering within the key.
    pub sequence: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Conversation {
    pub id: String,
    pub kind: ConversationKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(inline))]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    /// One user and the account.
    Direct,
    /// A group chat of several users (LINE group, Slack or Discord group DM, Telegram group, LINE WORKS or WeCom
    /// group chat).
    Group,
    /// A multi-user room (LINE room, Chatwork room).
    Room,
    /// A channel of a workspace, server or broadcaster (Slack, Discord server, Telegram channel).
    Channel,
    /// A thread: a Discord thread, or an e-mail thread (its id is the root message's Message-ID).
    Thread,
    /// The provider did not say, or said something Sekisho does not know.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, rename = "party"))]
pub struct Sender {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `text`, `image`, `video`, `audio`, `file`, `location`, `sticker`, `link`, … or the provider's own kind.
    /// `unsent` when the sender took the message back (`message.unsent`).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<Sticker>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Attachment {
    /// `image`, `video`, `audio`, `file`.
    pub kind: String,
    /// The provider's content id, to fetch the content through the provider's API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where the content can be fetched, as the channel gives it. E-mail: the gateway's own signed link
    /// (`{ATTACHMENT_URL_BASE}/attachments/{event id}/{index}?exp={unix seconds}&sig=…`), answering the stored
    /// bytes until `exp` (`ATTACHMENT_URL_TTL_S` after receipt) and 403 after; absent when the attachment was not
    /// stored (no `ATTACHMENTS` bucket, over a size cap) or links are not configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Sticker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    pub sticker_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Postback {
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// What an e-mail says about itself, decoded (RFC 2047 words, any charset) and without angle brackets on ids.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, rename = "email"))]
pub struct EmailDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<EmailAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<EmailAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<EmailAddress>,
    /// The `Date` header with the sender's own UTC offset (RFC 3339): what the sender claims. The event's
    /// `time` and `data.ordering.sequence` are the receive time instead.
    #[cfg_attr(feature = "schema", schemars(extend("format" = "date-time")))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub in_reply_to: Vec<String>,
    /// Oldest first: the first entry is the thread's root.
    /// The root becomes `data.conversation.id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// The SMTP envelope (MAIL FROM / RCPT TO), which may differ from the headers (forwarding, Bcc).
    pub envelope: EmailEnvelope,
    /// Email Routing's own SPF/DKIM/DMARC verdict, read only from the results header it puts above its
    /// `Received` header (a sender's own `Authentication-Results` further down is ignored). Absent when there
    /// is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<EmailAuthentication>,
    /// The HTML body, when there is one and it fits in the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// True when the HTML body was left out because the event would exceed the queue's message size.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub html_omitted: bool,
    /// True for mail written by a machine (auto-reply, bounce, list): answering it risks a mail loop.
    /// That is `Auto-Submitted` other than `no`, `Precedence` bulk/junk/list/auto_reply, `X-Autoreply`, or a
    /// bounce from the null sender: do not auto-answer it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_submitted: bool,
    /// Size of the raw message in bytes.
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(
    feature = "schema",
    schemars(deny_unknown_fields, rename = "email_address")
)]
pub struct EmailAddress {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct EmailEnvelope {
    /// SMTP MAIL FROM.
    pub from: String,
    /// SMTP RCPT TO: the configured address the message arrived at.
    pub to: String,
}

/// Results as Email Routing recorded them (RFC 8601 result keywords: `pass`, `fail`, `softfail`, `neutral`,
/// `none`, `temperror`, `permerror`, `policy`). `dmarc` = `pass` means the `From` domain is authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct EmailAuthentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmarc: Option<String>,
}

/// Whom a send went to: exactly one of the two, as the backend's `to` named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct SendRecipient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Why a send failed, in the provider's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct SendFailure {
    /// The provider's error code (WeChat `45015`, Slack `channel_not_found`), else the HTTP status;
    /// `network` when no answer came.
    pub code: String,
    pub message: String,
}

/// What the backend needs to answer in the conversation (LINE `replyToken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Reply {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(deny_unknown_fields, inline))]
pub struct Verification {
    /// How the request was authenticated, e.g. `line-hmac-sha256`.
    pub scheme: String,
    /// Which configured secret matched (0 = newest). When an old secret's index no longer appears, remove it.
    pub key_index: usize,
}

/// What a channel knows about one event before it becomes an [`Event`].
#[derive(Debug)]
pub struct EventParts {
    /// The provider's de-duplication key (e.g. LINE `webhookEventId`). Same key → same event id.
    pub dedupe_key: String,
    pub event_type: String,
    /// Milliseconds since the Unix epoch, when the provider says; otherwise the receive time.
    pub time_ms: u64,
    pub data: EventData,
}

impl Event {
    pub fn new(channel: &str, account: &str, mut parts: EventParts) -> Event {
        let conversation = parts.data.conversation.as_ref().map(|c| c.id.as_str());
        let key = conversation
            .or(parts.data.sender.as_ref().map(|s| s.id.as_str()))
            .unwrap_or_default();
        parts.data.ordering = Some(Ordering {
            key: format!("{channel}/{account}/{key}"),
            sequence: parts.time_ms,
        });
        Event {
            specversion: "1.0".to_owned(),
            id: event_id(channel, account, &parts.dedupe_key),
            source: format!("/{channel}/{account}"),
            event_type: parts.event_type,
            time: rfc3339_millis(parts.time_ms),
            datacontenttype: "application/json".to_owned(),
            channel: channel.to_owned(),
            account: account.to_owned(),
            data: parts.data,
        }
    }
}

/// `evt_` + 32 hex digits of SHA-256 over channel, account and the provider's de-duplication key.
pub fn event_id(channel: &str, account: &str, dedupe_key: &str) -> String {
    let digest = crypto::sha256(&[
        channel.as_bytes(),
        b"\n",
        account.as_bytes(),
        b"\n",
        dedupe_key.as_bytes(),
    ]);
    let hex = crypto::hex_encode(&digest);
    format!("evt_{}", hex.get(..32).unwrap_or(&hex))
}

/// `2024-01-02T03:04:05.678Z`.
pub fn rfc3339_millis(unix_ms: u64) -> String {
    crate::datetime::format_rfc3339_ms(unix_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_scoped_to_the_account() {
        let a = event_id("line", "demo", "01H0000000000000000000000");
        assert_eq!(a, event_id("line", "demo", "01H0000000000000000000000"));
        assert_ne!(a, event_id("line", "other", "01H0000000000000000000000"));
        assert_eq!(a.len(), 36);
        assert!(a.starts_with("evt_"));
    }

    #[test]
    fn times_are_rfc3339_utc_with_millis() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_462_629_479_859),
            "2016-05-07T13:57:59.859Z"
        );
        assert_eq!(rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.000Z");
    }
}
