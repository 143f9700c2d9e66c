use crate::channels::Handled;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

#[test]
fn a_reply_is_a_message_that_mentions_nobody() {
    let context = RenderContext {
        now_ms: 0,
        entropy: [0; 32],
    };
    let render = |reply: BackendReply| -> Result<serde_json::Value, NoReply> {
        InteractionReply
            .render(&reply, &context)
            .map(|response| serde_json::from_slice(&response.body).unwrap())
    };
    assert_eq!(
        render(BackendReply::Text("@everyone <@123> 受け付けました".into())).unwrap(),
        serde_json::json!({"type": 4, "data": {"content": "@everyone <@123> 受け付けました", "allowed_mentions": {"parse": []}}})
    );
    let long = render(BackendReply::Text("あ".repeat(3000))).unwrap();
    assert_eq!(
        long["data"]["content"].as_str().unwrap().chars().count(),
        2000
    );
    let embed = serde_json::json!({"type": 4, "data": {"embeds": [{"title": "t"}]}});
    assert_eq!(
        render(BackendReply::Raw(embed)).unwrap(),
        serde_json::json!({"type": 4, "data": {"embeds": [{"title": "t"}], "allowed_mentions": {"parse": []}}})
    );
    // A raw reply mentions nobody unless it says whom itself.
    let everyone = serde_json::json!({"type": 4, "data": {"content": "@everyone 至急"}});
    assert_eq!(
        render(BackendReply::Raw(everyone)).unwrap()["data"]["allowed_mentions"],
        serde_json::json!({"parse": []})
    );
    let chosen = serde_json::json!({"type": 4, "data": {"content": "<@42>", "allowed_mentions": {"users": ["42"]}}});
    assert_eq!(render(BackendReply::Raw(chosen.clone())).unwrap(), chosen);
    let pong = serde_json::json!({"type": 5});
    assert_eq!(render(BackendReply::Raw(pong.clone())).unwrap(), pong);
    assert!(render(BackendReply::Raw(serde_json::json!({"data": {}}))).is_err());
}
use crate::channels::test_support::{self, DemoRequest};
use crate::envelope::event_id;

/// RFC 8032 §7.1 TEST 1: the key pair the fixtures are signed with, and its published signature of the
/// empty message.
const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC_EMPTY_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/// RFC 8032 §7.1 TEST 2: the one-byte message 0x72.
const RFC2_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
const RFC2_PUBLIC: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const RFC2_SIGNATURE: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";
const NOW_MS: u64 = 1_700_000_000_000;

