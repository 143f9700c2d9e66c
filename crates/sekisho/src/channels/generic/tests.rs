use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::envelope::event_id;

/// shared/vectors/standard_webhooks.json `standardwebhooks-sign-1` (the reference libraries' sign test).
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TIMESTAMP: &str = "1614265330";
const SW_NOW_MS: u64 = 1_614_265_330_000;
const SW_BODY: &str = r#"{"test": 2432232314}"#;
const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
const BEARER_SECRET: &str = "satori-shared-secret-0123456789";

fn config(secrets: &str) -> HashMap<String, String> {
    HashMap::from([("GENERIC_DEMO_SECRET".to_owned(), secrets.to_owned())])
}

fn run(
    secrets: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    now_ms: u64,
) -> Result<Handled, Rejection> {
    run_with(&config(secrets), headers, body, now_ms)
}

fn run_with(
    config: &HashMap<String, String>,
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
    test_support::run(&Generic, config, demo)
}

fn sw_headers(signature: &str) -> [(&str, &str); 4] {
    [
        (ID_HEADER, SW_ID),
        (TIMESTAMP_HEADER, SW_TIMESTAMP),
        (SIGNATURE_HEADER, signature),
        ("content-type", "application/json"),
    ]
}

#[test]
fn standard_webhooks_vector_verifies_with_the_webhook_id_as_dedupe_key() {
    let secrets = format!("whsec_bmV3LXNlY3JldA== {SW_SECRET}");
    let handled = run(
        &secrets,
        &sw_headers(SW_SIGNATURE),
        SW_BODY.as_bytes(),
        SW_NOW_MS,
    )
    .unwrap();
    let event = &handled.events[0];
    assert_eq!(event.event_type, "webhook.received");
    assert_eq!(event.id, event_id("generic", "demo", SW_ID));
    assert_eq!(event.time, "2021-02-25T15:02:10.000Z");
    assert_eq!(
        event.data.verification,
        Verification {
            scheme: STANDARD_WEBHOOKS_SCHEME.into(),
            key_index: 1
        }
    );
    assert_eq!(
        event.data.raw.value(),
        serde_json::json!({ "test": 2_432_232_314_u64 })
    );

    let options = [
        ("secret".to_owned(), SW_SECRET.to_owned()),
        ("webhook-id".to_owned(), SW_ID.to_owned()),
        ("timestamp".to_owned(), SW_TIMESTAMP.to_owned()),
    ];
    let request = Generic
        .sign(&SignParams {
            body: SW_BODY.into(),
            options: options.into(),
            now_s: 0,
        })
        .unwrap();
    assert!(request
        .headers
        .contains(&(SIGNATURE_HEADER.to_owned(), SW_SIGNATURE.to_owned())));
}

#[test]
fn standard_webhooks_negatives() {
    let negative = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    let body = SW_BODY.as_bytes();
    assert_eq!(
        run(SW_SECRET, &sw_headers(negative), body, SW_NOW_MS).unwrap_err(),
        Rejection::InvalidSignature
    );
    assert_eq!(
        run(
            SW_SECRET,
            &sw_headers(SW_SIGNATURE),
            body,
            SW_NOW_MS + 301_000
        )
        .unwrap_err(),
        Rejection::StaleTimestamp
    );
    assert_eq!(
        run(
            SW_SECRET,
            &sw_headers(SW_SIGNATURE),
            body,
            SW_NOW_MS - 301_000
        )
        .unwrap_err(),
        Rejection::StaleTimestamp
    );
    assert!(run(
        SW_SECRET,
        &sw_headers(SW_SIGNATURE),
        body,
        SW_NOW_MS + 300_000
    )
    .is_ok());
    // Another entry in the list may match (rotation on the sender's side).
    let listed = format!("v1,bm90IGl0 {SW_SIGNATURE}");
    assert!(run(SW_SECRET, &sw_headers(&listed), body, SW_NOW_MS).is_ok());
    let without_id = [
        (TIMESTAMP_HEADER, SW_TIMESTAMP),
        (SIGNATURE_HEADER, SW_SIGNATURE),
    ];
    assert_eq!(
        run(SW_SECRET, &without_id, body, SW_NOW_MS).unwrap_err(),
        Rejection::MissingSignature
    );
    // A Bearer account does not look at Standard Webhooks headers at all.
    assert_eq!(
        run(BEARER_SECRET, &sw_headers(SW_SIGNATURE), body, SW_NOW_MS).unwrap_err(),
        Rejection::MissingSignature
    );
}

