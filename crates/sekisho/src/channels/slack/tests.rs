use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::envelope::event_id;

/// shared/vectors/slack.json `slack-docs-slash-command` (python-slack-sdk's verifier test, Slack's docs).
pub(super) const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub(super) const TIMESTAMP: &str = "1531420618";
pub(super) const NOW_MS: u64 = 1_531_420_618_000;
const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
pub(super) const SIGNATURE: &str =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const FORM: &str = "application/x-www-form-urlencoded";

pub(super) fn config(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut bindings = HashMap::from([("SLACK_DEMO_SIGNING_SECRET".to_owned(), SECRET.to_owned())]);
    for (field, value) in extra {
        bindings.insert(format!("SLACK_DEMO_{field}"), (*value).to_owned());
    }
    bindings
}

pub(super) fn run(
    bindings: &HashMap<String, String>,
    headers: &[(&str, &str)],
    body: &[u8],
    now_ms: u64,
) -> Result<Handled, Rejection> {
    let demo = DemoRequest {
        method: Method::POST,
        extra_path: &[],
        query: None,
        headers,
        body,
        now_ms,
    };
    test_support::run(&Slack, bindings, demo)
}

pub(super) fn signed(
    body: &str,
    content_type: &str,
    now_ms: u64,
    bindings: &HashMap<String, String>,
) -> Result<Handled, Rejection> {
    let timestamp = (now_ms / 1000).to_string();
    let tag = crypto::hmac_sha256(
        SECRET.as_bytes(),
        &[b"v0:", timestamp.as_bytes(), b":", body.as_bytes()],
    );
    let signature = format!("v0={}", crypto::hex_encode(&tag));
    let headers = [
        (SIGNATURE_HEADER, signature.as_str()),
        (TIMESTAMP_HEADER, timestamp.as_str()),
        ("content-type", content_type),
    ];
    run(bindings, &headers, body.as_bytes(), now_ms)
}

fn vector_headers<'a>(signature: &'a str, timestamp: &'a str) -> [(&'static str, &'a str); 3] {
    [
        (SIGNATURE_HEADER, signature),
        (TIMESTAMP_HEADER, timestamp),
        ("content-type", FORM),
    ]
}

#[test]
fn documented_slash_command_vector_verifies_and_normalizes() {
    let handled = run(
        &config(&[]),
        &vector_headers(SIGNATURE, TIMESTAMP),
        BODY.as_bytes(),
        NOW_MS,
    )
    .unwrap();
    assert_eq!(handled.response, EdgeResponse::text(Vec::new()));
    let event = &handled.events[0];
    assert_eq!(event.event_type, "command.invoked");
    assert_eq!(
        event.id,
        event_id(
            "slack",
            "demo",
            "trigger:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        )
    );
    let data = &event.data;
    assert_eq!(
        data.postback.as_ref().map(|p| p.data.as_str()),
        Some("/webhook-collect")
    );
    assert_eq!(data.message.as_ref().and_then(|m| m.text.as_ref()), None);
    assert_eq!(
        data.sender,
        Some(Sender {
            id: "U2CERLKJA".into(),
            name: Some("roadrunner".into())
        })
    );
    assert_eq!(
        data.conversation,
        Some(Conversation {
            id: "G8PSS9T3V".into(),
            kind: ConversationKind::Channel
        })
    );
    assert_eq!(
        data.reply.as_ref().map(|r| r.token.as_str()),
        Some("https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN")
    );
    assert_eq!(data.raw.value()["team_domain"], "testteamnow");

    let options = [
        ("secret".to_owned(), SECRET.to_owned()),
        ("timestamp".to_owned(), TIMESTAMP.to_owned()),
    ];
    let request = Slack
        .sign(&SignParams {
            body: BODY.into(),
            options: options.into(),
            now_s: 0,
        })
        .unwrap();
    assert!(request
        .headers
        .contains(&(SIGNATURE_HEADER.to_owned(), SIGNATURE.to_owned())));
    assert!(request
        .headers
        .contains(&("content-type".to_owned(), FORM.to_owned())));

    // Without --timestamp the request is signed for now, and accepted now.
    let body = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"D1","text":"hi"}}"#;
    let options = [("secret".to_owned(), SECRET.to_owned())];
    let request = Slack
        .sign(&SignParams {
            body: body.into(),
            options: options.into(),
            now_s: 1_700_000_000,
        })
        .unwrap();
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let handled = run(&config(&[]), &headers, body.as_bytes(), 1_700_000_000_999).unwrap();
    assert_eq!(
        handled.events[0].data.conversation.as_ref().map(|c| c.kind),
        Some(ConversationKind::Direct)
    );
}

