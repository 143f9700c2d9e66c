use super::*;
use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;

use proptest::prelude::*;
use std::collections::HashMap;

const OA_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const OFFICIAL_BODY: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";

fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("WECHAT_DEMO_{k}"), (*v).to_owned()))
        .collect()
}

fn official() -> HashMap<String, String> {
    bindings(&[
        ("TOKEN", "spamtest"),
        ("ENCODING_AES_KEY", OA_KEY),
        ("APP_ID", "wx2c2769f8efd9abc2"),
    ])
}

fn run(
    bindings: &HashMap<String, String>,
    method: Method,
    query: &str,
    body: &str,
    now_ms: u64,
) -> Result<Handled, Rejection> {
    let demo = DemoRequest::<&str> {
        method,
        extra_path: &[],
        query: Some(query),
        headers: &[],
        body: body.as_bytes(),
        now_ms,
    };
    test_support::run(&WeChat, bindings, demo)
}

fn signed_query(request: &SignedRequest) -> String {
    request.query_string().trim_start_matches('?').to_owned()
}

#[test]
fn vector_plain_handshake_echoes_verbatim() {
    let b = bindings(&[("TOKEN", "test")]);
    let query = "signature=f21891de399b4e33a1a93c9a7b8a8fffb5a443ff&timestamp=1410685589&nonce=test&echostr=a+b%2F%3D";
    let handled = run(&b, Method::GET, query, "", 1_410_685_589_000).unwrap();
    assert_eq!(handled.response, EdgeResponse::text("a+b/="));
    assert!(handled.events.is_empty());
    let negative = query.replace("5a443ff", "5a443fe");
    assert_eq!(
        run(&b, Method::GET, &negative, "", 1_410_685_589_000).unwrap_err(),
        Rejection::InvalidSignature
    );
    assert_eq!(
        run(&b, Method::GET, query, "", 1_410_685_589_000 + 301_000).unwrap_err(),
        Rejection::StaleTimestamp
    );
}

#[test]
fn vector_official_sample_in_compatible_and_safe_mode() {
    let query = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
    let now = 1_409_735_669_000;
    let handled = run(&official(), Method::POST, query, OFFICIAL_BODY, now).unwrap();
    assert_eq!(handled.response, EdgeResponse::text("success"));
    let [event] = handled.events.as_slice() else {
        panic!("one event")
    };
    assert_eq!(event.event_type, "message.received");
    assert_eq!(event.time, "2014-09-03T09:14:28.000Z");
    assert_eq!(
        event.data.message.as_ref().unwrap().text.as_deref(),
        Some("abcdteT")
    );
    assert_eq!(
        event.data.sender.as_ref().unwrap().id,
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    );
    assert_eq!(
        event.data.verification,
        Verification {
            scheme: "wechat-aes".into(),
            key_index: 0
        }
    );
    assert_eq!(event.data.raw.value()["MsgId"], "6054768590064713728");
    assert!(
        event.data.raw.value().get("Encrypt").is_none(),
        "raw is the decrypted message, not the envelope"
    );
    // sha256("wechat\ndemo\n" + '["MsgId","oyORnuP8q7ou2gfYjqLzSIWZf0rs","6054768590064713728"]'), by Python:
    // the MsgId scoped by the sender.
    assert_eq!(event.id, "evt_f47124b16f4f91b8bed14a755b244aa5");

    // Safe mode carries only ToUserName and Encrypt; the signature is the same.
    let start = OFFICIAL_BODY.find("<Encrypt>").unwrap();
    let safe = format!(
        "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>{}",
        &OFFICIAL_BODY[start..]
    );
    let safe_event = run(&official(), Method::POST, query, &safe, now)
        .unwrap()
        .events;
    assert_eq!(safe_event, handled.events);

    // The receive id is checked against configuration.
    let mut other = official();
    other.insert("WECHAT_DEMO_APP_ID".into(), "wx0000000000000000".into());
    assert_eq!(
        run(&other, Method::POST, query, OFFICIAL_BODY, now).unwrap_err(),
        Rejection::Decrypt(crate::crypto::DecryptError::ReceiveIdMismatch)
    );
    // With a key configured, the plaintext signature of the same request is not enough: it covers only
    // token, timestamp and nonce, never the body.
    let plain =
        "signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a&timestamp=1409735669&nonce=1320562132";
    let refused = run(&official(), Method::POST, plain, OFFICIAL_BODY, now).unwrap_err();
    assert_eq!(refused, Rejection::EncryptionRequired);
}

