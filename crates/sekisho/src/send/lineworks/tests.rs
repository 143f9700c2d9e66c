use std::collections::HashMap;

use serde_json::json;

use super::super::jwt::tests::TEST_PRIVATE_KEY;
use super::super::test_support::*;
use super::super::{sender, Failure, Recipient, SendOutcome};

const USER: &str = "f4e7b8ed-8e1f-4ba1-1dd4-03f7ec0bd3a0";
const CHANNEL: &str = "c8a6f0e2-4b1d-4f3a-9c5e-7b2d0a4f6c8e";

fn configured() -> HashMap<String, String> {
    env(&[
        ("LINEWORKS_ACME_CLIENT_ID", "XN3ffPU1bYkcL4PJzPlz"),
        ("LINEWORKS_ACME_CLIENT_SECRET", "Nn3mq0XUf4"),
        (
            "LINEWORKS_ACME_SERVICE_ACCOUNT",
            "1a2b3.serviceaccount@example.co.jp",
        ),
        ("LINEWORKS_ACME_PRIVATE_KEY", TEST_PRIVATE_KEY),
    ])
}

#[test]
fn a_text_to_a_user_is_the_documented_bot_message() {
    let (_, request) = first_request(
        "lineworks",
        json!({"to":{"user":USER},"message":{"text":"こんにちは <m userId=\"all\">\r\n\u{1b}"}}),
        &configured(),
        Some("kr1ACCESS"),
    )
    .unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        format!("https://www.worksapis.com/v1.0/bots/2000001/users/{USER}/messages")
    );
    assert_eq!(header(&request, "authorization"), Some("Bearer kr1ACCESS"));
    assert_eq!(header(&request, "content-type"), Some("application/json"));
    // No mention the backend did not ask for: the brackets are full-width.
    assert_eq!(
        body_json(&request),
        json!({"content":{"type":"text","text":"こんにちは ＜m userId=\"all\"＞\n"}})
    );
    assert!(!format!("{request:?}").contains("kr1ACCESS"));
}

#[test]
fn a_conversation_is_a_channel_and_the_api_base_is_a_binding() {
    let mut env = configured();
    env.insert("LINEWORKS_API_BASE".into(), "http://127.0.0.1:9/".into());
    let button = json!({"type":"button_template","contentText":"?","actions":[{"type":"message","label":"OK"}]});
    let (_, request) = first_request(
        "lineworks",
        json!({"to":{"conversation":CHANNEL},"message":{"raw":button}}),
        &env,
        Some("T"),
    )
    .unwrap();
    assert_eq!(
        request.url,
        format!("http://127.0.0.1:9/v1.0/bots/2000001/channels/{CHANNEL}/messages")
    );
    assert_eq!(body_json(&request), json!({ "content": button }));
    // A login id is a user id too, percent-encoded in the path.
    let (_, by_login) = first_request(
        "lineworks",
        json!({"to":{"user":"taro@example.co.jp"},"message":{"text":"x"}}),
        &configured(),
        Some("T"),
    )
    .unwrap();
    assert!(by_login
        .url
        .ends_with("/users/taro%40example.co.jp/messages"));
}

#[test]
fn a_conversation_unknown_as_a_channel_is_sent_once_to_the_user_of_that_id() {
    let (job, _) = first_request(
        "lineworks",
        json!({"to":{"conversation":USER},"message":{"text":"x"}}),
        &configured(),
        Some("T"),
    )
    .unwrap();
    let lineworks = sender("lineworks").unwrap();
    assert_eq!(
        lineworks.readdress(&job, 404),
        Some(Recipient::User(USER.into()))
    );
    assert_eq!(lineworks.readdress(&job, 400), None);
    let readdressed = super::super::SendJob {
        to: Recipient::User(USER.into()),
        ..job
    };
    assert_eq!(lineworks.readdress(&readdressed, 404), None);
    // The other senders never readdress.
    assert_eq!(sender("line").unwrap().readdress(&readdressed, 404), None);
}

#[test]
fn what_lineworks_can_never_take_is_refused() {
    let env = configured();
    let refused = |body| {
        first_request("lineworks", body, &env, Some("T"))
            .unwrap_err()
            .body()
    };
    assert_eq!(
        refused(json!({"to":{"user":USER},"message":{"text":"字".repeat(2_001)}})),
        r#"{"error":"text_too_long","limit":2000,"unit":"characters"}"#
    );
    assert!(first_request(
        "lineworks",
        json!({"to":{"user":USER},"message":{"text":"😀".repeat(2_000)}}),
        &env,
        Some("T")
    )
    .is_ok());
    assert_eq!(
        refused(json!({"to":{"user":"a/../b"},"message":{"text":"x"}})),
        r#"{"error":"invalid_recipient"}"#
    );
    assert_eq!(
        refused(json!({"to":{"user":USER},"message":{"raw":{"text":"no type"}}})),
        r#"{"error":"invalid_raw"}"#
    );
    for field in [
        "CLIENT_ID",
        "CLIENT_SECRET",
        "SERVICE_ACCOUNT",
        "PRIVATE_KEY",
    ] {
        let mut partial = configured();
        partial.remove(&format!("LINEWORKS_ACME_{field}"));
        assert_eq!(
            first_request(
                "lineworks",
                json!({"to":{"user":USER},"message":{"text":"x"}}),
                &partial,
                Some("T")
            )
            .unwrap_err()
            .body(),
            format!(r#"{{"error":"not_configured","field":"{field}"}}"#)
        );
    }
}

#[test]
fn answers_are_classified() {
    assert_eq!(
        classify("lineworks", 201, "", None),
        SendOutcome::Sent { message_id: None }
    );
    assert_eq!(
        classify(
            "lineworks",
            401,
            r#"{"code":"UNAUTHORIZED","description":"Authentication failed"}"#,
            None
        ),
        SendOutcome::TokenRejected(Failure::new("UNAUTHORIZED", "Authentication failed"))
    );
    assert_eq!(
        classify(
            "lineworks",
            429,
            r#"{"code":"TOO_MANY_REQUESTS","description":"Too many requests"}"#,
            Some("7")
        ),
        SendOutcome::RateLimited {
            wait_s: Some(7),
            failure: Failure::new("TOO_MANY_REQUESTS", "Too many requests")
        }
    );
    assert!(matches!(
        classify("lineworks", 503, "<html>", None),
        SendOutcome::Temporary(f) if f.code == "503"
    ));
    assert_eq!(
        classify(
            "lineworks",
            400,
            r#"{"code":"INVALID_PARAMETER","description":"content.text is too long"}"#,
            None
        ),
        SendOutcome::Permanent(Failure::new(
            "INVALID_PARAMETER",
            "content.text is too long"
        ))
    );
    assert!(matches!(
        classify(
            "lineworks",
            403,
            r#"{"code":"FORBIDDEN","description":"Not allowed bot"}"#,
            None
        ),
        SendOutcome::Permanent(_)
    ));
}