#[test]
fn documented_negatives_and_skew_in_both_directions() {
    let tampered = format!("{BODY}------");
    let headers = vector_headers(SIGNATURE, TIMESTAMP);
    assert_eq!(
        run(&config(&[]), &headers, tampered.as_bytes(), NOW_MS).unwrap_err(),
        Rejection::InvalidSignature
    );
    // The vector's second negative: the same request 301 s later.
    assert_eq!(
        run(&config(&[]), &headers, BODY.as_bytes(), 1_531_420_919_000).unwrap_err(),
        Rejection::StaleTimestamp
    );
    assert!(run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS + 300_000).is_ok());
    assert!(run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS - 300_000).is_ok());
    assert_eq!(
        run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS - 301_000).unwrap_err(),
        Rejection::StaleTimestamp
    );
    let spaced = vector_headers(SIGNATURE, " 1531420618");
    assert_eq!(
        run(&config(&[]), &spaced, BODY.as_bytes(), NOW_MS).unwrap_err(),
        Rejection::StaleTimestamp
    );
    let missing = [(TIMESTAMP_HEADER, TIMESTAMP)];
    assert_eq!(
        run(&config(&[]), &missing, BODY.as_bytes(), NOW_MS).unwrap_err(),
        Rejection::MissingSignature
    );
    let rotated = config(&[])
        .into_iter()
        .map(|(k, v)| (k, format!("newer,{v}")))
        .collect();
    let handled = run(&rotated, &headers, BODY.as_bytes(), NOW_MS).unwrap();
    assert_eq!(handled.events[0].data.verification.key_index, 1);
}

#[test]
fn bot_messages_are_forwarded_unless_configured_and_ignoring_is_counted() {
    let body = r#"{"type":"event_callback","event_id":"Ev1","event_time":1531420618,"event":{"type":"message","subtype":"bot_message","bot_id":"B1","text":"loop","channel":"C1","channel_type":"channel","ts":"1531420618.000100"}}"#;
    let forwarded = signed(body, "application/json", NOW_MS, &config(&[])).unwrap();
    assert_eq!(forwarded.events.len(), 1);
    assert_eq!(forwarded.events[0].event_type, "message.received");
    assert_eq!(forwarded.events[0].time, "2018-07-12T18:36:58.000Z");
    for settings in [[("IGNORE_BOTS", "true")], [("IGNORE_BOT_IDS", "B0,B1")]] {
        let ignored = signed(body, "application/json", NOW_MS, &config(&settings)).unwrap();
        assert!(ignored.events.is_empty());
        assert_eq!(
            ignored.response,
            EdgeResponse::json(200, r#"{"accepted":0,"ignored":1}"#.to_owned())
        );
    }
    let other_bot = signed(
        body,
        "application/json",
        NOW_MS,
        &config(&[("IGNORE_BOT_IDS", "B2")]),
    )
    .unwrap();
    assert_eq!(other_bot.events.len(), 1);
    let bad = signed(
        body,
        "application/json",
        NOW_MS,
        &config(&[("IGNORE_BOTS", "yes please")]),
    );
    assert!(matches!(bad, Err(Rejection::Misconfigured { .. })));
}

#[test]
fn slack_timestamps_become_milliseconds() {
    assert_eq!(ts_to_ms("1355517523.000005"), Some(1_355_517_523_000));
    assert_eq!(ts_to_ms("1355517523.9"), Some(1_355_517_523_900));
    assert_eq!(ts_to_ms("1515449522000016"), None);
    assert_eq!(ts_to_ms("x.1"), None);
    assert_eq!(ts_to_ms("1.x"), None);
    assert_eq!(ts_to_ms("+1.+5"), None);
    assert_eq!(ts_to_ms("99999999999999999999"), None);
}

fn slack_json() -> impl Strategy<Value = Value> {
    const WORDS: &[&str] = &[
        "type",
        "event",
        "event_id",
        "event_time",
        "event_callback",
        "url_verification",
        "challenge",
        "message",
        "subtype",
        "message_changed",
        "message_deleted",
        "previous_message",
        "bot_id",
        "bot_message",
        "user",
        "channel",
        "channel_type",
        "im",
        "mpim",
        "ts",
        "event_ts",
        "thread_ts",
        "text",
        "files",
        "mimetype",
        "size",
        "reaction_added",
        "item",
        "reaction",
        "member_joined_channel",
        "assistant_thread_started",
        "assistant_thread",
        "user_profile",
        "app_mention",
        "deleted_ts",
    ];
    let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        word.clone().prop_map(Value::from),
        "[0-9.]{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            proptest::collection::btree_map(word.clone(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn handle_never_panics_on_arbitrary_requests(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        signature in "[ -~]{0,80}",
        timestamp in "[ -~]{0,20}",
        content_type in "[ -~]{0,40}",
        now_ms in any::<u64>(),
    ) {
        let headers = [(SIGNATURE_HEADER, signature.as_str()), (TIMESTAMP_HEADER, timestamp.as_str()), ("content-type", content_type.as_str())];
        let _ = run(&config(&[("IGNORE_BOTS", "true")]), &headers, &body, now_ms);
    }

    #[test]
    fn normalization_never_panics_on_signed_bodies(event in slack_json(), payload in slack_json(), form in "[ -~]{0,120}") {
        let bindings = config(&[]);
        let callback = serde_json::json!({ "type": "event_callback", "event": event }).to_string();
        prop_assert!(signed(&callback, "application/json", NOW_MS, &bindings).is_ok());
        let encoded: String = form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
        prop_assert!(signed(&encoded, FORM, NOW_MS, &bindings).is_ok());
        let _ = signed(&form, FORM, NOW_MS, &bindings);
    }
}