/// The downgrade of the security review: the signed triple of any recent URL (here the official sample's
/// derived plaintext signature) must not carry a body of the sender's choosing.
#[test]
fn plaintext_post_with_a_key_configured_is_encryption_required() {
    let now = 1_409_735_669_000;
    let plain =
        "signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a&timestamp=1409735669&nonce=1320562132";
    let forged = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oSomeoneElse]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged]]></Content><MsgId>1</MsgId></xml>";
    for query in [
        plain.to_owned(),
        format!("{plain}&openid=oSomeoneElse&encrypt_type=raw"),
    ] {
        let error = run(&official(), Method::POST, &query, forged, now).unwrap_err();
        assert_eq!(error, Rejection::EncryptionRequired, "{query}");
        assert_eq!(
            (error.status().as_u16(), error.reason()),
            (401, "encryption_required")
        );
    }
    // Declaring encryption without its signature is a missing signature.
    assert_eq!(
        run(
            &official(),
            Method::POST,
            &format!("{plain}&encrypt_type=aes"),
            OFFICIAL_BODY,
            now
        )
        .unwrap_err(),
        Rejection::MissingSignature
    );
    // The mode follows configuration: a valid msg_signature is decrypted even without encrypt_type.
    let no_type = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa";
    let handled = run(&official(), Method::POST, no_type, OFFICIAL_BODY, now).unwrap();
    assert_eq!(handled.events[0].data.verification.scheme, "wechat-aes");
    assert_eq!(handled.replay_guard, None);
    // The handshake still works with the plaintext signature, and guards nothing in safe mode.
    let handshake = format!("{plain}&echostr=42");
    let handled = run(&official(), Method::GET, &handshake, "", now).unwrap();
    assert_eq!(
        (handled.response.body.as_slice(), handled.replay_guard),
        (&b"42"[..], None)
    );
}

/// Compatible mode carries plaintext fields beside `<Encrypt>`; they are not signed and never used.
#[test]
fn compatible_mode_uses_only_the_decrypted_content() {
    let query = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
    let tampered = OFFICIAL_BODY
        .replace("oyORnuP8q7ou2gfYjqLzSIWZf0rs", "oAttacker")
        .replace("abcdteT", "forged")
        .replace("6054768590064713728", "1");
    let handled = run(
        &official(),
        Method::POST,
        query,
        &tampered,
        1_409_735_669_000,
    )
    .unwrap();
    let event = &handled.events[0];
    assert_eq!(
        event.data.message.as_ref().unwrap().text.as_deref(),
        Some("abcdteT")
    );
    assert_eq!(
        event.data.sender.as_ref().unwrap().id,
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    );
    assert_eq!(event.data.raw.value()["MsgId"], "6054768590064713728");
}

