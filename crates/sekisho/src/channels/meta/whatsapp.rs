//! WhatsApp Cloud API: `entry[].changes[]` with field `messages`, one event per message and per status.

use serde_json::Value;

use super::{array, direct, hash_key, Context, Data, Product};
use crate::channels::{f64_at, text_at, u64_at};
use crate::envelope::{
    Attachment, EventParts, Location, Message, Postback, Sender, Sticker, UNRECOGNIZED_TYPE,
};

pub(super) fn normalize_change(context: &Context, change: &Value, events: &mut Vec<EventParts>) {
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

#[cfg(test)]
mod tests {
    use super::super::tests::{post, WHATSAPP_TEXT, WHATSAPP_TEXT_SIGNATURE};
    use super::super::{SCHEME, WHATSAPP};
    use crate::channels::EdgeResponse;
    use crate::envelope::{event_id, Conversation, ConversationKind, Sender, Verification};

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
}
