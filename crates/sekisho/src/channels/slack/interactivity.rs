//! Interactivity and slash commands: form bodies. Interactivity posts one `payload` field holding JSON; a
//! slash command posts plain fields; `ssl_check=1` is Slack checking the certificate. Each is answered with an
//! empty 200 (Slack shows a slash command's response body to the user).

use serde_json::Value;

use super::{conversation, hash_key, ts_to_ms, Context, Data, Outcome, Response};
use crate::channels::form::form_object;
use crate::channels::{text_at, value_at};
use crate::envelope::Raw;
use crate::envelope::{
    Conversation, EventParts, Message, Postback, Reply, Sender, UNRECOGNIZED_TYPE,
};
use crate::Rejection;

pub(super) fn form_request(context: &Context, body: &[u8]) -> Result<Outcome, Rejection> {
    let form = form_object(body);
    let mut response = Response::Empty;
    let events = if let Some(payload_text) = text_at(&form, &["payload"]) {
        let malformed = Rejection::MalformedBody {
            expected: "interactivity payload JSON",
        };
        let payload = crate::json::parse(&payload_text).map_err(|_| malformed.clone())?;
        // `data.raw` is the payload's own JSON text, as Slack wrote it into the form.
        let raw = Raw::from_body(payload_text.as_bytes()).map_err(|_| malformed)?;
        vec![interaction(context, (payload, raw), body)]
    } else if form.get("command").is_some() {
        response = Response::Command;
        vec![slash_command(context, form, body)]
    } else if text_at(&form, &["ssl_check"]).as_deref() == Some("1") {
        // Slack checks the certificate of a slash command's URL with `ssl_check=1`: nothing to forward.
        Vec::new()
    } else {
        let data = Data {
            provider_type: "form".to_owned(),
            ..Data::default()
        };
        let raw = Raw::rendered(&form);
        vec![context.parts(hash_key(body), UNRECOGNIZED_TYPE, None, data, raw)]
    };
    Ok(Outcome { response, events })
}

/// Interactions have no event id; each one gets a fresh `trigger_id`.
fn interaction_key(payload: &Value, body: &[u8]) -> String {
    text_at(payload, &["trigger_id"])
        .map(|id| format!("trigger:{id}"))
        .unwrap_or_else(|| hash_key(body))
}

fn slash_command(context: &Context, form: Value, body: &[u8]) -> EventParts {
    let data = Data {
        provider_type: "slash_command".to_owned(),
        conversation: conversation_by_name(
            text_at(&form, &["channel_id"]),
            text_at(&form, &["channel_name"]).as_deref(),
        ),
        sender: text_at(&form, &["user_id"]).map(|id| Sender {
            id,
            name: text_at(&form, &["user_name"]),
        }),
        // The command's arguments as typed; an empty `text` is no text.
        message: Some(Message {
            kind: "command".to_owned(),
            text: text_at(&form, &["text"]).filter(|text| !text.is_empty()),
            ..Message::default()
        }),
        postback: text_at(&form, &["command"]).map(|command| Postback {
            data: command,
            params: None,
        }),
        reply: text_at(&form, &["response_url"]).map(|token| Reply { token }),
        ..Data::default()
    };
    let key = interaction_key(&form, body);
    context.parts(key, "command.invoked", None, data, Raw::rendered(&form))
}

fn interaction(context: &Context, (payload, raw): (Value, Raw), body: &[u8]) -> EventParts {
    let provider_type = text_at(&payload, &["type"]).unwrap_or_default();
    let key = interaction_key(&payload, body);
    let channel = payload.get("channel");
    let first_action = value_at(&payload, &["actions"])
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    let time_ms = first_action
        .and_then(|a| text_at(a, &["action_ts"]))
        .and_then(|ts| ts_to_ms(&ts));
    let mut data = Data {
        provider_type: provider_type.clone(),
        conversation: conversation_by_name(
            channel.and_then(|c| text_at(c, &["id"])),
            channel.and_then(|c| text_at(c, &["name"])).as_deref(),
        ),
        sender: text_at(&payload, &["user", "id"]).map(|id| Sender {
            id,
            name: text_at(&payload, &["user", "username"])
                .or_else(|| text_at(&payload, &["user", "name"])),
        }),
        reply: text_at(&payload, &["response_url"]).map(|token| Reply { token }),
        ..Data::default()
    };
    let event_type = match provider_type.as_str() {
        "block_actions" | "interactive_message" => {
            data.postback = first_action.and_then(action_value).map(|value| Postback {
                data: value,
                params: payload.get("actions").cloned(),
            });
            "postback"
        }
        "view_submission" => {
            data.postback =
                text_at(&payload, &["view", "callback_id"]).map(|callback_id| Postback {
                    data: callback_id,
                    params: value_at(&payload, &["view", "state", "values"]).cloned(),
                });
            "form.submitted"
        }
        "shortcut" | "message_action" => {
            data.postback = text_at(&payload, &["callback_id"]).map(|callback_id| Postback {
                data: callback_id,
                params: None,
            });
            "command.invoked"
        }
        // `block_suggestion` expects options in the response, which the gateway cannot give; `view_closed`.
        _ => UNRECOGNIZED_TYPE,
    };
    context.parts(key, event_type, time_ms, data, raw)
}

/// What a clicked button or chosen option stands for: its `value`, else the selected option's, else the
/// element's `action_id` (buttons without a value).
fn action_value(action: &Value) -> Option<String> {
    text_at(action, &["value"])
        .or_else(|| text_at(action, &["selected_option", "value"]))
        .or_else(|| text_at(action, &["action_id"]))
        .or_else(|| text_at(action, &["name"]))
}

/// Slash commands and interactivity name the conversation instead of typing it.
fn conversation_by_name(id: Option<String>, name: Option<&str>) -> Option<Conversation> {
    let kind = match name {
        Some("directmessage") => Some("im"),
        Some(name) if name.starts_with("mpdm-") => Some("mpim"),
        Some("privategroup") => Some("group"),
        Some(_) if id.as_deref().is_some_and(|id| id.starts_with('G')) => Some("group"),
        _ => None,
    };
    conversation(id, kind)
}
