//! The body of `POST /send/{channel}/{account}`, exactly as the contract states it:
//! `{"to":{"conversation":"…"} | {"user":"…"}, "message":{"text":"…"} | {"raw":{…}}, "in_reply_to":"…"?}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::SendError;

/// The largest send request read: room for the longest text a channel takes (Chatwork's 65,535 bytes) in
/// JSON; anything larger is refused before it is parsed.
pub const MAX_SEND_BODY_BYTES: usize = 128 * 1024;
/// Longest recipient id accepted before the channel checks its own shape.
const MAX_RECIPIENT_BYTES: usize = 256;
/// Longest `in_reply_to` (an event id is `evt_` and 32 hex digits).
const MAX_IN_REPLY_TO_BYTES: usize = 128;

/// Who the message goes to: the `data.conversation.id` or the `data.sender.id` of a received event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Recipient {
    /// A `data.conversation.id` of a received event.
    Conversation(String),
    /// A `data.sender.id` of a received event.
    User(String),
}

impl Recipient {
    pub fn id(&self) -> &str {
        match self {
            Recipient::Conversation(id) | Recipient::User(id) => id,
        }
    }

    /// The envelope's `data.recipient`.
    pub fn envelope(&self) -> crate::envelope::SendRecipient {
        let (conversation, user) = match self {
            Recipient::Conversation(id) => (Some(id.clone()), None),
            Recipient::User(id) => (None, Some(id.clone())),
        };
        crate::envelope::SendRecipient { conversation, user }
    }

    /// `conversation` or `user`, as in the body.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::Conversation(_) => "conversation",
            Recipient::User(_) => "user",
        }
    }
}

/// What to send: plain text (rendered safely by the channel) or the provider's own message object.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Text(String),
    /// Always an object: [`SendRequest::parse`] refuses anything else.
    Raw(Map<String, Value>),
}

/// The body, read from a parsed JSON value by hand: every key is known, every other key refused (the same as a
/// derived `deny_unknown_fields`, for a fraction of the Worker's size).
#[derive(Debug, Clone, PartialEq)]
pub struct SendRequest {
    pub to: Recipient,
    pub message: Outbound,
    pub in_reply_to: Option<String>,
}

const SHAPE: &str =
    "expected {\"to\":{\"conversation\"|\"user\":…},\"message\":{\"text\"|\"raw\":…},\"in_reply_to\"?}";

/// The one key of a one-key object, and its value.
fn only_entry(value: Option<&Value>) -> Option<(&str, &Value)> {
    let object = value?.as_object()?;
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some((key, value)), None) => Some((key.as_str(), value)),
        _ => None,
    }
}

/// The recipient, the message (`None` for a `raw` that is not an object) and `in_reply_to`.
type Read = (Recipient, Option<Outbound>, Option<String>);

fn read(body: &Value) -> Option<Read> {
    let object = body.as_object()?;
    if object
        .keys()
        .any(|key| !matches!(key.as_str(), "to" | "message" | "in_reply_to"))
    {
        return None;
    }
    let to = match only_entry(object.get("to"))? {
        ("conversation", Value::String(id)) => Recipient::Conversation(id.clone()),
        ("user", Value::String(id)) => Recipient::User(id.clone()),
        _ => return None,
    };
    // A `raw` that is not an object is the body's shape, but refused with its own reason below.
    let message = match only_entry(object.get("message"))? {
        ("text", Value::String(text)) => Some(Outbound::Text(text.clone())),
        ("raw", Value::Object(raw)) => Some(Outbound::Raw(raw.clone())),
        ("raw", _) => None,
        _ => return None,
    };
    let in_reply_to = match object.get("in_reply_to") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => return None,
    };
    Some((to, message, in_reply_to))
}

