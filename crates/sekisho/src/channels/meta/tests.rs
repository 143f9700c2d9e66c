use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

/// shared/vectors/meta.json `whatsapp-derived-text`.
pub(super) const WHATSAPP_TEXT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"16505551111","phone_number_id":"123456123"},"contacts":[{"profile":{"name":"test user name"},"wa_id":"16315551181"}],"messages":[{"from":"16315551181","id":"ABGGFlA5Fpa","timestamp":"1504902988","type":"text","text":{"body":"this is a text message"}}]}}]}]}"#;
pub(super) const WHATSAPP_TEXT_SIGNATURE: &str =
    "sha256=f8586d9ffbea92dce2f45cbdfaad128ad16b57260fa5cbff43d7ba5fd27c74a7";

fn bindings(channel: &str, app_secret: &str) -> HashMap<String, String> {
    let prefix = channel.to_ascii_uppercase();
    HashMap::from([
        (format!("{prefix}_DEMO_APP_SECRET"), app_secret.to_owned()),
        (
            format!("{prefix}_DEMO_VERIFY_TOKEN"),
            "meatyhamhock".to_owned(),
        ),
    ])
}

fn run(
    channel: &Meta,
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
    test_support::run(channel, bindings, demo)
}

pub(super) fn post(
    channel: &Meta,
    secret: &str,
    signature: Option<&str>,
    body: &str,
) -> Result<Handled, Rejection> {
    let headers: Vec<(&str, &str)> = signature
        .map(|s| (SIGNATURE_HEADER, s))
        .into_iter()
        .collect();
    run(
        channel,
        &bindings(channel.name(), secret),
        Method::POST,
        None,
        &headers,
        body.as_bytes(),
    )
}

#[test]
fn github_documented_x_hub_signature_256_vector() {
    let secret = "It's a Secret to Everybody";
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let signed = WHATSAPP
        .sign(&SignParams {
            body: b"Hello, World!".to_vec(),
            options: [("secret".to_owned(), secret.to_owned())].into(),
            now_s: 0,
        })
        .unwrap();
    assert!(signed
        .headers
        .contains(&(SIGNATURE_HEADER.to_owned(), expected.to_owned())));
    // Configured secrets are split on whitespace (rotation lists), so this one is checked below the config.
    let secrets = vec!["newer".to_owned(), secret.to_owned()];
    assert_eq!(
        verify_signature(&secrets, Some(expected), b"Hello, World!"),
        Ok(1)
    );
    let wrong = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18";
    assert_eq!(
        verify_signature(&secrets, Some(wrong), b"Hello, World!"),
        Err(Rejection::InvalidSignature)
    );
    let upper_prefix = expected.replace("sha256=", "SHA256=");
    assert_eq!(
        verify_signature(&secrets, Some(&upper_prefix), b"Hello, World!"),
        Err(Rejection::InvalidSignature)
    );
    assert_eq!(
        verify_signature(&secrets, None, b"Hello, World!"),
        Err(Rejection::MissingSignature)
    );
}