/// Plaintext mode: the guard's values, computed independently with Python's hashlib:
/// key = sha256("1410685589\ntest\nf21891de…43ff"), body_digest = sha256(body), expiry = (ts + 300) s.
#[test]
fn plaintext_mode_binds_the_signed_query_to_its_body() {
    let b = bindings(&[("TOKEN", "test")]);
    let body = "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA[oPlainUser0000000000000000001]]></FromUserName><CreateTime>1410685588</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[plain & simple]]></Content><MsgId>6060000000000000001</MsgId></xml>";
    let query =
        "signature=f21891de399b4e33a1a93c9a7b8a8fffb5a443ff&timestamp=1410685589&nonce=test";
    let expected = ReplayGuard {
        key: "aeacf09c116f4085d06c0d65b55ef01fd02dcf0dd0d72ebbdd210a3da03e4cf0".into(),
        body_digest: "0475c7d53d7f6a21297e5e15400a44323d8aab378c2c28c40822b860a318d7e5".into(),
        expires_at_ms: 1_410_685_889_000,
    };
    let handled = run(&b, Method::POST, query, body, 1_410_685_591_000).unwrap();
    assert_eq!(handled.events[0].data.verification.scheme, "wechat-sha1");
    assert_eq!(handled.replay_guard.as_ref(), Some(&expected));
    // Hex in capitals verifies too, and is the same signed query.
    let upper = query.replace(
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff",
        "F21891DE399B4E33A1A93C9A7B8A8FFFB5A443FF",
    );
    let handled = run(&b, Method::POST, &upper, body, 1_410_685_591_000).unwrap();
    assert_eq!(handled.replay_guard.as_ref(), Some(&expected));
    // Another body under the same query: same key, another digest, so the gateway can refuse it.
    let other = run(
        &b,
        Method::POST,
        query,
        &body.replace("plain & simple", "forged"),
        1_410_685_591_000,
    )
    .unwrap()
    .replay_guard
    .unwrap();
    assert_eq!(other.key, expected.key);
    assert_ne!(other.body_digest, expected.body_digest);
    // The last accepted instant is the guard's expiry; a millisecond later the request is stale.
    assert!(run(&b, Method::POST, query, body, expected.expires_at_ms).is_ok());
    assert_eq!(
        run(&b, Method::POST, query, body, expected.expires_at_ms + 1).unwrap_err(),
        Rejection::StaleTimestamp
    );
    // A handshake binds its query to the empty body, so its URL cannot be reused for a message.
    let handshake = format!("{query}&echostr=1");
    let guard = run(&b, Method::GET, &handshake, "", 1_410_685_591_000)
        .unwrap()
        .replay_guard
        .unwrap();
    assert_eq!(guard.key, expected.key);
    assert_eq!(
        guard.body_digest,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    // A TIMESTAMP_SKEW_S setting moves the expiry with the window.
    let mut wide = b.clone();
    wide.insert("WECHAT_DEMO_TIMESTAMP_SKEW_S".into(), "60".into());
    let guard = run(&wide, Method::POST, query, body, 1_410_685_591_000)
        .unwrap()
        .replay_guard
        .unwrap();
    assert_eq!(guard.expires_at_ms, 1_410_685_649_000);
}

/// The envelope is read only up to `<Encrypt>` before `msg_signature` is checked: a megabyte of broken XML
/// after it costs no parsing, and a wrong signature is reported as such.
#[test]
fn signature_is_checked_before_the_rest_of_the_envelope() {
    let query = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
    let now = 1_409_735_669_000;
    let garbage = format!(
        "{OFFICIAL_BODY}{}</nope>&bogus;<<<",
        "<a><![CDATA[".repeat(90_000)
    );
    assert!(garbage.len() > 1_000_000);
    let wrong = query.replace("5d197aaf", "5d197aae");
    assert_eq!(
        run(&official(), Method::POST, &wrong, &garbage, now).unwrap_err(),
        Rejection::InvalidSignature
    );
    // Garbage in the middle, after Encrypt and before the root closes.
    let inside = OFFICIAL_BODY.replace("</Encrypt></xml>", "</Encrypt><a></b>\u{0}</xml>");
    assert_eq!(
        run(&official(), Method::POST, &wrong, &inside, now).unwrap_err(),
        Rejection::InvalidSignature
    );
    // Correctly signed, the broken rest is refused after the signature (nothing forwarded).
    for body in [&garbage, &inside] {
        assert_eq!(
            run(&official(), Method::POST, query, body, now).unwrap_err(),
            Rejection::MalformedBody { expected: "XML" }
        );
    }
    // Encrypt as plain text instead of CDATA verifies the same.
    let start = OFFICIAL_BODY.find("<Encrypt>").unwrap();
    let plain_text = format!(
        "<xml><ToUserName>gh_10f6c3c3ac5a</ToUserName>{}",
        &OFFICIAL_BODY[start..]
    )
    .replace("<![CDATA[hyzA", "hyzA")
    .replace("PE=]]>", "PE=");
    let events = run(&official(), Method::POST, query, &plain_text, now)
        .unwrap()
        .events;
    assert_eq!(events[0].data.raw.value()["Content"], "abcdteT");
    // A second Encrypt after a correctly signed first one: refused after the signature.
    let twice = OFFICIAL_BODY.replace(
        "</Encrypt></xml>",
        "</Encrypt><Encrypt><![CDATA[AAAA]]></Encrypt></xml>",
    );
    assert_eq!(
        run(&official(), Method::POST, query, &twice, now).unwrap_err(),
        Rejection::MalformedBody { expected: "XML" }
    );
}

#[test]
fn vector_java_sample_decrypts_to_text_that_is_not_xml() {
    let b = bindings(&[
        ("TOKEN", "pamtest"),
        ("ENCODING_AES_KEY", OA_KEY),
        ("APP_ID", "wxb11529c136998cb6"),
    ]);
    let body = "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==]]></Encrypt></xml>";
    let query = "timestamp=1409304348&nonce=xxxxxx&encrypt_type=aes&msg_signature=82c962d39941aa48552f90ef55aa323dc620cc10";
    assert_eq!(
        run(&b, Method::POST, query, body, 1_409_304_348_000).unwrap_err(),
        Rejection::MalformedBody { expected: "XML" }
    );
}

#[test]
fn key_rotation_reports_the_old_key_and_misconfiguration_is_a_500() {
    let new_key = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
    let mut b = official();
    b.insert(
        "WECHAT_DEMO_ENCODING_AES_KEY".into(),
        format!("{new_key}, {OA_KEY}"),
    );
    let query = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
    let events = run(&b, Method::POST, query, OFFICIAL_BODY, 1_409_735_669_000)
        .unwrap()
        .events;
    assert_eq!(events[0].data.verification.key_index, 1);
    b.insert("WECHAT_DEMO_ENCODING_AES_KEY".into(), "short".into());
    let error = run(&b, Method::POST, query, OFFICIAL_BODY, 1_409_735_669_000).unwrap_err();
    assert_eq!(
        error,
        Rejection::misconfigured("WECHAT_DEMO_ENCODING_AES_KEY")
    );
    assert_eq!(error.status().as_u16(), 500);
}

/// A plaintext account (no key) asked to decrypt: the admin is told only when WeChat itself asks, i.e. the
/// request carries a valid plaintext `signature`; anything else is the sender's 401.
#[test]
fn a_plaintext_account_asked_for_aes_checks_the_signature_first() {
    let no_key = bindings(&[("TOKEN", "spamtest"), ("APP_ID", "wx2c2769f8efd9abc2")]);
    let now = 1_409_735_669_000;
    let encrypted = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
    let unsigned = run(&no_key, Method::POST, encrypted, OFFICIAL_BODY, now).unwrap_err();
    assert_eq!(unsigned, Rejection::MissingSignature);
    assert_eq!(unsigned.status().as_u16(), 401);
    let forged = format!("{encrypted}&signature=0000000000000000000000000000000000000000");
    assert_eq!(
        run(&no_key, Method::POST, &forged, OFFICIAL_BODY, now).unwrap_err(),
        Rejection::InvalidSignature
    );
    let signed = format!("{encrypted}&signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a");
    assert_eq!(
        run(&no_key, Method::POST, &signed, OFFICIAL_BODY, now).unwrap_err(),
        Rejection::misconfigured("WECHAT_DEMO_ENCODING_AES_KEY")
    );
}

#[test]
fn missing_parts_have_their_own_reasons() {
    let b = official();
    let now = 1_409_735_669_000;
    assert_eq!(
        run(&b, Method::POST, "timestamp=1&nonce=2", "<xml/>", now).unwrap_err(),
        Rejection::EncryptionRequired
    );
    let plain = bindings(&[("TOKEN", "t")]);
    assert_eq!(
        run(&plain, Method::POST, "timestamp=1&nonce=2", "<xml/>", now).unwrap_err(),
        Rejection::MissingSignature
    );
    assert_eq!(
        run(
            &b,
            Method::POST,
            "encrypt_type=aes&timestamp=1&nonce=2&signature=x",
            "<xml/>",
            now
        )
        .unwrap_err(),
        Rejection::MissingSignature
    );
    assert_eq!(
        run(&plain, Method::POST, "signature=x&nonce=2", "<xml/>", now).unwrap_err(),
        Rejection::MissingParameter("timestamp")
    );
    assert_eq!(
        run(&b, Method::GET, "signature=x&nonce=2&timestamp=1", "", now).unwrap_err(),
        Rejection::MissingParameter("echostr")
    );
    assert_eq!(
        run(
            &b,
            Method::POST,
            "encrypt_type=aes&msg_signature=x&timestamp=1&nonce=2",
            "<xml><ToUserName>a</ToUserName></xml>",
            now
        )
        .unwrap_err(),
        Rejection::MissingParameter("Encrypt")
    );
    assert_eq!(
        run(&b, Method::PUT, "", "", now).unwrap_err(),
        Rejection::MethodNotAllowed
    );
}

fn sign_params(body: &str, options: &[(&str, &str)]) -> SignParams {
    SignParams {
        body: body.as_bytes().to_vec(),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        now_s: 1_409_735_669,
    }
}

#[test]
fn sign_reproduces_the_official_sample_and_round_trips_every_mode() {
    let plaintext = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";
    let base = [
        ("token", "spamtest"),
        ("aes-key", OA_KEY),
        ("app-id", "wx2c2769f8efd9abc2"),
        ("nonce", "1320562132"),
        ("random", "89465c840c5f116f"),
    ];
    let signed = sign(&sign_params(plaintext, &base)).unwrap();
    let query: HashMap<_, _> = signed.query.iter().cloned().collect();
    assert_eq!(
        query["msg_signature"],
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    );
    assert_eq!(
        query["signature"],
        "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
    );
    assert_eq!(query["openid"], "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
    for mode in ["plain", "compat", "safe"] {
        let mut options = base.to_vec();
        options.push(("mode", mode));
        let signed = sign(&sign_params(plaintext, &options)).unwrap();
        let body = String::from_utf8(signed.body.clone()).unwrap();
        // Plaintext mode is for accounts without a key.
        let account = if mode == "plain" {
            bindings(&[("TOKEN", "spamtest")])
        } else {
            official()
        };
        let handled = run(
            &account,
            Method::POST,
            &signed_query(&signed),
            &body,
            1_409_735_669_000,
        )
        .unwrap();
        assert_eq!(
            handled.events[0].data.raw.value()["Content"],
            "abcdteT",
            "{mode}"
        );
    }
    let mut get = base.to_vec();
    get.extend([("method", "GET"), ("echostr", "hello+world")]);
    let signed = sign(&sign_params("", &get)).unwrap();
    let handled = run(
        &official(),
        Method::GET,
        &signed_query(&signed),
        "",
        1_409_735_669_000,
    )
    .unwrap();
    assert_eq!(handled.response.body, b"hello+world");
    // Without options the request is still deterministic.
    let a = sign(&sign_params(plaintext, &[("token", "t")])).unwrap();
    assert_eq!(a, sign(&sign_params(plaintext, &[("token", "t")])).unwrap());
    assert_eq!(
        sign(&sign_params(plaintext, &[("token", "t"), ("mode", "odd")])).unwrap_err(),
        ToolingError::InvalidOption {
            option: "mode",
            why: "must be plain, compat or safe"
        }
    );
    assert_eq!(
        sign(&sign_params(plaintext, &[("token", "t"), ("mode", "safe")])).unwrap_err(),
        ToolingError::MissingOption("aes-key")
    );
}

proptest! {
    #[test]
    fn handle_never_panics(
        query in "(signature|msg_signature|timestamp|nonce|encrypt_type|echostr)=[a-z0-9%+]{0,12}(&(signature|msg_signature|timestamp|nonce|encrypt_type|echostr)=[a-z0-9%+]{0,12}){0,6}",
        body in ".{0,200}",
        get in any::<bool>(),
    ) {
        let method = if get { Method::GET } else { Method::POST };
        let _ = run(&official(), method, &query, &body, 1_409_735_669_000);
    }

    #[test]
    fn handle_never_panics_on_signed_encrypted_garbage(message in ".{0,300}", random in "[a-z]{16}") {
        // A correctly signed and encrypted request whose plaintext is arbitrary.
        let base = [("token", "spamtest"), ("aes-key", OA_KEY), ("app-id", "wx2c2769f8efd9abc2"), ("random", random.as_str())];
        let mut options: Vec<(&str, &str)> = base.to_vec();
        options.push(("mode", "safe"));
        let signed = sign(&sign_params(&message, &options)).unwrap();
        let body = String::from_utf8(signed.body.clone()).unwrap();
        let _ = run(&official(), Method::POST, &signed_query(&signed), &body, 1_409_735_669_000);
    }
}
