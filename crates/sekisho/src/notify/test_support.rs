//! Fixtures and generators shared by the notification tests.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::config::Account;

pub(super) fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

pub(super) fn plan_for(
    bindings: &HashMap<String, String>,
    event_type: &str,
) -> Result<Option<ChatworkNotice>, NotifyError> {
    plan(&Account::new("line", "acme-jp", bindings), event_type)
}

pub(super) fn room_of(bindings: &HashMap<String, String>) -> Option<String> {
    plan_for(bindings, "message.received")
        .expect("valid configuration")
        .map(|notice| notice.room_id)
}

pub(super) fn notice(room_id: &str) -> ChatworkNotice {
    ChatworkNotice {
        room_id: room_id.to_owned(),
        template_binding: None,
        self_unread: None,
    }
}

pub(super) fn form_body(request: &ChatworkRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(request.body.as_bytes())
        .into_owned()
        .collect()
}

pub(super) fn rendered_message(request: &ChatworkRequest) -> String {
    form_body(request)
        .into_iter()
        .find(|(name, _)| name == "body")
        .map(|(_, value)| value)
        .expect("a body field")
}

pub(super) fn render(template: &str, event: &Value) -> String {
    Template::parse(template)
        .expect("valid template")
        .render(event)
}

pub(super) fn line_message_event() -> Value {
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

pub(super) fn satori_form_event() -> Value {
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

pub(super) fn plan(
    account: &Account<'_>,
    event_type: &str,
) -> Result<Option<ChatworkNotice>, NotifyError> {
    Ok(settings(account)?.and_then(|settings| settings.notice_for(event_type)))
}

pub(super) fn check_template(account: &Account<'_>) -> Result<(), NotifyError> {
    match settings(account)?.and_then(|settings| settings.template_problem) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

pub(super) fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[\\[\\]{}a-z .あ]{0,12}".prop_map(Value::String),
    ]
}

pub(super) fn json_value() -> impl Strategy<Value = Value> {
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

pub(super) fn json_event() -> impl Strategy<Value = Value> {
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

pub(super) fn template_text() -> impl Strategy<Value = String> {
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
