//! E-mail intake: every message under `fixtures/email/` (built with Python's own MIME encoders, see
//! `scripts/gen_email_fixtures.py`) goes through `email::handle`, and the event must carry what the fixture's
//! independently written expectation says: decoded subject, addresses, thread, text, attachments.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::common::{assert_schema_valid, schema_validator, TEST_BACKEND_URL, TEST_SIGNING_SECRET};
use sekisho::config::binding_name;
use sekisho::gateway::Accepted;
use sekisho::mail::charset::EncodingRs;
use sekisho::mail::{self as email, InboundEmail};

const NOW_MS: u64 = 1_780_000_000_000;

#[derive(Debug, Deserialize)]
struct EmailFixture {
    description: String,
    account: String,
    config: HashMap<String, String>,
    envelope: Envelope,
    eml: String,
    expect: EmailExpect,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    from: String,
    to: String,
}

#[derive(Debug, Deserialize)]
struct EmailExpect {
    reason: Option<String>,
    email: Option<Value>,
}

fn dir() -> PathBuf {
    common::repo_root().join("fixtures").join("email")
}

fn fixtures() -> Vec<(String, EmailFixture, Vec<u8>)> {
    common::json_files(&dir())
        .into_iter()
        .map(|path| {
            let fixture: EmailFixture =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let raw = std::fs::read(dir().join(&fixture.eml)).unwrap();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            (name, fixture, raw)
        })
        .collect()
}

fn bindings(fixture: &EmailFixture) -> HashMap<String, String> {
    let mut bindings: HashMap<String, String> = fixture
        .config
        .iter()
        .map(|(field, value)| {
            (
                binding_name("email", &fixture.account, field),
                value.clone(),
            )
        })
        .collect();
    bindings.insert("BACKEND_URL".into(), TEST_BACKEND_URL.into());
    bindings.insert("BACKEND_SIGNING_SECRET".into(), TEST_SIGNING_SECRET.into());
    bindings
}

fn run(fixture: &EmailFixture, raw: &[u8]) -> Result<Accepted, sekisho::gateway::Refusal> {
    let inbound = InboundEmail {
        envelope_from: &fixture.envelope.from,
        envelope_to: &fixture.envelope.to,
        raw,
    };
    email::handle(&inbound, &bindings(fixture), NOW_MS, &EncodingRs)
}

fn event_of(accepted: &Accepted) -> Value {
    assert_eq!(accepted.deliveries.len(), 1, "one message, one event");
    serde_json::from_str(&accepted.deliveries[0].body).unwrap()
}

