use crate::channels::Handled;
use crate::envelope::Event;
use std::collections::HashMap;

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::*;
use crate::query::Query;

const SECRET: &str = "4f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e";

fn bindings(secret: &str) -> HashMap<String, String> {
    HashMap::from([("CHATPLUS_DEMO_PATH_SECRET".to_owned(), secret.to_owned())])
}

fn request<'a>(
    method: &'a Method,
    extra_path: &'a [&'a str],
    query: &'a Query,
    headers: &'a HeaderMap,
    body: &'a [u8],
) -> ChannelRequest<'a> {
    ChannelRequest {
        method,
        origin: "https://gateway.test",
        path: "/chatplus/demo",
        raw_query: None,
        extra_path,
        query,
        headers,
        body,
        now_ms: 9,
    }
}

fn call(
    bindings: &HashMap<String, String>,
    method: Method,
    extra_path: &[&str],
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Handled, Rejection> {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    }
    let query = Query::default();
    let request = request(&method, extra_path, &query, &headers, body);
    let verdict = ChatPlus.handle(&request, &Account::new("chatplus", "demo", bindings))?;
    Ok(Handled::new("chatplus", "demo", verdict))
}

fn single(handled: Result<Handled, Rejection>) -> Event {
    let mut events = handled.unwrap().events;
    assert_eq!(events.len(), 1);
    events.remove(0)
}

// shared/vectors/chatplus.json suggested_test: correct → 200, wrong → 404, missing → 404.
#[test]
fn shared_suggested_cases() {
    let body = br#"{"event":"chat_start","chat_id":"c1"}"#;
    let correct = call(&bindings(SECRET), Method::POST, &[SECRET], None, body);
    assert_eq!(correct.unwrap().response.status, 200);
    let mut wrong = SECRET.to_owned();
    wrong.replace_range(..1, "5");
    for path in [
        vec![wrong.as_str()],
        vec![],
        vec![SECRET, "extra"],
        vec![""],
    ] {
        let result = call(&bindings(SECRET), Method::POST, &path, None, body);
        assert_eq!(result.unwrap_err(), Rejection::UnknownAccount, "{path:?}");
    }
}

#[test]
fn wrong_secret_answers_404_before_the_method_is_checked() {
    let result = call(&bindings(SECRET), Method::GET, &["guess"], None, b"");
    assert_eq!(result.unwrap_err(), Rejection::UnknownAccount);
    let result = call(&bindings(SECRET), Method::GET, &[SECRET], None, b"");
    assert_eq!(result.unwrap_err(), Rejection::MethodNotAllowed);
}

#[test]
fn unknown_account_is_the_same_rejection() {
    let (method, query, headers) = (Method::POST, Query::default(), HeaderMap::new());
    let request = request(&method, &["guess"], &query, &headers, b"{}");
    assert_eq!(
        ChatPlus.unknown_account(&request),
        Rejection::UnknownAccount
    );
    assert_eq!(
        ChatPlus.unknown_account(&request).reason(),
        Rejection::RouteNotFound.reason()
    );
}

#[test]
fn rotated_secrets_and_weak_secrets() {
    let rotated = format!("{},{SECRET}", "a".repeat(40));
    let event = single(call(
        &bindings(&rotated),
        Method::POST,
        &[SECRET],
        None,
        b"{}",
    ));
    assert_eq!(event.data.verification.key_index, 1);
    for weak in ["short", &format!("{}/", "a".repeat(40))] {
        let result = call(&bindings(weak), Method::POST, &[weak], None, b"{}");
        assert_eq!(
            result.unwrap_err(),
            Rejection::misconfigured("CHATPLUS_DEMO_PATH_SECRET")
        );
    }
}

#[test]
fn the_six_events_in_english_and_japanese() {
    let cases = [
        ("chat_start", "conversation.started"),
        ("チャット開始", "conversation.started"),
        ("chatEnded", "conversation.ended"),
        ("チャット終了", "conversation.ended"),
        ("chat.received", "message.received"),
        ("チャット受信", "message.received"),
        ("chat_sent", "message.sent"),
        ("チャット送信", "message.sent"),
        ("in_progress", "conversation.assigned"),
        ("対応中", "conversation.assigned"),
        ("chat_read", "message.read"),
        ("既読", "message.read"),
    ];
    for (name, expected) in cases {
        assert_eq!(classify(name), Some(expected), "{name}");
    }
    assert_eq!(classify("thread_unread"), None);
    assert_eq!(classify("未対応"), None);
    assert_eq!(classify("message_created"), None);
}

#[test]
fn json_payload_fields_are_mapped() {
    let body = r#"{"event":"chat_received","event_id":"ev-1","chat_id":"c-9","timestamp":1700000000,
            "visitor":{"id":"v-3","name":"Hanako"},"message":{"id":"m-7","text":"こんにちは"},"type":"text"}"#;
    let event = single(call(
        &bindings(SECRET),
        Method::POST,
        &[SECRET],
        Some("application/json"),
        body.as_bytes(),
    ));
    assert_eq!(event.event_type, "message.received");
    assert_eq!(event.data.provider_type, "chat_received");
    assert_eq!(
        event.id,
        crate::envelope::event_id("chatplus", "demo", "id:ev-1")
    );
    assert_eq!(event.time, "2023-11-14T22:13:20.000Z");
    assert_eq!(
        event.data.conversation,
        Some(Conversation {
            id: "c-9".into(),
            kind: ConversationKind::Direct
        })
    );
    assert_eq!(
        event.data.sender,
        Some(Sender {
            id: "v-3".into(),
            name: Some("Hanako".into())
        })
    );
    let message = event.data.message.unwrap();
    assert_eq!(
        (message.id.as_deref(), message.text.as_deref()),
        (Some("m-7"), Some("こんにちは"))
    );
    assert_eq!(event.data.raw.value()["visitor"]["name"], "Hanako");
}

