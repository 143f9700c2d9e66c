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
        // Methods that change the bot, not answer the chat — in any spelling Telegram would accept.
        serde_json::json!({"method": "setWebhook", "url": "https://attacker.example/hook"}),
        serde_json::json!({"method": "SETWEBHOOK", "url": "https://attacker.example/hook"}),
        serde_json::json!({"method": "deleteWebhook"}),
        serde_json::json!({"method": "setMyCommands", "commands": []}),
        serde_json::json!({"method": "banChatMember", "user_id": 1}),
        serde_json::json!({"method": "forwardMessage", "from_chat_id": 2, "message_id": 3}),
        serde_json::json!({"method": "sendmessage", "text": "x"}),
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

    let parts =
        normalized(serde_json::json!({"update_id": 3, "inline_query": {"id": "1", "query": "q"}}));
    assert_eq!(parts.event_type, UNRECOGNIZED_TYPE);
    assert_eq!(parts.data.provider_type, "inline_query");
    assert_eq!(parts.time_ms, 5);
}

#[test]
fn message_kinds() {
    let kind = |content: Value| {
        let mut message =
            serde_json::json!({"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}});
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
    let sticker =
        kind(serde_json::json!({"sticker": {"file_id": "s", "set_name": "Pack", "emoji": "👍"}}));
    assert_eq!(sticker.sticker.unwrap().package_id.as_deref(), Some("Pack"));
    let location = kind(serde_json::json!({"location": {"latitude": 35.5, "longitude": 139.5}}));
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
