use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;
use crate::envelope::Raw;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

// shared/vectors/chatwork.json, chatwork-sue445-mention-to-me (sue445/chatwork_webhook_verify @540b313f).
const TOKEN: &str = "iY/hmitgwCBlc5DnjAZ8pyRG1HF0zFflfmKmtCDg1wk=";
const BODY: &str = r#"{"webhook_setting_id":"581","webhook_event_type":"mention_to_me","webhook_event_time":1516629767,"webhook_event":{"from_account_id":2861671,"to_account_id":2739132,"room_id":93207172,"message_id":"1007287971738591232","body":"[rp aid=2739132 to=93207172-1007287785163345920] sue445\ntest","send_time":1516629766,"update_time":0}}"#;
const SIGNATURE: &str = "NTIUzbXiwLvM7C/MT3Kd75Lw1w2N5tyWtcEieKiqhY0=";
const WRONG_IF_TOKEN_NOT_DECODED: &str = "lUU9XJPoNaDUJr1erAQ86S3N16WU3p7EAXtMlO6bwt8=";

fn bindings(token: &str) -> HashMap<String, String> {
    HashMap::from([("CHATWORK_DEMO_WEBHOOK_TOKEN".to_owned(), token.to_owned())])
}

fn call(
    bindings: &HashMap<String, String>,
    method: Method,
    query: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Handled, Rejection> {
    let demo = DemoRequest {
        method,
        extra_path: &[],
        query,
        headers,
        body,
        now_ms: 1_700_000_000_000,
    };
    test_support::run(&Chatwork, bindings, demo)
}

#[test]
fn shared_vector_key_is_the_decoded_token() {
    let decoded = crypto::base64_decode(TOKEN).unwrap();
    assert_eq!(BODY.len(), 329);
    assert_eq!(
        crypto::base64_encode(&crypto::hmac_sha256(&decoded, &[BODY.as_bytes()])),
        SIGNATURE
    );
    assert_eq!(
        crypto::base64_encode(&crypto::hmac_sha256(TOKEN.as_bytes(), &[BODY.as_bytes()])),
        WRONG_IF_TOKEN_NOT_DECODED
    );
}

#[test]
fn shared_vector_is_accepted_by_header_and_by_query_parameter() {
    let by_header = call(
        &bindings(TOKEN),
        Method::POST,
        None,
        &[("x-chatworkwebhooksignature", SIGNATURE)],
        BODY.as_bytes(),
    )
    .unwrap();
    let [event] = by_header.events.as_slice() else {
        panic!("one event expected")
    };
    assert_eq!(event.event_type, "message.mentioned");
    assert_eq!(
        event.id,
        crate::envelope::event_id(
            "chatwork",
            "demo",
            "581:mention_to_me:1007287971738591232:0"
        )
    );
    assert_eq!(event.time, "2018-01-22T14:02:47.000Z");
    assert_eq!(
        event.data.conversation,
        Some(Conversation {
            id: "93207172".into(),
            kind: ConversationKind::Room
        })
    );
    assert_eq!(event.data.sender.as_ref().unwrap().id, "2861671");
    let message = event.data.message.as_ref().unwrap();
    assert_eq!(message.text.as_deref(), Some("sue445\ntest"));
    assert_eq!(message.id.as_deref(), Some("1007287971738591232"));
    assert_eq!(
        event.data.raw.value()["webhook_event"]["body"],
        "[rp aid=2739132 to=93207172-1007287785163345920] sue445\ntest"
    );

    // `+` and `/` percent-encoded, as Chatwork sends the parameter.
    let query = "chatwork_webhook_signature=NTIUzbXiwLvM7C%2FMT3Kd75Lw1w2N5tyWtcEieKiqhY0%3D";
    assert!(call(
        &bindings(TOKEN),
        Method::POST,
        Some(query),
        &[],
        BODY.as_bytes()
    )
    .is_ok());
}

#[test]
fn shared_vector_negatives_are_rejected() {
    for signature in ["AAAAAAAAA", WRONG_IF_TOKEN_NOT_DECODED] {
        let result = call(
            &bindings(TOKEN),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", signature)],
            BODY.as_bytes(),
        );
        assert_eq!(
            result.unwrap_err(),
            Rejection::InvalidSignature,
            "{signature}"
        );
    }
    let missing = call(&bindings(TOKEN), Method::POST, None, &[], BODY.as_bytes());
    assert_eq!(missing.unwrap_err(), Rejection::MissingSignature);
}

#[test]
fn rotated_tokens_report_the_index_and_an_undecodable_token_is_misconfiguration() {
    let rotated = format!("{},{TOKEN}", crypto::base64_encode(b"newer token"));
    let handled = call(
        &bindings(&rotated),
        Method::POST,
        None,
        &[("x-chatworkwebhooksignature", SIGNATURE)],
        BODY.as_bytes(),
    )
    .unwrap();
    assert_eq!(handled.events[0].data.verification.key_index, 1);
    let result = call(
        &bindings("not*base64"),
        Method::POST,
        None,
        &[("x-chatworkwebhooksignature", SIGNATURE)],
        BODY.as_bytes(),
    );
    assert_eq!(
        result.unwrap_err(),
        Rejection::misconfigured("CHATWORK_DEMO_WEBHOOK_TOKEN")
    );
}

#[test]
fn markup_is_stripped_and_readable_text_kept() {
    assert_eq!(plain_text("[To:123]Tanaka-san\nhello"), "Tanaka-san\nhello");
    assert_eq!(plain_text("[toall] meeting at 3"), "meeting at 3");
    assert_eq!(
        plain_text("[info][title]Release[/title]v1.2 is out[/info]"),
        "Release\nv1.2 is out"
    );
    assert_eq!(
        plain_text("[qt][qtmeta aid=1 time=1516629766]original[/qt]my answer"),
        "original\nmy answer"
    );
    assert_eq!(
        plain_text("[返信 aid=2739132 to=93207172-1007287785163345920]ok"),
        "ok"
    );
    assert_eq!(plain_text("a[hr]b"), "a\nb");
    assert_eq!(
        plain_text("[piconname:123] [code]let x = a[0];[/code]"),
        "let x = a[0];"
    );
    let long = format!("[To:1]{}", "[".repeat(200_000));
    assert_eq!(plain_text(&long), "[".repeat(200_000));
    assert_eq!(
        plain_text(&format!("[To:{}]x", "1".repeat(200))),
        format!("[To:{}]x", "1".repeat(200))
    );
    assert_eq!(
        plain_text("[important] keep [brackets] (smile) ["),
        "[important] keep [brackets] (smile) ["
    );
}

#[test]
fn message_events_are_normalized() {
    let payload = serde_json::json!({
        "webhook_setting_id": "12345",
        "webhook_event_type": "message_updated",
        "webhook_event_time": 1498028130,
        "webhook_event": {"message_id": "789012345", "room_id": 54321, "account_id": 123456,
            "body": "[To:1] fixed", "send_time": 1498028125, "update_time": 1498028130}
    });
    let parts = normalize(
        &payload,
        Raw::rendered(&payload),
        b"{}",
        Verification {
            scheme: SCHEME.into(),
            key_index: 0,
        },
        0,
    );
    assert_eq!(parts.event_type, "message.edited");
    assert_eq!(
        parts.dedupe_key,
        "12345:message_updated:789012345:1498028130"
    );
    assert_eq!(parts.data.sender.unwrap().id, "123456");
    assert_eq!(parts.data.message.unwrap().text.as_deref(), Some("fixed"));
}

#[test]
fn unknown_types_pass_through_and_non_json_is_malformed() {
    let body = br#"{"webhook_setting_id":"1","webhook_event_type":"room_created","webhook_event":{"room_id":1}}"#;
    let key = crypto::base64_decode(TOKEN).unwrap();
    let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[body]));
    let handled = call(
        &bindings(TOKEN),
        Method::POST,
        None,
        &[("x-chatworkwebhooksignature", &signature)],
        body,
    )
    .unwrap();
    assert_eq!(handled.events[0].event_type, UNRECOGNIZED_TYPE);
    assert_eq!(handled.events[0].data.provider_type, "room_created");
    assert!(handled.events[0].data.message.is_none());

    let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[b"not json"]));
    let result = call(
        &bindings(TOKEN),
        Method::POST,
        None,
        &[("x-chatworkwebhooksignature", &signature)],
        b"not json",
    );
    assert_eq!(
        result.unwrap_err(),
        Rejection::MalformedBody { expected: "JSON" }
    );
}

