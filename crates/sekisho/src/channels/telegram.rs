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

/// The Bot API methods a `raw` reply may call: those that answer in the update's chat. Telegram matches method
/// names without regard to case; these are matched exactly.
pub const REPLY_METHODS: &[&str] = &[
    "sendMessage",
    "sendPhoto",
    "sendAudio",
    "sendDocument",
    "sendVideo",
    "sendAnimation",
    "sendVoice",
    "sendVideoNote",
    "sendMediaGroup",
    "sendLocation",
    "sendVenue",
    "sendContact",
    "sendPoll",
    "sendDice",
    "sendSticker",
    "sendChatAction",
    "answerCallbackQuery",
];

impl RenderReply for ChatReply {
    fn budget(&self) -> Budget {
        REPLY_BUDGET
    }

    /// Text goes as `sendMessage` without `parse_mode`: Telegram shows it as typed. `raw` is a Bot API call
    /// (`{"method":"sendPhoto",…}`) of one of [`REPLY_METHODS`] — nothing that changes the bot (`setWebhook`,
    /// `deleteWebhook`, …) — whose `chat_id` is always the update's chat.
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
                let method = call.get("method").and_then(Value::as_str);
                if !method.is_some_and(|method| REPLY_METHODS.contains(&method)) {
                    return Err(NoReply::Unrenderable(
                        "`raw` needs a Bot API send `method` (sendMessage, sendPhoto, …)",
                    ));
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
mod tests;
