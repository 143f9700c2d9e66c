use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;
use crate::envelope::Raw;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

// shared/vectors/lineworks.json, lineworks-derived-text.
const SECRET: &str = "bot-secret";
const BOT_ID: &str = "bot-id";
const BODY: &str = r#"{"type":"message","content":{"type":"text","text":"hi"}}"#;
const SIGNATURE: &str = "vciLR7IFcNqs2C7zEqInqwpQqtGy+pOPXCdY23N1HoA=";

fn bindings(secret: &str) -> HashMap<String, String> {
    HashMap::from([
        ("LINEWORKS_DEMO_BOT_SECRET".to_owned(), secret.to_owned()),
        ("LINEWORKS_DEMO_BOT_ID".to_owned(), BOT_ID.to_owned()),
    ])
}

fn call(
    bindings: &HashMap<String, String>,
    method: Method,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Handled, Rejection> {
    let demo = DemoRequest {
        method,
        extra_path: &[],
        query: None,
        headers,
        body,
        now_ms: 1_700_000_000_000,
    };
    test_support::run(&LineWorks, bindings, demo)
}

#[test]
fn shared_vector_signature_is_reproduced_and_accepted() {
    assert_eq!(
        crypto::base64_encode(&crypto::hmac_sha256(SECRET.as_bytes(), &[BODY.as_bytes()])),
        SIGNATURE
    );
    let handled = call(
        &bindings(SECRET),
        Method::POST,
        &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", BOT_ID)],
        BODY.as_bytes(),
    )
    .unwrap();
    let [event] = handled.events.as_slice() else {
        panic!("one event expected")
    };
    assert_eq!(event.event_type, "message.received");
    assert_eq!(
        event.data.message.as_ref().unwrap().text.as_deref(),
        Some("hi")
    );
    assert_eq!(event.data.verification.key_index, 0);
    assert_eq!(
        event.id,
        crate::envelope::event_id("lineworks", "demo", &content_hash_key(BODY.as_bytes()))
    );
}

#[test]
fn shared_vector_negative_body_with_newline_is_rejected() {
    let body = format!("{BODY}\n");
    let result = call(
        &bindings(SECRET),
        Method::POST,
        &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", BOT_ID)],
        body.as_bytes(),
    );
    assert_eq!(result.unwrap_err(), Rejection::InvalidSignature);
}

#[test]
fn rotated_secret_reports_its_index() {
    let handled = call(
        &bindings("new-secret,bot-secret"),
        Method::POST,
        &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", BOT_ID)],
        BODY.as_bytes(),
    )
    .unwrap();
    assert_eq!(handled.events[0].data.verification.key_index, 1);
}

#[test]
fn bot_id_must_match_and_be_present() {
    let wrong = call(
        &bindings(SECRET),
        Method::POST,
        &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", "other")],
        BODY.as_bytes(),
    );
    assert_eq!(wrong.unwrap_err(), Rejection::BotIdMismatch);
    let missing = call(
        &bindings(SECRET),
        Method::POST,
        &[("X-WORKS-Signature", SIGNATURE)],
        BODY.as_bytes(),
    );
    assert_eq!(missing.unwrap_err(), Rejection::BotIdMismatch);
}

#[test]
fn missing_signature_wrong_method_and_missing_bot_id_config() {
    let missing = call(
        &bindings(SECRET),
        Method::POST,
        &[("X-WORKS-BotId", BOT_ID)],
        BODY.as_bytes(),
    );
    assert_eq!(missing.unwrap_err(), Rejection::MissingSignature);
    let get = call(&bindings(SECRET), Method::GET, &[], b"");
    assert_eq!(get.unwrap_err(), Rejection::MethodNotAllowed);
    let no_bot_id = HashMap::from([("LINEWORKS_DEMO_BOT_SECRET".to_owned(), SECRET.to_owned())]);
    let result = call(
        &no_bot_id,
        Method::POST,
        &[("X-WORKS-Signature", SIGNATURE)],
        BODY.as_bytes(),
    );
    assert!(
        matches!(result.unwrap_err(), Rejection::Misconfigured { binding, .. } if binding == "LINEWORKS_DEMO_BOT_ID")
    );
}

fn normalized(body: &str) -> EventParts {
    let payload: Value = serde_json::from_str(body).unwrap();
    normalize(
        (&payload, Raw::from_body(body.as_bytes()).unwrap()),
        "k".into(),
        Verification {
            scheme: SCHEME.into(),
            key_index: 0,
        },
        7,
    )
}

#[test]
fn channel_messages_are_group_conversations_and_user_messages_direct() {
    let group = normalized(
        r#"{"type":"message","source":{"userId":"u1","channelId":"c1","domainId":10000001},"issuedTime":"2022-01-10T08:20:59.312Z","content":{"type":"sticker","packageId":"789","stickerId":"10855"}}"#,
    );
    assert_eq!(
        group.data.conversation,
        Some(Conversation {
            id: "c1".into(),
            kind: ConversationKind::Group
        })
    );
    assert_eq!(
        group.data.sender,
        Some(Sender {
            id: "u1".into(),
            name: None
        })
    );
    assert_eq!(group.time_ms, 1_641_802_859_312);
    let sticker = group.data.message.unwrap().sticker.unwrap();
    assert_eq!(
        (sticker.package_id.as_deref(), sticker.sticker_id.as_str()),
        (Some("789"), "10855")
    );

    let direct = normalized(
        r#"{"type":"message","source":{"userId":"u1"},"content":{"type":"image","fileId":"f1"}}"#,
    );
    assert_eq!(
        direct.data.conversation,
        Some(Conversation {
            id: "u1".into(),
            kind: ConversationKind::Direct
        })
    );
    assert_eq!(direct.time_ms, 7);
    assert_eq!(
        direct.data.message.unwrap().attachments[0].id.as_deref(),
        Some("f1")
    );
}

#[test]
fn membership_events_list_members_and_unknown_types_pass_through() {
    let joined =
        normalized(r#"{"type":"joined","source":{"channelId":"c1"},"members":["u1","u2"]}"#);
    assert_eq!(joined.event_type, "member.joined");
    assert_eq!(joined.data.members.len(), 2);
    let unknown = normalized(r#"{"type":"reaction","source":{"userId":"u1"}}"#);
    assert_eq!(unknown.event_type, UNRECOGNIZED_TYPE);
    assert_eq!(unknown.data.provider_type, "reaction");
    assert_eq!(unknown.data.raw.value()["type"], "reaction");
}

#[test]
fn sign_produces_an_accepted_request() {
    let params = SignParams {
        body: BODY.as_bytes().to_vec(),
        options: [
            ("secret".to_owned(), SECRET.to_owned()),
            ("bot-id".to_owned(), BOT_ID.to_owned()),
        ]
        .into(),
        now_s: 0,
    };
    let signed = LineWorks.sign(&params).unwrap();
    let headers: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert!(headers.contains(&("X-WORKS-Signature", SIGNATURE)));
    assert!(call(&bindings(SECRET), signed.method, &headers, &signed.body).is_ok());
}

fn json_body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("message".to_owned()),
            Just("joined".to_owned()),
            Just("text".to_owned()),
            ".{0,8}"
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("type"),
        Just("source"),
        Just("userId"),
        Just("channelId"),
        Just("content"),
        Just("members"),
        Just("issuedTime"),
        Just("latitude"),
        Just("data"),
        Just("stickerId"),
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
        signature in prop::option::of("[ -~]{0,60}"),
        bot_id in prop::option::of(prop_oneof![Just(BOT_ID.to_owned()), "[ -~]{0,20}"]),
        sign_correctly in any::<bool>(),
    ) {
        let good = crypto::base64_encode(&crypto::hmac_sha256(SECRET.as_bytes(), &[&body]));
        let signature = if sign_correctly { Some(good) } else { signature };
        let mut headers = Vec::new();
        if let Some(signature) = signature.as_deref() {
            headers.push(("x-works-signature", signature));
        }
        if let Some(bot_id) = bot_id.as_deref() {
            headers.push(("x-works-botid", bot_id));
        }
        let _ = call(&bindings(SECRET), Method::POST, &headers, &body);
    }
}