impl SendRequest {
    /// Parses and checks what every channel needs; the channel then checks its own limits.
    pub fn parse(body: &[u8]) -> Result<SendRequest, SendError> {
        if body.len() > MAX_SEND_BODY_BYTES {
            return Err(SendError::InvalidBody("the body is over 128 KiB"));
        }
        let value = crate::json::parse_slice(body).map_err(|_| SendError::InvalidBody(SHAPE))?;
        let (to, message, in_reply_to) = read(&value).ok_or(SendError::InvalidBody(SHAPE))?;
        let id = to.id();
        if id.is_empty()
            || id.len() > MAX_RECIPIENT_BYTES
            || id.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(SendError::InvalidRecipient);
        }
        let message = message.ok_or(SendError::InvalidRaw("`message.raw` must be an object"))?;
        if matches!(&message, Outbound::Text(text) if text.trim().is_empty()) {
            return Err(SendError::EmptyText);
        }
        let request = SendRequest {
            to,
            message,
            in_reply_to,
        };
        if let Some(reply_to) = &request.in_reply_to {
            if reply_to.len() > MAX_IN_REPLY_TO_BYTES
                || !reply_to
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(SendError::InvalidBody("`in_reply_to` must be an event id"));
            }
        }
        Ok(request)
    }
}

/// Length in UTF-16 code units: what LINE and Telegram count.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_shapes_parse() {
        let request = SendRequest::parse(
            br#"{"to":{"conversation":"C1"},"message":{"text":"hi"},"in_reply_to":"evt_0123"}"#,
        )
        .unwrap();
        assert_eq!(request.to, Recipient::Conversation("C1".into()));
        assert_eq!(request.message, Outbound::Text("hi".into()));
        assert_eq!(request.in_reply_to.as_deref(), Some("evt_0123"));
        let raw =
            SendRequest::parse(br#"{"to":{"user":"U1"},"message":{"raw":{"type":"sticker"}}}"#)
                .unwrap();
        assert_eq!(raw.to, Recipient::User("U1".into()));
        assert!(matches!(raw.message, Outbound::Raw(_)));
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let reason = |body: &str| SendRequest::parse(body.as_bytes()).unwrap_err().reason();
        for body in [
            "",
            "[]",
            "{\"to\":{\"conversation\":\"C\"}}",
            r#"{"to":{"conversation":"C","user":"U"},"message":{"text":"x"}}"#,
            r#"{"to":{"group":"C"},"message":{"text":"x"}}"#,
            r#"{"to":{"conversation":"C"},"message":{"text":"x","raw":{}}}"#,
            r#"{"to":{"conversation":"C"},"message":{"text":"x"},"extra":1}"#,
            r#"{"to":{"conversation":"C"},"message":{"text":"x"},"in_reply_to":"a b"}"#,
            r#"{"to":{"conversation":7},"message":{"text":"x"}}"#,
        ] {
            assert_eq!(reason(body), "invalid_body", "{body}");
        }
        assert_eq!(
            reason(r#"{"to":{"conversation":""},"message":{"text":"x"}}"#),
            "invalid_recipient"
        );
        assert_eq!(
            reason(r#"{"to":{"user":"U 1"},"message":{"text":"x"}}"#),
            "invalid_recipient"
        );
        assert_eq!(
            reason(r#"{"to":{"user":"U1"},"message":{"text":" \n"}}"#),
            "empty_text"
        );
        assert_eq!(
            reason(r#"{"to":{"user":"U1"},"message":{"raw":"text"}}"#),
            "invalid_raw"
        );
        let big = format!(
            r#"{{"to":{{"user":"U1"}},"message":{{"text":"{}"}}}}"#,
            "a".repeat(MAX_SEND_BODY_BYTES)
        );
        assert_eq!(reason(&big), "invalid_body");
        // Deeply nested raw objects are refused by the parser's depth limit, never a stack overflow.
        let deep = format!(
            r#"{{"to":{{"user":"U1"}},"message":{{"raw":{}{}}}}}"#,
            "{\"a\":".repeat(5000),
            "}".repeat(5000)
        );
        assert_eq!(reason(&deep), "invalid_body");
    }
}
