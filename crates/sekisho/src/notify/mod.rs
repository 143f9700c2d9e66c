//! Chatwork room notifications: which accepted events an account announces in a Chatwork room, and the
//! message rendered for each from an admin's template.
//!
//! Every setting is looked up from the account up to the whole gateway, the first one set winning:
//! `{CHANNEL}_{ACCOUNT}_{FIELD}` → `{CHANNEL}_{FIELD}` → `{FIELD}`.
//!
//! A template is text with `{{ path }}` placeholders over the event JSON (`{{type}}`, `{{data.sender.name}}`,
//! `{{data.message.attachments.0.name}}`, `{{data.raw.company}}`). Inserted values cannot carry Chatwork
//! markup: their square brackets become full-width, so an event can never mention everyone or forge a block.
//!
//! One concern per file: [`settings`](fn@settings) resolves an account's bindings (most specific first),
//! `template` parses and renders the template language, `paths` knows which placeholder paths an event can
//! have, `chatwork` builds the API request for one attempt.

use std::fmt;

mod chatwork;
mod paths;
mod settings;
mod template;
#[cfg(test)]
mod test_support;

pub use chatwork::{
    is_valid_room_id, message_url, plain_request, request, ChatworkRequest, MAX_MESSAGE_BYTES,
    TOKEN_HEADER,
};
pub use paths::is_known_path;
pub use settings::{channel_binding_name, settings, type_selected, NoticeSettings};
pub use template::{neutralised, Template, TemplateError};

pub const ROOM_FIELD: &str = "NOTIFY_CHATWORK_ROOM";
pub const TEMPLATE_FIELD: &str = "NOTIFY_TEMPLATE";
pub const TYPES_FIELD: &str = "NOTIFY_TYPES";
pub const SELF_UNREAD_FIELD: &str = "NOTIFY_SELF_UNREAD";
pub const API_BASE_BINDING: &str = "CHATWORK_API_BASE";
pub const API_TOKEN_BINDING: &str = "CHATWORK_API_TOKEN";
pub const DEFAULT_API_BASE: &str = "https://api.chatwork.com";
pub const DEFAULT_TEMPLATE: &str = "[info][title]{{type}}: {{channel}}/{{account}}[/title]\
{{data.sender.name}} ({{data.sender.id}})\n{{data.message.text}}[/info]";

/// Decided when an event is accepted; travels in the queue (so serde); no secrets in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatworkNotice {
    pub room_id: String,
    /// The binding the template is read from at send time; None = DEFAULT_TEMPLATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_binding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_unread: Option<bool>,
}

/// Where a setting named in a [`NotifyError`] comes from, i.e. what the operator has to look at. Its
/// `Display` is the text the operator's log shows: the binding's name, or a parenthesised description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingOrigin {
    /// A binding such as `LINE_ACME_JP_NOTIFY_TEMPLATE`: fixing it fixes the next attempt.
    Binding(String),
    /// The built-in [`DEFAULT_TEMPLATE`], in use because no template binding is set.
    DefaultTemplate,
    /// The queued notice itself (its room id, decided when the event was accepted): no binding reaches it.
    QueuedNotice,
}

impl SettingOrigin {
    /// True when the setting travels in the queued notice, so no change of configuration can alter it.
    pub fn is_queued(&self) -> bool {
        match self {
            SettingOrigin::QueuedNotice => true,
            SettingOrigin::Binding(_) | SettingOrigin::DefaultTemplate => false,
        }
    }
}

impl fmt::Display for SettingOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingOrigin::Binding(name) => f.write_str(name),
            SettingOrigin::DefaultTemplate => f.write_str("(default)"),
            SettingOrigin::QueuedNotice => f.write_str("(queued notice)"),
        }
    }
}

impl From<String> for SettingOrigin {
    fn from(binding: String) -> SettingOrigin {
        SettingOrigin::Binding(binding)
    }
}

impl From<&str> for SettingOrigin {
    fn from(binding: &str) -> SettingOrigin {
        SettingOrigin::Binding(binding.to_owned())
    }
}

