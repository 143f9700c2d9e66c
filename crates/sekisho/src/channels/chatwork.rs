//! Chatwork webhooks.
//!
//! `x-chatworkwebhooksignature` (also sent as the `chatwork_webhook_signature` query parameter) =
//! base64(HMAC-SHA256(key = base64-decoded webhook token, raw body)). Chatwork sends no event id: for the
//! message events the de-duplication key is webhook setting id + event type + message id + update time (see
//! [`dedupe_key`]); every other event is keyed by a digest of the signed raw body.

#[cfg(test)]
use http::Method;
use serde_json::Value;

use super::{text_at, u64_at, Channel, ChannelRequest, Verdict};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::{
    Conversation, ConversationKind, EventData, EventParts, Message, Raw, Sender, Verification,
    UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Chatwork;

pub const SIGNATURE_HEADER: &str = "x-chatworkwebhooksignature";
pub const SIGNATURE_PARAMETER: &str = "chatwork_webhook_signature";
const SCHEME: &str = "chatwork-hmac-sha256";

impl Channel for Chatwork {
    fn name(&self) -> &'static str {
        "chatwork"
    }

    fn account_field(&self) -> &'static str {
        "WEBHOOK_TOKEN"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] =
            &[
                FieldSpec::secret("WEBHOOK_TOKEN", Format::Token { min: 16, max: 256 }).help(
                    "Chatwork → サービス連携 → Webhook → 作成した Webhook の「トークン」",
                    "Chatwork → Integrations → Webhook → the webhook's Token",
                ),
            ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let keys = account
            .required_values("WEBHOOK_TOKEN")?
            .iter()
            .map(|token| crypto::base64_decode(token))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Rejection::misconfigured(account.binding_name("WEBHOOK_TOKEN")))?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .or_else(|| request.query.get(SIGNATURE_PARAMETER));
        let key_index = super::verify_base64_body_hmac(&keys, signature, request.body)?;

        let (payload, raw) = super::json_object_body(request.body)?;
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let parts = normalize(&payload, raw, request.body, verification, request.now_ms);
        Ok(Verdict::accepted(vec![parts]))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Chatwork {
    /// `--secret` is the webhook token exactly as Chatwork shows it (base64).
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let token = params.required("secret")?;
        let key = crypto::base64_decode(token).ok_or(ToolingError::InvalidOption {
            option: "secret",
            why: "the Chatwork webhook token is base64",
        })?;
        let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[&params.body]));
        let mut signed = SignedRequest::post(
            vec![
                (SIGNATURE_HEADER.to_owned(), signature.clone()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        );
        signed
            .query
            .push((SIGNATURE_PARAMETER.to_owned(), signature));
        Ok(signed)
    }
}

/// Chatwork event type → envelope type. Types not listed pass through as [`UNRECOGNIZED_TYPE`].
fn envelope_type(chatwork_type: &str) -> &'static str {
    match chatwork_type {
        "message_created" => "message.received",
        "message_updated" => "message.edited",
        "mention_to_me" => "message.mentioned",
        _ => UNRECOGNIZED_TYPE,
    }
}

/// The de-duplication key. A message event that names its webhook setting and message is keyed by
/// `{webhook_setting_id}:{type}:{message_id}:{update_time}` (an edit has a new `update_time`, so each edit is its
/// own event; `message_updated` without one falls through). Anything else — an event type Sekisho does not know,
/// or a message event missing those fields — is keyed by SHA-256 of the signed raw body: its fields mean nothing
/// known, and two different events must never share a key.
fn dedupe_key(payload: &Value, chatwork_type: &str, body: &[u8]) -> String {
    let non_empty =
        |value: &Value, path: &[&str]| text_at(value, path).filter(|text| !text.is_empty());
    let event = payload.get("webhook_event").unwrap_or(&Value::Null);
    let update_time = non_empty(event, &["update_time"]);
    let edited_at = update_time.as_deref().filter(|time| *time != "0");
    let identified = match chatwork_type {
        "message_created" | "mention_to_me" => Some(update_time.as_deref().unwrap_or_default()),
        "message_updated" => edited_at,
        _ => None,
    };
    match (
        identified,
        non_empty(payload, &["webhook_setting_id"]),
        non_empty(event, &["message_id"]),
    ) {
        (Some(update_time), Some(setting_id), Some(message_id)) => {
            format!("{setting_id}:{chatwork_type}:{message_id}:{update_time}")
        }
        _ => super::content_hash_key(body),
    }
}

