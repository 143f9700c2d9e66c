use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::json;

use super::super::test_support::*;
use super::super::TemplateError;
use super::*;
use crate::config::Account;

#[test]
fn a_satori_form_becomes_the_exact_chatwork_request() {
    let template = "[info][title]資料請求[/title]{{data.raw.company}} {{data.raw.name}} 様[/info]";
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
