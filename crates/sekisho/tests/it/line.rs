//! LINE: the public vectors, rotation, redelivery ids, and `raw` preserved exactly.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::collections::HashMap;

use crate::common::{self, *};
use http::{HeaderMap, Method};
use sekisho::channels::{self, line};
use sekisho::gateway::{self, Inbound};
use sekisho::tooling::SignParams;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(crate_root().join("tests/vectors/line.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["vectors"]
        .as_array()
        .unwrap()
        .clone()
}

fn bindings(secrets: &str) -> HashMap<String, String> {
    HashMap::from([
        ("LINE_ACME_CHANNEL_SECRET".to_owned(), secrets.to_owned()),
        ("BACKEND_URL".to_owned(), TEST_BACKEND_URL.to_owned()),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            TEST_SIGNING_SECRET.to_owned(),
        ),
    ])
}

fn post(
    bindings: &HashMap<String, String>,
    body: &str,
    signature: Option<&str>,
) -> Result<gateway::Accepted, gateway::Refusal> {
    let mut headers = HeaderMap::new();
    if let Some(signature) = signature {
        headers.insert(line::SIGNATURE_HEADER, signature.parse().unwrap());
    }
    let inbound = Inbound {
        method: &Method::POST,
        origin: "https://gateway.test",
        path: "/line/acme",
        query: None,
        headers: &headers,
        body: body.as_bytes(),
    };
    common::handle(&inbound, bindings, 1_700_000_000_000)
}

#[test]
fn every_public_vector_verifies_and_every_negative_is_refused() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 3);
    let mut ran = 0;
    for vector in &vectors {
        let secret = vector["channel_secret"].as_str().unwrap();
        let body = vector["body"].as_str().unwrap();
        let expected_signature = vector["expected_signature"].as_str().unwrap();
        let signed = channels::find("line")
            .unwrap()
            .sign(&SignParams {
                body: body.as_bytes().to_vec(),
                options: [("secret".into(), secret.into())].into(),
                now_s: 0,
            })
            .unwrap();
        assert_eq!(
            signed.headers[0],
            ("x-line-signature".to_owned(), expected_signature.to_owned()),
            "{}",
            vector["id"]
        );

        // Exactly one outcome per vector: deliveries planned, or the reason it is refused.
        let id = vector["id"].as_str().unwrap();
        let expected: Result<usize, &str> = match id {
            // {"hello":"world"} is signed but not a webhook payload: verification passes, parsing refuses it.
            "line-nodejs-validate-signature" => Err("malformed_body"),
            "line-nodejs-middleware-message-event" => Ok(1),
            // The console's "Verify" button: 200 and nothing to forward.
            "line-console-verify-empty-events" => Ok(0),
            other => panic!("vector {other} has no expected outcome here"),
        };
        let outcome = post(&bindings(secret), body, Some(expected_signature))
            .map(|accepted| {
                assert_eq!(accepted.response.status, 200, "{id}");
                accepted.deliveries.len()
            })
            .map_err(|refusal| refusal.rejection.reason());
        assert_eq!(outcome, expected, "{id}");
        ran += 1;
        if let Some(negative) = vector.get("negative") {
            let refused =
                post(&bindings(secret), body, negative["signature"].as_str()).unwrap_err();
            assert_eq!(refused.rejection.reason(), "invalid_signature");
            assert_eq!(refused.rejection.status(), 401);
        }
    }
    assert_eq!(ran, 3, "every vector ran");
}

#[test]
fn console_verify_forwards_nothing() {
    let vector = vectors()
        .into_iter()
        .find(|v| v["id"] == "line-console-verify-empty-events")
        .unwrap();
    let accepted = post(
        &bindings(vector["channel_secret"].as_str().unwrap()),
        vector["body"].as_str().unwrap(),
        vector["expected_signature"].as_str(),
    )
    .unwrap();
    assert_eq!(accepted.response.status, 200);
    assert!(accepted.deliveries.is_empty());
}

fn sign(secret: &str, body: &str) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

const BODY: &str = r#"{"destination":"U1","events":[{"type":"message","webhookEventId":"01HROTATION","timestamp":1700000000000,"deliveryContext":{"isRedelivery":false},"source":{"type":"user","userId":"U1"},"message":{"id":"1","type":"location","title":"x","latitude":35.65910807942215,"longitude":139.70372892916203}}]}"#;

#[test]
fn every_rotated_secret_is_accepted_and_its_index_recorded() {
    let bindings = bindings("newest, middle\n oldest");
    for (index, secret) in ["newest", "middle", "oldest"].iter().enumerate() {
        let accepted = post(&bindings, BODY, Some(&sign(secret, BODY))).unwrap();
        let event: Value = serde_json::from_str(&accepted.deliveries[0].body).unwrap();
        assert_eq!(event["data"]["verification"]["key_index"], index);
    }
    let refused = post(&bindings, BODY, Some(&sign("retired", BODY))).unwrap_err();
    assert_eq!(refused.rejection.reason(), "invalid_signature");
}

