//! Chatwork room notifications: which accepted events an account announces in a Chatwork room, and the
//! message rendered for each from an admin's template.
//!
//! Every setting is looked up from the account up to the whole gateway, the first one set winning:
//! `{CHANNEL}_{ACCOUNT}_{FIELD}` → `{CHANNEL}_{FIELD}` → `{FIELD}`.
//!
//! A template is text with `{{ path }}` placeholders over the event JSON (`{{type}}`, `{{data.sender.name}}`,
//! `{{data.message.attachments.0.name}}`, `{{data.raw.company}}`). Inserted values cannot carry Chatwork
//! markup: their square brackets become full-width, so an event can never mention everyone or forge a block.

use std::fmt;

use serde_json::Value;

use crate::config::{split_values, Account, Bindings};
use crate::control_chars::{multi_line, single_line};

pub const ROOM_FIELD: &str = "NOTIFY_CHATWORK_ROOM";
pub const TEMPLATE_FIELD: &str = "NOTIFY_TEMPLATE";
pub const TYPES_FIELD: &str = "NOTIFY_TYPES";
pub const SELF_UNREAD_FIELD: &str = "NOTIFY_SELF_UNREAD";
pub const API_BASE_BINDING: &str = "CHATWORK_API_BASE";
pub const API_TOKEN_BINDING: &str = "CHATWORK_API_TOKEN";
pub const DEFAULT_API_BASE: &str = "https://api.chatwork.com";
pub const DEFAULT_TEMPLATE: &str = "[info][title]{{type}}: {{channel}}/{{account}}[/title]\
{{data.sender.name}} ({{data.sender.id}})\n{{data.message.text}}[/info]";

/// Chatwork's documented limit for a message `body` (`maxLength: 65535` in the official RAML, chatwork/api).
/// Counted here in UTF-8 bytes, never fewer than characters or UTF-16 units, so the cap holds whichever
/// unit Chatwork counts in.
pub const MAX_MESSAGE_BYTES: usize = 65_535;

/// What [`NotifyError::Template`] names when the built-in [`DEFAULT_TEMPLATE`] is the one in use.
pub const DEFAULT_TEMPLATE_BINDING: &str = "(default)";

/// What [`NotifyError::InvalidRoom`] names when the room id of a queued notice is not a room id.
pub const QUEUED_ROOM: &str = "(queued notice)";

pub const TOKEN_HEADER: &str = "x-chatworktoken";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
const TRUNCATION_MARK: &str = "…";
const MAX_ROOM_ID_DIGITS: usize = 20;
const CHATWORK_CHANNEL: &str = "chatwork";

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

/// Why a notification cannot be planned or sent. The `Display` text is for the operator's log: it names
/// bindings, never a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("binding `{binding}` must be a Chatwork room id (1 to 20 digits)")]
    InvalidRoom { binding: String },
    #[error("binding `{binding}` must be 1, true, yes, 0, false or no")]
    InvalidSelfUnread { binding: String },
    #[error("notification template `{binding}` is invalid: {source}")]
    Template {
        binding: String,
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
            NotifyError::InvalidRoom { binding } => binding == QUEUED_ROOM,
            NotifyError::InvalidSelfUnread { .. }
            | NotifyError::Template { .. }
            | NotifyError::MissingToken
            | NotifyError::InvalidToken
            | NotifyError::EmptyMessage => false,
        }
    }
}

/// An account's notification settings, resolved once per request and applied to each of its events.
#[derive(Debug)]
pub struct NoticeSettings {
    room_id: String,
    template_binding: Option<String>,
    self_unread: Option<bool>,
    types: Option<String>,
    /// A template that does not parse. Notices are queued all the same: their attempts wait (retrying on the
    /// delivery schedule) until the template is fixed; the request reports it so an admin finds it at once.
    pub template_problem: Option<NotifyError>,
}

/// The account's settings, or `None` when no room is configured at any level. Once a room is configured,
/// every setting is checked, so a broken one surfaces with the first event whatever its type.
pub fn settings(account: &Account<'_>) -> Result<Option<NoticeSettings>, NotifyError> {
    let Some(room) = lookup(account, ROOM_FIELD) else {
        return Ok(None);
    };
    if !is_valid_room_id(&room.value) {
        return Err(NotifyError::InvalidRoom {
            binding: room.binding,
        });
    }
    let self_unread = lookup(account, SELF_UNREAD_FIELD)
        .map(|setting| {
            parse_flag(&setting.value).ok_or(NotifyError::InvalidSelfUnread {
                binding: setting.binding,
            })
        })
        .transpose()?;
    let template = lookup(account, TEMPLATE_FIELD);
    let template_problem = template_from(template.as_ref()).err();
    Ok(Some(NoticeSettings {
        room_id: room.value,
        template_binding: template.map(|setting| setting.binding),
        self_unread,
        types: lookup(account, TYPES_FIELD).map(|setting| setting.value),
        template_problem,
    }))
}

impl NoticeSettings {
    /// The notice for an event of `event_type`, unless the type filter declines it.
    pub fn notice_for(&self, event_type: &str) -> Option<ChatworkNotice> {
        let selected = self
            .types
            .as_deref()
            .is_none_or(|types| type_selected(types, event_type));
        selected.then(|| ChatworkNotice {
            room_id: self.room_id.clone(),
            template_binding: self.template_binding.clone(),
            self_unread: self.self_unread,
        })
    }
}

/// The HTTP request for one attempt: renders the template read now from `bindings` over `event_json`
/// (the event body exactly as forwarded to the backend), adds the token.
///
/// The template is read again from the binding named in the notice, so a template fixed since the event was
/// accepted is used; if that binding is now unset, the next one up its chain is (account → channel →
/// global → [`DEFAULT_TEMPLATE`]). A notice planned with the default template keeps it.
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
            binding: QUEUED_ROOM.to_owned(),
        });
    }
    let template_setting = first_set(bindings, template_chain(notice.template_binding.as_deref()));
    let template = template_from(template_setting.as_ref())?;
    let event: Value = serde_json::from_str(event_json).map_err(|_| NotifyError::EventNotJson)?;
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

/// `{CHATWORK_API_BASE}/v2/rooms/{room_id}/messages`, the API base defaulting to [`DEFAULT_API_BASE`].
pub fn message_url(notice: &ChatworkNotice, bindings: &dyn Bindings) -> String {
    let base = read(bindings, API_BASE_BINDING).unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    format!(
        "{}/v2/rooms/{}/messages",
        base.trim_end_matches('/'),
        notice.room_id
    )
}

/// `line` + `NOTIFY_TEMPLATE` → `LINE_NOTIFY_TEMPLATE`: a setting shared by every account of a channel.
pub fn channel_binding_name(channel: &str, field: &str) -> String {
    let mut name: String = channel
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    name.push('_');
    name.push_str(field);
    name
}

