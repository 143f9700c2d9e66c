//! Telegram Bot API webhooks.
//!
//! Telegram signs nothing: it sends the `secret_token` given to `setWebhook` in `X-Telegram-Bot-Api-Secret-Token`
//! (1–256 characters of `A-Za-z0-9_-`), compared here in constant time. One update per request; the
//! de-duplication key is the bot and `update_id`.

#[cfg(test)]
use http::Method;
use serde_json::Value;

use super::{
    content_hash_key, f64_at, text_at, u64_at, value_at, Channel, ChannelRequest, EdgeResponse,
    Verdict,
};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Location, Message, Postback,
    Raw, Reply, Sender, Sticker, Verification, UNRECOGNIZED_TYPE,
};
use crate::reply::{plain_text, BackendReply, Budget, NoReply, RenderContext, RenderReply};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Telegram;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
const SCHEME: &str = "telegram-secret-token";

/// Update fields that carry a message, and the envelope type each becomes.
const MESSAGE_UPDATES: &[(&str, &str)] = &[
    ("message", "message.received"),
    ("edited_message", "message.edited"),
    ("channel_post", "message.received"),
    ("edited_channel_post", "message.edited"),
];

impl Channel for Telegram {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn account_field(&self) -> &'static str {
        "SECRET_TOKEN"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("SECRET_TOKEN", Format::Token { min: 1, max: 256 }).help(
                "setWebhook の secret_token に渡す文字列（sekisho webhook telegram set が生成します）",
                "The secret_token given to setWebhook (sekisho webhook telegram set generates one)",
            ),
            FieldSpec::setting("BOT_ID", Format::Number { min: 1, max: 99_999_999_999 }).help(
                "ボットトークンの「:」より前の数字",
                "The digits before the `:` of the bot token",
            ),
            FieldSpec::secret("BOT_TOKEN", Format::Token { min: 20, max: 128 })
                .optional()
                .help("@BotFather が発行したボットトークン（送信に使います）", "The bot token from @BotFather (for sending)"),
        ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values("SECRET_TOKEN")?;
        if !secrets.iter().all(|secret| is_valid_secret_token(secret)) {
            return Err(Rejection::misconfigured(
                account.binding_name("SECRET_TOKEN"),
            ));
        }
        let presented = request
            .headers
            .get(SECRET_HEADER)
            .ok_or(Rejection::MissingSignature)?;
        let key_index = crypto::matching_secret(&secrets, presented.as_bytes())
            .ok_or(Rejection::InvalidSignature)?;

        let (update, raw) = super::json_object_body(request.body)?;
        let bot = account
            .field("BOT_ID")
            .unwrap_or_else(|| account.name.to_owned());
        let dedupe_key = match u64_at(&update, &["update_id"]) {
            Some(update_id) => format!("telegram:{bot}:{update_id}"),
            None => content_hash_key(request.body),
        };
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let chat = ChatReply::for_update(&update);
        let parts = normalize(&update, raw, dedupe_key, verification, request.now_ms);
        let verdict = Verdict::accepted(vec![parts]);
        Ok(match chat {
            Some(chat) => verdict.replying_with(chat),
            None => verdict,
        })
    }
}

/// Telegram documents no deadline, but holds the bot's next updates while it waits: 2 s by default, at most 10.
const REPLY_BUDGET: Budget = Budget {
    default_ms: 2_000,
    max_ms: 10_000,
};
/// `sendMessage` refuses a longer text.
const MAX_REPLY_CHARS: usize = 4_096;

/// The webhook's response may itself be a Bot API call, which Telegram makes (without reporting its result):
/// a reply goes to the chat the update came from, and only there.
#[derive(Debug)]
struct ChatReply {
    chat_id: Value,
}

impl ChatReply {
    fn for_update(update: &Value) -> Option<ChatReply> {
        let message = MESSAGE_UPDATES
            .iter()
            .find_map(|(field, _)| update.get(field))
            .or_else(|| value_at(update, &["callback_query", "message"]))?;
        let chat_id = value_at(message, &["chat", "id"])
            .filter(|id| id.is_i64() || id.is_string())?
            .clone();
        Some(ChatReply { chat_id })
    }
}