#[test]
fn bearer_secret_and_form_bodies() {
    let form = b"name=Taro+Yamada&email=taro%40example.jp&tag=a&tag=b";
    let authorization = format!("Bearer {BEARER_SECRET}");
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let secrets = format!("newer-secret,{BEARER_SECRET}");
    let handled = run(&secrets, &headers, form, 0).unwrap();
    let event = &handled.events[0];
    assert_eq!(event.event_type, "form.submitted");
    assert_eq!(
        event.id,
        event_id("generic", "demo", &crate::channels::content_hash_key(form))
    );
    assert_eq!(
        event.data.verification,
        Verification {
            scheme: BEARER_SCHEME.into(),
            key_index: 1
        }
    );
    assert_eq!(
        event.data.raw.value(),
        serde_json::json!({ "name": "Taro Yamada", "email": "taro@example.jp", "tag": ["a", "b"] })
    );

    let options = [
        ("secret".to_owned(), BEARER_SECRET.to_owned()),
        ("bearer".to_owned(), "true".to_owned()),
    ];
    let signed = Generic
        .sign(&SignParams {
            body: form.to_vec(),
            options: options.into(),
            now_s: 0,
        })
        .unwrap();
    let headers: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        run(BEARER_SECRET, &headers, form, 0).unwrap().events[0].event_type,
        "form.submitted"
    );

    let lower = format!("bearer {BEARER_SECRET}");
    assert!(run(BEARER_SECRET, &[("authorization", &lower)], b"[1]", 0).is_ok());
    for wrong in [
        "Bearer satori-shared-secret-012345678",
        "Basic c2F0b3Jp",
        "Bearer",
        BEARER_SECRET,
    ] {
        assert_eq!(
            run(BEARER_SECRET, &[("authorization", wrong)], b"{}", 0).unwrap_err(),
            Rejection::InvalidSignature
        );
    }
    assert_eq!(
        run(BEARER_SECRET, &[], b"{}", 0).unwrap_err(),
        Rejection::MissingSignature
    );
    assert_eq!(
        run(
            BEARER_SECRET,
            &[("authorization", &authorization)],
            b"not json",
            0
        )
        .unwrap_err(),
        Rejection::MalformedBody {
            expected: "JSON or form-urlencoded"
        }
    );
}

fn with_scheme(secrets: &str, scheme: &str) -> HashMap<String, String> {
    let mut config = config(secrets);
    config.insert("GENERIC_DEMO_SCHEME".to_owned(), scheme.to_owned());
    config
}

fn misconfigured_binding(result: Result<Handled, Rejection>) -> (String, ConfigProblem) {
    match result {
        Err(Rejection::Misconfigured { binding, problem }) => (binding, problem),
        other => panic!("expected misconfigured, got {other:?}"),
    }
}

