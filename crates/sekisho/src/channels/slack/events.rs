//! The Events API: JSON bodies. `url_verification` is answered with its challenge (the signature is already
//! checked); each `event_callback` becomes one event, unless the account's bot filter ignores it.

use serde_json::Value;

use super::{conversation, hash_key, ts_to_ms, BotFilter, Context, Data, Outcome, Response};
use crate::channels::{text_at, u64_at, value_at};
use crate::envelope::Raw;
use crate::envelope::{Attachment, EventParts, Message, Sender, UNRECOGNIZED_TYPE};
use crate::Rejection;

pub(super) fn json_request(
    context: &Context,
    body: &[u8],
    bot_filter: &BotFilter,
) -> Result<Outcome, Rejection> {
    let (payload, raw) = super::super::json_body(body, "JSON")?;
    let envelope_type = text_at(&payload, &["type"]).unwrap_or_default();
    match envelope_type.as_str() {
        "url_verification" => {
            let challenge = text_at(&payload, &["challenge"]).ok_or(Rejection::MalformedBody {
                expected: "url_verification with a challenge",
            })?;
            Ok(Outcome {
                response: Response::Challenge(challenge),
                events: Vec::new(),
            })
        }
        "event_callback" => {
            let event = payload.get("event").cloned().unwrap_or(Value::Null);
            if bot_filter.ignores(&event) {
                return Ok(Outcome {
                    response: Response::Ignored,
                    events: Vec::new(),
                });
            }
            let parts = event_callback(context, &event, (&payload, raw), body);
            Ok(Outcome {
                response: Response::Accepted,
                events: vec![parts],
            })
        }
        // `app_rate_limited` and anything newer.
        _ => {
            let data = Data {
                provider_type: envelope_type,
                ..Data::default()
            };
            let parts = context.parts(hash_key(body), UNRECOGNIZED_TYPE, None, data, raw);
            Ok(Outcome {
                response: Response::Accepted,
                events: vec![parts],
            })
        }
    }
}

/// One `event_callback`; `raw` is the whole callback (`event_id`, `team_id`, `authorizations` and `event`).
fn event_callback(
    context: &Context,
    event: &Value,
    (payload, raw): (&Value, Raw),
    body: &[u8],
) -> EventParts {
    let provider_type = text_at(event, &["type"]).unwrap_or_default();
    let subtype = text_at(event, &["subtype"]);
    let dedupe_key = text_at(payload, &["event_id"]).unwrap_or_else(|| hash_key(body));
    let time_ms = text_at(event, &["ts"])
        .or_else(|| text_at(event, &["event_ts"]))
        .and_then(|ts| ts_to_ms(&ts))
        .or_else(|| u64_at(payload, &["event_time"]).and_then(|s| s.checked_mul(1000)));
    let channel_type = text_at(event, &["channel_type"]);
    let in_channel = conversation(text_at(event, &["channel"]), channel_type.as_deref());
    let user = text_at(event, &["user"]).map(|id| Sender { id, name: None });
    let mut data = Data {
        provider_type: provider_type.clone(),
        ..Data::default()
    };
    let event_type = match (provider_type.as_str(), subtype.as_deref()) {
        (
            "message",
            None | Some("bot_message" | "file_share" | "thread_broadcast" | "me_message"),
        )
        | ("app_mention", _) => {
            data.conversation = in_channel;
            data.sender = message_sender(event);
            data.message = Some(message_content(event));
            // An app subscribed to both gets a `message` and an `app_mention` for the same message.
            if provider_type == "app_mention" {
                "message.mentioned"
            } else {
                "message.received"
            }
        }
        ("message", Some("message_changed")) => {
            let edited = event.get("message").unwrap_or(&Value::Null);
            data.conversation = in_channel;
            data.sender = message_sender(edited);
            data.message = Some(message_content(edited));
            "message.edited"
        }
        ("message", Some("message_deleted")) => {
            data.conversation = in_channel;
            data.sender = event.get("previous_message").and_then(message_sender);
            data.message = Some(Message {
                id: text_at(event, &["deleted_ts"]),
                kind: "unsent".to_owned(),
                ..Message::default()
            });
            "message.unsent"
        }
        ("reaction_added" | "reaction_removed", _) => {
            data.conversation = conversation(text_at(event, &["item", "channel"]), None);
            data.sender = user;
            // message.id is the `ts` of the message reacted to; text is the emoji name.
            data.message = Some(Message {
                id: text_at(event, &["item", "ts"]),
                kind: "reaction".to_owned(),
                text: text_at(event, &["reaction"]),
                ..Message::default()
            });
            if provider_type == "reaction_added" {
                "reaction.added"
            } else {
                "reaction.removed"
            }
        }
        ("member_joined_channel" | "member_left_channel", _) => {
            data.conversation = in_channel;
            data.sender = text_at(event, &["inviter"]).map(|id| Sender { id, name: None });
            data.members = user.into_iter().collect();
            if provider_type == "member_joined_channel" {
                "member.joined"
            } else {
                "member.left"
            }
        }
        ("assistant_thread_started", _) => {
            let thread = event.get("assistant_thread").unwrap_or(&Value::Null);
            data.conversation = conversation(text_at(thread, &["channel_id"]), None);
            data.sender = text_at(thread, &["user_id"]).map(|id| Sender { id, name: None });
            "conversation.started"
        }
        _ => {
            data.conversation = in_channel;
            data.sender = user;
            UNRECOGNIZED_TYPE
        }
    };
    context.parts(dedupe_key, event_type, time_ms, data, raw)
}