fn normalize(
    payload: &Value,
    raw: Raw,
    body: &[u8],
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let chatwork_type = text_at(payload, &["webhook_event_type"]).unwrap_or_default();
    let dedupe_key = dedupe_key(payload, &chatwork_type, body);
    let event = payload.get("webhook_event").cloned().unwrap_or(Value::Null);
    let time_ms = u64_at(payload, &["webhook_event_time"])
        .and_then(|seconds| seconds.checked_mul(1000))
        .unwrap_or(now_ms);
    let recognized = envelope_type(&chatwork_type) != UNRECOGNIZED_TYPE;
    let message = recognized.then(|| Message {
        id: text_at(&event, &["message_id"]),
        kind: "text".to_owned(),
        text: text_at(&event, &["body"]).map(|body| plain_text(&body)),
        ..Message::default()
    });
    let data = EventData {
        conversation: text_at(&event, &["room_id"]).map(|id| Conversation {
            id,
            kind: ConversationKind::Room,
        }),
        // `mention_to_me` names the author `from_account_id`; the message events `account_id`.
        sender: text_at(&event, &["from_account_id"])
            .or_else(|| text_at(&event, &["account_id"]))
            .map(|id| Sender { id, name: None }),
        message,
        ..EventData::new(chatwork_type.clone(), verification, raw)
    };
    EventParts {
        dedupe_key,
        event_type: envelope_type(&chatwork_type).to_owned(),
        time_ms,
        data,
    }
}

/// Chatwork message markup tags that carry no readable text of their own. Their contents (quoted text, info
/// boxes, titles, code, file names) are kept; a tag not listed here stays as typed.
const MARKUP_TAGS: &[&str] = &[
    "to",
    "toall",
    "rp",
    "re",
    "返信",
    "info",
    "title",
    "qt",
    "qtmeta",
    "hr",
    "picon",
    "piconname",
    "code",
    "download",
    "preview",
    "task",
    "dtext",
    "deleted",
];

/// The readable text of a Chatwork message body: markup tags such as `[To:123]`, `[rp aid=… to=…]`,
/// `[info]…[/info]` and `[qt]…[/qt]` are removed, their readable contents kept.
pub fn plain_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some((before, after_open)) = rest.split_once('[') {
        out.push_str(before);
        match tag_end(after_open) {
            Some((inner, after_close)) if is_markup(inner) => {
                if block_break(inner) && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                rest = after_close;
            }
            _ => {
                out.push('[');
                rest = after_open;
            }
        }
    }
    out.push_str(rest);
    out.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Longest tag looked for (`[rp aid=… to=…-…]` is about 60 bytes). Bounding the search for `]` keeps a body full
/// of unmatched `[` linear.
const MAX_TAG_LEN: usize = 128;

/// The text inside a tag and the text after its `]`, when the `]` comes within [`MAX_TAG_LEN`] bytes.
fn tag_end(after_open: &str) -> Option<(&str, &str)> {
    let (end, _) = after_open
        .char_indices()
        .take_while(|(index, _)| *index < MAX_TAG_LEN)
        .find(|(_, c)| *c == ']')?;
    Some((after_open.get(..end)?, after_open.get(end + 1..)?))
}

fn tag_name(inner: &str) -> &str {
    let inner = inner.strip_prefix('/').unwrap_or(inner);
    inner
        .split([':', ' ', '='])
        .next()
        .unwrap_or_default()
        .trim()
}

fn is_markup(inner: &str) -> bool {
    let name = tag_name(inner);
    MARKUP_TAGS.iter().any(|tag| tag.eq_ignore_ascii_case(name))
}

/// Tags after which the readable text starts a new line (`[/title]`, `[hr]`, the end of a quote or info box).
fn block_break(inner: &str) -> bool {
    let closing = inner.starts_with('/');
    match tag_name(inner).to_ascii_lowercase().as_str() {
        "hr" => true,
        "title" | "qt" | "info" | "code" => closing,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