fn keys(hex: &[&str]) -> Vec<VerifyingKey> {
    hex.iter()
        .map(|h| {
            VerifyingKey::from_bytes(&crypto::hex_decode(h).unwrap().try_into().unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn rfc8032_vectors_verify_and_derive() {
    let both = keys(&[RFC_PUBLIC, RFC2_PUBLIC]);
    assert_eq!(verify(&both, RFC_EMPTY_SIGNATURE, b"", b""), Ok(0));
    assert_eq!(verify(&both, RFC2_SIGNATURE, b"", b"\x72"), Ok(1));
    // The same bytes split between timestamp and body are the same message.
    assert_eq!(verify(&both, RFC2_SIGNATURE, b"\x72", b""), Ok(1));
    assert_eq!(
        verify(&both, RFC2_SIGNATURE, b"", b"\x73"),
        Err(Rejection::InvalidSignature)
    );
    assert_eq!(public_key_hex(RFC_SEED).unwrap(), RFC_PUBLIC);
    assert_eq!(public_key_hex(RFC2_SEED).unwrap(), RFC2_PUBLIC);
    let signed = Discord
        .sign(&SignParams {
            body: Vec::new(),
            options: [
                ("secret".to_owned(), RFC_SEED.to_owned()),
                ("timestamp".to_owned(), String::new()),
            ]
            .into(),
            now_s: 0,
        })
        .unwrap_err();
    assert!(matches!(signed, ToolingError::InvalidOption { .. }));
    // Deterministic signatures: signing "" ‖ "" reproduces the RFC's signature.
    let message: &[u8] = b"";
    assert_eq!(
        crypto::hex_encode(&signing_key(RFC_SEED).unwrap().sign(message).to_bytes()),
        RFC_EMPTY_SIGNATURE
    );
}

#[test]
fn private_keys_in_both_forms_and_nothing_else() {
    let long = format!("{RFC_SEED}{RFC_PUBLIC}");
    assert_eq!(public_key_hex(&long).unwrap(), RFC_PUBLIC);
    let mismatched = format!("{RFC_SEED}{RFC2_PUBLIC}");
    for bad in [&mismatched, "abc", "", &RFC_SEED[..62], "zz"] {
        assert!(public_key_hex(bad).is_err(), "{bad}");
    }
}

fn bindings(public_key: &str) -> HashMap<String, String> {
    HashMap::from([("DISCORD_DEMO_PUBLIC_KEY".to_owned(), public_key.to_owned())])
}

fn signed_request(
    bindings: &HashMap<String, String>,
    body: &str,
    timestamp: &str,
    now_ms: u64,
) -> Result<Handled, Rejection> {
    let signed = Discord
        .sign(&SignParams {
            body: body.as_bytes().to_vec(),
            options: [
                ("secret".to_owned(), RFC_SEED.to_owned()),
                ("timestamp".to_owned(), timestamp.to_owned()),
            ]
            .into(),
            now_s: 0,
        })
        .unwrap();
    let headers: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    test_support::run(
        &Discord,
        bindings,
        DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: None,
            headers: &headers,
            body: body.as_bytes(),
            now_ms,
        },
    )
}

#[test]
fn ping_is_answered_and_forwards_nothing() {
    let handled =
        signed_request(&bindings(RFC_PUBLIC), r#"{"type":1}"#, "1700000000", NOW_MS).unwrap();
    assert_eq!(handled.response.body, PONG.as_bytes());
    assert_eq!(handled.response.content_type, "application/json");
    assert!(handled.events.is_empty());
}

#[test]
fn a_command_becomes_an_event_keyed_by_the_interaction_id() {
    let body = r#"{"type":2,"id":"1180000000000000000","token":"tok","application_id":"1","guild_id":"9","channel_id":"8","member":{"nick":"Nick","user":{"id":"7","username":"u"}},"data":{"name":"hello","options":[{"name":"who","type":3,"value":"you"}]}}"#;
    let handled = signed_request(
        &bindings(&format!("{RFC2_PUBLIC},{RFC_PUBLIC}")),
        body,
        "1700000000",
        NOW_MS,
    )
    .unwrap();
    assert_eq!(handled.response.body, DEFERRED_CHANNEL_MESSAGE.as_bytes());
    let event = &handled.events[0];
    assert_eq!(event.id, event_id("discord", "demo", "1180000000000000000"));
    assert_eq!(event.event_type, "command.invoked");
    assert_eq!(event.data.verification.key_index, 1);
    assert_eq!(
        event.data.sender.as_ref().unwrap().name.as_deref(),
        Some("Nick")
    );
    assert_eq!(event.data.reply.as_ref().unwrap().token, "tok");
    // (1180000000000000000 >> 22) ms after 2015-01-01, independently computed in Python.
    assert_eq!(event.time, "2023-12-01T04:18:43.339Z");
}

#[test]
fn clock_window_both_ways_and_only_digits() {
    let b = bindings(RFC_PUBLIC);
    let ping = r#"{"type":1}"#;
    assert!(signed_request(&b, ping, "1700000300", NOW_MS).is_ok());
    assert!(signed_request(&b, ping, "1699999700", NOW_MS).is_ok());
    for (timestamp, now) in [("1700000301", NOW_MS), ("1699999699", NOW_MS)] {
        assert_eq!(
            signed_request(&b, ping, timestamp, now).unwrap_err(),
            Rejection::StaleTimestamp
        );
    }
    let mut wider = b.clone();
    wider.insert("DISCORD_DEMO_TIMESTAMP_SKEW_S".into(), "600".into());
    assert!(signed_request(&wider, ping, "1700000600", NOW_MS).is_ok());
    wider.insert("DISCORD_DEMO_TIMESTAMP_SKEW_S".into(), "5m".into());
    assert_eq!(
        signed_request(&wider, ping, "1700000000", NOW_MS).unwrap_err(),
        Rejection::misconfigured("DISCORD_DEMO_TIMESTAMP_SKEW_S")
    );
}

#[test]
fn bad_public_keys_are_misconfigured() {
    for value in [
        "zz",
        &RFC_PUBLIC[..62],
        &format!("{RFC_PUBLIC}00"),
        &format!("{RFC_PUBLIC} nothex"),
    ] {
        assert_eq!(
            signed_request(&bindings(value), r#"{"type":1}"#, "1700000000", NOW_MS).unwrap_err(),
            Rejection::misconfigured("DISCORD_DEMO_PUBLIC_KEY"),
            "{value}"
        );
    }
}

proptest! {
    #[test]
    fn arbitrary_bodies_and_signatures_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        signature in "[0-9a-fA-F]{0,130}",
        timestamp in "[0-9+ -]{0,12}",
    ) {
        let headers = [(SIGNATURE_HEADER, signature.as_str()), (TIMESTAMP_HEADER, timestamp.as_str())];
        let result = test_support::run(&Discord, &bindings(RFC_PUBLIC), DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: None,
            headers: &headers,
            body: &body,
            now_ms: NOW_MS,
        });
        prop_assert!(result.is_err());
    }

    #[test]
    fn any_signed_json_never_panics(body in "[ -~]{0,200}") {
        let _ = signed_request(&bindings(RFC_PUBLIC), &body, "1700000000", NOW_MS);
    }
}