/// `expected` is the fixture's `expect.email`; null fields are "not asserted".
fn check_event(name: &str, fixture: &EmailFixture, raw: &[u8], event: &Value, expected: &Value) {
    let data = &event["data"];
    let email = &data["email"];
    let message = &data["message"];
    assert_eq!(event["type"], "message.received", "{name}");
    assert_eq!(event["channel"], "email");
    assert_eq!(event["source"], format!("/email/{}", fixture.account));
    assert_eq!(email["envelope"]["from"], fixture.envelope.from.as_str());
    assert_eq!(email["envelope"]["to"], fixture.envelope.to.as_str());
    assert_eq!(email["size"], raw.len() as u64);

    if let Some(id) = expected["message_id"].as_str() {
        assert_eq!(email["message_id"], id, "{name}: message_id");
        assert_eq!(message["id"], id, "{name}: message.id");
    }
    if let Some(subject) = expected["subject"].as_str() {
        assert_eq!(email["subject"], subject, "{name}: subject");
    }
    if let Some(from) = expected.get("from").filter(|v| v.is_object()) {
        assert_eq!(email["from"]["address"], from["address"], "{name}: from");
        if !from["name"].is_null() {
            assert_eq!(email["from"]["name"], from["name"], "{name}: from name");
        }
        let address = from["address"].as_str().unwrap().to_lowercase();
        assert_eq!(data["sender"]["id"], address.as_str(), "{name}: sender id");
    }
    for list in ["to", "cc"] {
        if let Some(expected_list) = expected[list].as_array() {
            let actual = email[list].as_array().cloned().unwrap_or_default();
            assert_eq!(actual.len(), expected_list.len(), "{name}: {list} count");
            for (a, e) in actual.iter().zip(expected_list) {
                assert_eq!(a["address"], e["address"], "{name}: {list}");
                if !e["name"].is_null() {
                    assert_eq!(a["name"], e["name"], "{name}: {list} name");
                }
            }
        }
    }
    for list in ["in_reply_to", "references"] {
        if let Some(expected_list) = expected[list].as_array() {
            let actual = email[list].as_array().cloned().unwrap_or_default();
            assert_eq!(&actual, expected_list, "{name}: {list}");
        }
    }
    if let Some(root) = expected["conversation_id"].as_str() {
        // The thread's root within the sender's address.
        let conversation = format!("{} {root}", data["sender"]["id"].as_str().unwrap());
        assert_eq!(
            data["conversation"]["id"], conversation,
            "{name}: conversation"
        );
        assert_eq!(data["conversation"]["kind"], "thread");
        assert_eq!(
            data["ordering"]["key"],
            format!("email/{}/{conversation}", fixture.account)
        );
    }
    if let Some(text) = expected["text"].as_str() {
        assert_eq!(message["text"], text, "{name}: text");
    }
    if let Some(fragment) = expected["html_contains"].as_str() {
        let html = email["html"].as_str().unwrap_or_default();
        let text = message["text"].as_str().unwrap_or_default();
        assert!(html.contains(fragment), "{name}: html lacks {fragment:?}");
        if expected["text"].is_null() {
            // No text/plain part: the text is derived from the HTML, tags removed.
            assert!(
                !text.is_empty() && !text.contains('<'),
                "{name}: text from html {text:?}"
            );
        }
    }
    if let Some(attachments) = expected["attachments"].as_array() {
        let actual = message["attachments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            actual.len(),
            attachments.len(),
            "{name}: attachment count {actual:?}"
        );
        for (a, e) in actual.iter().zip(attachments) {
            assert_eq!(a["name"], e["name"], "{name}: attachment name");
            assert_eq!(
                a["content_type"], e["content_type"],
                "{name}: attachment type"
            );
            assert_eq!(a["size"], e["size"], "{name}: attachment size");
            if let Some(cid) = e["content_id"].as_str() {
                assert_eq!(a["id"], cid, "{name}: content id");
            }
        }
    }
    // Time and order are the receive time; the claimed `Date` is its own field.
    assert_eq!(data["ordering"]["sequence"], NOW_MS, "{name}: sequence");
    assert_eq!(event["time"], sekisho::envelope::rfc3339_millis(NOW_MS));
    if let Some(date_ms) = expected["date_ms"].as_u64() {
        let claimed = time::OffsetDateTime::parse(
            email["date"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(
            claimed.unix_timestamp() * 1000,
            date_ms as i64,
            "{name}: date"
        );
    }
}

#[test]
fn every_email_fixture_behaves_as_expected() {
    let validator = schema_validator();
    let all = fixtures();
    assert!(all.len() >= 10, "only {} e-mail fixtures", all.len());
    for (name, fixture, raw) in &all {
        let result = run(fixture, raw);
        match (&fixture.expect.reason, result) {
            (None, Ok(accepted)) => {
                let event = event_of(&accepted);
                assert_schema_valid(&validator, &event);
                assert_eq!(event["id"], accepted.deliveries[0].webhook_id.as_str());
                let expected = fixture.expect.email.clone().unwrap_or(Value::Null);
                check_event(name, fixture, raw, &event, &expected);
            }
            (Some(reason), Err(refusal)) => {
                assert_eq!(refusal.rejection.reason(), reason, "{name}");
            }
            (expected, got) => panic!(
                "{name} ({}): expected {expected:?}, got {:?}",
                fixture.description,
                got.map(|a| a.deliveries.len())
            ),
        }
    }
}

fn fixture(name: &str) -> (EmailFixture, Vec<u8>) {
    fixtures()
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, f, raw)| (f, raw))
        .unwrap_or_else(|| panic!("no fixture {name}"))
}