/// A Chatwork room id: 1 to 20 ASCII digits.
pub fn is_valid_room_id(room_id: &str) -> bool {
    (1..=MAX_ROOM_ID_DIGITS).contains(&room_id.len()) && room_id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a `NOTIFY_TYPES` value selects `event_type`. Entries are separated by commas or whitespace; each
/// is an exact type, a prefix wildcard like `message.*` (any type below `message.`), or `*` for every type.
/// A value with no entries selects nothing.
pub fn type_selected(filter: &str, event_type: &str) -> bool {
    split_values(filter)
        .iter()
        .any(|entry| type_entry_matches(entry, event_type))
}

fn type_entry_matches(entry: &str, event_type: &str) -> bool {
    if entry == "*" {
        return true;
    }
    match entry.strip_suffix(".*") {
        Some(prefix) => event_type
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|below| !below.is_empty()),
        None => entry == event_type,
    }
}

/// A configured value and the binding that holds it.
struct Setting {
    binding: String,
    value: String,
}

fn lookup(account: &Account<'_>, field: &str) -> Option<Setting> {
    let chain = [
        account.binding_name(field),
        channel_binding_name(account.channel, field),
        field.to_owned(),
    ];
    first_set(account.bindings(), chain)
}

fn first_set(bindings: &dyn Bindings, chain: impl IntoIterator<Item = String>) -> Option<Setting> {
    chain
        .into_iter()
        .find_map(|binding| read(bindings, &binding).map(|value| Setting { binding, value }))
}

/// A binding's value, trimmed; `None` when unset or blank (the same rule as [`Account::field`]).
fn read(bindings: &dyn Bindings, name: &str) -> Option<String> {
    bindings
        .get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The bindings a notice's template is looked up in at send time, most specific first. Only names ending in
/// `NOTIFY_TEMPLATE` are ever read, so a tampered notice cannot have another binding (the API token) posted.
fn template_chain(template_binding: Option<&str>) -> Vec<String> {
    let Some(binding) = template_binding else {
        return Vec::new();
    };
    let mut chain = Vec::new();
    let scope = binding
        .strip_suffix(TEMPLATE_FIELD)
        .and_then(|prefix| prefix.strip_suffix('_'))
        .filter(|scope| !scope.is_empty());
    if let Some(scope) = scope {
        chain.push(binding.to_owned());
        // Channel names have no underscore, so in `{CHANNEL}_{ACCOUNT}` the first one ends the channel.
        if let Some((channel, _account)) = scope.split_once('_') {
            if !channel.is_empty() {
                chain.push(format!("{channel}_{TEMPLATE_FIELD}"));
            }
        }
    }
    chain.push(TEMPLATE_FIELD.to_owned());
    chain
}

fn template_from(setting: Option<&Setting>) -> Result<Template, NotifyError> {
    let (binding, text) = match setting {
        Some(setting) => (setting.binding.as_str(), setting.value.as_str()),
        None => (DEFAULT_TEMPLATE_BINDING, DEFAULT_TEMPLATE),
    };
    Template::parse(text).map_err(|source| NotifyError::Template {
        binding: binding.to_owned(),
        source,
    })
}

fn parse_flag(value: &str) -> Option<bool> {
    let value = value.to_ascii_lowercase();
    match value.as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
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

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// Every leaf path of envelope v1 (`schema/event-v1.schema.json`) outside the open subtrees; `*` stands for
/// an array index. A test keeps this list and the schema in step.
const SCHEMA_PATHS: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "channel",
    "account",
    "data.provider_type",
    "data.conversation.id",
    "data.conversation.kind",
    "data.sender.id",
    "data.sender.name",
    "data.members.*.id",
    "data.members.*.name",
    "data.message.id",
    "data.message.kind",
    "data.message.text",
    "data.message.attachments.*.kind",
    "data.message.attachments.*.id",
    "data.message.attachments.*.url",
    "data.message.attachments.*.name",
    "data.message.attachments.*.content_type",
    "data.message.attachments.*.size",
    "data.message.attachments.*.duration_ms",
    "data.message.location.latitude",
    "data.message.location.longitude",
    "data.message.location.title",
    "data.message.location.address",
    "data.message.sticker.package_id",
    "data.message.sticker.sticker_id",
    "data.postback.data",
    "data.reply.token",
    "data.verification.scheme",
    "data.verification.key_index",
    "data.ordering.key",
    "data.ordering.sequence",
];

/// Placeholders whose values are text of several lines: they keep LF and TAB (other control characters are
/// dropped, CR becomes LF). Every other value is one line: its control characters and line separators become
/// spaces, so an event cannot forge a line of the room message. `data.raw` is the provider's free-form payload,
/// where a form's free-text field legitimately has line breaks.
const MULTI_LINE_PATHS: &[&str] = &["data.message.text", "data.email.html", "data.raw"];

fn is_multi_line(path: &[String]) -> bool {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    MULTI_LINE_PATHS
        .iter()
        .any(|prefix| starts_with_subtree(&segments, prefix))
}

/// Subtrees whose shape is free-form or owned elsewhere: any path below them is accepted.
const OPEN_SUBTREES: &[&str] = &["data.raw", "data.email", "data.postback.params"];

/// Whether a placeholder path can occur in an envelope v1 event: a schema path, a part of one (which renders
/// as JSON), or anything inside an open subtree.
pub fn is_known_path(segments: &[&str]) -> bool {
    if segments.is_empty() || segments.iter().any(|segment| segment.is_empty()) {
        return false;
    }
    OPEN_SUBTREES
        .iter()
        .any(|subtree| starts_with_subtree(segments, subtree))
        || SCHEMA_PATHS
            .iter()
            .any(|pattern| leads_into_pattern(segments, pattern))
}

fn starts_with_subtree(segments: &[&str], subtree: &str) -> bool {
    let mut remaining = segments.iter();
    subtree
        .split('.')
        .all(|expected| remaining.next() == Some(&expected))
}

fn leads_into_pattern(segments: &[&str], pattern: &str) -> bool {
    let mut pattern_segments = pattern.split('.');
    segments
        .iter()
        .all(|segment| match pattern_segments.next() {
            Some("*") => is_index(segment),
            Some(expected) => expected == *segment,
            None => false,
        })
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// A configuration error in a notification template. Offsets are in bytes from the template's start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at byte {offset} is not closed by `}}}}`")]
    UnclosedPlaceholder { offset: usize },
    #[error("`}}}}` at byte {offset} closes no placeholder")]
    UnopenedClose { offset: usize },
    #[error("empty placeholder at byte {offset}")]
    EmptyPlaceholder { offset: usize },
    #[error("unknown placeholder {{{{{path}}}}} at byte {offset}")]
    UnknownPlaceholder { path: String, offset: usize },
}

/// A parsed notification template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(Vec<String>),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        loop {
            let Some((literal, after_open)) = rest.split_once(OPEN) else {
                if let Some(close_at) = rest.find(CLOSE) {
                    return Err(TemplateError::UnopenedClose {
                        offset: offset + close_at,
                    });
                }
                push_text(&mut parts, rest);
                return Ok(Template { parts });
            };
            if let Some(close_at) = literal.find(CLOSE) {
                return Err(TemplateError::UnopenedClose {
                    offset: offset + close_at,
                });
            }
            push_text(&mut parts, literal);
            let open_at = offset + literal.len();
            let Some((inner, after_close)) = after_open.split_once(CLOSE) else {
                return Err(TemplateError::UnclosedPlaceholder { offset: open_at });
            };
            if inner.contains(OPEN) {
                return Err(TemplateError::UnclosedPlaceholder { offset: open_at });
            }
            let path = inner.trim();
            if path.is_empty() {
                return Err(TemplateError::EmptyPlaceholder { offset: open_at });
            }
            let segments: Vec<&str> = path.split('.').collect();
            if !is_known_path(&segments) {
                return Err(TemplateError::UnknownPlaceholder {
                    path: path.to_owned(),
                    offset: open_at,
                });
            }
            parts.push(Part::Placeholder(
                segments.into_iter().map(str::to_owned).collect(),
            ));
            offset = open_at + OPEN.len() + inner.len() + CLOSE.len();
            rest = after_close;
        }
    }

    /// The text with every placeholder replaced by its value in `event`, markup in values neutralised and
    /// control characters too ([`MULTI_LINE_PATHS`] keep their line breaks, every other value is one line).
    /// A path absent from this event renders as nothing. Values are inserted once: a value that looks like
    /// a placeholder stays text.
    pub fn render(&self, event: &Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Placeholder(path) => {
                    if let Some(value) = resolve(event, path) {
                        let text = value_text(value);
                        let text = if is_multi_line(path) {
                            multi_line(&text)
                        } else {
                            single_line(&text)
                        };
                        push_neutralised(&mut out, &text);
                    }
                }
            }
        }
        out
    }
}

