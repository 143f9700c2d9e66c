//! The Chatwork API request for one attempt of a queued notice.

use std::fmt;

use serde_json::Value;

use crate::config::Bindings;

use super::settings::{read, template_for_notice};
use super::template::resolve;
use super::{
    ChatworkNotice, NotifyError, SettingOrigin, API_BASE_BINDING, API_TOKEN_BINDING,
    DEFAULT_API_BASE,
};

/// Chatwork's documented limit for a message `body` (`maxLength: 65535` in the official RAML, chatwork/api).
/// Counted here in UTF-8 bytes, never fewer than characters or UTF-16 units, so the cap holds whichever
/// unit Chatwork counts in.
pub const MAX_MESSAGE_BYTES: usize = 65_535;

pub const TOKEN_HEADER: &str = "x-chatworktoken";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
const TRUNCATION_MARK: &str = "…";
const MAX_ROOM_ID_DIGITS: usize = 20;
const CHATWORK_CHANNEL: &str = "chatwork";

/// One `POST /v2/rooms/{room_id}/messages` to the Chatwork API. Its `Debug` hides the API token.
#[derive(Clone, PartialEq, Eq)]
pub struct ChatworkRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl fmt::Debug for ChatworkRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                if name.eq_ignore_ascii_case(TOKEN_HEADER) {
                    (*name, "[redacted]")
                } else {
                    (*name, value.as_str())
                }
            })
            .collect();
        f.debug_struct("ChatworkRequest")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &self.body)
            .finish()
    }
}

/// The HTTP request for one attempt: renders the template read now from `bindings` over `event_json`
/// (the event body exactly as forwarded to the backend), adds the token.
///
/// The template is read again from the binding named in the notice, so a template fixed since the event was
/// accepted is used; if that binding is now unset, the next one up its chain is (account → channel →
/// global → [`DEFAULT_TEMPLATE`](super::DEFAULT_TEMPLATE)). A notice planned with the default template keeps it.
pub fn request(
    notice: &ChatworkNotice,
    event_json: &str,
    bindings: &dyn Bindings,
) -> Result<ChatworkRequest, NotifyError> {
    let token = read(bindings, API_TOKEN_BINDING).ok_or(NotifyError::MissingToken)?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NotifyError::InvalidToken);
    }
    if !is_valid_room_id(&notice.room_id) {
        return Err(NotifyError::InvalidRoom {
            binding: SettingOrigin::QueuedNotice,
        });
    }
    let template = template_for_notice(bindings, notice.template_binding.as_deref())?;
    let event: Value = crate::json::parse(event_json).map_err(|_| NotifyError::EventNotJson)?;
    if is_from_room(&event, &notice.room_id) {
        return Err(NotifyError::WouldLoop {
            room_id: notice.room_id.clone(),
        });
    }

    let message = cap_message(template.render(&event));
    if message.trim().is_empty() {
        return Err(NotifyError::EmptyMessage);
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("body", &message);
    if let Some(self_unread) = notice.self_unread {
        form.append_pair("self_unread", if self_unread { "1" } else { "0" });
    }

    Ok(ChatworkRequest {
        url: message_url(notice, bindings),
        headers: vec![
            (TOKEN_HEADER, token),
            ("content-type", FORM_CONTENT_TYPE.to_owned()),
        ],
        body: form.finish(),
    })
}

/// A plain message (an operator alert, not an event) to `room_id`, with the same token and API base.
pub fn plain_request(
    room_id: &str,
    message: &str,
    bindings: &dyn Bindings,
) -> Result<ChatworkRequest, NotifyError> {
    let token = read(bindings, API_TOKEN_BINDING).ok_or(NotifyError::MissingToken)?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NotifyError::InvalidToken);
    }
    if !is_valid_room_id(room_id) {
        return Err(NotifyError::InvalidRoom {
            binding: SettingOrigin::Binding("ALERT_CHATWORK_ROOM".to_owned()),
        });
    }
    let notice = ChatworkNotice {
        room_id: room_id.to_owned(),
        template_binding: None,
        self_unread: None,
    };
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("body", &cap_message(message.to_owned()));
    Ok(ChatworkRequest {
        url: message_url(&notice, bindings),
        headers: vec![
            (TOKEN_HEADER, token),
            ("content-type", FORM_CONTENT_TYPE.to_owned()),
        ],
        body: form.finish(),
    })
}

/// `{CHATWORK_API_BASE}/v2/rooms/{room_id}/messages`, the API base defaulting to [`DEFAULT_API_BASE`].
pub fn message_url(notice: &ChatworkNotice, bindings: &dyn Bindings) -> String {
    let base = read(bindings, API_BASE_BINDING).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    format!(
        "{}/v2/rooms/{}/messages",
        base.trim_end_matches('/'),
        notice.room_id
    )
}

/// A Chatwork room id: 1 to 20 ASCII digits.
pub fn is_valid_room_id(room_id: &str) -> bool {
    (1..=MAX_ROOM_ID_DIGITS).contains(&room_id.len()) && room_id.bytes().all(|b| b.is_ascii_digit())
}

fn is_from_room(event: &Value, room_id: &str) -> bool {
    let channel = event.get("channel").and_then(Value::as_str);
    let conversation = resolve(event, &["data", "conversation", "id"]).and_then(Value::as_str);
    channel == Some(CHATWORK_CHANNEL) && conversation == Some(room_id)
}

/// Cuts a message over [`MAX_MESSAGE_BYTES`] at a character boundary and marks the cut.
fn cap_message(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let mut end = MAX_MESSAGE_BYTES - TRUNCATION_MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(TRUNCATION_MARK);
    message
}

#[cfg(test)]
mod tests;