impl RenderReply for ChatReply {
    fn budget(&self) -> Budget {
        REPLY_BUDGET
    }

    /// Text goes as `sendMessage` without `parse_mode`: Telegram shows it as typed. `raw` is a Bot API call
    /// (`{"method":"sendPhoto",…}`) whose `chat_id` is always the update's chat.
    fn render(
        &self,
        reply: &BackendReply,
        _context: &RenderContext,
    ) -> Result<EdgeResponse, NoReply> {
        let call = match reply {
            BackendReply::Text(text) => serde_json::json!({
                "method": "sendMessage",
                "chat_id": self.chat_id,
                "text": plain_text(text, MAX_REPLY_CHARS),
            }),
            BackendReply::Raw(Value::Object(call)) => {
                let is_method = call.get("method").and_then(Value::as_str).is_some_and(|m| {
                    (1..=64).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_alphabetic())
                });
                if !is_method {
                    return Err(NoReply::Unrenderable("`raw` needs a Bot API `method`"));
                }
                let mut call = call.clone();
                call.insert("chat_id".to_owned(), self.chat_id.clone());
                Value::Object(call)
            }
            BackendReply::Raw(_) => {
                return Err(NoReply::Unrenderable("`raw` must be a Bot API call object"))
            }
        };
        Ok(EdgeResponse::json(200, call.to_string()))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Telegram {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        if !is_valid_secret_token(secret) {
            return Err(ToolingError::InvalidOption {
                option: "secret",
                why: "Telegram allows 1-256 of A-Z a-z 0-9 _ -",
            });
        }
        Ok(SignedRequest::post(
            vec![
                (
                    "X-Telegram-Bot-Api-Secret-Token".to_owned(),
                    secret.to_owned(),
                ),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// `setWebhook` accepts only 1–256 characters of `A-Za-z0-9_-`; any other value can never be sent back.
pub fn is_valid_secret_token(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn normalize(
    update: &Value,
    raw: Raw,
    dedupe_key: String,
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let mut parts = Normalized::default();
    let mut provider_type = String::new();
    if let Some((field, event_type)) = MESSAGE_UPDATES
        .iter()
        .find(|(field, _)| update.get(field).is_some())
    {
        provider_type = (*field).to_owned();
        if let Some(message) = update.get(field) {
            parts = message_update(message, event_type);
        }
    } else if let Some(query) = update.get("callback_query") {
        provider_type = "callback_query".to_owned();
        parts = callback_query(query);
    } else if let Some(change) = update.get("my_chat_member") {
        provider_type = "my_chat_member".to_owned();
        parts = member_update(change, true);
    } else if let Some(change) = update.get("chat_member") {
        provider_type = "chat_member".to_owned();
        parts = member_update(change, false);
    } else if let Some(field) = update
        .as_object()
        .and_then(|fields| fields.keys().find(|key| key.as_str() != "update_id"))
    {
        provider_type = field.clone();
    }
    let data = EventData {
        conversation: parts.conversation,
        sender: parts.sender,
        message: parts.message,
        postback: parts.postback,
        reply: parts.reply,
        members: parts.members,
        ..EventData::new(provider_type, verification, raw)
    };
    EventParts {
        dedupe_key,
        event_type: parts.event_type.unwrap_or(UNRECOGNIZED_TYPE).to_owned(),
        time_ms: parts
            .time_s
            .and_then(|s| s.checked_mul(1000))
            .unwrap_or(now_ms),
        data,
    }
}

#[derive(Default)]
struct Normalized {
    event_type: Option<&'static str>,
    time_s: Option<u64>,
    conversation: Option<Conversation>,
    sender: Option<Sender>,
    message: Option<Message>,
    postback: Option<Postback>,
    reply: Option<Reply>,
    members: Vec<Sender>,
}

fn message_update(message: &Value, event_type: &'static str) -> Normalized {
    Normalized {
        event_type: Some(event_type),
        time_s: u64_at(message, &["edit_date"]).or_else(|| u64_at(message, &["date"])),
        conversation: message.get("chat").and_then(conversation),
        // Channel posts and anonymous group admins have no `from`, only the chat they speak as.
        sender: message
            .get("from")
            .and_then(user)
            .or_else(|| message.get("sender_chat").and_then(chat_as_sender)),
        message: Some(message_content(message)),
        ..Normalized::default()
    }
}

fn callback_query(query: &Value) -> Normalized {
    Normalized {
        event_type: Some("postback"),
        conversation: value_at(query, &["message", "chat"]).and_then(conversation),
        sender: query.get("from").and_then(user),
        postback: text_at(query, &["data"])
            .or_else(|| text_at(query, &["game_short_name"]))
            .map(|data| Postback { data, params: None }),
        // The bot must answer the query (answerCallbackQuery) with this id, or the user's button keeps spinning.
        reply: text_at(query, &["id"]).map(|token| Reply { token }),
        ..Normalized::default()
    }
}

/// `my_chat_member` is about the bot itself (added to or removed from a chat); `chat_member` about other users
/// (sent only to bots that are administrators and ask for it in `allowed_updates`).
fn member_update(change: &Value, about_bot: bool) -> Normalized {
    let was_member = change.get("old_chat_member").is_some_and(is_member);
    let is_now_member = change.get("new_chat_member").is_some_and(is_member);
    let event_type = match (was_member, is_now_member, about_bot) {
        (false, true, true) => "conversation.joined",
        (true, false, true) => "conversation.left",
        (false, true, false) => "member.joined",
        (true, false, false) => "member.left",
        _ => "member.updated",
    };
    Normalized {
        event_type: Some(event_type),
        time_s: u64_at(change, &["date"]),
        conversation: change.get("chat").and_then(conversation),
        sender: change.get("from").and_then(user),
        members: value_at(change, &["new_chat_member", "user"])
            .and_then(user)
            .into_iter()
            .collect(),
        ..Normalized::default()
    }
}

fn is_member(chat_member: &Value) -> bool {
    match chat_member.get("status").and_then(Value::as_str) {
        Some("creator" | "administrator" | "member") => true,
        Some("restricted") => chat_member
            .get("is_member")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        _ => false,
    }
}

fn conversation(chat: &Value) -> Option<Conversation> {
    let kind = match chat.get("type").and_then(Value::as_str) {
        Some("private") => ConversationKind::Direct,
        Some("group" | "supergroup") => ConversationKind::Group,
        Some("channel") => ConversationKind::Channel,
        _ => ConversationKind::Unknown,
    };
    Some(Conversation {
        id: text_at(chat, &["id"])?,
        kind,
    })
}

fn user(user: &Value) -> Option<Sender> {
    let name = [
        text_at(user, &["first_name"]),
        text_at(user, &["last_name"]),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let name = if name.is_empty() {
        text_at(user, &["username"])
    } else {
        Some(name)
    };
    Some(Sender {
        id: text_at(user, &["id"])?,
        name,
    })
}

fn chat_as_sender(chat: &Value) -> Option<Sender> {
    Some(Sender {
        id: text_at(chat, &["id"])?,
        name: text_at(chat, &["title"]),
    })
}

fn message_content(message: &Value) -> Message {
    let mut normalized = Message {
        id: text_at(message, &["message_id"]),
        kind: "unknown".to_owned(),
        text: text_at(message, &["text"]).or_else(|| text_at(message, &["caption"])),
        ..Message::default()
    };
    if message.get("text").is_some() {
        normalized.kind = "text".to_owned();
    } else if let Some(photo) = largest_photo(message) {
        normalized.kind = "image".to_owned();
        normalized.attachments.push(attachment("image", photo));
    } else if let Some((field, kind)) = [
        ("video", "video"),
        ("voice", "audio"),
        ("audio", "audio"),
        ("document", "file"),
    ]
    .into_iter()
    .find(|(field, _)| message.get(field).is_some())
    {
        normalized.kind = kind.to_owned();
        if let Some(file) = message.get(field) {
            normalized.attachments.push(attachment(kind, file));
        }
    } else if let Some(sticker) = message.get("sticker") {
        normalized.kind = "sticker".to_owned();
        normalized.sticker = text_at(sticker, &["file_id"]).map(|sticker_id| Sticker {
            package_id: text_at(sticker, &["set_name"]),
            sticker_id,
        });
        normalized.text = normalized.text.or_else(|| text_at(sticker, &["emoji"]));
    } else if let Some(place) = message.get("venue").or_else(|| message.get("location")) {
        normalized.kind = "location".to_owned();
        let point = place.get("location").unwrap_or(place);
        if let (Some(latitude), Some(longitude)) =
            (f64_at(point, &["latitude"]), f64_at(point, &["longitude"]))
        {
            normalized.location = Some(Location {
                latitude,
                longitude,
                title: text_at(place, &["title"]),
                address: text_at(place, &["address"]),
            });
        }
    } else if let Some(contact) = message.get("contact") {
        normalized.kind = "contact".to_owned();
        normalized.text = Some(
            [
                text_at(contact, &["first_name"]),
                text_at(contact, &["last_name"]),
                text_at(contact, &["phone_number"]),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" "),
        );
    }
    normalized
}

/// Telegram sends every size of a photo; the largest (by pixels) is the original.
fn largest_photo(message: &Value) -> Option<&Value> {
    message.get("photo")?.as_array()?.iter().max_by_key(|size| {
        u64_at(size, &["width"])
            .unwrap_or(0)
            .saturating_mul(u64_at(size, &["height"]).unwrap_or(0))
    })
}

fn attachment(kind: &str, file: &Value) -> Attachment {
    Attachment {
        kind: kind.to_owned(),
        // Downloaded through getFile with this id.
        id: text_at(file, &["file_id"]),
        url: None,
        name: text_at(file, &["file_name"]),
        content_type: text_at(file, &["mime_type"]),
        size: u64_at(file, &["file_size"]),
        duration_ms: u64_at(file, &["duration"]).and_then(|s| s.checked_mul(1000)),
    }
}

#[cfg(test)]
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use crate::envelope::Raw;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_reply_is_a_send_message_to_the_updates_chat_and_nowhere_else() {
        let handled = call(
            &bindings(SECRET, None),
            Method::POST,
            &[("x-telegram-bot-api-secret-token", SECRET.as_bytes())],
            BODY.as_bytes(),
        )
        .unwrap();
        let renderer = handled.reply.expect("a message can be answered");
        let context = RenderContext {
            now_ms: 0,
            entropy: [0; 32],
        };
        let render = |reply: BackendReply| -> Value {
            serde_json::from_slice(&renderer.render(&reply, &context).unwrap().body).unwrap()
        };
        assert_eq!(
            render(BackendReply::Text("<b>受付</b>\u{0}".into())),
            serde_json::json!({"method": "sendMessage", "chat_id": 1111111, "text": "<b>受付</b>"})
        );
        assert_eq!(
            render(BackendReply::Raw(
                serde_json::json!({"method": "sendPhoto", "chat_id": 666, "photo": "https://x/p.png"})
            )),
            serde_json::json!({"method": "sendPhoto", "chat_id": 1111111, "photo": "https://x/p.png"})
        );
        for refused in [
            serde_json::json!({"chat_id": 1}),
            serde_json::json!({"method": "send message"}),
            serde_json::json!("sendMessage"),
        ] {
            assert!(renderer
                .render(&BackendReply::Raw(refused), &context)
                .is_err());
        }
        // An update without a chat (a poll's state) has no one to answer.
        let poll = r#"{"update_id":10001,"poll":{"id":"1","question":"q","options":[]}}"#;
        let handled = call(
            &bindings(SECRET, None),
            Method::POST,
            &[("x-telegram-bot-api-secret-token", SECRET.as_bytes())],
            poll.as_bytes(),
        )
        .unwrap();
        assert!(handled.reply.is_none());
    }

    // shared/vectors/telegram.json.
    const SECRET: &str = "s3cr3t_TOKEN-abc123";
    const BODY: &str = r#"{"update_id":10000,"message":{"message_id":1365,"date":1441645532,"chat":{"id":1111111,"type":"private","first_name":"Test"},"from":{"id":1111111,"is_bot":false,"first_name":"Test"},"text":"/start"}}"#;

    fn bindings(secret: &str, bot_id: Option<&str>) -> HashMap<String, String> {
        let mut bindings =
            HashMap::from([("TELEGRAM_DEMO_SECRET_TOKEN".to_owned(), secret.to_owned())]);
        if let Some(bot_id) = bot_id {
            bindings.insert("TELEGRAM_DEMO_BOT_ID".to_owned(), bot_id.to_owned());
        }
        bindings
    }

    fn call(
        bindings: &HashMap<String, String>,
        method: Method,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method,
            extra_path: &[],
            query: None,
            headers,
            body,
            now_ms: 5,
        };
        test_support::run(&Telegram, bindings, demo)
    }

    #[test]
    fn shared_vector_secret_match() {
        let handled = call(
            &bindings(SECRET, Some("123456789")),
            Method::POST,
            &[("X-Telegram-Bot-Api-Secret-Token", SECRET.as_bytes())],
            BODY.as_bytes(),
        )
        .unwrap();
        let [event] = handled.events.as_slice() else {
            panic!("one event expected")
        };
        assert_eq!(
            event.id,
            crate::envelope::event_id("telegram", "demo", "telegram:123456789:10000")
        );
        assert_eq!(event.event_type, "message.received");
        assert_eq!(event.time, "2015-09-07T17:05:32.000Z");
        assert_eq!(
            event.data.conversation,
            Some(Conversation {
                id: "1111111".into(),
                kind: ConversationKind::Direct
            })
        );
        assert_eq!(
            event.data.sender,
            Some(Sender {
                id: "1111111".into(),
                name: Some("Test".into())
            })
        );
        let message = event.data.message.as_ref().unwrap();
        assert_eq!(
            (message.kind.as_str(), message.text.as_deref()),
            ("text", Some("/start"))
        );

        // Without BOT_ID the account name stands for the bot.
        let handled = call(
            &bindings(SECRET, None),
            Method::POST,
            &[("X-Telegram-Bot-Api-Secret-Token", SECRET.as_bytes())],
            BODY.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            handled.events[0].id,
            crate::envelope::event_id("telegram", "demo", "telegram:demo:10000")
        );
    }

    #[test]
    fn shared_vector_secret_mismatch_and_missing() {
        let wrong = call(
            &bindings(SECRET, None),
            Method::POST,
            &[("X-Telegram-Bot-Api-Secret-Token", b"s3cr3t_TOKEN-abc124")],
            BODY.as_bytes(),
        );
        assert_eq!(wrong.unwrap_err(), Rejection::InvalidSignature);
        let missing = call(&bindings(SECRET, None), Method::POST, &[], BODY.as_bytes());
        assert_eq!(missing.unwrap_err(), Rejection::MissingSignature);
        let non_ascii = call(
            &bindings(SECRET, None),
            Method::POST,
            &[("X-Telegram-Bot-Api-Secret-Token", b"s3cr3t_TOKEN-abc12\xff")],
            BODY.as_bytes(),
        );
        assert_eq!(non_ascii.unwrap_err(), Rejection::InvalidSignature);
    }

    #[test]
    fn shared_vector_invalid_secret_config_is_misconfiguration() {
        assert!(!is_valid_secret_token("has space"));
        assert!(!is_valid_secret_token(""));
        assert!(!is_valid_secret_token(&"a".repeat(257)));
        assert!(is_valid_secret_token(&"a".repeat(256)));
        // In a binding, whitespace separates rotated values, so "has space" configures the two valid tokens
        // `has` and `space`; the vector's point (a character outside the set) is made with `.` and `!`.
        for configured in ["has.space", "ok-token,bad!"] {
            let result = call(
                &bindings(configured, None),
                Method::POST,
                &[("X-Telegram-Bot-Api-Secret-Token", b"has")],
                BODY.as_bytes(),
            );
            assert_eq!(
                result.unwrap_err(),
                Rejection::misconfigured("TELEGRAM_DEMO_SECRET_TOKEN"),
                "{configured}"
            );
        }
    }

    #[test]
    fn rotated_secret_reports_its_index() {
        let handled = call(
            &bindings(&format!("newer_token,{SECRET}"), None),
            Method::POST,
            &[("X-Telegram-Bot-Api-Secret-Token", SECRET.as_bytes())],
            BODY.as_bytes(),
        )
        .unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
    }

    fn normalized(update: Value) -> EventParts {
        normalize(
            &update,
            Raw::rendered(&update),
            "k".into(),
            Verification {
                scheme: SCHEME.into(),
                key_index: 0,
            },
            5,
        )
    }

    #[test]
    fn largest_photo_becomes_the_attachment() {
        let parts = normalized(serde_json::json!({"update_id": 1, "channel_post": {
            "message_id": 7, "date": 1, "chat": {"id": -1001, "type": "channel", "title": "News"},
            "sender_chat": {"id": -1001, "type": "channel", "title": "News"}, "caption": "look",
            "photo": [{"file_id": "small", "width": 90, "height": 60}, {"file_id": "big", "width": 1280, "height": 853},
                      {"file_id": "mid", "width": 320, "height": 213}]}}));
        assert_eq!(parts.event_type, "message.received");
        assert_eq!(
            parts.data.conversation.unwrap().kind,
            ConversationKind::Channel
        );
        assert_eq!(parts.data.sender.unwrap().name.as_deref(), Some("News"));
        let message = parts.data.message.unwrap();
        assert_eq!(
            (message.kind.as_str(), message.text.as_deref()),
            ("image", Some("look"))
        );
        assert_eq!(message.attachments[0].id.as_deref(), Some("big"));
    }

    #[test]
    fn member_updates_distinguish_the_bot_from_other_users() {
        let change = |old: &str, new: &str| {
            serde_json::json!({"chat": {"id": -5, "type": "supergroup"}, "from": {"id": 1, "first_name": "A"}, "date": 2,
                "old_chat_member": {"status": old, "user": {"id": 9, "first_name": "Bot"}},
                "new_chat_member": {"status": new, "user": {"id": 9, "first_name": "Bot"}}})
        };
        let cases = [
            ("my_chat_member", "left", "member", "conversation.joined"),
            (
                "my_chat_member",
                "administrator",
                "kicked",
                "conversation.left",
            ),
            (
                "my_chat_member",
                "member",
                "administrator",
                "member.updated",
            ),
            ("chat_member", "left", "member", "member.joined"),
            ("chat_member", "member", "left", "member.left"),
        ];
        for (field, old, new, expected) in cases {
            let parts = normalized(serde_json::json!({"update_id": 1, field: change(old, new)}));
            assert_eq!(parts.event_type, expected, "{field} {old}->{new}");
            assert_eq!(
                parts.data.members,
                vec![Sender {
                    id: "9".into(),
                    name: Some("Bot".into())
                }]
            );
            assert_eq!(
                parts.data.conversation.as_ref().unwrap().kind,
                ConversationKind::Group
            );
        }
    }

    #[test]
    fn callback_queries_are_postbacks_and_other_updates_pass_through() {
        let parts = normalized(
            serde_json::json!({"update_id": 2, "callback_query": {"id": "4382", "data": "buy:1",
            "from": {"id": 1}, "chat_instance": "x", "message": {"message_id": 3, "date": 1, "chat": {"id": 1, "type": "private"}}}}),
        );
        assert_eq!(parts.event_type, "postback");
        assert_eq!(parts.data.postback.unwrap().data, "buy:1");
        assert_eq!(parts.data.reply.unwrap().token, "4382");
        assert!(parts.data.message.is_none());

        let parts = normalized(
            serde_json::json!({"update_id": 3, "inline_query": {"id": "1", "query": "q"}}),
        );
        assert_eq!(parts.event_type, UNRECOGNIZED_TYPE);
        assert_eq!(parts.data.provider_type, "inline_query");
        assert_eq!(parts.time_ms, 5);
    }

    #[test]
    fn message_kinds() {
        let kind = |content: Value| {
            let mut message = serde_json::json!({"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}});
            message
                .as_object_mut()
                .unwrap()
                .extend(content.as_object().unwrap().clone());
            message_content(&message)
        };
        let voice = kind(
            serde_json::json!({"voice": {"file_id": "v", "duration": 3, "mime_type": "audio/ogg"}}),
        );
        assert_eq!(
            (voice.kind.as_str(), voice.attachments[0].duration_ms),
            ("audio", Some(3000))
        );
        let document = kind(
            serde_json::json!({"document": {"file_id": "d", "file_name": "a.pdf", "file_size": 10}}),
        );
        assert_eq!(
            (
                document.kind.as_str(),
                document.attachments[0].name.as_deref()
            ),
            ("file", Some("a.pdf"))
        );
        let sticker = kind(
            serde_json::json!({"sticker": {"file_id": "s", "set_name": "Pack", "emoji": "👍"}}),
        );
        assert_eq!(sticker.sticker.unwrap().package_id.as_deref(), Some("Pack"));
        let location =
            kind(serde_json::json!({"location": {"latitude": 35.5, "longitude": 139.5}}));
        assert_eq!(location.location.unwrap().latitude, 35.5);
        let contact =
            kind(serde_json::json!({"contact": {"phone_number": "+81 90", "first_name": "Taro"}}));
        assert_eq!(
            (contact.kind.as_str(), contact.text.as_deref()),
            ("contact", Some("Taro +81 90"))
        );
        let dice = kind(serde_json::json!({"dice": {"emoji": "🎲", "value": 3}}));
        assert_eq!(dice.kind, "unknown");
    }

    #[test]
    fn sign_produces_an_accepted_request() {
        let params = SignParams {
            body: BODY.as_bytes().to_vec(),
            options: [("secret".to_owned(), SECRET.to_owned())].into(),
            now_s: 0,
        };
        let signed = Telegram.sign(&params).unwrap();
        let headers: Vec<(&str, &[u8])> = signed
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        assert!(call(
            &bindings(SECRET, None),
            signed.method,
            &headers,
            &signed.body
        )
        .is_ok());
        let bad = SignParams {
            options: [("secret".to_owned(), "has space".to_owned())].into(),
            ..params
        };
        assert!(Telegram.sign(&bad).is_err());
    }

    fn json_body() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("private".to_owned()),
                Just("member".to_owned()),
                Just("restricted".to_owned()),
                ".{0,8}"
            ]
            .prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("update_id"),
            Just("message"),
            Just("callback_query"),
            Just("my_chat_member"),
            Just("chat_member"),
            Just("new_chat_member"),
            Just("old_chat_member"),
            Just("status"),
            Just("chat"),
            Just("from"),
            Just("photo"),
            Just("width"),
            Just("location"),
            Just("venue"),
            Just("contact"),
            Just("document"),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
        .prop_map(|value| value.to_string())
    }

    proptest! {
        #[test]
        fn handle_never_panics(
            body in prop_oneof![json_body().prop_map(String::into_bytes), any::<Vec<u8>>()],
            secret in prop::option::of(prop_oneof![Just(SECRET.as_bytes().to_vec()), prop::collection::vec(0x20u8..0x7f, 0..40)]),
        ) {
            let headers: Vec<(&str, &[u8])> = secret.as_deref().map(|s| (SECRET_HEADER, s)).into_iter().collect();
            let _ = call(&bindings(SECRET, None), Method::POST, &headers, &body);
        }
    }
}