/// Why a notification cannot be planned or sent. The `Display` text is for the operator's log: it names
/// bindings, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("binding `{binding}` must be a Chatwork room id (1 to 20 digits)")]
    InvalidRoom { binding: SettingOrigin },
    #[error("binding `{binding}` must be 1, true, yes, 0, false or no")]
    InvalidSelfUnread { binding: String },
    #[error("notification template `{binding}` is invalid: {source}")]
    Template {
        binding: SettingOrigin,
        source: TemplateError,
    },
    #[error("binding `CHATWORK_API_TOKEN` is not set")]
    MissingToken,
    #[error("binding `CHATWORK_API_TOKEN` contains characters an HTTP header cannot carry")]
    InvalidToken,
    #[error("the event to announce is not JSON")]
    EventNotJson,
    #[error("the rendered notification is empty; Chatwork refuses empty messages")]
    EmptyMessage,
    /// Announcing a Chatwork event in the room it came from would post a message that the room's webhook
    /// reports again, without end.
    #[error("the event came from Chatwork room {room_id}, the room it would be announced in")]
    WouldLoop { room_id: String },
}

impl NotifyError {
    /// Short machine-readable reason, for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            NotifyError::InvalidRoom { .. } => "invalid_notify_room",
            NotifyError::InvalidSelfUnread { .. } => "invalid_notify_self_unread",
            NotifyError::Template { .. } => "invalid_notify_template",
            NotifyError::MissingToken => "missing_chatwork_token",
            NotifyError::InvalidToken => "invalid_chatwork_token",
            NotifyError::EventNotJson => "event_not_json",
            NotifyError::EmptyMessage => "empty_notify_message",
            NotifyError::WouldLoop { .. } => "notify_loop",
        }
    }

    /// True when retrying the same notice for the same event cannot succeed, whatever the configuration
    /// becomes: drop the delivery instead of retrying it.
    pub fn is_permanent(&self) -> bool {
        match self {
            NotifyError::EventNotJson | NotifyError::WouldLoop { .. } => true,
            NotifyError::InvalidRoom { binding } => binding.is_queued(),
            NotifyError::InvalidSelfUnread { .. }
            | NotifyError::Template { .. }
            | NotifyError::MissingToken
            | NotifyError::InvalidToken
            | NotifyError::EmptyMessage => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::notice;
    use super::*;

    #[test]
    fn a_notice_round_trips_through_the_queue_and_omits_what_is_unset() {
        let minimal = notice("123");
        assert_eq!(
            serde_json::to_string(&minimal).unwrap(),
            r#"{"room_id":"123"}"#
        );
        let full = ChatworkNotice {
            room_id: "123".into(),
            template_binding: Some("LINE_NOTIFY_TEMPLATE".into()),
            self_unread: Some(false),
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(
            json,
            r#"{"room_id":"123","template_binding":"LINE_NOTIFY_TEMPLATE","self_unread":false}"#
        );
        assert_eq!(serde_json::from_str::<ChatworkNotice>(&json).unwrap(), full);
    }

    #[test]
    fn only_a_bad_room_in_the_queued_notice_itself_is_permanent() {
        let queued = NotifyError::InvalidRoom {
            binding: SettingOrigin::QueuedNotice,
        };
        assert!(queued.is_permanent());
        assert_eq!(
            queued.to_string(),
            "binding `(queued notice)` must be a Chatwork room id (1 to 20 digits)"
        );
        let configured = NotifyError::InvalidRoom {
            binding: "LINE_NOTIFY_CHATWORK_ROOM".into(),
        };
        assert!(!configured.is_permanent());
        assert_eq!(
            configured.to_string(),
            "binding `LINE_NOTIFY_CHATWORK_ROOM` must be a Chatwork room id (1 to 20 digits)"
        );
        let default = NotifyError::Template {
            binding: SettingOrigin::DefaultTemplate,
            source: TemplateError::EmptyPlaceholder { offset: 0 },
        };
        assert!(!default.is_permanent());
        assert!(default
            .to_string()
            .starts_with("notification template `(default)` is invalid"));
    }
}