#[test]
fn message_id_is_the_dedupe_key_and_a_missing_one_falls_back_to_the_content() {
    let (f, raw) = fixture("plain_ascii");
    let first = event_of(&run(&f, &raw).unwrap());
    let again = event_of(&run(&f, &raw).unwrap());
    assert_eq!(first["id"], again["id"], "redelivery keeps the id");
    // Same Message-ID to another configured address of the account (To + Cc): still one event id.
    let other = EmailFixture {
        envelope: Envelope {
            from: f.envelope.from.clone(),
            to: "info@example.co.jp".into(),
        },
        ..f
    };
    assert_eq!(event_of(&run(&other, &raw).unwrap())["id"], first["id"]);

    let (f, raw) = fixture("no_message_id");
    let a = event_of(&run(&f, &raw).unwrap());
    assert_eq!(a["id"], event_of(&run(&f, &raw).unwrap())["id"]);
    let mut changed = raw.clone();
    changed.extend_from_slice(b"\r\nP.S.\r\n");
    assert_ne!(a["id"], event_of(&run(&f, &changed).unwrap())["id"]);
    assert!(a["data"]["email"].get("message_id").is_none());
}

#[derive(Debug, Deserialize)]
struct DedupeCases {
    account: String,
    config: HashMap<String, String>,
    envelope: Envelope,
    cases: Vec<DedupeCase>,
}

#[derive(Debug, Deserialize)]
struct DedupeCase {
    eml: String,
    compared_with: String,
    same_event: bool,
    description: String,
}

/// `fixtures/email/dedupe/`: SMTP retries (new trace headers in front) must keep the event id; another message
/// reusing a Message-ID must not get it.
#[test]
fn smtp_retries_keep_the_event_id_and_a_reused_message_id_does_not() {
    let text = std::fs::read_to_string(dir().join("dedupe").join("cases.json")).unwrap();
    let cases: DedupeCases = serde_json::from_str(&text).unwrap();
    assert!(cases.cases.iter().any(|case| case.same_event));
    assert!(cases.cases.iter().any(|case| !case.same_event));
    let fixture = EmailFixture {
        description: "dedupe".into(),
        account: cases.account.clone(),
        config: cases.config.clone(),
        envelope: Envelope {
            from: cases.envelope.from.clone(),
            to: cases.envelope.to.clone(),
        },
        eml: String::new(),
        expect: EmailExpect {
            reason: None,
            email: None,
        },
    };
    let id_of = |eml: &str| {
        let raw = std::fs::read(dir().join(eml)).unwrap();
        event_of(&run(&fixture, &raw).unwrap())["id"].clone()
    };
    for case in &cases.cases {
        let (a, b) = (id_of(&case.eml), id_of(&case.compared_with));
        assert_eq!(
            a == b,
            case.same_event,
            "{}: {}",
            case.eml,
            case.description
        );
    }
}

#[test]
fn a_thread_is_one_conversation() {
    let (root, root_raw) = fixture("plain_ascii");
    let (reply, reply_raw) = fixture("thread_reply");
    let reply_event = event_of(&run(&reply, &reply_raw).unwrap());
    let references = reply_event["data"]["email"]["references"]
        .as_array()
        .unwrap();
    assert!(references.len() >= 2);
    let within_sender = |event: &Value, root: &Value| {
        format!(
            "{} {}",
            event["data"]["sender"]["id"].as_str().unwrap(),
            root.as_str().unwrap()
        )
    };
    assert_eq!(
        reply_event["data"]["conversation"]["id"],
        within_sender(&reply_event, &references[0])
    );
    // A message without references is the root of its own thread.
    let root_event = event_of(&run(&root, &root_raw).unwrap());
    assert_eq!(
        root_event["data"]["conversation"]["id"],
        within_sender(&root_event, &root_event["data"]["email"]["message_id"])
    );
}