#[test]
fn a_whsec_signing_secret_is_never_accepted_as_a_bearer_password() {
    let bearer = format!("Bearer {SW_SECRET}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    // Unset scheme: a whsec_ secret makes a Standard Webhooks account, which wants a signature.
    assert_eq!(
        run(SW_SECRET, &headers, b"{}", SW_NOW_MS).unwrap_err(),
        Rejection::MissingSignature
    );
    let explicit = with_scheme(SW_SECRET, "standard-webhooks");
    assert_eq!(
        run_with(&explicit, &headers, b"{}", SW_NOW_MS).unwrap_err(),
        Rejection::MissingSignature
    );
    // Declaring it a Bearer password does not make it one.
    let (binding, problem) = misconfigured_binding(run_with(
        &with_scheme(SW_SECRET, "bearer"),
        &headers,
        b"{}",
        SW_NOW_MS,
    ));
    assert_eq!(binding, "GENERIC_DEMO_SCHEME");
    assert_eq!(problem, ConfigProblem::SigningSecretAsBearer);
}

#[test]
fn a_bearer_account_refuses_standard_webhooks_signatures_made_with_its_token() {
    // `openssl rand -hex 32` output is also valid base64, so it could be read as a signing key.
    let token = "6d2f0b8a1c7e4d3f9a0b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f";
    let keys = SigningKeys::parse(&[token]).unwrap();
    let signature = keys.signature(SW_ID, SW_NOW_MS / 1000, SW_BODY.as_bytes());
    let headers = [
        (ID_HEADER, SW_ID),
        (TIMESTAMP_HEADER, SW_TIMESTAMP),
        (SIGNATURE_HEADER, signature.as_str()),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        run(token, &headers, SW_BODY.as_bytes(), SW_NOW_MS).unwrap_err(),
        Rejection::MissingSignature
    );
    assert_eq!(
        run_with(
            &with_scheme(token, "Bearer"),
            &headers,
            SW_BODY.as_bytes(),
            SW_NOW_MS
        )
        .unwrap_err(),
        Rejection::MissingSignature
    );
    // Only when the account says so is the token a signing key.
    let signed = run_with(
        &with_scheme(token, "standard-webhooks"),
        &headers,
        SW_BODY.as_bytes(),
        SW_NOW_MS,
    )
    .unwrap();
    assert_eq!(
        signed.events[0].data.verification.scheme,
        "standard-webhooks"
    );
    let bearer = format!("Bearer {token}");
    assert_eq!(
        run_with(
            &with_scheme(token, "standard-webhooks"),
            &[("authorization", bearer.as_str())],
            b"{}",
            SW_NOW_MS
        )
        .unwrap_err(),
        Rejection::MissingSignature
    );
}

#[test]
fn an_invalid_or_ambiguous_scheme_is_a_misconfiguration_naming_the_binding() {
    let bearer = format!("Bearer {BEARER_SECRET}");
    let headers = [("authorization", bearer.as_str())];
    let mixed = format!("{BEARER_SECRET},{SW_SECRET}");
    for (config, names, expected) in [
        (
            config(&mixed),
            "GENERIC_DEMO_SCHEME",
            ConfigProblem::MixedSecrets,
        ),
        (
            with_scheme(BEARER_SECRET, "hmac"),
            "GENERIC_DEMO_SCHEME",
            ConfigProblem::UnknownScheme,
        ),
        (
            with_scheme(BEARER_SECRET, "standard-webhooks,bearer"),
            "GENERIC_DEMO_SCHEME",
            ConfigProblem::UnknownScheme,
        ),
        (
            with_scheme(&mixed, "bearer"),
            "GENERIC_DEMO_SCHEME",
            ConfigProblem::SigningSecretAsBearer,
        ),
        (
            with_scheme(&mixed, "standard-webhooks"),
            "GENERIC_DEMO_SECRET",
            ConfigProblem::NotSigningSecrets,
        ),
        (
            with_scheme(BEARER_SECRET, "standard-webhooks"),
            "GENERIC_DEMO_SECRET",
            ConfigProblem::NotSigningSecrets,
        ),
    ] {
        let (binding, problem) =
            misconfigured_binding(run_with(&config, &headers, b"{}", SW_NOW_MS));
        assert_eq!(binding, names, "{config:?}");
        assert_eq!(problem, expected, "{config:?}");
        assert!(
            !binding.contains(BEARER_SECRET),
            "the log never names a secret"
        );
    }
    // A blank scheme is unset; the value is case-insensitive.
    assert!(run_with(&with_scheme(BEARER_SECRET, " "), &headers, b"{}", 0).is_ok());
    assert!(run_with(&with_scheme(BEARER_SECRET, "BEARER"), &headers, b"{}", 0).is_ok());
}

proptest! {
    #[test]
    fn handle_never_panics_on_arbitrary_requests(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        id in "[ -~]{0,20}",
        timestamp in "[ -~]{0,20}",
        signature in "[ -~]{0,80}",
        authorization in "[ -~]{0,60}",
        content_type in prop_oneof![Just("application/x-www-form-urlencoded".to_owned()), "[ -~]{0,30}"],
        now_ms in any::<u64>(),
        standard in any::<bool>(),
    ) {
        let mut headers = vec![("authorization", authorization.as_str()), ("content-type", content_type.as_str())];
        if standard {
            headers.extend([(ID_HEADER, id.as_str()), (TIMESTAMP_HEADER, timestamp.as_str()), (SIGNATURE_HEADER, signature.as_str())]);
        }
        for secrets in [SW_SECRET, BEARER_SECRET] {
            let _ = run(secrets, &headers, &body, now_ms);
        }
        // Authenticated, so arbitrary bodies reach the body decoding.
        let bearer = format!("Bearer {BEARER_SECRET}");
        let _ = run(BEARER_SECRET, &[("authorization", &bearer), ("content-type", &content_type)], &body, now_ms);
    }
}