#[test]
fn a_redelivery_keeps_the_event_id() {
    let bindings = bindings("s");
    let again = BODY.replace(r#""isRedelivery":false"#, r#""isRedelivery":true"#);
    let first = post(&bindings, BODY, Some(&sign("s", BODY))).unwrap();
    let second = post(&bindings, &again, Some(&sign("s", &again))).unwrap();
    assert_eq!(
        first.deliveries[0].webhook_id,
        second.deliveries[0].webhook_id
    );
    let other_account = {
        let mut b = bindings.clone();
        b.insert("LINE_OTHER_CHANNEL_SECRET".into(), "s".into());
        let headers: HeaderMap = [(
            http::header::HeaderName::from_static("x-line-signature"),
            sign("s", BODY).parse().unwrap(),
        )]
        .into_iter()
        .collect();
        let inbound = Inbound {
            method: &Method::POST,
            origin: "https://gateway.test",
            path: "/line/other",
            query: None,
            headers: &headers,
            body: BODY.as_bytes(),
        };
        common::handle(&inbound, &b, 0).unwrap()
    };
    assert_ne!(
        first.deliveries[0].webhook_id, other_account.deliveries[0].webhook_id,
        "ids are scoped to the account"
    );
}

#[test]
fn events_carry_an_ordering_hint() {
    let accepted = post(&bindings("s"), BODY, Some(&sign("s", BODY))).unwrap();
    let event: Value = serde_json::from_str(&accepted.deliveries[0].body).unwrap();
    assert_eq!(
        event["data"]["ordering"],
        serde_json::json!({"key": "line/acme/U1", "sequence": 1700000000000u64})
    );
}

#[test]
fn raw_keeps_numbers_exactly() {
    let accepted = post(&bindings("s"), BODY, Some(&sign("s", BODY))).unwrap();
    assert!(
        accepted.deliveries[0].body.contains("139.70372892916203"),
        "{}",
        accepted.deliveries[0].body
    );
}

#[test]
fn missing_secret_or_backend_is_a_configuration_error_not_a_pass() {
    let mut no_backend = bindings("s");
    no_backend.remove("BACKEND_URL");
    let refused = post(&no_backend, BODY, Some(&sign("s", BODY))).unwrap_err();
    assert_eq!(refused.rejection.reason(), "misconfigured");
    assert_eq!(refused.rejection.status(), 500);
    assert!(common::refused_log_line(&refused).contains("BACKEND_URL"));

    let mut bad_signing = bindings("s");
    bad_signing.insert("BACKEND_SIGNING_SECRET".into(), "whsec_!!!".into());
    let refused = post(&bad_signing, BODY, Some(&sign("s", BODY))).unwrap_err();
    assert_eq!(refused.rejection.reason(), "misconfigured");
    assert!(
        !common::refused_log_line(&refused).contains("whsec_!!!"),
        "the log never carries a secret"
    );

    // A blank secret binding means the account does not exist: 404, never a pass.
    let refused = post(&bindings("  "), BODY, Some(&sign("", BODY))).unwrap_err();
    assert_eq!(refused.rejection.reason(), "not_found");
}

#[test]
fn log_lines_name_the_reason_but_never_the_body_or_secret() {
    let refused = post(&bindings("topsecret"), BODY, Some(&sign("wrong", BODY))).unwrap_err();
    let line: Value = serde_json::from_str(&common::refused_log_line(&refused)).unwrap();
    assert_eq!(line["reason"], "invalid_signature");
    assert_eq!(line["channel"], "line");
    assert_eq!(line["account"], "acme");
    assert!(!common::refused_log_line(&refused).contains("topsecret"));
    assert!(!common::refused_log_line(&refused).contains("139.70"));
}

/// `data.raw` is the provider's event as it sent it: key order, every digit of a number no `f64` holds, escapes
/// and spacing. A number beyond `f64`'s range is valid JSON, signed by LINE: accepted, not refused.
#[test]
fn raw_is_the_providers_bytes_unchanged() {
    let event = concat!(
        r#"{"type":"message","webhookEventId":"01HZRAW","mode":"active","timestamp":1700000000000,"#,
        r#""source":{"type":"user","userId":"U1"},"replyToken":"r","#,
        r#""message":{"type":"text","id":"1","text":"\u3042 \/ ok"},"#,
        r#""zeta":123456789012345678901234567890, "alpha" : 1e400,"#,
        r#""huge":-99999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999}"#,
    );
    let body = format!(r#"{{"destination":"Uxx","events":[{event}]}}"#);
    let accepted = post(&bindings("s"), &body, Some(&sign("s", &body))).unwrap();
    assert_eq!(accepted.deliveries.len(), 1);
    let delivered = &accepted.deliveries[0].body;
    assert!(
        delivered.contains(&format!(r#""raw":{event}"#)),
        "raw must be the event's own bytes: {delivered}"
    );
    // The normalized fields still come from the event; the out-of-range numbers only live in raw.
    let envelope = sekisho::json::parse(delivered).unwrap();
    assert_eq!(envelope["data"]["raw"]["alpha"], Value::Null);
    assert_eq!(envelope["data"]["message"]["text"], "あ / ok");
    assert_eq!(envelope["type"], "message.received");
}