/// What a sender writes does not decide what the backend trusts: another customer's Message-ID in `References`
/// does not join their thread, `Date: 2999` is kept as the claim it is (time and order are the receive time),
/// and a forged `Authentication-Results` below Email Routing's `Received` is not the verdict.
#[test]
fn sender_facts_are_what_email_routing_saw() {
    let (f, _) = fixture("plain_ascii");
    let customer = b"ARC-Authentication-Results: i=1; mx.cloudflare.net; dkim=pass header.d=example.jp; dmarc=pass header.from=example.jp;
 spf=pass smtp.mailfrom=hanako@example.jp
Received: from mail.example.jp by route1.mx.cloudflare.net; Mon, 11 Mar 2024 09:16:07 +0000
From: Hanako <hanako@example.jp>
To: support@example.com
Message-ID: <order-10423@example.jp>
Date: Mon, 11 Mar 2024 09:16:00 +0000
Subject: order

where is my order?
";
    let intruder = b"ARC-Authentication-Results: i=1; mx.cloudflare.net; dkim=none; dmarc=none; spf=softfail smtp.mailfrom=mallory@attacker.example
Received: from attacker.example by route1.mx.cloudflare.net; Mon, 11 Mar 2024 10:00:00 +0000
Authentication-Results: mx.cloudflare.net; spf=pass; dkim=pass; dmarc=pass
From: Mallory <mallory@attacker.example>
To: support@example.com
Message-ID: <x@attacker.example>
References: <order-10423@example.jp>
In-Reply-To: <order-10423@example.jp>
Date: Fri, 01 Jan 2999 00:00:00 +0000
Subject: Re: order

send the refund to me
";
    let event = |raw: &[u8], from: &str| {
        let inbound = InboundEmail {
            envelope_from: from,
            envelope_to: "support@example.com",
            raw,
        };
        let accepted = email::handle(&inbound, &bindings(&f), NOW_MS, &EncodingRs).unwrap();
        event_of(&accepted)
    };
    let customer = event(customer, "hanako@example.jp");
    let intruder = event(intruder, "bounce+mallory@attacker.example");
    assert_ne!(
        customer["data"]["conversation"]["id"],
        intruder["data"]["conversation"]["id"]
    );
    assert_ne!(
        customer["data"]["ordering"]["key"],
        intruder["data"]["ordering"]["key"]
    );
    assert_eq!(
        intruder["data"]["conversation"]["id"],
        "mallory@attacker.example order-10423@example.jp"
    );
    assert_eq!(intruder["time"], sekisho::envelope::rfc3339_millis(NOW_MS));
    assert_eq!(intruder["data"]["ordering"]["sequence"], NOW_MS);
    assert_eq!(intruder["data"]["email"]["date"], "2999-01-01T00:00:00Z");
    assert_eq!(
        intruder["data"]["email"]["envelope"]["from"],
        "bounce+mallory@attacker.example"
    );
    assert_eq!(
        intruder["data"]["email"]["authentication"],
        serde_json::json!({"spf": "softfail", "dkim": "none", "dmarc": "none"})
    );
    assert_eq!(
        customer["data"]["email"]["authentication"],
        serde_json::json!({"spf": "pass", "dkim": "pass", "dmarc": "pass"})
    );
    let validator = schema_validator();
    assert_schema_valid(&validator, &customer);
    assert_schema_valid(&validator, &intruder);
}

#[test]
fn oversized_messages_are_refused_with_the_limit() {
    let (f, raw) = fixture("attachments");
    let mut bindings = bindings(&f);
    bindings.insert("EMAIL_MAX_BYTES".into(), (raw.len() - 1).to_string());
    let inbound = InboundEmail {
        envelope_from: &f.envelope.from,
        envelope_to: &f.envelope.to,
        raw: &raw,
    };
    let refusal = email::handle(&inbound, &bindings, NOW_MS, &EncodingRs).unwrap_err();
    assert_eq!(refusal.rejection.reason(), "payload_too_large");
    assert!(common::refused_log_line(&refusal).contains(&(raw.len() - 1).to_string()));
    bindings.insert("EMAIL_MAX_BYTES".into(), raw.len().to_string());
    assert!(email::handle(&inbound, &bindings, NOW_MS, &EncodingRs).is_ok());
}

