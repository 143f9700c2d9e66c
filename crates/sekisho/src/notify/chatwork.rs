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
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::TemplateError;
    use super::*;
    use crate::config::Account;

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
                binding: SettingOrigin::QueuedNotice
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

    proptest! {
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