fn message_sender(message: &Value) -> Option<Sender> {
    let id = text_at(message, &["user"]).or_else(|| text_at(message, &["bot_id"]))?;
    let name = ["display_name", "real_name"]
        .iter()
        .find_map(|field| {
            text_at(message, &["user_profile", field]).filter(|name| !name.is_empty())
        })
        .or_else(|| text_at(message, &["username"]));
    Some(Sender { id, name })
}

fn message_content(message: &Value) -> Message {
    let text = text_at(message, &["text"]).filter(|text| !text.is_empty());
    let attachments: Vec<Attachment> = value_at(message, &["files"])
        .and_then(Value::as_array)
        .map(|files| files.iter().map(file_attachment).collect())
        .unwrap_or_default();
    let kind = match (&text, attachments.first()) {
        (None, Some(first)) => first.kind.clone(),
        _ => "text".to_owned(),
    };
    Message {
        id: text_at(message, &["ts"]),
        kind,
        text,
        attachments,
        ..Message::default()
    }
}

fn file_attachment(file: &Value) -> Attachment {
    let content_type = text_at(file, &["mimetype"]);
    let kind = match content_type
        .as_deref()
        .and_then(|mime| mime.split('/').next())
    {
        Some("image") => "image",
        Some("video") => "video",
        Some("audio") => "audio",
        _ => "file",
    };
    Attachment {
        kind: kind.to_owned(),
        id: text_at(file, &["id"]),
        // Downloading url_private needs the bot token.
        url: text_at(file, &["url_private"]),
        name: text_at(file, &["name"]),
        content_type,
        size: u64_at(file, &["size"]),
        duration_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config, run, signed, NOW_MS, SIGNATURE, TIMESTAMP};
    use super::super::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
    use crate::channels::EdgeResponse;
    use crate::Rejection;

    #[test]
    fn url_verification_answers_the_challenge_only_when_signed() {
        let body = r#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let handled = signed(body, "application/json", NOW_MS, &config(&[])).unwrap();
        assert_eq!(
            handled.response,
            EdgeResponse::text("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        );
        assert!(handled.events.is_empty());
        // Signed for another body: refused before the challenge is read.
        let wrong = [(TIMESTAMP_HEADER, TIMESTAMP), (SIGNATURE_HEADER, SIGNATURE)];
        assert_eq!(
            run(&config(&[]), &wrong, body.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::InvalidSignature
        );
    }
}