#[test]
fn missing_backend_configuration_is_a_temporary_failure_not_a_bounce() {
    let (f, raw) = fixture("plain_ascii");
    let mut bindings = bindings(&f);
    bindings.remove("BACKEND_URL");
    let inbound = InboundEmail {
        envelope_from: &f.envelope.from,
        envelope_to: &f.envelope.to,
        raw: &raw,
    };
    let refusal = email::handle(&inbound, &bindings, NOW_MS, &EncodingRs).unwrap_err();
    assert!(refusal.rejection.status().is_server_error());
    assert_eq!(refusal.rejection.reason(), "misconfigured");
}

#[test]
fn log_lines_never_carry_the_message_body() {
    let (f, raw) = fixture("iso2022jp");
    let accepted = run(&f, &raw).unwrap();
    let line = common::accepted_log_line(&accepted, Some(0));
    let event = event_of(&accepted);
    let text = event["data"]["message"]["text"].as_str().unwrap();
    assert!(!line.contains(text) && !line.contains("Subject"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Arbitrary bytes, and real messages with arbitrary bytes spliced in, never panic.
    #[test]
    fn parsing_never_panics(
        junk in proptest::collection::vec(any::<u8>(), 0..2048),
        which in 0usize..32,
        at in any::<proptest::sample::Index>(),
    ) {
        let (_, f, _) = &fixtures_cached()[0];
        let inbound = InboundEmail { envelope_from: &f.envelope.from, envelope_to: &f.envelope.to, raw: &junk };
        let _ = email::handle(&inbound, &bindings(f), NOW_MS, &EncodingRs);
        let all = fixtures_cached();
        let (_, f, raw) = &all[which % all.len()];
        let mut spliced = raw.clone();
        let position = at.index(spliced.len() + 1);
        spliced.splice(position..position, junk.iter().copied());
        let inbound = InboundEmail { envelope_from: &f.envelope.from, envelope_to: &f.envelope.to, raw: &spliced };
        let _ = email::handle(&inbound, &bindings(f), NOW_MS, &EncodingRs);
        // Truncation anywhere (a message cut off in transit).
        let cut = &raw[..at.index(raw.len() + 1)];
        let inbound = InboundEmail { envelope_from: &f.envelope.from, envelope_to: &f.envelope.to, raw: cut };
        let _ = email::handle(&inbound, &bindings(f), NOW_MS, &EncodingRs);
    }
}

fn fixtures_cached() -> &'static [(String, EmailFixture, Vec<u8>)] {
    static CACHE: std::sync::OnceLock<Vec<(String, EmailFixture, Vec<u8>)>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(fixtures)
}

const LINK_SECRET: &str = "native-attachment-link-secret-0123456789";

fn accept_storing(
    name: &str,
    extra: &[(&str, &str)],
) -> (email::AcceptedEmail, Vec<u8>, EmailFixture) {
    let (f, raw) = fixture(name);
    let mut bindings = bindings(&f);
    for (k, v) in extra {
        bindings.insert((*k).into(), (*v).into());
    }
    let inbound = InboundEmail {
        envelope_from: &f.envelope.from,
        envelope_to: &f.envelope.to,
        raw: &raw,
    };
    let accepted = email::accept(
        &inbound,
        &f.account,
        &bindings,
        NOW_MS,
        &EncodingRs,
        email::Bucket::Present,
    )
    .unwrap();
    (accepted, raw, f)
}

const LINKS: [(&str, &str); 2] = [
    ("ATTACHMENT_URL_SECRET", LINK_SECRET),
    ("ATTACHMENT_URL_BASE", "https://gw.example"),
];

/// With the bucket, each attachment is handed over with its original bytes under a key of the event id, and
/// the event links to it with a link the route accepts.
#[test]
fn attachments_are_stored_under_the_event_id_and_linked() {
    use sekisho::attachments;
    let (accepted, _, _) = accept_storing("attachments", &LINKS);
    let event = event_of(&accepted.accepted);
    let id = event["id"].as_str().unwrap();
    let dir = dir().join("attachments");
    let originals = [
        std::fs::read(dir.join("quote.pdf")).unwrap(),
        std::fs::read(dir.join("layout.png")).unwrap(),
    ];
    let stored: Vec<_> = accepted
        .stored
        .iter()
        .map(|p| {
            (
                p.key.as_str(),
                p.content_type.as_str(),
                p.filename.as_deref(),
                &p.bytes,
            )
        })
        .collect();
    let keys = [format!("{id}/0"), format!("{id}/1")];
    assert_eq!(
        stored,
        [
            (
                keys[0].as_str(),
                "application/pdf",
                Some("見積書.pdf"),
                &originals[0]
            ),
            (
                keys[1].as_str(),
                "image/png",
                Some("layout.png"),
                &originals[1]
            ),
        ]
    );
    assert!(accepted.link_problem.is_none());
    let bindings: HashMap<String, String> = LINKS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (index, attachment) in event["data"]["message"]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let url = attachment["url"].as_str().unwrap();
        let rest = url.strip_prefix("https://gw.example").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let sekisho::route::Route::Attachment { key } =
            sekisho::route::route(&http::Method::GET, path)
        else {
            panic!("{path} is an attachment's route");
        };
        let fetch = attachments::admit(
            &http::Method::GET,
            key,
            Some(query),
            &bindings,
            NOW_MS / 1000,
        )
        .unwrap();
        assert_eq!(fetch.key, keys[index]);
    }
    // Delivered again: the same keys, so the bucket already has them.
    let (again, _, _) = accept_storing("attachments", &LINKS);
    let again_keys: Vec<_> = again.stored.iter().map(|p| p.key.clone()).collect();
    assert_eq!(again_keys, keys);
}