fn signed_call(body: &[u8]) -> Handled {
    let key = crypto::base64_decode(TOKEN).unwrap();
    let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[body]));
    call(
        &bindings(TOKEN),
        Method::POST,
        None,
        &[("x-chatworkwebhooksignature", &signature)],
        body,
    )
    .unwrap()
}

fn event_id_of(body: &str) -> String {
    signed_call(body.as_bytes()).events[0].id.clone()
}

#[test]
fn events_without_a_message_id_are_keyed_by_their_signed_body() {
    // Two different events of a type Sekisho does not know, neither with a message id.
    let room_created = r#"{"webhook_setting_id":"12347","webhook_event_type":"room_created","webhook_event_time":1498028130,"webhook_event":{"room_id":54322}}"#;
    let other_room = r#"{"webhook_setting_id":"12347","webhook_event_type":"room_created","webhook_event_time":1498028200,"webhook_event":{"room_id":54323}}"#;
    assert_ne!(event_id_of(room_created), event_id_of(other_room));
    // The same signed body again is the same event.
    assert_eq!(event_id_of(room_created), event_id_of(room_created));
    assert_eq!(
        event_id_of(room_created),
        crate::envelope::event_id(
            "chatwork",
            "demo",
            &format!(
                "sha256:{}",
                crypto::hex_encode(&crypto::sha256(&[room_created.as_bytes()]))
            )
        )
    );

    // Message events that lack the fields of their key are keyed by the body too.
    let created = |body: &str| {
        format!(
            r#"{{"webhook_setting_id":"12345","webhook_event_type":"message_created","webhook_event":{{"room_id":54321,"body":"{body}"}}}}"#
        )
    };
    assert_ne!(event_id_of(&created("one")), event_id_of(&created("two")));
    let updated = |body: &str, update_time: &str| {
        format!(
            r#"{{"webhook_setting_id":"12345","webhook_event_type":"message_updated","webhook_event":{{"message_id":"789012345","room_id":54321,"body":"{body}"{update_time}}}}}"#
        )
    };
    assert_ne!(
        event_id_of(&updated("first edit", "")),
        event_id_of(&updated("second edit", ""))
    );
    assert_ne!(
        event_id_of(&updated("first edit", r#","update_time":0"#)),
        event_id_of(&updated("second edit", r#","update_time":0"#))
    );
    let no_setting = |body: &str| {
        format!(
            r#"{{"webhook_event_type":"mention_to_me","webhook_event":{{"message_id":"1","body":"{body}"}}}}"#
        )
    };
    assert_ne!(event_id_of(&no_setting("a")), event_id_of(&no_setting("b")));
    // An unknown type is keyed by its body even when it carries a message id: its meaning is unknown.
    let unknown = |time: u64| {
        format!(
            r#"{{"webhook_setting_id":"1","webhook_event_type":"message_reacted","webhook_event_time":{time},"webhook_event":{{"message_id":"5"}}}}"#
        )
    };
    assert_ne!(event_id_of(&unknown(1)), event_id_of(&unknown(2)));
}

#[test]
fn message_events_keep_their_provider_key() {
    let key_of = |body: &str| {
        let payload: Value = serde_json::from_str(body).unwrap();
        let chatwork_type = text_at(&payload, &["webhook_event_type"]).unwrap();
        dedupe_key(&payload, &chatwork_type, body.as_bytes())
    };
    assert_eq!(key_of(BODY), "581:mention_to_me:1007287971738591232:0");
    // The same message delivered with another event time is still the same event.
    let created = |time: u64| {
        format!(
            r#"{{"webhook_setting_id":"12345","webhook_event_type":"message_created","webhook_event_time":{time},"webhook_event":{{"message_id":"789012345","update_time":0}}}}"#
        )
    };
    assert_eq!(key_of(&created(1)), "12345:message_created:789012345:0");
    assert_eq!(key_of(&created(2)), key_of(&created(1)));
    let edit = r#"{"webhook_setting_id":"12345","webhook_event_type":"message_updated","webhook_event":{"message_id":"789012345","update_time":1498028190}}"#;
    assert_eq!(key_of(edit), "12345:message_updated:789012345:1498028190");
}

#[test]
fn sign_produces_an_accepted_request() {
    let params = SignParams {
        body: BODY.as_bytes().to_vec(),
        options: [("secret".to_owned(), TOKEN.to_owned())].into(),
        now_s: 0,
    };
    let signed = Chatwork.sign(&params).unwrap();
    assert!(signed
        .headers
        .contains(&(SIGNATURE_HEADER.to_owned(), SIGNATURE.to_owned())));
    let query = signed.query_string();
    let only_query = call(
        &bindings(TOKEN),
        Method::POST,
        query.strip_prefix('?'),
        &[],
        &signed.body,
    );
    assert!(only_query.is_ok());
    let bad = SignParams {
        options: [("secret".to_owned(), "*".to_owned())].into(),
        ..params
    };
    assert!(Chatwork.sign(&bad).is_err());
}

fn json_body() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just("message_created".to_owned()),
            Just("mention_to_me".to_owned()),
            "[\\[\\]a-zA-Z:/= 0-9返信]{0,24}",
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("webhook_setting_id"),
        Just("webhook_event_type"),
        Just("webhook_event_time"),
        Just("webhook_event"),
        Just("room_id"),
        Just("message_id"),
        Just("body"),
        Just("account_id"),
        Just("update_time"),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
    })
    .prop_map(|value| value.to_string())
}

proptest! {
    #[test]
    fn handle_never_panics(
        body in prop_oneof![json_body().prop_map(String::into_bytes), any::<Vec<u8>>()],
        signature in prop::option::of("[ -~]{0,60}"),
        query in prop::option::of("[ -~]{0,80}"),
        sign_correctly in any::<bool>(),
    ) {
        let key = crypto::base64_decode(TOKEN).unwrap();
        let good = crypto::base64_encode(&crypto::hmac_sha256(&key, &[&body]));
        let signature = if sign_correctly { Some(good) } else { signature };
        let headers: Vec<(&str, &str)> =
            signature.as_deref().map(|s| (SIGNATURE_HEADER, s)).into_iter().collect();
        let _ = call(&bindings(TOKEN), Method::POST, query.as_deref(), &headers, &body);
    }

}
