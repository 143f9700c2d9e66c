//! Messenger and Instagram: `entry[].messaging[]`, one event per messaging item (per message for deliveries).

use serde_json::Value;

use super::{array, direct, hash_key, Context, Data};
use crate::channels::{f64_at, text_at, u64_at, value_at};
use crate::envelope::{
    Attachment, EventParts, Location, Message, Postback, Sender, Sticker, UNRECOGNIZED_TYPE,
};

/// The keys of a messaging item that name its kind, most specific first.
const MESSAGING_KINDS: &[&str] = &[
    "message",
    "message_edit",
    "postback",
    "reaction",
    "read",
    "delivery",
];

pub(super) fn normalize_messaging(context: &Context, item: &Value, events: &mut Vec<EventParts>) {
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
    use super::super::tests::post;
    use super::super::MESSENGER;
    use crate::crypto;
    use crate::envelope::event_id;

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
}