#[test]
fn attachments_over_a_cap_are_listed_without_a_link_and_not_stored() {
    let (accepted, _, _) = accept_storing(
        "attachments",
        &[LINKS[0], LINKS[1], ("ATTACHMENT_MAX_BYTES", "100")],
    );
    let event = event_of(&accepted.accepted);
    let listed = event["data"]["message"]["attachments"].as_array().unwrap();
    assert!(
        listed[0].get("url").is_none(),
        "the 622-byte PDF is over 100"
    );
    assert!(listed[1]["url"].is_string(), "the 76-byte PNG is stored");
    assert_eq!(accepted.stored.len(), 1);
    let (accepted, _, _) = accept_storing(
        "attachments",
        &[LINKS[0], LINKS[1], ("ATTACHMENT_MAX_MESSAGE_BYTES", "622")],
    );
    assert_eq!(accepted.stored.len(), 1, "the PDF fills the message's cap");
}

#[test]
fn without_link_settings_attachments_are_stored_unlinked_and_the_binding_is_named() {
    let (accepted, _, _) = accept_storing("inline_image_related", &[]);
    assert_eq!(accepted.stored.len(), 1);
    assert_eq!(
        accepted.link_problem.as_ref().map(|r| r.to_string()),
        Some("binding `ATTACHMENT_URL_SECRET` is missing or invalid".to_owned())
    );
    let event = event_of(&accepted.accepted);
    assert!(event["data"]["message"]["attachments"][0]
        .get("url")
        .is_none());
    // Text attachments are stored as the UTF-8 text they were decoded to.
    let (accepted, _, _) = accept_storing("big5_attachment", &LINKS);
    assert!(accepted.stored.iter().all(
        |p| !p.content_type.starts_with("text/") || p.content_type.ends_with("; charset=utf-8")
    ));
}

/// HTML-only mail: the text derived from the HTML has its character references decoded (the Worker, on wasm32,
/// used to keep named ones; `tests/e2e/email.test.mjs` sends the same message through it).
#[test]
fn html_only_text_has_its_character_references_decoded() {
    let raw =
        "From: a@example.jp\r\nTo: support@example.com\r\nMessage-ID: <entities@example.jp>\r\n\
        Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <p>A &amp; B &lt;b&gt; &copy; &nbsp;x &#12354; &hellip; &yen;100 &amp;lt;</p>\r\n";
    let inbound = InboundEmail {
        envelope_from: "a@example.jp",
        envelope_to: "support@example.com",
        raw: raw.as_bytes(),
    };
    let event = email::normalize(&inbound, "support", NOW_MS, &EncodingRs).unwrap();
    assert_eq!(
        event.data.message.unwrap().text.as_deref(),
        Some("A & B <b> © \u{a0}x あ … ¥100 &lt;")
    );
}
