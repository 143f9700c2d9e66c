//! Slack: Events API, interactivity and slash commands.
//!
//! `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret as UTF-8, "v0:{X-Slack-Request-Timestamp}:{raw body}")>`,
//! with the timestamp within 300 s of now in either direction. Events API bodies are JSON (`url_verification`
//! is answered with its challenge after the signature is checked); interactivity posts a form with one
//! `payload` field holding JSON; slash commands post plain form fields.
//!
//! Bot messages are forwarded unless the account opts out with `IGNORE_BOTS=true` or lists bot ids in
//! `IGNORE_BOT_IDS`; an ignored event is still acknowledged, and counted in the response body
//! (`{"accepted":0,"ignored":1}`) so it is never silently lost.

#[cfg(test)]
use http::Method;
use serde_json::Value;

use super::form::{form_object, is_form};
use super::Verdict;
use super::{text_at, u64_at, value_at, Channel, ChannelRequest, EdgeResponse};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Message, Postback, Reply,
    Sender, Verification, UNRECOGNIZED_TYPE,
};
#[cfg(not(target_arch = "wasm32"))]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Slack;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNING_SECRET: &str = "SIGNING_SECRET";
const IGNORE_BOTS: &str = "IGNORE_BOTS";
const IGNORE_BOT_IDS: &str = "IGNORE_BOT_IDS";
const MAX_SKEW_S: u64 = 300;
const SCHEME: &str = "slack-v0";