#[test]
fn rotated_secret_reports_its_index_and_signature_rules_hold() {
    let handled = post(
        &WHATSAPP,
        "newer_secret, test_app_secret",
        Some(WHATSAPP_TEXT_SIGNATURE),
        WHATSAPP_TEXT,
    )
    .unwrap();
    assert_eq!(handled.events[0].data.verification.key_index, 1);
    assert_eq!(
        post(&WHATSAPP, "test_app_secret", None, WHATSAPP_TEXT).unwrap_err(),
        Rejection::MissingSignature
    );
    // The legacy SHA-1 header does not count as a signature.
    let legacy = run(
        &WHATSAPP,
        &bindings("whatsapp", "test_app_secret"),
        Method::POST,
        None,
        &[(
            "x-hub-signature",
            "sha1=0000000000000000000000000000000000000000",
        )],
        WHATSAPP_TEXT.as_bytes(),
    );
    assert_eq!(legacy.unwrap_err(), Rejection::MissingSignature);
    let no_prefix = WHATSAPP_TEXT_SIGNATURE.trim_start_matches("sha256=");
    assert_eq!(
        post(&WHATSAPP, "test_app_secret", Some(no_prefix), WHATSAPP_TEXT).unwrap_err(),
        Rejection::InvalidSignature
    );
    // Re-serialising changes the bytes: the same content no longer verifies.
    let reserialized =
        serde_json::to_string(&serde_json::from_str::<Value>(WHATSAPP_TEXT).unwrap()).unwrap();
    assert_ne!(reserialized, WHATSAPP_TEXT);
    assert_eq!(
        post(
            &WHATSAPP,
            "test_app_secret",
            Some(WHATSAPP_TEXT_SIGNATURE),
            &reserialized
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn documented_get_handshake() {
    let config = bindings("messenger", "s");
    let ok = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
    let handled = run(&MESSENGER, &config, Method::GET, Some(ok), &[], b"").unwrap();
    assert_eq!(handled.response, EdgeResponse::text("1158201444"));
    assert!(handled.events.is_empty());
    for bad in [
        "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
        "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
        "hub.challenge=1158201444",
    ] {
        let rejection = run(&MESSENGER, &config, Method::GET, Some(bad), &[], b"").unwrap_err();
        assert_eq!(rejection, Rejection::VerifyTokenMismatch, "{bad}");
        assert_eq!(rejection.status().as_u16(), 403);
    }
    assert_eq!(
        run(&MESSENGER, &config, Method::PUT, None, &[], b"").unwrap_err(),
        Rejection::MethodNotAllowed
    );

    let options = [
        ("verify-token".to_owned(), "meatyhamhock".to_owned()),
        ("challenge".to_owned(), "42+1".to_owned()),
    ];
    let signed = MESSENGER
        .sign(&SignParams {
            body: Vec::new(),
            options: options.into(),
            now_s: 0,
        })
        .unwrap();
    assert_eq!(signed.method, Method::GET);
    let query = signed.query_string();
    let handled = run(
        &MESSENGER,
        &config,
        Method::GET,
        query.strip_prefix('?'),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(handled.response, EdgeResponse::text("42+1"));
}

/// JSON built from the keys and values Meta payloads use, so random bodies reach the normalizers.
fn meta_json() -> impl Strategy<Value = Value> {
    const WORDS: &[&str] = &[
        "entry",
        "changes",
        "field",
        "value",
        "messages",
        "statuses",
        "contacts",
        "wa_id",
        "profile",
        "name",
        "from",
        "id",
        "type",
        "text",
        "body",
        "image",
        "document",
        "sticker",
        "location",
        "latitude",
        "longitude",
        "interactive",
        "button_reply",
        "list_reply",
        "nfm_reply",
        "button",
        "payload",
        "reaction",
        "emoji",
        "status",
        "sent",
        "delivered",
        "read",
        "failed",
        "timestamp",
        "recipient_id",
        "metadata",
        "phone_number_id",
        "messaging",
        "message",
        "mid",
        "is_echo",
        "is_deleted",
        "attachments",
        "url",
        "coordinates",
        "lat",
        "long",
        "sticker_id",
        "quick_reply",
        "postback",
        "delivery",
        "mids",
        "action",
        "unreact",
        "message_edit",
        "sender",
        "recipient",
        "standby",
    ];
    let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        word.clone().prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
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
        query in "[ -~]{0,80}",
        get in any::<bool>(),
    ) {
        let config = bindings("whatsapp", "s");
        let method = if get { Method::GET } else { Method::POST };
        let _ = run(&WHATSAPP, &config, method, Some(&query), &[(SIGNATURE_HEADER, &signature)], &body);
    }

    #[test]
    fn normalization_never_panics_on_signed_json(entries in proptest::collection::vec(meta_json(), 0..4)) {
        let body = serde_json::json!({ "object": "page", "entry": entries }).to_string();
        let signature = format!("sha256={}", crypto::hex_encode(&crypto::hmac_sha256(b"s", &[body.as_bytes()])));
        for channel in [&WHATSAPP, &MESSENGER, &INSTAGRAM] {
            prop_assert!(post(channel, "s", Some(&signature), &body).is_ok());
        }
    }
}
