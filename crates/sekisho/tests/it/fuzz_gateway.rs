//! Property tests: no input makes the gateway panic, whatever the channel, path, headers or body.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use crate::common;

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use sekisho::channels::CHANNELS;
use sekisho::gateway::Inbound;

fn bindings() -> HashMap<String, String> {
    // Every channel gets an account `fz` whose every plausible field is set, so requests reach the parsers.
    let mut bindings = HashMap::from([
        (
            "BACKEND_URL".to_owned(),
            common::TEST_BACKEND_URL.to_owned(),
        ),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            common::TEST_SIGNING_SECRET.to_owned(),
        ),
    ]);
    for channel in CHANNELS {
        bindings.insert(
            sekisho::config::binding_name(channel.name(), "fz", channel.account_field()),
            "c2VjcmV0".to_owned(),
        );
    }
    bindings
}

fn header_names() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "x-line-signature",
        "x-works-signature",
        "x-works-botid",
        "x-chatworkwebhooksignature",
        "x-telegram-bot-api-secret-token",
        "x-hub-signature-256",
        "x-slack-signature",
        "x-slack-request-timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "authorization",
        "content-type",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn never_panics(
        channel in prop::sample::select(CHANNELS.iter().map(|c| c.name()).collect::<Vec<_>>()),
        extra in prop::option::of("[a-zA-Z0-9%/]{0,20}"),
        query in prop::option::of("[a-z_.=&%+0-9A-F]{0,80}"),
        headers in prop::collection::vec((header_names(), "[ -~]{0,60}"), 0..5),
        body in prop::collection::vec(any::<u8>(), 0..400),
        json_body in "[\\[\\]{}\":,a-z0-9 ]{0,200}",
        use_json in any::<bool>(),
        get in any::<bool>(),
    ) {
        let bindings = bindings();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        let path = match &extra { Some(extra) => format!("/{channel}/fz/{extra}"), None => format!("/{channel}/fz") };
        let body = if use_json { json_body.into_bytes() } else { body };
        let method = if get { Method::GET } else { Method::POST };
        let inbound = Inbound { method: &method, origin: "https://gateway.test", path: &path, query: query.as_deref(), headers: &map, body: &body };
        let _ = common::handle(&inbound, &bindings, 1_700_000_000_000);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Validly signed requests with arbitrary bodies: past the signature, into parsing and normalization.

/// How a channel's template body is varied.
#[derive(Clone, Copy)]
enum Shape {
    /// One string leaf of the JSON body replaced.
    Json,
    /// The `<Content>` of the XML message replaced.
    Xml,
    /// One value of the form replaced.
    Form,
}

/// One channel's account `fz`: its bindings, the options its [`sekisho::tooling::Sign`] implementation signs
/// with, and a real request body to vary.
struct Signed {
    channel: &'static str,
    bindings: Vec<(&'static str, String)>,
    options: Vec<(&'static str, String)>,
    template: String,
    shape: Shape,
}

const NOW_MS: u64 = 1_700_000_000_000;
/// An Ed25519 private key (seed) for Discord: the gateway is configured with its public key.
const DISCORD_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const WECHAT_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn fixture_body(path: &str) -> String {
    let text = std::fs::read_to_string(common::repo_root().join("fixtures").join(path)).unwrap();
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    fixture["request"]["body"].as_str().unwrap().to_owned()
}

fn example(path: &str) -> String {
    std::fs::read_to_string(common::repo_root().join("examples").join(path)).unwrap()
}

fn signed_setups() -> Vec<Signed> {
    let s = |v: &str| v.to_owned();
    let secret = |field: &'static str, value: &str| (field, s(value));
    vec![
        Signed {
            channel: "line",
            bindings: vec![secret("CHANNEL_SECRET", "line-secret")],
            options: vec![("secret", s("line-secret"))],
            template: fixture_body("line/sdk-middleware-text.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "lineworks",
            bindings: vec![
                secret("BOT_SECRET", "works-secret"),
                secret("BOT_ID", "2000001"),
            ],
            options: vec![("secret", s("works-secret")), ("bot-id", s("2000001"))],
            template: fixture_body("lineworks/vector-text.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "wechat",
            bindings: vec![
                secret("TOKEN", "wechat-token"),
                secret("ENCODING_AES_KEY", WECHAT_AES_KEY),
                secret("APP_ID", "wx1234567890abcdef"),
            ],
            options: vec![
                ("token", s("wechat-token")),
                ("aes-key", s(WECHAT_AES_KEY)),
                ("app-id", s("wx1234567890abcdef")),
            ],
            template: example("wechat-text.xml"),
            shape: Shape::Xml,
        },
        Signed {
            channel: "wecom",
            bindings: vec![
                secret("TOKEN", "wecom-token"),
                secret("ENCODING_AES_KEY", WECHAT_AES_KEY),
                secret("CORP_ID", "wx5823bf96d3bd56c7"),
            ],
            options: vec![
                ("token", s("wecom-token")),
                ("aes-key", s(WECHAT_AES_KEY)),
                ("corp-id", s("wx5823bf96d3bd56c7")),
            ],
            template: example("wecom-text.xml"),
            shape: Shape::Xml,
        },
        Signed {
            channel: "chatwork",
            bindings: vec![secret(
                "WEBHOOK_TOKEN",
                "iY/hmitgwCBlc5DnjAZ8pyRG1HF0zFflfmKmtCDg1wk=",
            )],
            options: vec![("secret", s("iY/hmitgwCBlc5DnjAZ8pyRG1HF0zFflfmKmtCDg1wk="))],
            template: fixture_body("chatwork/message-created.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "chatplus",
            bindings: vec![secret("PATH_SECRET", &"c".repeat(64))],
            options: vec![("secret", "c".repeat(64))],
            template: fixture_body("chatplus/chat-received.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "telegram",
            bindings: vec![secret("SECRET_TOKEN", "s3cr3t_TOKEN-abc123")],
            options: vec![("secret", s("s3cr3t_TOKEN-abc123"))],
            template: fixture_body("telegram/message-group-text.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "messenger",
            bindings: vec![secret("APP_SECRET", "meta-app-secret")],
            options: vec![("secret", s("meta-app-secret"))],
            template: fixture_body("messenger/text-unicode-escapes.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "instagram",
            bindings: vec![secret("APP_SECRET", "meta-app-secret")],
            options: vec![("secret", s("meta-app-secret"))],
            template: fixture_body("instagram/text-unicode-escapes.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "whatsapp",
            bindings: vec![secret("APP_SECRET", "meta-app-secret")],
            options: vec![("secret", s("meta-app-secret"))],
            template: fixture_body("whatsapp/batch-unicode-escapes.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "slack",
            bindings: vec![secret("SIGNING_SECRET", "slack-signing-secret")],
            options: vec![("secret", s("slack-signing-secret"))],
            template: fixture_body("slack/message-channel.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "discord",
            bindings: vec![(
                "PUBLIC_KEY",
                sekisho::channels::discord::public_key_hex(DISCORD_SEED).unwrap(),
            )],
            options: vec![("secret", s(DISCORD_SEED))],
            template: fixture_body("discord/command-dm.json"),
            shape: Shape::Json,
        },
        Signed {
            channel: "twilio",
            bindings: vec![secret("AUTH_TOKEN", "77c5d8b3591650d278302ae0abd10101")],
            options: vec![
                ("secret", s("77c5d8b3591650d278302ae0abd10101")),
                ("url", s("https://gateway.test/twilio/fz")),
            ],
            template: fixture_body("twilio/default-port.json"),
            shape: Shape::Form,
        },
        Signed {
            channel: "generic",
            bindings: vec![secret("SECRET", common::TEST_SIGNING_SECRET)],
            options: vec![("secret", s(common::TEST_SIGNING_SECRET))],
            template: fixture_body("generic/sw-typed-payload.json"),
            shape: Shape::Json,
        },
    ]
}

/// Replaces the `pick`th string leaf of a JSON value (depth first), counting down `pick`; true once replaced.
fn replace_leaf(value: &mut serde_json::Value, pick: &mut usize, text: &str) -> bool {
    match value {
        serde_json::Value::String(leaf) => {
            if *pick == 0 {
                *leaf = text.to_owned();
                return true;
            }
            *pick -= 1;
            false
        }
        serde_json::Value::Array(items) => items.iter_mut().any(|v| replace_leaf(v, pick, text)),
        serde_json::Value::Object(map) => map.values_mut().any(|v| replace_leaf(v, pick, text)),
        _ => false,
    }
}

fn count_leaves(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(_) => 1,
        serde_json::Value::Array(items) => items.iter().map(count_leaves).sum(),
        serde_json::Value::Object(map) => map.values().map(count_leaves).sum(),
        _ => 0,
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The template with one field (the `pick`th, modulo their number) replaced by `text`.
fn vary(setup: &Signed, pick: usize, text: &str) -> Vec<u8> {
    match setup.shape {
        Shape::Json => {
            let mut value: serde_json::Value = serde_json::from_str(&setup.template).unwrap();
            let mut pick = pick % count_leaves(&value).max(1);
            replace_leaf(&mut value, &mut pick, text);
            value.to_string().into_bytes()
        }
        Shape::Xml => {
            let (head, rest) = setup.template.split_once("<Content><![CDATA[").unwrap();
            let (_, tail) = rest.split_once("]]>").unwrap();
            format!(
                "{head}<Content><![CDATA[{}]]>{tail}",
                text.replace("]]>", "")
            )
            .into_bytes()
        }
        Shape::Form => {
            let pairs: Vec<&str> = setup.template.split('&').collect();
            let pick = pick % pairs.len();
            pairs
                .iter()
                .enumerate()
                .map(|(i, pair)| match (i == pick, pair.split_once('=')) {
                    (true, Some((name, _))) => format!("{name}={}", percent_encode(text)),
                    _ => (*pair).to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes()
        }
    }
}

/// Signs `body` as the provider would and runs it through the core in the Worker's order; `None` when the
/// provider could not have sent it (the WeChat tools encrypt only UTF-8 XML).
fn run_signed(
    setup: &Signed,
    body: Vec<u8>,
) -> Option<Result<sekisho::gateway::Accepted, sekisho::gateway::Refusal>> {
    let channel = sekisho::channels::find(setup.channel).unwrap();
    let params = sekisho::tooling::SignParams {
        body,
        options: setup
            .options
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
        now_s: NOW_MS / 1000,
    };
    let request = channel.sign(&params).ok()?;
    let mut bindings = HashMap::from([
        (
            "BACKEND_URL".to_owned(),
            common::TEST_BACKEND_URL.to_owned(),
        ),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            common::TEST_SIGNING_SECRET.to_owned(),
        ),
    ]);
    for (field, value) in &setup.bindings {
        bindings.insert(
            sekisho::config::binding_name(setup.channel, "fz", field),
            value.clone(),
        );
    }
    let mut path = format!("/{}/fz", setup.channel);
    for segment in &request.extra_path {
        path.push('/');
        path.push_str(segment);
    }
    let query = request.query_string();
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let inbound = Inbound {
        method: &request.method,
        origin: "https://gateway.test",
        path: &path,
        query: query.strip_prefix('?'),
        headers: &headers,
        body: &request.body,
    };
    Some(common::handle(&inbound, &bindings, NOW_MS))
}

#[test]
fn every_templates_body_as_signed_reaches_normalization() {
    for setup in signed_setups() {
        let body = setup.template.clone().into_bytes();
        let result = run_signed(&setup, body).unwrap();
        assert!(
            result
                .as_ref()
                .is_ok_and(|accepted| !accepted.deliveries.is_empty()),
            "{}: {:?}",
            setup.channel,
            result.err()
        );
    }
}

/// Signed requests for every channel with arbitrary bodies: a real body with one field replaced by arbitrary
/// text, or arbitrary bytes. None may be refused as unsigned; the varied real bodies must nearly all reach
/// normalization (the few that do not change a field the protocol constrains, such as an event type).
#[test]
fn validly_signed_arbitrary_bodies_reach_normalization() {
    use proptest::test_runner::{Config, TestRunner};
    let setups = signed_setups();
    assert_eq!(
        setups.len(),
        CHANNELS.len(),
        "every channel has a signed setup"
    );
    let mut runner = TestRunner::new(Config {
        cases: 1_200,
        ..Config::default()
    });
    let counts = std::cell::RefCell::new(HashMap::<(&str, bool), [usize; 2]>::new());
    let unsignable = std::cell::RefCell::new(0usize);
    let strategy = (
        0..setups.len(),
        any::<usize>(),
        "\\PC{0,80}",
        prop::option::weighted(0.25, prop::collection::vec(any::<u8>(), 0..300)),
    );
    runner
        .run(&strategy, |(index, pick, text, bytes)| {
            let setup = &setups[index];
            let varied = bytes.is_none();
            let body = bytes.unwrap_or_else(|| vary(setup, pick, &text));
            let Some(result) = run_signed(setup, body) else {
                prop_assert!(
                    !varied,
                    "{}: a varied real body is always signable",
                    setup.channel
                );
                *unsignable.borrow_mut() += 1;
                return Ok(());
            };
            let normalized = match result {
                Ok(_) => true,
                Err(refusal) => {
                    let status = refusal.rejection.status().as_u16();
                    prop_assert!(
                        !matches!(status, 401 | 404 | 405 | 500),
                        "{}: refused before the body was looked at: {:?}",
                        setup.channel,
                        refusal.rejection
                    );
                    false
                }
            };
            counts
                .borrow_mut()
                .entry((setup.channel, varied))
                .or_default()[usize::from(normalized)] += 1;
            Ok(())
        })
        .unwrap();
    let counts = counts.into_inner();
    let total = |varied: bool, normalized: bool| -> usize {
        counts
            .iter()
            .filter(|((_, v), _)| *v == varied)
            .map(|(_, c)| c[usize::from(normalized)])
            .sum()
    };
    let (varied_ok, varied_refused) = (total(true, true), total(true, false));
    let (bytes_ok, bytes_refused) = (total(false, true), total(false, false));
    let unsignable = unsignable.into_inner();
    assert_eq!(
        varied_ok + varied_refused + bytes_ok + bytes_refused + unsignable,
        1_200
    );
    // Every channel normalized some of its varied bodies, and together nine in ten of them were normalized.
    for setup in &setups {
        let [_, ok] = counts
            .get(&(setup.channel, true))
            .copied()
            .unwrap_or_default();
        assert!(
            ok > 0,
            "{}: no varied body reached normalization",
            setup.channel
        );
    }
    assert!(
        varied_ok * 10 >= (varied_ok + varied_refused) * 9,
        "varied bodies normalized: {varied_ok}, refused after the signature: {varied_refused}"
    );
    // Arbitrary bytes are refused as malformed by nearly every channel, after the signature was checked.
    assert!(
        bytes_refused > 0,
        "arbitrary bytes: {bytes_ok} normalized, {bytes_refused} refused"
    );
    eprintln!(
        "signed fuzzing: varied bodies {varied_ok} normalized, {varied_refused} refused; arbitrary bytes \
         {bytes_ok} normalized, {bytes_refused} refused, {unsignable} not signable"
    );
}