impl Channel for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn account_field(&self) -> &'static str {
        SIGNING_SECRET
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values(SIGNING_SECRET)?;
        let bot_filter = BotFilter::from_account(account)?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .ok_or(Rejection::MissingSignature)?;
        let timestamp = request
            .header(TIMESTAMP_HEADER)
            .ok_or(Rejection::StaleTimestamp)?;
        // The header is hashed as sent, so it must be exactly the digits that were parsed.
        let sent_s: u64 = timestamp.parse().map_err(|_| Rejection::StaleTimestamp)?;
        if sent_s.abs_diff(request.now_ms / 1000) > MAX_SKEW_S {
            return Err(Rejection::StaleTimestamp);
        }
        let tag = signature
            .trim()
            .strip_prefix("v0=")
            .and_then(crypto::hex_decode)
            .ok_or(Rejection::InvalidSignature)?;
        let signed: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", request.body];
        let key_index = crypto::hmac_sha256_matches(&secrets, &signed, &tag)
            .ok_or(Rejection::InvalidSignature)?;

        let context = Context {
            verification: Verification {
                scheme: SCHEME.to_owned(),
                key_index,
            },
            request_ms: sent_s.saturating_mul(1000),
        };
        let outcome = if is_form(request.header("content-type")) {
            form_request(&context, request.body)?
        } else {
            json_request(&context, request.body, &bot_filter)?
        };
        let response = match outcome.response {
            Response::Accepted => return Ok(Verdict::accepted(outcome.events)),
            Response::Ignored => {
                EdgeResponse::json(200, "{\"accepted\":0,\"ignored\":1}".to_owned())
            }
            Response::Challenge(challenge) => EdgeResponse::text(challenge),
            // Slack shows a slash command's response body to the user, and reads a modal submission's body as
            // a `response_action`: an empty 200 is the neutral acknowledgement for both.
            Response::Empty => EdgeResponse::text(Vec::new()),
        };
        Ok(Verdict::respond(response, outcome.events))
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Sign for Slack {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        let timestamp = match params.option("timestamp") {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.to_owned()
            }
            Some(_) => {
                return Err(ToolingError::InvalidOption {
                    option: "timestamp",
                    why: "not unix seconds",
                })
            }
            None => params.now_s.to_string(),
        };
        let signed: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", &params.body];
        let signature = format!(
            "v0={}",
            crypto::hex_encode(&crypto::hmac_sha256(secret.as_bytes(), &signed))
        );
        let content_type = params.option("content-type").unwrap_or(
            match params.body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => "application/json",
                _ => "application/x-www-form-urlencoded",
            },
        );
        Ok(SignedRequest::post(
            vec![
                (SIGNATURE_HEADER.to_owned(), signature),
                (TIMESTAMP_HEADER.to_owned(), timestamp),
                ("content-type".to_owned(), content_type.to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// Which bot-authored events the account does not want forwarded.
struct BotFilter {
    all: bool,
    ids: Vec<String>,
}

impl BotFilter {
    fn from_account(account: &Account<'_>) -> Result<BotFilter, Rejection> {
        let all = match account
            .field(IGNORE_BOTS)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => return Err(Rejection::misconfigured(account.binding_name(IGNORE_BOTS))),
        };
        Ok(BotFilter {
            all,
            ids: account.values(IGNORE_BOT_IDS),
        })
    }

    fn ignores(&self, event: &Value) -> bool {
        let bot_id = text_at(event, &["bot_id"]);
        let from_bot =
            bot_id.is_some() || text_at(event, &["subtype"]).as_deref() == Some("bot_message");
        (self.all && from_bot) || bot_id.is_some_and(|id| self.ids.contains(&id))
    }
}

struct Context {
    verification: Verification,
    /// `X-Slack-Request-Timestamp`, the time of events that carry none of their own.
    request_ms: u64,
}

impl Context {
    fn parts(
        &self,
        dedupe_key: String,
        event_type: &str,
        time_ms: Option<u64>,
        data: Data,
        raw: Raw,
    ) -> EventParts {
        EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms: time_ms.unwrap_or(self.request_ms),
            data: EventData {
                conversation: data.conversation,
                sender: data.sender,
                message: data.message,
                postback: data.postback,
                reply: data.reply,
                members: data.members,
                ..EventData::new(data.provider_type, self.verification.clone(), raw)
            },
        }
    }
}

#[derive(Default)]
struct Data {
    provider_type: String,
    conversation: Option<Conversation>,
    sender: Option<Sender>,
    message: Option<Message>,
    postback: Option<Postback>,
    reply: Option<Reply>,
    members: Vec<Sender>,
}

enum Response {
    Accepted,
    Ignored,
    Challenge(String),
    Empty,
}

struct Outcome {
    response: Response,
    events: Vec<EventParts>,
}

fn hash_key(bytes: &[u8]) -> String {
    super::content_hash_key(bytes)
}

/// Slack timestamps (`"1355517523.000005"`) are seconds with a microsecond fraction; they are also message ids.
/// Anything else is not trusted as a time (Slack's own `app_mention` example has `"event_ts":"1515449522000016"`).
fn ts_to_ms(ts: &str) -> Option<u64> {
    let (seconds, fraction) = ts.split_once('.')?;
    if !(seconds
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let millis: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect();
    seconds
        .parse::<u64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(millis.parse::<u64>().ok()?)
}

/// `channel_type` is `im`/`mpim`/`channel`/`group` on message events and `C`/`G` on membership events; without
/// it, the id's first letter tells direct messages (`D`) and public channels (`C`) apart.
fn conversation(id: Option<String>, channel_type: Option<&str>) -> Option<Conversation> {
    let id = id?;
    let kind = match channel_type {
        Some("im") => ConversationKind::Direct,
        Some("mpim") => ConversationKind::Group,
        Some("channel" | "group" | "C" | "G") => ConversationKind::Channel,
        _ => match id.as_bytes().first() {
            Some(b'D') => ConversationKind::Direct,
            Some(b'C') => ConversationKind::Channel,
            _ => ConversationKind::Unknown,
        },
    };
    Some(Conversation { id, kind })
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

// ---- Events API (JSON) ----

fn json_request(
    context: &Context,
    body: &[u8],
    bot_filter: &BotFilter,
) -> Result<Outcome, Rejection> {
    let malformed = Rejection::MalformedBody { expected: "JSON" };
    let payload = crate::json::parse_slice(body).map_err(|_| malformed.clone())?;
    let raw = Raw::from_body(body).map_err(|_| malformed)?;
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

// ---- Interactivity and slash commands (form-encoded) ----

fn form_request(context: &Context, body: &[u8]) -> Result<Outcome, Rejection> {
    let form = form_object(body);
    let events = if let Some(payload_text) = text_at(&form, &["payload"]) {
        let malformed = Rejection::MalformedBody {
            expected: "interactivity payload JSON",
        };
        let payload = crate::json::parse(&payload_text).map_err(|_| malformed.clone())?;
        // `data.raw` is the payload's own JSON text, as Slack wrote it into the form.
        let raw = Raw::from_body(payload_text.as_bytes()).map_err(|_| malformed)?;
        vec![interaction(context, (payload, raw), body)]
    } else if form.get("command").is_some() {
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
    Ok(Outcome {
        response: Response::Empty,
        events,
    })
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

#[cfg(test)]
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::envelope::event_id;

    /// shared/vectors/slack.json `slack-docs-slash-command` (python-slack-sdk's verifier test, Slack's docs).
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const NOW_MS: u64 = 1_531_420_618_000;
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const FORM: &str = "application/x-www-form-urlencoded";

    fn config(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut bindings =
            HashMap::from([("SLACK_DEMO_SIGNING_SECRET".to_owned(), SECRET.to_owned())]);
        for (field, value) in extra {
            bindings.insert(format!("SLACK_DEMO_{field}"), (*value).to_owned());
        }
        bindings
    }

    fn run(
        bindings: &HashMap<String, String>,
        headers: &[(&str, &str)],
        body: &[u8],
        now_ms: u64,
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: None,
            headers,
            body,
            now_ms,
        };
        test_support::run(&Slack, bindings, demo)
    }

    fn signed(
        body: &str,
        content_type: &str,
        now_ms: u64,
        bindings: &HashMap<String, String>,
    ) -> Result<Handled, Rejection> {
        let timestamp = (now_ms / 1000).to_string();
        let tag = crypto::hmac_sha256(
            SECRET.as_bytes(),
            &[b"v0:", timestamp.as_bytes(), b":", body.as_bytes()],
        );
        let signature = format!("v0={}", crypto::hex_encode(&tag));
        let headers = [
            (SIGNATURE_HEADER, signature.as_str()),
            (TIMESTAMP_HEADER, timestamp.as_str()),
            ("content-type", content_type),
        ];
        run(bindings, &headers, body.as_bytes(), now_ms)
    }

    fn vector_headers<'a>(signature: &'a str, timestamp: &'a str) -> [(&'static str, &'a str); 3] {
        [
            (SIGNATURE_HEADER, signature),
            (TIMESTAMP_HEADER, timestamp),
            ("content-type", FORM),
        ]
    }

    #[test]
    fn documented_slash_command_vector_verifies_and_normalizes() {
        let handled = run(
            &config(&[]),
            &vector_headers(SIGNATURE, TIMESTAMP),
            BODY.as_bytes(),
            NOW_MS,
        )
        .unwrap();
        assert_eq!(handled.response, EdgeResponse::text(Vec::new()));
        let event = &handled.events[0];
        assert_eq!(event.event_type, "command.invoked");
        assert_eq!(
            event.id,
            event_id(
                "slack",
                "demo",
                "trigger:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
            )
        );
        let data = &event.data;
        assert_eq!(
            data.postback.as_ref().map(|p| p.data.as_str()),
            Some("/webhook-collect")
        );
        assert_eq!(data.message.as_ref().and_then(|m| m.text.as_ref()), None);
        assert_eq!(
            data.sender,
            Some(Sender {
                id: "U2CERLKJA".into(),
                name: Some("roadrunner".into())
            })
        );
        assert_eq!(
            data.conversation,
            Some(Conversation {
                id: "G8PSS9T3V".into(),
                kind: ConversationKind::Channel
            })
        );
        assert_eq!(
            data.reply.as_ref().map(|r| r.token.as_str()),
            Some(
                "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
            )
        );
        assert_eq!(data.raw.value()["team_domain"], "testteamnow");

        let options = [
            ("secret".to_owned(), SECRET.to_owned()),
            ("timestamp".to_owned(), TIMESTAMP.to_owned()),
        ];
        let request = Slack
            .sign(&SignParams {
                body: BODY.into(),
                options: options.into(),
                now_s: 0,
            })
            .unwrap();
        assert!(request
            .headers
            .contains(&(SIGNATURE_HEADER.to_owned(), SIGNATURE.to_owned())));
        assert!(request
            .headers
            .contains(&("content-type".to_owned(), FORM.to_owned())));

        // Without --timestamp the request is signed for now, and accepted now.
        let body = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"D1","text":"hi"}}"#;
        let options = [("secret".to_owned(), SECRET.to_owned())];
        let request = Slack
            .sign(&SignParams {
                body: body.into(),
                options: options.into(),
                now_s: 1_700_000_000,
            })
            .unwrap();
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let handled = run(&config(&[]), &headers, body.as_bytes(), 1_700_000_000_999).unwrap();
        assert_eq!(
            handled.events[0].data.conversation.as_ref().map(|c| c.kind),
            Some(ConversationKind::Direct)
        );
    }

    #[test]
    fn documented_negatives_and_skew_in_both_directions() {
        let tampered = format!("{BODY}------");
        let headers = vector_headers(SIGNATURE, TIMESTAMP);
        assert_eq!(
            run(&config(&[]), &headers, tampered.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::InvalidSignature
        );
        // The vector's second negative: the same request 301 s later.
        assert_eq!(
            run(&config(&[]), &headers, BODY.as_bytes(), 1_531_420_919_000).unwrap_err(),
            Rejection::StaleTimestamp
        );
        assert!(run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS + 300_000).is_ok());
        assert!(run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS - 300_000).is_ok());
        assert_eq!(
            run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS - 301_000).unwrap_err(),
            Rejection::StaleTimestamp
        );
        let spaced = vector_headers(SIGNATURE, " 1531420618");
        assert_eq!(
            run(&config(&[]), &spaced, BODY.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::StaleTimestamp
        );
        let missing = [(TIMESTAMP_HEADER, TIMESTAMP)];
        assert_eq!(
            run(&config(&[]), &missing, BODY.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
        let rotated = config(&[])
            .into_iter()
            .map(|(k, v)| (k, format!("newer,{v}")))
            .collect();
        let handled = run(&rotated, &headers, BODY.as_bytes(), NOW_MS).unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
    }

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

    #[test]
    fn bot_messages_are_forwarded_unless_configured_and_ignoring_is_counted() {
        let body = r#"{"type":"event_callback","event_id":"Ev1","event_time":1531420618,"event":{"type":"message","subtype":"bot_message","bot_id":"B1","text":"loop","channel":"C1","channel_type":"channel","ts":"1531420618.000100"}}"#;
        let forwarded = signed(body, "application/json", NOW_MS, &config(&[])).unwrap();
        assert_eq!(forwarded.events.len(), 1);
        assert_eq!(forwarded.events[0].event_type, "message.received");
        assert_eq!(forwarded.events[0].time, "2018-07-12T18:36:58.000Z");
        for settings in [[("IGNORE_BOTS", "true")], [("IGNORE_BOT_IDS", "B0,B1")]] {
            let ignored = signed(body, "application/json", NOW_MS, &config(&settings)).unwrap();
            assert!(ignored.events.is_empty());
            assert_eq!(
                ignored.response,
                EdgeResponse::json(200, r#"{"accepted":0,"ignored":1}"#.to_owned())
            );
        }
        let other_bot = signed(
            body,
            "application/json",
            NOW_MS,
            &config(&[("IGNORE_BOT_IDS", "B2")]),
        )
        .unwrap();
        assert_eq!(other_bot.events.len(), 1);
        let bad = signed(
            body,
            "application/json",
            NOW_MS,
            &config(&[("IGNORE_BOTS", "yes please")]),
        );
        assert!(matches!(bad, Err(Rejection::Misconfigured { .. })));
    }

    #[test]
    fn slack_timestamps_become_milliseconds() {
        assert_eq!(ts_to_ms("1355517523.000005"), Some(1_355_517_523_000));
        assert_eq!(ts_to_ms("1355517523.9"), Some(1_355_517_523_900));
        assert_eq!(ts_to_ms("1515449522000016"), None);
        assert_eq!(ts_to_ms("x.1"), None);
        assert_eq!(ts_to_ms("1.x"), None);
        assert_eq!(ts_to_ms("+1.+5"), None);
        assert_eq!(ts_to_ms("99999999999999999999"), None);
    }

    fn slack_json() -> impl Strategy<Value = Value> {
        const WORDS: &[&str] = &[
            "type",
            "event",
            "event_id",
            "event_time",
            "event_callback",
            "url_verification",
            "challenge",
            "message",
            "subtype",
            "message_changed",
            "message_deleted",
            "previous_message",
            "bot_id",
            "bot_message",
            "user",
            "channel",
            "channel_type",
            "im",
            "mpim",
            "ts",
            "event_ts",
            "thread_ts",
            "text",
            "files",
            "mimetype",
            "size",
            "reaction_added",
            "item",
            "reaction",
            "member_joined_channel",
            "assistant_thread_started",
            "assistant_thread",
            "user_profile",
            "app_mention",
            "deleted_ts",
        ];
        let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            word.clone().prop_map(Value::from),
            "[0-9.]{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
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
            timestamp in "[ -~]{0,20}",
            content_type in "[ -~]{0,40}",
            now_ms in any::<u64>(),
        ) {
            let headers = [(SIGNATURE_HEADER, signature.as_str()), (TIMESTAMP_HEADER, timestamp.as_str()), ("content-type", content_type.as_str())];
            let _ = run(&config(&[("IGNORE_BOTS", "true")]), &headers, &body, now_ms);
        }

        #[test]
        fn normalization_never_panics_on_signed_bodies(event in slack_json(), payload in slack_json(), form in "[ -~]{0,120}") {
            let bindings = config(&[]);
            let callback = serde_json::json!({ "type": "event_callback", "event": event }).to_string();
            prop_assert!(signed(&callback, "application/json", NOW_MS, &bindings).is_ok());
            let encoded: String = form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
            prop_assert!(signed(&encoded, FORM, NOW_MS, &bindings).is_ok());
            let _ = signed(&form, FORM, NOW_MS, &bindings);
        }
    }
}