#[test]
fn form_payloads_are_decoded_and_sent_messages_come_from_the_operator() {
    let body = b"event=%E3%83%81%E3%83%A3%E3%83%83%E3%83%88%E9%80%81%E4%BF%A1&data%5Bchat_id%5D=c-1&operator_id=op-2&visitor_id=v-3&message=Thanks+a+lot%21&tag=a&tag=b";
    let handled = call(
        &bindings(SECRET),
        Method::POST,
        &[SECRET],
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        body,
    );
    let event = single(handled);
    assert_eq!(event.event_type, "message.sent");
    assert_eq!(event.data.provider_type, "チャット送信");
    assert_eq!(event.data.conversation.unwrap().id, "c-1");
    assert_eq!(event.data.sender.unwrap().id, "op-2");
    assert_eq!(
        event.data.message.unwrap().text.as_deref(),
        Some("Thanks a lot!")
    );
    assert_eq!(event.data.raw.value()["tag"], serde_json::json!(["a", "b"]));
    assert_eq!(
        event.id,
        crate::envelope::event_id("chatplus", "demo", &content_hash_key(body))
    );
}

#[test]
fn status_is_the_fallback_and_unknown_payloads_pass_through() {
    let event = single(call(
        &bindings(SECRET),
        Method::POST,
        &[SECRET],
        None,
        br#"{"event":"update","status":"closed"}"#,
    ));
    assert_eq!(
        (event.event_type.as_str(), event.data.provider_type.as_str()),
        ("conversation.ended", "closed")
    );
    let event = single(call(
        &bindings(SECRET),
        Method::POST,
        &[SECRET],
        None,
        br#"{"event":"label_changed","chat_id":1}"#,
    ));
    assert_eq!(
        (event.event_type.as_str(), event.data.provider_type.as_str()),
        (UNRECOGNIZED_TYPE, "label_changed")
    );
    assert!(event.data.message.is_none());
    let event = single(call(
        &bindings(SECRET),
        Method::POST,
        &[SECRET],
        None,
        b"[1,2]",
    ));
    assert_eq!(event.data.provider_type, "unknown");
    assert_eq!(event.time, "1970-01-01T00:00:00.009Z");
}

#[test]
fn bodies_that_are_neither_json_nor_form_are_malformed() {
    for body in [&b""[..], b"   ", b"just text", b"\xff=\xfe"] {
        let result = call(&bindings(SECRET), Method::POST, &[SECRET], None, body);
        assert_eq!(
            result.unwrap_err(),
            Rejection::MalformedBody {
                expected: "JSON or form"
            },
            "{body:?}"
        );
    }
}

#[test]
fn keys_and_times_normalize() {
    assert_eq!(normalize_key("data[chat_id]"), "chatid");
    assert_eq!(normalize_key("Chat-ID"), "chatid");
    assert_eq!(normalize_key("chatId"), "chatid");
    assert_eq!(time_ms("1700000000"), Some(1_700_000_000_000));
    assert_eq!(time_ms("1700000000123"), Some(1_700_000_000_123));
    assert_eq!(
        time_ms("2023-11-15T07:13:20+09:00"),
        Some(1_700_000_000_000)
    );
    assert_eq!(time_ms("2023/11/15 07:13:20"), None);
}

#[test]
fn sign_puts_the_secret_in_the_path() {
    let params = SignParams {
        body: b"event=chat_start".to_vec(),
        options: [("secret".to_owned(), SECRET.to_owned())].into(),
        now_s: 0,
    };
    let signed = ChatPlus.sign(&params).unwrap();
    assert_eq!(signed.extra_path, vec![SECRET.to_owned()]);
    let path: Vec<&str> = signed.extra_path.iter().map(String::as_str).collect();
    let event = single(call(
        &bindings(SECRET),
        signed.method,
        &path,
        Some(signed.headers[0].1.as_str()),
        &signed.body,
    ));
    assert_eq!(event.event_type, "conversation.started");
    let weak = SignParams {
        options: [("secret".to_owned(), "short".to_owned())].into(),
        ..params
    };
    assert!(ChatPlus.sign(&weak).is_err());
}

fn json_body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just("chat_start".to_owned()),
            Just("既読".to_owned()),
            Just("2023-11-15T07:13:20+09:00".to_owned()),
            ".{0,12}"
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("event"),
        Just("status"),
        Just("chat_id"),
        Just("chat"),
        Just("visitor"),
        Just("id"),
        Just("message"),
        Just("timestamp"),
        Just("event_id"),
        Just("data[x]"),
        Just("]["),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
    .prop_map(|value| value.to_string())
}

proptest! {
    #[test]
    fn handle_never_panics(
        body in prop_oneof![
            json_body().prop_map(String::into_bytes),
            "[a-z%+=&\\[\\]0-9]{0,40}".prop_map(String::into_bytes),
            any::<Vec<u8>>(),
        ],
        path in prop::collection::vec(prop_oneof![Just(SECRET.to_owned()), "[ -~]{0,40}"], 0..3),
        content_type in prop::option::of(prop_oneof![
            Just("application/x-www-form-urlencoded".to_owned()),
            "[ -~]{0,30}",
        ]),
        method in prop_oneof![Just(Method::POST), Just(Method::GET)],
    ) {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let _ = call(&bindings(SECRET), method.clone(), &path, content_type.as_deref(), &body);
        let (query, headers) = (Query::default(), HeaderMap::new());
        let request = request(&method, &path, &query, &headers, &body);
        prop_assert_eq!(ChatPlus.unknown_account(&request), Rejection::UnknownAccount);
    }
}