/// Template text is kept as written, except `\n` (backslash, n), which becomes a line break, so a template can
/// be set on one line (a dashboard field, `--var` on a command line).
fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.replace("\\n", "\n")));
    }
}

/// Follows `path` through objects (by key) and arrays (by decimal index).
fn resolve<'v>(event: &'v Value, path: &[impl AsRef<str>]) -> Option<&'v Value> {
    path.iter().try_fold(event, |value, segment| {
        let segment = segment.as_ref();
        match value {
            Value::Object(fields) => fields.get(segment),
            Value::Array(items) if is_index(segment) => segment
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => None,
        }
    })
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => serde_json::to_string(value).unwrap_or_default(),
    }
}

/// Chatwork markup is all square-bracket tags (`[toall]`, `[To:1]`, `[info]`, …): full-width brackets look
/// alike to a reader and are never parsed.
fn push_neutralised(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| match c {
        '[' => '［',
        ']' => '］',
        other => other,
    }));
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn plan_for(
        bindings: &HashMap<String, String>,
        event_type: &str,
    ) -> Result<Option<ChatworkNotice>, NotifyError> {
        plan(&Account::new("line", "acme-jp", bindings), event_type)
    }

    fn room_of(bindings: &HashMap<String, String>) -> Option<String> {
        plan_for(bindings, "message.received")
            .expect("valid configuration")
            .map(|notice| notice.room_id)
    }

    fn notice(room_id: &str) -> ChatworkNotice {
        ChatworkNotice {
            room_id: room_id.to_owned(),
            template_binding: None,
            self_unread: None,
        }
    }

    fn form_body(request: &ChatworkRequest) -> Vec<(String, String)> {
        form_urlencoded::parse(request.body.as_bytes())
            .into_owned()
            .collect()
    }

    fn rendered_message(request: &ChatworkRequest) -> String {
        form_body(request)
            .into_iter()
            .find(|(name, _)| name == "body")
            .map(|(_, value)| value)
            .expect("a body field")
    }

    fn render(template: &str, event: &Value) -> String {
        Template::parse(template)
            .expect("valid template")
            .render(event)
    }

    fn line_message_event() -> Value {
        json!({
            "specversion": "1.0",
            "id": "evt_0123456789abcdef0123456789abcdef",
            "source": "/line/acme-jp",
            "type": "message.received",
            "time": "2024-01-02T03:04:05.678Z",
            "datacontenttype": "application/json",
            "channel": "line",
            "account": "acme-jp",
            "data": {
                "provider_type": "message",
                "conversation": {"id": "U4af4980629", "kind": "direct"},
                "sender": {"id": "U4af4980629", "name": "佐藤 花子"},
                "message": {
                    "id": "444573844083572737",
                    "kind": "text",
                    "text": "こんにちは",
                    "attachments": [
                        {"kind": "file", "name": "見積書.pdf", "size": 20480},
                        {"kind": "image", "name": "photo.jpg"}
                    ]
                },
                "verification": {"scheme": "line-hmac-sha256", "key_index": 0},
                "raw": {"type": "message"}
            }
        })
    }

    fn satori_form_event() -> Value {
        json!({
            "specversion": "1.0",
            "id": "evt_fedcba9876543210fedcba9876543210",
            "source": "/generic/satori",
            "type": "form.submitted",
            "time": "2024-05-01T00:00:00.000Z",
            "datacontenttype": "application/json",
            "channel": "generic",
            "account": "satori",
            "data": {
                "provider_type": "form",
                "verification": {"scheme": "bearer", "key_index": 0},
                "raw": {"company": "株式会社テスト", "name": "山田 太郎", "email": "taro@example.jp"}
            }
        })
    }

    fn plan(
        account: &Account<'_>,
        event_type: &str,
    ) -> Result<Option<ChatworkNotice>, NotifyError> {
        Ok(settings(account)?.and_then(|settings| settings.notice_for(event_type)))
    }

    fn check_template(account: &Account<'_>) -> Result<(), NotifyError> {
        match settings(account)?.and_then(|settings| settings.template_problem) {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    #[test]
    fn a_typed_backslash_n_in_the_template_is_a_line_break_but_not_in_values() {
        let template = Template::parse("[info]{{data.raw.a}}\\n{{data.raw.b}}[/info]").unwrap();
        let event = serde_json::json!({"data": {"raw": {"a": "one\\ntwo", "b": "three"}}});
        assert_eq!(template.render(&event), "[info]one\\ntwo\nthree[/info]");
    }

    #[test]
    fn the_room_comes_from_the_account_then_the_channel_then_the_gateway() {
        let all = env(&[
            ("LINE_ACME_JP_NOTIFY_CHATWORK_ROOM", "111"),
            ("LINE_NOTIFY_CHATWORK_ROOM", "222"),
            ("NOTIFY_CHATWORK_ROOM", "333"),
        ]);
        assert_eq!(room_of(&all).as_deref(), Some("111"));

        let channel_and_global = env(&[
            ("LINE_NOTIFY_CHATWORK_ROOM", "222"),
            ("NOTIFY_CHATWORK_ROOM", "333"),
        ]);
        assert_eq!(room_of(&channel_and_global).as_deref(), Some("222"));

        let global = env(&[("NOTIFY_CHATWORK_ROOM", "333")]);
        assert_eq!(room_of(&global).as_deref(), Some("333"));

        let other_channel_and_account = env(&[
            ("SLACK_NOTIFY_CHATWORK_ROOM", "444"),
            ("LINE_OTHER_NOTIFY_CHATWORK_ROOM", "555"),
        ]);
        assert_eq!(room_of(&other_channel_and_account), None);
    }

    #[test]
    fn no_room_anywhere_means_no_notice_even_with_other_settings() {
        let bindings = env(&[
            ("NOTIFY_TYPES", "*"),
            ("NOTIFY_TEMPLATE", "{{broken"),
            ("NOTIFY_SELF_UNREAD", "maybe"),
        ]);
        assert_eq!(plan_for(&bindings, "message.received"), Ok(None));
    }

    #[test]
    fn a_blank_room_binding_counts_as_unset() {
        let bindings = env(&[
            ("LINE_ACME_JP_NOTIFY_CHATWORK_ROOM", "  "),
            ("NOTIFY_CHATWORK_ROOM", " 333\n"),
        ]);
        assert_eq!(room_of(&bindings).as_deref(), Some("333"));
    }

    #[test]
    fn a_room_id_is_one_to_twenty_digits() {
        let twenty = "9".repeat(20);
        assert_eq!(
            room_of(&env(&[("NOTIFY_CHATWORK_ROOM", &twenty)])),
            Some(twenty.clone())
        );
        for bad in [
            "abc",
            "12 34",
            "-1",
            "１２３",
            "123abc",
            "#!rid123",
            &"9".repeat(21),
        ] {
            let bindings = env(&[("LINE_NOTIFY_CHATWORK_ROOM", bad)]);
            let error = plan_for(&bindings, "message.received").unwrap_err();
            assert_eq!(
                error,
                NotifyError::InvalidRoom {
                    binding: "LINE_NOTIFY_CHATWORK_ROOM".into()
                },
                "{bad:?}"
            );
            assert_eq!(error.reason(), "invalid_notify_room");
            assert!(error.to_string().contains("LINE_NOTIFY_CHATWORK_ROOM"));
        }
    }

    #[test]
    fn the_type_filter_takes_exact_types_prefix_wildcards_and_star() {
        assert!(type_selected("follow, message.*", "message.received"));
        assert!(type_selected("follow, message.*", "message.a.b"));
        assert!(type_selected("follow message.*", "follow"));
        assert!(type_selected("*", "unrecognized"));
        assert!(!type_selected("message.*", "messages.x"));
        assert!(!type_selected("message.*", "message"));
        assert!(!type_selected("message.*", "message."));
        assert!(!type_selected("follow", "unfollow"));
        assert!(!type_selected("message.received", "message.received.extra"));
        assert!(!type_selected(" , ", "message.received"));
    }

    #[test]
    fn the_type_filter_decides_per_event_and_falls_back_like_the_room() {
        let mut bindings = env(&[
            ("NOTIFY_CHATWORK_ROOM", "123"),
            ("NOTIFY_TYPES", "follow"),
            ("LINE_NOTIFY_TYPES", "message.*, form.submitted"),
        ]);
        assert!(plan_for(&bindings, "message.received").unwrap().is_some());
        assert!(plan_for(&bindings, "form.submitted").unwrap().is_some());
        assert_eq!(plan_for(&bindings, "follow"), Ok(None));
        assert_eq!(plan_for(&bindings, "postback"), Ok(None));

        bindings.insert("LINE_ACME_JP_NOTIFY_TYPES".into(), "*".into());
        assert!(plan_for(&bindings, "postback").unwrap().is_some());

        let unfiltered = env(&[("NOTIFY_CHATWORK_ROOM", "123")]);
        for event_type in ["message.received", "unrecognized", "member.joined"] {
            assert!(plan_for(&unfiltered, event_type).unwrap().is_some());
        }
    }

    #[test]
    fn settings_are_checked_even_when_the_filter_declines_the_event() {
        let bindings = env(&[
            ("NOTIFY_CHATWORK_ROOM", "123"),
            ("NOTIFY_TYPES", "follow"),
            ("LINE_NOTIFY_SELF_UNREAD", "maybe"),
        ]);
        assert_eq!(
            plan_for(&bindings, "message.received")
                .unwrap_err()
                .reason(),
            "invalid_notify_self_unread"
        );
    }

    #[test]
    fn the_template_binding_is_the_most_specific_one_set() {
        let mut bindings = env(&[("NOTIFY_CHATWORK_ROOM", "123")]);
        let template_of = |bindings: &HashMap<String, String>| {
            plan_for(bindings, "follow")
                .unwrap()
                .unwrap()
                .template_binding
        };
        assert_eq!(template_of(&bindings), None);
        bindings.insert("NOTIFY_TEMPLATE".into(), "{{type}}".into());
        assert_eq!(template_of(&bindings).as_deref(), Some("NOTIFY_TEMPLATE"));
        bindings.insert("LINE_NOTIFY_TEMPLATE".into(), "{{type}}".into());
        assert_eq!(
            template_of(&bindings).as_deref(),
            Some("LINE_NOTIFY_TEMPLATE")
        );
        bindings.insert("LINE_ACME_JP_NOTIFY_TEMPLATE".into(), "{{type}}".into());
        assert_eq!(
            template_of(&bindings).as_deref(),
            Some("LINE_ACME_JP_NOTIFY_TEMPLATE")
        );
    }

    #[test]
    fn a_broken_template_is_reported_at_first_use_and_the_notice_still_queued() {
        let bindings = env(&[
            ("NOTIFY_CHATWORK_ROOM", "123"),
            ("LINE_ACME_JP_NOTIFY_TEMPLATE", "Hi {{data.sender.idd}}"),
        ]);
        let notice = plan_for(&bindings, "message.received").unwrap().unwrap();
        assert_eq!(
            notice.template_binding.as_deref(),
            Some("LINE_ACME_JP_NOTIFY_TEMPLATE")
        );
        let error = check_template(&Account::new("line", "acme-jp", &bindings)).unwrap_err();
        assert_eq!(
            error,
            NotifyError::Template {
                binding: "LINE_ACME_JP_NOTIFY_TEMPLATE".into(),
                source: TemplateError::UnknownPlaceholder {
                    path: "data.sender.idd".into(),
                    offset: 3
                }
            }
        );
        assert_eq!(
            error.to_string(),
            "notification template `LINE_ACME_JP_NOTIFY_TEMPLATE` is invalid: unknown placeholder \
             {{data.sender.idd}} at byte 3"
        );
    }

    #[test]
    fn the_default_template_is_valid_and_reads_well() {
        let message = render(DEFAULT_TEMPLATE, &line_message_event());
        assert_eq!(
            message,
            "[info][title]message.received: line/acme-jp[/title]佐藤 花子 (U4af4980629)\nこんにちは[/info]"
        );
    }

    #[test]
    fn self_unread_accepts_yes_and_no_words_and_is_omitted_when_unset() {
        let self_unread_of = |value: Option<&str>| {
            let mut bindings = env(&[("NOTIFY_CHATWORK_ROOM", "123")]);
            if let Some(value) = value {
                bindings.insert("LINE_NOTIFY_SELF_UNREAD".into(), value.into());
            }
            plan_for(&bindings, "follow").map(|notice| notice.and_then(|n| n.self_unread))
        };
        assert_eq!(self_unread_of(None), Ok(None));
        for yes in ["1", "true", "yes", "TRUE", " Yes "] {
            assert_eq!(self_unread_of(Some(yes)), Ok(Some(true)), "{yes:?}");
        }
        for no in ["0", "false", "no", "No"] {
            assert_eq!(self_unread_of(Some(no)), Ok(Some(false)), "{no:?}");
        }
        for bad in ["2", "on", "y", "truee"] {
            let error = self_unread_of(Some(bad)).unwrap_err();
            assert_eq!(
                error,
                NotifyError::InvalidSelfUnread {
                    binding: "LINE_NOTIFY_SELF_UNREAD".into()
                }
            );
            assert_eq!(error.reason(), "invalid_notify_self_unread");
        }
    }

    #[test]
    fn a_satori_form_becomes_the_exact_chatwork_request() {
        let template =
            "[info][title]資料請求[/title]{{data.raw.company}} {{data.raw.name}} 様[/info]";
        let bindings = env(&[
            ("GENERIC_SATORI_NOTIFY_CHATWORK_ROOM", "93207172"),
            ("GENERIC_SATORI_NOTIFY_TEMPLATE", template),
            ("GENERIC_NOTIFY_SELF_UNREAD", "yes"),
            ("CHATWORK_API_TOKEN", "0123456789abcdef0123456789abcdef"),
        ]);
        let account = Account::new("generic", "satori", &bindings);
        let notice = plan(&account, "form.submitted").unwrap().unwrap();
        assert_eq!(
            notice,
            ChatworkNotice {
                room_id: "93207172".into(),
                template_binding: Some("GENERIC_SATORI_NOTIFY_TEMPLATE".into()),
                self_unread: Some(true),
            }
        );

        let event_json = serde_json::to_string(&satori_form_event()).unwrap();
        let request = request(&notice, &event_json, &bindings).unwrap();
        assert_eq!(
            request.url,
            "https://api.chatwork.com/v2/rooms/93207172/messages"
        );
        assert_eq!(
            request.headers,
            vec![
                (
                    "x-chatworktoken",
                    "0123456789abcdef0123456789abcdef".to_owned()
                ),
                (
                    "content-type",
                    "application/x-www-form-urlencoded".to_owned()
                ),
            ]
        );
        assert_eq!(
            form_body(&request),
            vec![
                (
                    "body".to_owned(),
                    "[info][title]資料請求[/title]株式会社テスト 山田 太郎 様[/info]".to_owned()
                ),
                ("self_unread".to_owned(), "1".to_owned()),
            ]
        );
        assert!(request.body.is_ascii(), "form bodies are percent-encoded");
        assert!(request.body.ends_with("&self_unread=1"));
    }

    #[test]
    fn the_form_body_is_exactly_encoded() {
        let bindings = env(&[
            ("NOTIFY_TEMPLATE", "{{type}} & more + 100%"),
            ("CHATWORK_API_TOKEN", "t"),
        ]);
        let mut notice = notice("1");
        notice.template_binding = Some("NOTIFY_TEMPLATE".into());
        notice.self_unread = Some(false);
        let request = request(&notice, r#"{"type":"follow"}"#, &bindings).unwrap();
        assert_eq!(
            request.body,
            "body=follow+%26+more+%2B+100%25&self_unread=0"
        );

        notice.self_unread = None;
        let request = super::request(&notice, r#"{"type":"follow"}"#, &bindings).unwrap();
        assert_eq!(request.body, "body=follow+%26+more+%2B+100%25");
    }

    #[test]
    fn japanese_text_and_newlines_survive_the_form_encoding() {
        let text = "お問い合わせ：「納期は？」\n改行あり 🍣 ＆ 記号 & = + %";
        let mut event = line_message_event();
        event["data"]["message"]["text"] = json!(text);
        let bindings = env(&[("CHATWORK_API_TOKEN", "t")]);
        let request = request(
            &notice("1"),
            &serde_json::to_string(&event).unwrap(),
            &bindings,
        )
        .unwrap();
        assert!(rendered_message(&request).ends_with(&format!("\n{text}[/info]")));
    }

    #[test]
    fn the_api_base_is_configurable_without_a_trailing_slash() {
        let bindings = env(&[
            ("CHATWORK_API_BASE", "http://127.0.0.1:8787/"),
            ("CHATWORK_API_TOKEN", "t"),
        ]);
        let request = request(&notice("42"), "{}", &bindings).unwrap();
        assert_eq!(request.url, "http://127.0.0.1:8787/v2/rooms/42/messages");
    }

    #[test]
    fn the_template_is_read_again_when_sending_and_falls_back_when_removed() {
        let event = serde_json::to_string(&line_message_event()).unwrap();
        let mut bindings = env(&[
            ("CHATWORK_API_TOKEN", "t"),
            ("LINE_ACME_JP_NOTIFY_TEMPLATE", "account {{type}}"),
            ("LINE_NOTIFY_TEMPLATE", "channel {{type}}"),
            ("NOTIFY_TEMPLATE", "global {{type}}"),
            ("SLACK_NOTIFY_TEMPLATE", "another channel {{type}}"),
        ]);
        let mut notice = notice("1");
        notice.template_binding = Some("LINE_ACME_JP_NOTIFY_TEMPLATE".into());
        let message = |bindings: &HashMap<String, String>| {
            rendered_message(&request(&notice, &event, bindings).unwrap())
        };

        assert_eq!(message(&bindings), "account message.received");
        bindings.insert(
            "LINE_ACME_JP_NOTIFY_TEMPLATE".into(),
            "fixed {{type}}".into(),
        );
        assert_eq!(message(&bindings), "fixed message.received");
        bindings.remove("LINE_ACME_JP_NOTIFY_TEMPLATE");
        assert_eq!(message(&bindings), "channel message.received");
        bindings.remove("LINE_NOTIFY_TEMPLATE");
        assert_eq!(message(&bindings), "global message.received");
        bindings.remove("NOTIFY_TEMPLATE");
        assert!(message(&bindings).starts_with("[info][title]message.received: line/acme-jp"));
    }

    #[test]
    fn a_template_broken_since_planning_is_reported_when_sending() {
        let bindings = env(&[
            ("CHATWORK_API_TOKEN", "t"),
            ("LINE_NOTIFY_TEMPLATE", "{{}}"),
        ]);
        let mut notice = notice("1");
        notice.template_binding = Some("LINE_NOTIFY_TEMPLATE".into());
        assert_eq!(
            request(&notice, "{}", &bindings),
            Err(NotifyError::Template {
                binding: "LINE_NOTIFY_TEMPLATE".into(),
                source: TemplateError::EmptyPlaceholder { offset: 0 }
            })
        );
    }

    #[test]
    fn a_tampered_notice_cannot_post_another_binding() {
        let bindings = env(&[
            ("CHATWORK_API_TOKEN", "secret-token"),
            ("BACKEND_URL", "https://backend.example/hook"),
        ]);
        for binding in ["CHATWORK_API_TOKEN", "BACKEND_URL", "_NOTIFY_TEMPLATE", ""] {
            let mut notice = notice("1");
            notice.template_binding = Some(binding.into());
            let request = request(&notice, r#"{"type":"follow"}"#, &bindings).unwrap();
            let message = rendered_message(&request);
            assert!(!message.contains("secret-token"), "{binding}");
            assert!(!message.contains("backend.example"), "{binding}");
        }
        let mut forged = notice("1/../../v2/me");
        forged.template_binding = None;
        assert_eq!(
            request(&forged, "{}", &bindings),
            Err(NotifyError::InvalidRoom {
                binding: QUEUED_ROOM.into()
            })
        );
    }

    #[test]
    fn sending_needs_a_usable_token() {
        for bindings in [env(&[]), env(&[("CHATWORK_API_TOKEN", " ")])] {
            let error = request(&notice("1"), "{}", &bindings).unwrap_err();
            assert_eq!(error, NotifyError::MissingToken);
            assert_eq!(error.reason(), "missing_chatwork_token");
        }
        let bindings = env(&[("CHATWORK_API_TOKEN", "abc\r\nx-injected: 1")]);
        let error = request(&notice("1"), "{}", &bindings).unwrap_err();
        assert_eq!(error, NotifyError::InvalidToken);
        assert!(!error.to_string().contains("abc"));
    }

    #[test]
    fn the_event_must_be_json_and_the_message_must_not_be_empty() {
        let bindings = env(&[
            ("CHATWORK_API_TOKEN", "t"),
            ("NOTIFY_TEMPLATE", " {{data.message.text}} "),
        ]);
        assert_eq!(
            request(&notice("1"), "not json", &bindings),
            Err(NotifyError::EventNotJson)
        );
        let mut notice = notice("1");
        notice.template_binding = Some("NOTIFY_TEMPLATE".into());
        let postback = json!({"type": "postback", "data": {"postback": {"data": "x"}}}).to_string();
        let error = request(&notice, &postback, &bindings).unwrap_err();
        assert_eq!(error, NotifyError::EmptyMessage);
        assert_eq!(error.reason(), "empty_notify_message");
    }

    #[test]
    fn a_chatwork_event_is_not_announced_in_its_own_room() {
        let bindings = env(&[("CHATWORK_API_TOKEN", "t")]);
        let event = |channel: &str, room: &str| {
            json!({
                "type": "message.received",
                "channel": channel,
                "data": {"conversation": {"id": room, "kind": "room"}, "message": {"kind": "text", "text": "hi"}}
            })
            .to_string()
        };
        let error = request(
            &notice("93207172"),
            &event("chatwork", "93207172"),
            &bindings,
        )
        .unwrap_err();
        assert_eq!(error.reason(), "notify_loop");
        assert!(request(&notice("93207172"), &event("chatwork", "1"), &bindings).is_ok());
        assert!(request(&notice("93207172"), &event("line", "93207172"), &bindings).is_ok());
    }

    #[test]
    fn an_overlong_message_is_cut_at_chatworks_limit_on_a_character_boundary() {
        let mut event = line_message_event();
        event["data"]["message"]["text"] = json!("あ".repeat(30_000));
        let bindings = env(&[("CHATWORK_API_TOKEN", "t")]);
        let request = request(&notice("1"), &event.to_string(), &bindings).unwrap();
        let message = rendered_message(&request);
        assert!(message.len() <= MAX_MESSAGE_BYTES);
        assert!(message.len() > MAX_MESSAGE_BYTES - 8);
        assert!(message.ends_with("あ…"));

        let short = cap_message("short".into());
        assert_eq!(short, "short");
        let exact = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(cap_message(exact.clone()), exact);
    }

    #[test]
    fn debug_output_hides_the_token() {
        let bindings = env(&[("CHATWORK_API_TOKEN", "0123456789abcdef-secret")]);
        let request = request(&notice("1"), r#"{"type":"follow"}"#, &bindings).unwrap();
        let debug = format!("{request:?}");
        assert!(!debug.contains("0123456789abcdef-secret"), "{debug}");
        assert!(debug.contains("[redacted]"));
        assert!(debug.contains("application/x-www-form-urlencoded"));
        assert!(debug.contains("/v2/rooms/1/messages"));
    }

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
    fn markup_in_values_is_neutralised_but_the_template_keeps_its_own() {
        let mut event = line_message_event();
        event["data"]["message"]["text"] =
            json!("[toall][To:1234]hi[/info][rp aid=1 to=2-3][preview id=1 ht=2]");
        event["data"]["sender"]["name"] = json!("[piconname:1]");
        let message = render(DEFAULT_TEMPLATE, &event);
        assert_eq!(
            message,
            "[info][title]message.received: line/acme-jp[/title]［piconname:1］ (U4af4980629)\n\
             ［toall］［To:1234］hi［/info］［rp aid=1 to=2-3］［preview id=1 ht=2］[/info]"
        );
        assert_eq!(message.matches("[info]").count(), 1);
        assert!(!message.contains("[toall]"));
        assert!(!message.contains("[To:"));
    }

    #[test]
    fn single_line_values_cannot_forge_lines_and_texts_keep_only_their_line_breaks() {
        let mut event = line_message_event();
        // A LINE display name, an e-mail subject decoded from `=?utf-8?q?Invoice=0D=0ABcc=3A_all?=`, a form field.
        event["data"]["sender"]["name"] = json!("佐藤 花子\r\n承認者: 管理者\u{2028}");
        event["data"]["sender"]["id"] = json!("U4af\u{1b}[2J4980629\n");
        event["data"]["message"]["text"] = json!("一行目\r\n二行目\r三行目\u{0}\u{1b}[31m\tend");
        event["data"]["email"] =
            json!({"subject": "Invoice\r\nBcc: all", "from": {"name": "A\nB"}});
        event["data"]["raw"] = json!({"inquiry": "料金\r\nについて\u{7}", "list": ["a\nb", "c"]});
        let message = render(DEFAULT_TEMPLATE, &event);
        assert_eq!(
            message,
            "[info][title]message.received: line/acme-jp[/title]佐藤 花子 承認者: 管理者  \
             (U4af ［2J4980629 )\n一行目\n二行目\n三行目［31m\tend[/info]"
        );
        assert_eq!(
            render(
                "{{data.email.subject}}|{{data.email.from.name}}|{{data.raw.inquiry}}|{{data.raw.list}}|{{data.email}}",
                &event
            ),
            r#"Invoice Bcc: all|A B|料金
について|a
b, c|{"from":{"name":"A\nB"},"subject":"Invoice\r\nBcc: all"}"#
        );
    }

    #[test]
    fn markup_inside_rendered_json_is_neutralised_too() {
        let event = json!({"data": {"raw": {"note": ["[toall]"], "nested": {"x": "[qt]"}}}});
        assert_eq!(
            render("{{data.raw}}", &event),
            r#"{"nested":{"x":"［qt］"},"note":［"［toall］"］}"#
        );
    }

    #[test]
    fn values_cannot_inject_placeholders() {
        let event = json!({
            "type": "{{data.reply.token}}",
            "data": {"reply": {"token": "secret-reply-token"}, "raw": {"a": "{{type}}", "b": "}}{{"}}
        });
        assert_eq!(
            render("{{type}} {{data.raw.a}} {{ data.raw.b }}", &event),
            "{{data.reply.token}} {{type}} }}{{"
        );
    }

    #[test]
    fn values_render_by_their_json_kind() {
        let event = json!({
            "data": {
                "message": {"attachments": [{"kind": "file", "name": "a.pdf", "size": 20480}, {"kind": "image"}]},
                "verification": {"scheme": "line-hmac-sha256", "key_index": 0},
                "raw": {
                    "count": 3,
                    "ratio": 0.25,
                    "big": -12345678901234_i64,
                    "ok": true,
                    "no": false,
                    "nothing": null,
                    "tags": ["a", 1, true, null, ["x", "y"], {"k": "v"}],
                    "empty": [],
                    "object": {"b": 1, "a": "テスト"},
                    "1": "numeric key"
                }
            }
        });
        let cases = [
            ("{{data.raw.count}}", "3"),
            ("{{data.raw.ratio}}", "0.25"),
            ("{{data.raw.big}}", "-12345678901234"),
            ("{{data.raw.ok}}/{{data.raw.no}}", "true/false"),
            ("<{{data.raw.nothing}}>", "<>"),
            ("{{data.raw.tags}}", r#"a, 1, true, , x, y, {"k":"v"}"#),
            ("<{{data.raw.empty}}>", "<>"),
            ("{{data.raw.object}}", r#"{"a":"テスト","b":1}"#),
            ("{{data.raw.tags.4.1}}", "y"),
            ("{{data.raw.1}}", "numeric key"),
            ("{{data.verification.key_index}}", "0"),
            (
                "{{data.message.attachments.0.name}} {{data.message.attachments.0.size}}",
                "a.pdf 20480",
            ),
            ("<{{data.message.attachments.1.name}}>", "<>"),
            ("<{{data.message.attachments.7.name}}>", "<>"),
            ("{{data.message.attachments.1}}", r#"{"kind":"image"}"#),
            (
                "<{{data.sender.name}}><{{data.email.subject}}><{{data.raw.count.deeper}}>",
                "<><><>",
            ),
        ];
        for (template, expected) in cases {
            assert_eq!(render(template, &event), expected, "{template}");
        }
    }

    #[test]
    fn placeholders_allow_spaces_inside_the_braces() {
        let event = json!({"type": "follow", "channel": "line"});
        assert_eq!(
            render("{{type}}|{{ type }}|{{\tchannel\n}}", &event),
            "follow|follow|line"
        );
        assert_eq!(render("a { b } c {x}", &event), "a { b } c {x}");
    }

    #[test]
    fn parse_errors_name_the_problem_and_its_byte_offset() {
        let cases = [
            (
                "Hello {{type",
                TemplateError::UnclosedPlaceholder { offset: 6 },
            ),
            (
                "{{type}} {{data.raw.x",
                TemplateError::UnclosedPlaceholder { offset: 9 },
            ),
            (
                "{{ {{type}} }}",
                TemplateError::UnclosedPlaceholder { offset: 0 },
            ),
            ("Hello }} there", TemplateError::UnopenedClose { offset: 6 }),
            ("{{type}}}}", TemplateError::UnopenedClose { offset: 8 }),
            ("あ}}", TemplateError::UnopenedClose { offset: 3 }),
            ("x {{}}", TemplateError::EmptyPlaceholder { offset: 2 }),
            ("x {{   }}", TemplateError::EmptyPlaceholder { offset: 2 }),
            (
                "件名：{{data.sender.idd}}",
                TemplateError::UnknownPlaceholder {
                    path: "data.sender.idd".into(),
                    offset: 9,
                },
            ),
            (
                "{{data.message.attachments.x.name}}",
                TemplateError::UnknownPlaceholder {
                    path: "data.message.attachments.x.name".into(),
                    offset: 0,
                },
            ),
            (
                "{{data.raw..x}}",
                TemplateError::UnknownPlaceholder {
                    path: "data.raw..x".into(),
                    offset: 0,
                },
            ),
            (
                "{{Type}}",
                TemplateError::UnknownPlaceholder {
                    path: "Type".into(),
                    offset: 0,
                },
            ),
            (
                "{{data.rawx}}",
                TemplateError::UnknownPlaceholder {
                    path: "data.rawx".into(),
                    offset: 0,
                },
            ),
        ];
        for (template, expected) in cases {
            assert_eq!(Template::parse(template), Err(expected), "{template}");
        }
        assert_eq!(
            Template::parse("Hi {{data.sender.idd}}")
                .unwrap_err()
                .to_string(),
            "unknown placeholder {{data.sender.idd}} at byte 3"
        );
        assert_eq!(
            Template::parse("Hello {{type").unwrap_err().to_string(),
            "`{{` at byte 6 is not closed by `}}`"
        );
        assert_eq!(
            Template::parse("a }}").unwrap_err().to_string(),
            "`}}` at byte 2 closes no placeholder"
        );
    }

    #[test]
    fn known_paths_cover_parts_of_the_schema_and_the_open_subtrees() {
        let known = |path: &str| is_known_path(&path.split('.').collect::<Vec<_>>());
        for path in [
            "type",
            "data",
            "data.sender",
            "data.members.12.name",
            "data.message.attachments",
            "data.message.attachments.0",
            "data.conversation.kind",
            "data.raw",
            "data.raw.company",
            "data.raw.お名前.0",
            "data.email.from.address",
            "data.email.to.0.name",
            "data.postback.params.date",
        ] {
            assert!(known(path), "{path}");
        }
        for path in [
            "",
            "types",
            "data.sender.id.x",
            "data.members.name",
            "data.members.-1.name",
            "data.message.attachments.+1",
            "data.raw.",
            "data.emails",
            "raw.company",
        ] {
            assert!(!known(path), "{path}");
        }
    }

    /// Every leaf of the schema, `*` for array items, as `(path, is_leaf)` for every node.
    fn schema_paths(node: &Value, defs: &Value, path: &str, out: &mut Vec<(String, bool)>) {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/$defs/")
                .expect("local $defs reference");
            return schema_paths(&defs[name], defs, path, out);
        }
        let join = |segment: &str| {
            if path.is_empty() {
                segment.to_owned()
            } else {
                format!("{path}.{segment}")
            }
        };
        let mut leaf = true;
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            leaf = false;
            for (name, child) in properties {
                schema_paths(child, defs, &join(name), out);
            }
        }
        if let Some(items) = node.get("items") {
            leaf = false;
            schema_paths(items, defs, &join("*"), out);
        }
        out.push((path.to_owned(), leaf));
    }

    #[test]
    fn the_known_paths_match_the_published_schema() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/event-v1.schema.json"
        ))
        .expect("schema file");
        let schema: Value = serde_json::from_str(&text).expect("schema JSON");
        let mut nodes = Vec::new();
        schema_paths(&schema, &schema["$defs"], "", &mut nodes);
        let in_open_subtree = |path: &str| {
            OPEN_SUBTREES
                .iter()
                .any(|subtree| path == *subtree || path.starts_with(&format!("{subtree}.")))
        };
        let leaves: BTreeSet<&str> = nodes
            .iter()
            .filter(|(path, leaf)| *leaf && !in_open_subtree(path))
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(leaves.len() > 30, "the walk found the schema's leaves");

        for leaf in &leaves {
            let as_template_path = leaf.replace('*', "0");
            assert!(
                is_known_path(&as_template_path.split('.').collect::<Vec<_>>()),
                "schema leaf `{leaf}` is missing from SCHEMA_PATHS"
            );
        }
        let listed: BTreeSet<&str> = SCHEMA_PATHS.iter().copied().collect();
        assert_eq!(
            listed, leaves,
            "SCHEMA_PATHS must list exactly the schema's leaves"
        );
        for subtree in OPEN_SUBTREES {
            assert!(
                nodes.iter().any(|(path, _)| path == subtree),
                "open subtree `{subtree}` is not in the schema"
            );
        }
    }

    fn json_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\[\\]{}a-z .あ]{0,12}".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "id",
            "name",
            "text",
            "sender",
            "message",
            "attachments",
            "raw",
            "0",
            "1",
            "company",
        ]);
        json_leaf().prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|fields| {
                    Value::Object(
                        fields
                            .into_iter()
                            .map(|(name, value)| (name.to_owned(), value))
                            .collect(),
                    )
                }),
            ]
        })
    }

    fn json_event() -> impl Strategy<Value = Value> {
        (
            json_value(),
            json_value(),
            json_value(),
            json_value(),
            json_value(),
        )
            .prop_map(|(kind, sender, message, raw, email)| {
                json!({
                    "type": kind,
                    "channel": "line",
                    "data": {"sender": sender, "message": message, "raw": raw, "email": email,
                             "conversation": {"id": "1"}}
                })
            })
    }

    fn template_text() -> impl Strategy<Value = String> {
        let fragment = prop::sample::select(vec![
            "{{",
            "}}",
            "{",
            "}",
            " ",
            ".",
            "data",
            "raw",
            "sender",
            "message",
            "attachments",
            "id",
            "text",
            "type",
            "0",
            "12",
            "x",
            "あ",
            "[",
            "]",
            "\n",
        ]);
        prop_oneof![
            any::<String>(),
            "[{}a-z0-9 .\\[\\]]{0,40}",
            prop::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat()),
        ]
    }

    fn known_template_path() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(SCHEMA_PATHS.to_vec()).prop_map(|path| path.replace('*', "0")),
            prop::sample::select(vec![
                "data",
                "data.raw",
                "data.raw.company",
                "data.raw.0.text",
                "data.email",
                "data.sender",
                "data.message.attachments",
            ])
            .prop_map(str::to_owned),
        ]
    }

    proptest! {
        #[test]
        fn parsing_and_rendering_never_panic(text in template_text(), event in json_event()) {
            match Template::parse(&text) {
                Ok(template) => {
                    let _ = template.render(&event);
                }
                Err(error) => {
                    let offset = match &error {
                        TemplateError::UnclosedPlaceholder { offset }
                        | TemplateError::UnopenedClose { offset }
                        | TemplateError::EmptyPlaceholder { offset }
                        | TemplateError::UnknownPlaceholder { offset, .. } => *offset,
                    };
                    prop_assert!(offset < text.len());
                    prop_assert!(text.is_char_boundary(offset));
                    prop_assert!(!error.to_string().is_empty());
                }
            }
        }

        #[test]
        fn inserted_values_never_carry_square_brackets(
            paths in prop::collection::vec(known_template_path(), 1..6),
            event in json_event(),
        ) {
            let text: String = paths.iter().map(|path| format!("{{{{ {path} }}}}|")).collect();
            let rendered = Template::parse(&text).expect("known paths parse").render(&event);
            prop_assert!(!rendered.contains('[') && !rendered.contains(']'), "{rendered}");
        }

        #[test]
        fn requests_never_panic_on_any_event_body(
            body in prop_oneof![any::<String>(), json_event().prop_map(|event| event.to_string())],
            template in template_text(),
        ) {
            let bindings = env(&[("CHATWORK_API_TOKEN", "t"), ("NOTIFY_TEMPLATE", &template)]);
            let notice = ChatworkNotice {
                room_id: "1".into(),
                template_binding: Some("NOTIFY_TEMPLATE".into()),
                self_unread: Some(true),
            };
            if let Ok(request) = request(&notice, &body, &bindings) {
                prop_assert!(rendered_message(&request).len() <= MAX_MESSAGE_BYTES);
            }
        }
    }
}
