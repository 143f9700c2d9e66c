//! Meta webhooks: WhatsApp Cloud API, Messenger and Instagram — one protocol, three routes.
//!
//! Subscription handshake: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → 200 with the challenge
//! as the body when the token matches. Notifications: `POST` with
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`. Meta signs the body as sent, with
//! non-ASCII characters `\uXXXX`-escaped, so only the raw bytes verify. The legacy SHA-1 `X-Hub-Signature` is
//! ignored.
//!
//! One POST batches several `entry[]`, each with WhatsApp `changes[]` or Messenger/Instagram `messaging[]`;
//! every message, status and messaging item becomes one event. Anything else passes through as
//! [`UNRECOGNIZED_TYPE`].

use http::Method;
use serde_json::Value;

use super::Verdict;
use super::{f64_at, text_at, u64_at, value_at, Channel, ChannelRequest, EdgeResponse};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Location, Message, Postback,
    Sender, Sticker, Verification, UNRECOGNIZED_TYPE,
};
#[cfg(not(target_arch = "wasm32"))]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
const SIGNATURE_PREFIX: &str = "sha256=";
const SCHEME: &str = "meta-hmac-sha256";
const APP_SECRET: &str = "APP_SECRET";
const VERIFY_TOKEN: &str = "VERIFY_TOKEN";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    WhatsApp,
    Messenger,
    Instagram,
}

/// One Meta product's route. The three share verification; they differ in name and payload shape.
pub struct Meta {
    product: Product,
}

pub static WHATSAPP: Meta = Meta {
    product: Product::WhatsApp,
};
pub static MESSENGER: Meta = Meta {
    product: Product::Messenger,
};
pub static INSTAGRAM: Meta = Meta {
    product: Product::Instagram,
};

impl Channel for Meta {
    fn name(&self) -> &'static str {
        match self.product {
            Product::WhatsApp => "whatsapp",
            Product::Messenger => "messenger",
            Product::Instagram => "instagram",
        }
    }

    fn account_field(&self) -> &'static str {
        APP_SECRET
    }

    /// `GET` is the URL-verification handshake.
    fn allows(&self, method: &Method) -> bool {
        *method == Method::GET || *method == Method::POST
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        if *request.method == Method::GET {
            return handshake(request, account);
        }
        let secrets = account.required_values(APP_SECRET)?;
        let key_index = verify_signature(&secrets, request.header(SIGNATURE_HEADER), request.body)?;

        let payload = crate::json::parse_slice(request.body)
            .map_err(|_| Rejection::MalformedBody { expected: "JSON" })?;
        let context = Context {
            product: self.product,
            verification: Verification {
                scheme: SCHEME.to_owned(),
                key_index,
            },
            now_ms: request.now_ms,
        };
        Ok(Verdict::accepted(normalize_payload(&context, payload)))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Sign for Meta {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        if let Some(token) = params.option("verify-token") {
            let challenge = params
                .option("challenge")
                .map(str::to_owned)
                .unwrap_or_else(|| params.now_s.to_string());
            return Ok(SignedRequest {
                method: Method::GET,
                extra_path: Vec::new(),
                query: vec![
                    ("hub.mode".to_owned(), "subscribe".to_owned()),
                    ("hub.verify_token".to_owned(), token.to_owned()),
                    ("hub.challenge".to_owned(), challenge),
                ],
                headers: Vec::new(),
                body: Vec::new(),
            });
        }
        let secret = params.required("secret")?;
        let tag = crypto::hmac_sha256(secret.as_bytes(), &[&params.body]);
        Ok(SignedRequest::post(
            vec![
                (
                    SIGNATURE_HEADER.to_owned(),
                    format!("{SIGNATURE_PREFIX}{}", crypto::hex_encode(&tag)),
                ),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// The index of the app secret that signed `body`, newest first.
fn verify_signature(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
) -> Result<usize, Rejection> {
    let header = header.ok_or(Rejection::MissingSignature)?;
    let tag = header
        .trim()
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(crypto::hex_decode)
        .ok_or(Rejection::InvalidSignature)?;
    crypto::hmac_sha256_matches(secrets, &[body], &tag).ok_or(Rejection::InvalidSignature)
}

fn handshake(request: &ChannelRequest<'_>, account: &Account<'_>) -> Result<Verdict, Rejection> {
    let tokens = account.required_values(VERIFY_TOKEN)?;
    let presented = request
        .query
        .get("hub.verify_token")
        .ok_or(Rejection::VerifyTokenMismatch)?;
    let matched = crypto::matching_secret(&tokens, presented.as_bytes()).is_some();
    if request.query.get("hub.mode") != Some("subscribe") || !matched {
        return Err(Rejection::VerifyTokenMismatch);
    }
    let challenge = request
        .query
        .get("hub.challenge")
        .ok_or(Rejection::MissingParameter("hub.challenge"))?;
    Ok(Verdict::handshake(EdgeResponse::text(challenge)))
}

struct Context {
    product: Product,
    verification: Verification,
    now_ms: u64,
}

impl Context {
    fn parts(
        &self,
        dedupe_key: String,
        event_type: &str,
        time_ms: Option<u64>,
        data: Data,
    ) -> EventParts {
        EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms: time_ms.unwrap_or(self.now_ms),
            data: EventData {
                conversation: data.conversation,
                sender: data.sender,
                message: data.message,
                postback: data.postback,
                ..EventData::new(
                    data.provider_type,
                    self.verification.clone(),
                    Raw::rendered(&data.raw),
                )
            },
        }
    }

    fn unrecognized(&self, provider_type: &str, raw: Value) -> EventParts {
        let key = hash_key(&raw);
        self.parts(key, UNRECOGNIZED_TYPE, None, Data::new(provider_type, raw))
    }
}

/// The channel-specific part of one event's data.
struct Data {
    provider_type: String,
    conversation: Option<Conversation>,
    sender: Option<Sender>,
    message: Option<Message>,
    postback: Option<Postback>,
    raw: Value,
}

impl Data {
    fn new(provider_type: &str, raw: Value) -> Data {
        Data {
            provider_type: provider_type.to_owned(),
            conversation: None,
            sender: None,
            message: None,
            postback: None,
            raw,
        }
    }
}

/// serde_json's map is ordered by key, so a redelivered item hashes the same.
fn hash_key(raw: &Value) -> String {
    super::content_hash_key(&serde_json::to_vec(raw).unwrap_or_default())
}

fn direct(id: Option<String>) -> Option<Conversation> {
    id.map(|id| Conversation {
        id,
        kind: ConversationKind::Direct,
    })
}

fn array(value: Option<&Value>) -> &[Value] {
    value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn normalize_payload(context: &Context, payload: Value) -> Vec<EventParts> {
    let Some(entries) = payload.get("entry").and_then(Value::as_array) else {
        // Signed by Meta but not shaped like a notification: forwarded as is rather than lost.
        let provider_type = text_at(&payload, &["object"]).unwrap_or_default();
        return vec![context.unrecognized(&provider_type, payload)];
    };
    let mut events = Vec::new();
    for entry in entries {
        normalize_entry(context, entry, &mut events);
    }
    events
}

fn normalize_entry(context: &Context, entry: &Value, events: &mut Vec<EventParts>) {
    let Some(fields) = entry.as_object() else {
        events.push(context.unrecognized("entry", entry.clone()));
        return;
    };
    for (key, value) in fields {
        match key.as_str() {
            "id" | "time" => {}
            "changes" => {
                for change in array(Some(value)) {
                    normalize_change(context, change, events);
                }
            }
            "messaging" => {
                for item in array(Some(value)) {
                    normalize_messaging(context, item, events);
                }
            }
            // `standby` (handover protocol: another app owns the thread) and fields Meta adds later.
            other => {
                let mut raw = serde_json::Map::new();
                for kept in ["id", "time"] {
                    if let Some(v) = fields.get(kept) {
                        raw.insert(kept.to_owned(), v.clone());
                    }
                }
                raw.insert(other.to_owned(), value.clone());
                events.push(context.unrecognized(other, Value::Object(raw)));
            }
        }
    }
}

// ---- WhatsApp Cloud API: entry[].changes[] with field "messages" ----

fn normalize_change(context: &Context, change: &Value, events: &mut Vec<EventParts>) {
    let field = text_at(change, &["field"]).unwrap_or_default();
    let value = change.get("value").unwrap_or(&Value::Null);
    let messages = array(value.get("messages"));
    let statuses = array(value.get("statuses"));
    let is_whatsapp_messages = context.product == Product::WhatsApp && field == "messages";
    if !is_whatsapp_messages || (messages.is_empty() && statuses.is_empty()) {
        // Template/account updates, `errors`-only values, Instagram comments and mentions, Page feed changes.
        events.push(context.unrecognized(&field, change.clone()));
        return;
    }
    let phone_number_id = text_at(value, &["metadata", "phone_number_id"]).unwrap_or_default();
    for message in messages {
        events.push(whatsapp_message(context, value, &phone_number_id, message));
    }
    for status in statuses {
        events.push(whatsapp_status(context, value, &phone_number_id, status));
    }
}

/// The change's `value` with only this message or status left in its array: `metadata.phone_number_id` (needed
/// to reply) and `contacts` stay with it.
fn narrowed(value: &Value, array_field: &str, item: &Value) -> Value {
    let mut raw = value.clone();
    if let Some(object) = raw.as_object_mut() {
        object.remove("messages");
        object.remove("statuses");
        object.insert(array_field.to_owned(), Value::Array(vec![item.clone()]));
    }
    raw
}

fn seconds_to_ms(seconds: Option<u64>) -> Option<u64> {
    seconds.and_then(|s| s.checked_mul(1000))
}

fn whatsapp_message(
    context: &Context,
    value: &Value,
    phone_number_id: &str,
    message: &Value,
) -> EventParts {
    let from = text_at(message, &["from"]);
    let name = from.as_deref().and_then(|from| contact_name(value, from));
    let id = text_at(message, &["id"]);
    let dedupe_key = match &id {
        Some(id) => format!("whatsapp:{phone_number_id}:{id}"),
        None => hash_key(message),
    };
    let provider_kind = text_at(message, &["type"]).unwrap_or_else(|| "unknown".to_owned());
    let (normalized, postback) = whatsapp_content(&provider_kind, id, message);
    let event_type = if postback.is_some() {
        "postback"
    } else {
        "message.received"
    };
    let data = Data {
        conversation: direct(from.clone()),
        sender: from.map(|id| Sender { id, name }),
        message: Some(normalized),
        postback,
        ..Data::new("messages", narrowed(value, "messages", message))
    };
    context.parts(
        dedupe_key,
        event_type,
        seconds_to_ms(u64_at(message, &["timestamp"])),
        data,
    )
}

fn contact_name(value: &Value, wa_id: &str) -> Option<String> {
    let contacts = array(value.get("contacts"));
    contacts
        .iter()
        .find(|contact| text_at(contact, &["wa_id"]).as_deref() == Some(wa_id))
        .and_then(|contact| text_at(contact, &["profile", "name"]))
}

fn whatsapp_content(
    provider_kind: &str,
    id: Option<String>,
    message: &Value,
) -> (Message, Option<Postback>) {
    let kind = match provider_kind {
        "document" => "file",
        other => other,
    };
    let mut normalized = Message {
        id,
        kind: kind.to_owned(),
        ..Message::default()
    };
    let mut postback = None;
    match provider_kind {
        "text" => normalized.text = text_at(message, &["text", "body"]),
        "image" | "audio" | "video" | "document" => {
            let media = message.get(provider_kind);
            normalized.text = media.and_then(|m| text_at(m, &["caption"]));
            normalized.attachments.push(Attachment {
                kind: kind.to_owned(),
                // Media is fetched by id through the Graph API (GET /{media-id}).
                id: media.and_then(|m| text_at(m, &["id"])),
                name: media.and_then(|m| text_at(m, &["filename"])),
                content_type: media.and_then(|m| text_at(m, &["mime_type"])),
                ..Attachment::default()
            });
        }
        "sticker" => {
            normalized.sticker = text_at(message, &["sticker", "id"]).map(|sticker_id| Sticker {
                package_id: None,
                sticker_id,
            });
        }
        "location" => {
            let name = text_at(message, &["location", "name"]);
            let address = text_at(message, &["location", "address"]);
            normalized.text = name.clone().or_else(|| address.clone());
            if let (Some(latitude), Some(longitude)) = (
                f64_at(message, &["location", "latitude"]),
                f64_at(message, &["location", "longitude"]),
            ) {
                normalized.location = Some(Location {
                    latitude,
                    longitude,
                    title: name,
                    address,
                });
            }
        }
        "reaction" => {
            // An empty or missing emoji means the user removed their reaction.
            normalized.text =
                text_at(message, &["reaction", "emoji"]).filter(|emoji| !emoji.is_empty());
        }
        "interactive" => {
            let interactive = message.get("interactive");
            let reply_type = interactive
                .and_then(|i| text_at(i, &["type"]))
                .unwrap_or_default();
            let reply = interactive.and_then(|i| i.get(&reply_type));
            normalized.text = reply.and_then(|r| text_at(r, &["title"]));
            let data = match reply_type.as_str() {
                "button_reply" | "list_reply" => reply.and_then(|r| text_at(r, &["id"])),
                // WhatsApp Flows: the submitted form is a JSON string.
                "nfm_reply" => reply.and_then(|r| text_at(r, &["response_json"])),
                _ => None,
            };
            postback = data.map(|data| Postback {
                data,
                params: reply.cloned(),
            });
        }
        "button" => {
            normalized.text = text_at(message, &["button", "text"]);
            postback = text_at(message, &["button", "payload"]).map(|data| Postback {
                data,
                params: message.get("button").cloned(),
            });
        }
        _ => {}
    }
    (normalized, postback)
}

fn whatsapp_status(
    context: &Context,
    value: &Value,
    phone_number_id: &str,
    status: &Value,
) -> EventParts {
    let state = text_at(status, &["status"]).unwrap_or_default();
    let id = text_at(status, &["id"]);
    let dedupe_key = match &id {
        Some(id) => format!("whatsapp:{phone_number_id}:{id}:{state}"),
        None => hash_key(status),
    };
    let event_type = match state.as_str() {
        "sent" => "message.sent",
        "delivered" => "message.delivered",
        "read" => "message.read",
        "failed" => "message.failed",
        _ => UNRECOGNIZED_TYPE,
    };
    let data = Data {
        conversation: direct(text_at(status, &["recipient_id"])),
        // A status does not say what kind of message it is about.
        message: Some(Message {
            id,
            kind: "unknown".to_owned(),
            ..Message::default()
        }),
        ..Data::new("statuses", narrowed(value, "statuses", status))
    };
    context.parts(
        dedupe_key,
        event_type,
        seconds_to_ms(u64_at(status, &["timestamp"])),
        data,
    )
}

// ---- Messenger and Instagram: entry[].messaging[] ----

/// The keys of a messaging item that name its kind, most specific first.
const MESSAGING_KINDS: &[&str] = &[
    "message",
    "message_edit",
    "postback",
    "reaction",
    "read",
    "delivery",
];

fn normalize_messaging(context: &Context, item: &Value, events: &mut Vec<EventParts>) {
    let provider_type = MESSAGING_KINDS
        .iter()
        .find(|kind| item.get(**kind).is_some())
        .map(|kind| (*kind).to_owned())
        .or_else(|| {
            item.as_object()?
                .keys()
                .find(|key| !matches!(key.as_str(), "sender" | "recipient" | "timestamp"))
                .cloned()
        })
        .unwrap_or_default();
    let sender = text_at(item, &["sender", "id"]);
    let recipient = text_at(item, &["recipient", "id"]);
    let time_ms = u64_at(item, &["timestamp"]);
    let is_echo = value_at(item, &["message", "is_echo"]).and_then(Value::as_bool) == Some(true);
    // The conversation is the user's id: the recipient of the page's own messages, the sender otherwise.
    let user = if is_echo {
        recipient.clone()
    } else {
        sender.clone()
    };
    let base = Data {
        conversation: direct(user),
        sender: sender.map(|id| Sender { id, name: None }),
        ..Data::new(&provider_type, item.clone())
    };
    let hash = hash_key(item);
    let parts = match provider_type.as_str() {
        "message" => {
            let message = item.get("message").unwrap_or(&Value::Null);
            let mid = text_at(message, &["mid"]);
            let deleted = message.get("is_deleted").and_then(Value::as_bool) == Some(true);
            let quick_reply = text_at(message, &["quick_reply", "payload"])
                .map(|data| Postback { data, params: None });
            let (event_type, normalized) = if deleted {
                (
                    "message.unsent",
                    Message {
                        id: mid.clone(),
                        kind: "unsent".to_owned(),
                        ..Message::default()
                    },
                )
            } else if is_echo {
                ("message.sent", messaging_content(message))
            } else if quick_reply.is_some() {
                ("postback", messaging_content(message))
            } else {
                ("message.received", messaging_content(message))
            };
            let key = mid
                .map(|mid| {
                    if deleted {
                        format!("{mid}:deleted")
                    } else {
                        mid
                    }
                })
                .unwrap_or(hash);
            let data = Data {
                message: Some(normalized),
                postback: quick_reply,
                ..base
            };
            vec![context.parts(key, event_type, time_ms, data)]
        }
        "message_edit" => {
            let edit = item.get("message_edit").unwrap_or(&Value::Null);
            let message = Message {
                id: text_at(edit, &["mid"]),
                kind: "text".to_owned(),
                text: text_at(edit, &["text"]),
                ..Message::default()
            };
            vec![context.parts(
                hash,
                "message.edited",
                time_ms,
                Data {
                    message: Some(message),
                    ..base
                },
            )]
        }
        "postback" => {
            let postback =
                text_at(item, &["postback", "payload"]).map(|data| Postback { data, params: None });
            vec![context.parts(hash, "postback", time_ms, Data { postback, ..base })]
        }
        "reaction" => {
            let reaction = item.get("reaction").unwrap_or(&Value::Null);
            let event_type = match text_at(reaction, &["action"]).as_deref() {
                Some("unreact") => "reaction.removed",
                _ => "reaction.added",
            };
            // message.id is the message reacted to.
            let message = Message {
                id: text_at(reaction, &["mid"]),
                kind: "reaction".to_owned(),
                text: text_at(reaction, &["emoji"]).or_else(|| text_at(reaction, &["reaction"])),
                ..Message::default()
            };
            vec![context.parts(
                hash,
                event_type,
                time_ms,
                Data {
                    message: Some(message),
                    ..base
                },
            )]
        }
        "read" => {
            // Instagram names the message read; Messenger gives only a watermark (everything before it is read).
            let message = text_at(item, &["read", "mid"]).map(|id| Message {
                id: Some(id),
                kind: "unknown".to_owned(),
                ..Message::default()
            });
            vec![context.parts(hash, "message.read", time_ms, Data { message, ..base })]
        }
        "delivery" => {
            let mids: Vec<String> = array(value_at(item, &["delivery", "mids"]))
                .iter()
                .filter_map(|m| m.as_str().map(str::to_owned))
                .collect();
            if mids.is_empty() {
                vec![context.parts(hash, "message.delivered", time_ms, base)]
            } else {
                // One event per message, like WhatsApp statuses.
                mids.into_iter()
                    .map(|mid| {
                        let message = Message {
                            id: Some(mid.clone()),
                            kind: "unknown".to_owned(),
                            ..Message::default()
                        };
                        let data = Data {
                            provider_type: base.provider_type.clone(),
                            conversation: base.conversation.clone(),
                            sender: base.sender.clone(),
                            message: Some(message),
                            postback: None,
                            raw: base.raw.clone(),
                        };
                        context.parts(
                            format!("delivery:{mid}"),
                            "message.delivered",
                            time_ms,
                            data,
                        )
                    })
                    .collect()
            }
        }
        _ => vec![context.parts(hash, UNRECOGNIZED_TYPE, time_ms, base)],
    };
    events.extend(parts);
}

fn messaging_content(message: &Value) -> Message {
    let mut normalized = Message {
        id: text_at(message, &["mid"]),
        kind: "text".to_owned(),
        text: text_at(message, &["text"]),
        ..Message::default()
    };
    let attachments = array(message.get("attachments"));
    for attachment in attachments {
        let provider_kind = text_at(attachment, &["type"]).unwrap_or_else(|| "unknown".to_owned());
        let payload = attachment.get("payload");
        if provider_kind == "location" {
            let lat = payload.and_then(|p| f64_at(p, &["coordinates", "lat"]));
            let long = payload.and_then(|p| f64_at(p, &["coordinates", "long"]));
            if let (Some(latitude), Some(longitude)) = (lat, long) {
                let title = text_at(attachment, &["title"]);
                normalized.location = Some(Location {
                    latitude,
                    longitude,
                    title,
                    address: None,
                });
            }
            continue;
        }
        normalized.attachments.push(Attachment {
            kind: provider_kind,
            url: payload.and_then(|p| text_at(p, &["url"])),
            name: payload
                .and_then(|p| text_at(p, &["title"]))
                .or_else(|| text_at(attachment, &["title"])),
            ..Attachment::default()
        });
    }
    if let Some(sticker_id) = text_at(message, &["sticker_id"]) {
        normalized.kind = "sticker".to_owned();
        normalized.sticker = Some(Sticker {
            package_id: None,
            sticker_id,
        });
        normalized.attachments.clear();
    } else if normalized.location.is_some() {
        normalized.kind = "location".to_owned();
    } else if normalized.text.is_none() {
        if let Some(first) = normalized.attachments.first() {
            normalized.kind = first.kind.clone();
        } else if message.get("is_unsupported").and_then(Value::as_bool) == Some(true) {
            normalized.kind = "unsupported".to_owned();
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::envelope::event_id;

    /// shared/vectors/meta.json `whatsapp-derived-text`.
    const WHATSAPP_TEXT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"16505551111","phone_number_id":"123456123"},"contacts":[{"profile":{"name":"test user name"},"wa_id":"16315551181"}],"messages":[{"from":"16315551181","id":"ABGGFlA5Fpa","timestamp":"1504902988","type":"text","text":{"body":"this is a text message"}}]}}]}]}"#;
    const WHATSAPP_TEXT_SIGNATURE: &str =
        "sha256=f8586d9ffbea92dce2f45cbdfaad128ad16b57260fa5cbff43d7ba5fd27c74a7";

    fn bindings(channel: &str, app_secret: &str) -> HashMap<String, String> {
        let prefix = channel.to_ascii_uppercase();
        HashMap::from([
            (format!("{prefix}_DEMO_APP_SECRET"), app_secret.to_owned()),
            (
                format!("{prefix}_DEMO_VERIFY_TOKEN"),
                "meatyhamhock".to_owned(),
            ),
        ])
    }

    fn run(
        channel: &Meta,
        bindings: &HashMap<String, String>,
        method: Method,
        query: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method,
            extra_path: &[],
            query,
            headers,
            body,
            now_ms: 1_700_000_000_000,
        };
        test_support::run(channel, bindings, demo)
    }

    fn post(
        channel: &Meta,
        secret: &str,
        signature: Option<&str>,
        body: &str,
    ) -> Result<Handled, Rejection> {
        let headers: Vec<(&str, &str)> = signature
            .map(|s| (SIGNATURE_HEADER, s))
            .into_iter()
            .collect();
        run(
            channel,
            &bindings(channel.name(), secret),
            Method::POST,
            None,
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn github_documented_x_hub_signature_256_vector() {
        let secret = "It's a Secret to Everybody";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let signed = WHATSAPP
            .sign(&SignParams {
                body: b"Hello, World!".to_vec(),
                options: [("secret".to_owned(), secret.to_owned())].into(),
                now_s: 0,
            })
            .unwrap();
        assert!(signed
            .headers
            .contains(&(SIGNATURE_HEADER.to_owned(), expected.to_owned())));
        // Configured secrets are split on whitespace (rotation lists), so this one is checked below the config.
        let secrets = vec!["newer".to_owned(), secret.to_owned()];
        assert_eq!(
            verify_signature(&secrets, Some(expected), b"Hello, World!"),
            Ok(1)
        );
        let wrong = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18";
        assert_eq!(
            verify_signature(&secrets, Some(wrong), b"Hello, World!"),
            Err(Rejection::InvalidSignature)
        );
        let upper_prefix = expected.replace("sha256=", "SHA256=");
        assert_eq!(
            verify_signature(&secrets, Some(&upper_prefix), b"Hello, World!"),
            Err(Rejection::InvalidSignature)
        );
        assert_eq!(
            verify_signature(&secrets, None, b"Hello, World!"),
            Err(Rejection::MissingSignature)
        );
    }

    #[test]
    fn whatsapp_text_vector_normalizes_with_wamid_dedupe_key() {
        let handled = post(
            &WHATSAPP,
            "test_app_secret",
            Some(WHATSAPP_TEXT_SIGNATURE),
            WHATSAPP_TEXT,
        )
        .unwrap();
        assert_eq!(handled.response, EdgeResponse::accepted(1));
        let event = &handled.events[0];
        assert_eq!(event.event_type, "message.received");
        assert_eq!(
            event.id,
            event_id("whatsapp", "demo", "whatsapp:123456123:ABGGFlA5Fpa")
        );
        assert_eq!(event.time, "2017-09-08T20:36:28.000Z");
        let data = &event.data;
        assert_eq!(
            data.sender,
            Some(Sender {
                id: "16315551181".into(),
                name: Some("test user name".into())
            })
        );
        assert_eq!(
            data.conversation,
            Some(Conversation {
                id: "16315551181".into(),
                kind: ConversationKind::Direct
            })
        );
        let message = data.message.as_ref().unwrap();
        assert_eq!(
            (message.kind.as_str(), message.text.as_deref()),
            ("text", Some("this is a text message"))
        );
        assert_eq!(
            data.verification,
            Verification {
                scheme: SCHEME.into(),
                key_index: 0
            }
        );
        assert_eq!(data.raw.value()["metadata"]["phone_number_id"], "123456123");
    }

    #[test]
    fn rotated_secret_reports_its_index_and_signature_rules_hold() {
        let handled = post(
            &WHATSAPP,
            "newer_secret, test_app_secret",
            Some(WHATSAPP_TEXT_SIGNATURE),
            WHATSAPP_TEXT,
        )
        .unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
        assert_eq!(
            post(&WHATSAPP, "test_app_secret", None, WHATSAPP_TEXT).unwrap_err(),
            Rejection::MissingSignature
        );
        // The legacy SHA-1 header does not count as a signature.
        let legacy = run(
            &WHATSAPP,
            &bindings("whatsapp", "test_app_secret"),
            Method::POST,
            None,
            &[(
                "x-hub-signature",
                "sha1=0000000000000000000000000000000000000000",
            )],
            WHATSAPP_TEXT.as_bytes(),
        );
        assert_eq!(legacy.unwrap_err(), Rejection::MissingSignature);
        let no_prefix = WHATSAPP_TEXT_SIGNATURE.trim_start_matches("sha256=");
        assert_eq!(
            post(&WHATSAPP, "test_app_secret", Some(no_prefix), WHATSAPP_TEXT).unwrap_err(),
            Rejection::InvalidSignature
        );
        // Re-serialising changes the bytes: the same content no longer verifies.
        let reserialized =
            serde_json::to_string(&serde_json::from_str::<Value>(WHATSAPP_TEXT).unwrap()).unwrap();
        assert_ne!(reserialized, WHATSAPP_TEXT);
        assert_eq!(
            post(
                &WHATSAPP,
                "test_app_secret",
                Some(WHATSAPP_TEXT_SIGNATURE),
                &reserialized
            )
            .unwrap_err(),
            Rejection::InvalidSignature
        );
    }

    #[test]
    fn documented_get_handshake() {
        let config = bindings("messenger", "s");
        let ok = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
        let handled = run(&MESSENGER, &config, Method::GET, Some(ok), &[], b"").unwrap();
        assert_eq!(handled.response, EdgeResponse::text("1158201444"));
        assert!(handled.events.is_empty());
        for bad in [
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
            "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
            "hub.challenge=1158201444",
        ] {
            let rejection = run(&MESSENGER, &config, Method::GET, Some(bad), &[], b"").unwrap_err();
            assert_eq!(rejection, Rejection::VerifyTokenMismatch, "{bad}");
            assert_eq!(rejection.status().as_u16(), 403);
        }
        assert_eq!(
            run(&MESSENGER, &config, Method::PUT, None, &[], b"").unwrap_err(),
            Rejection::MethodNotAllowed
        );

        let options = [
            ("verify-token".to_owned(), "meatyhamhock".to_owned()),
            ("challenge".to_owned(), "42+1".to_owned()),
        ];
        let signed = MESSENGER
            .sign(&SignParams {
                body: Vec::new(),
                options: options.into(),
                now_s: 0,
            })
            .unwrap();
        assert_eq!(signed.method, Method::GET);
        let query = signed.query_string();
        let handled = run(
            &MESSENGER,
            &config,
            Method::GET,
            query.strip_prefix('?'),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(handled.response, EdgeResponse::text("42+1"));
    }

    #[test]
    fn messenger_echo_is_sent_and_read_has_no_message() {
        let body = r#"{"object":"page","entry":[{"id":"P","time":1,"messaging":[{"sender":{"id":"P"},"recipient":{"id":"U"},"timestamp":1700000000123,"message":{"mid":"m.1","is_echo":true,"text":"hi"}},{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1700000000456,"read":{"watermark":1700000000000}}]}]}"#;
        let signature = format!(
            "sha256={}",
            crypto::hex_encode(&crypto::hmac_sha256(b"s", &[body.as_bytes()]))
        );
        let handled = post(&MESSENGER, "s", Some(&signature), body).unwrap();
        let types: Vec<&str> = handled
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(types, ["message.sent", "message.read"]);
        assert_eq!(
            handled.events[0].data.conversation.as_ref().unwrap().id,
            "U"
        );
        assert_eq!(handled.events[0].id, event_id("messenger", "demo", "m.1"));
        assert_eq!(handled.events[1].data.message, None);
    }

    /// JSON built from the keys and values Meta payloads use, so random bodies reach the normalizers.
    fn meta_json() -> impl Strategy<Value = Value> {
        const WORDS: &[&str] = &[
            "entry",
            "changes",
            "field",
            "value",
            "messages",
            "statuses",
            "contacts",
            "wa_id",
            "profile",
            "name",
            "from",
            "id",
            "type",
            "text",
            "body",
            "image",
            "document",
            "sticker",
            "location",
            "latitude",
            "longitude",
            "interactive",
            "button_reply",
            "list_reply",
            "nfm_reply",
            "button",
            "payload",
            "reaction",
            "emoji",
            "status",
            "sent",
            "delivered",
            "read",
            "failed",
            "timestamp",
            "recipient_id",
            "metadata",
            "phone_number_id",
            "messaging",
            "message",
            "mid",
            "is_echo",
            "is_deleted",
            "attachments",
            "url",
            "coordinates",
            "lat",
            "long",
            "sticker_id",
            "quick_reply",
            "postback",
            "delivery",
            "mids",
            "action",
            "unreact",
            "message_edit",
            "sender",
            "recipient",
            "standby",
        ];
        let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            word.clone().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(word.clone(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn handle_never_panics_on_arbitrary_requests(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            signature in "[ -~]{0,80}",
            query in "[ -~]{0,80}",
            get in any::<bool>(),
        ) {
            let config = bindings("whatsapp", "s");
            let method = if get { Method::GET } else { Method::POST };
            let _ = run(&WHATSAPP, &config, method, Some(&query), &[(SIGNATURE_HEADER, &signature)], &body);
        }

        #[test]
        fn normalization_never_panics_on_signed_json(entries in proptest::collection::vec(meta_json(), 0..4)) {
            let body = serde_json::json!({ "object": "page", "entry": entries }).to_string();
            let signature = format!("sha256={}", crypto::hex_encode(&crypto::hmac_sha256(b"s", &[body.as_bytes()])));
            for channel in [&WHATSAPP, &MESSENGER, &INSTAGRAM] {
                prop_assert!(post(channel, "s", Some(&signature), &body).is_ok());
            }
        }
    }
}
