use super::*;
use crate::channels::test_support::{self, DemoRequest};
use crate::channels::Handled;
use crate::crypto::DecryptError;
use crate::query::Query;

use proptest::prelude::*;
use std::collections::HashMap;

const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const CORP: &str = "wx5823bf96d3bd56c7";
const VERIFY_QUERY: &str = "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D";
const MSG_QUERY: &str =
    "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149";
const MSG_BODY: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>";

fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (format!("WECOM_DEMO_{k}"), (*v).to_owned()))
        .collect()
}

fn sample() -> HashMap<String, String> {
    bindings(&[
        ("TOKEN", "QDG6eK"),
        ("ENCODING_AES_KEY", KEY),
        ("CORP_ID", CORP),
    ])
}

fn run(
    b: &HashMap<String, String>,
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
    test_support::run(&WeCom, b, demo)
}

/// wecom.json `wecom-official-verifyurl`.
#[test]
fn vector_verify_url_answers_the_plaintext_exactly() {
    let handled = run(&sample(), Method::GET, VERIFY_QUERY, "", 1_409_659_589_000).unwrap();
    assert_eq!(handled.response, EdgeResponse::text("1616140317555161061"));
    assert!(handled.events.is_empty());
    let late = run(
        &sample(),
        Method::GET,
        VERIFY_QUERY,
        "",
        1_409_659_589_000 + 301_000,
    );
    assert_eq!(late.unwrap_err(), Rejection::StaleTimestamp);
}

/// wecom.json `wechatpy-work-check-signature`, with its negative nonce.
#[test]
fn vector_wechatpy_work_verify_url() {
    let b = bindings(&[
        ("TOKEN", "123456"),
        (
            "ENCODING_AES_KEY",
            "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        ),
        ("CORP_ID", "wx49f0ab532d5d035a"),
    ]);
    let query = "msg_signature=dd6b9c95b495b3f7e2901bfbc76c664930ffdb96&timestamp=1411443780&nonce=437374425&echostr=4ByGGj%2BsVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1%2BbXFXDQQb1o6co6Yh9Bv41n7hOchLF6p%2BQ%3D%3D";
    let handled = run(&b, Method::GET, query, "", 1_411_443_780_000).unwrap();
    assert_eq!(handled.response.body, b"5927782489442352469");
    let negative = query.replace("nonce=437374425", "nonce=437374424");
    assert_eq!(
        run(&b, Method::GET, &negative, "", 1_411_443_780_000).unwrap_err(),
        Rejection::InvalidSignature
    );
}

/// wecom.json `wecom-official-decryptmsg` (pad 30).
#[test]
fn vector_decrypt_message() {
    let handled = run(
        &sample(),
        Method::POST,
        MSG_QUERY,
        MSG_BODY,
        1_409_659_813_000,
    )
    .unwrap();
    assert_eq!(handled.response, EdgeResponse::text(""));
    let [event] = handled.events.as_slice() else {
        panic!("one event")
    };
    assert_eq!(event.event_type, "message.received");
    assert_eq!(
        event.data.message.as_ref().unwrap().text.as_deref(),
        Some("hello")
    );
    assert_eq!(
        event.data.conversation,
        Some(Conversation {
            id: "mycreate".into(),
            kind: ConversationKind::Direct
        })
    );
    assert_eq!(event.data.raw.value()["AgentID"], "218");
    assert_eq!(
        event.data.verification,
        Verification {
            scheme: "wecom-aes".into(),
            key_index: 0
        }
    );
    // A passive reply to it is sealed for the CorpID with the key that opened it, to the sender.
    let reply = handled
        .reply
        .as_ref()
        .unwrap()
        .render(
            &crate::reply::BackendReply::Text("受け付けました".into()),
            &crate::reply::RenderContext {
                now_ms: 1_409_659_814_000,
                entropy: [3; 32],
            },
        )
        .unwrap();
    let envelope = xml::parse(std::str::from_utf8(&reply.body).unwrap()).unwrap();
    let field = |name: &str| envelope[name].as_str().unwrap().to_owned();
    assert_eq!(
        field("MsgSignature"),
        wxbiz::signature_hex(&[
            "QDG6eK",
            &field("TimeStamp"),
            &field("Nonce"),
            &field("Encrypt")
        ])
    );
    let key = AesKey::from_encoding_aes_key(KEY).unwrap();
    let opened = wxbiz::decrypt(&key, &field("Encrypt"), "wx5823bf96d3bd56c7").unwrap();
    let message = xml::parse(&opened.message).unwrap();
    assert_eq!(message["ToUserName"], "mycreate");
    assert_eq!(message["FromUserName"], "wx5823bf96d3bd56c7");
    assert_eq!(message["Content"], "受け付けました");
    let mut other = sample();
    other.insert("WECOM_DEMO_CORP_ID".into(), "wx0000000000000000".into());
    let error = run(&other, Method::POST, MSG_QUERY, MSG_BODY, 1_409_659_813_000).unwrap_err();
    assert_eq!(error, Rejection::Decrypt(DecryptError::ReceiveIdMismatch));
    assert_eq!(error.reason(), "receive_id_mismatch");
}

#[test]
fn configuration_errors_are_500s_naming_the_binding() {
    let cases = [
        (
            vec![("TOKEN", "t"), ("CORP_ID", CORP)],
            "WECOM_DEMO_ENCODING_AES_KEY",
        ),
        (
            vec![
                ("TOKEN", "t"),
                ("ENCODING_AES_KEY", "bad"),
                ("CORP_ID", CORP),
            ],
            "WECOM_DEMO_ENCODING_AES_KEY",
        ),
        (
            vec![("TOKEN", "t"), ("ENCODING_AES_KEY", KEY)],
            "WECOM_DEMO_CORP_ID",
        ),
        (
            vec![
                ("TOKEN", "t"),
                ("ENCODING_AES_KEY", KEY),
                ("CORP_ID", CORP),
                ("MODE", "bot"),
            ],
            "WECOM_DEMO_MODE",
        ),
        (
            vec![
                ("TOKEN", "t"),
                ("ENCODING_AES_KEY", KEY),
                ("CORP_ID", CORP),
                ("TIMESTAMP_SKEW_S", "5m"),
            ],
            "WECOM_DEMO_TIMESTAMP_SKEW_S",
        ),
    ];
    for (pairs, binding) in cases {
        let error = run(&bindings(&pairs), Method::POST, MSG_QUERY, MSG_BODY, 0).unwrap_err();
        assert_eq!(error, Rejection::misconfigured(binding));
    }
}

fn sign_params(body: &str, options: &[(&str, &str)]) -> SignParams {
    SignParams {
        body: body.as_bytes().to_vec(),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        now_s: 1_700_000_000,
    }
}

#[test]
fn sign_reproduces_the_official_requests() {
    let base = [("token", "QDG6eK"), ("aes-key", KEY), ("corp-id", CORP)];
    let mut get = base.to_vec();
    get.extend([
        ("method", "GET"),
        ("timestamp", "1409659589"),
        ("nonce", "263014780"),
        ("random", "c41b64491c2468d0"),
        ("echostr", "1616140317555161061"),
    ]);
    let signed = sign(&sign_params("", &get)).unwrap();
    let expected = Query::parse(Some(VERIFY_QUERY));
    for (key, value) in &signed.query {
        assert_eq!(expected.get(key), Some(value.as_str()), "{key}");
    }
    assert_eq!(signed.query.len(), 4);
    let plaintext = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>";
    let mut post = base.to_vec();
    post.extend([
        ("timestamp", "1409659813"),
        ("nonce", "1372623149"),
        ("random", "0960688932c47ef1"),
    ]);
    let signed = sign(&sign_params(plaintext, &post)).unwrap();
    assert_eq!(String::from_utf8(signed.body.clone()).unwrap(), MSG_BODY);
    let expected = Query::parse(Some(MSG_QUERY));
    for (key, value) in &signed.query {
        assert_eq!(expected.get(key), Some(value.as_str()), "{key}");
    }
    assert_eq!(signed.query.len(), 3);
}

#[test]
fn aibot_json_round_trip() {
    let b = bindings(&[
        ("TOKEN", "bot-token"),
        ("ENCODING_AES_KEY", KEY),
        ("MODE", "aibot"),
    ]);
    let message = r#"{"msgid":"CAIQ16HMjQYY","create_time":1700000000,"aibotid":"AIBOTID","chatid":"CHATID","chattype":"group","from":{"userid":"zhangsan"},"response_url":"https://example.invalid/r","msgtype":"text","text":{"content":"@RobotA hello robot"}}"#;
    let signed = sign(&sign_params(
        message,
        &[("token", "bot-token"), ("aes-key", KEY), ("mode", "aibot")],
    ))
    .unwrap();
    let query = signed.query_string().trim_start_matches('?').to_owned();
    let body = String::from_utf8(signed.body).unwrap();
    assert!(body.starts_with("{\"encrypt\":"));
    let handled = run(&b, Method::POST, &query, &body, 1_700_000_000_000).unwrap();
    let event = &handled.events[0];
    assert_eq!(event.event_type, "message.received");
    assert_eq!(
        event.data.conversation,
        Some(Conversation {
            id: "CHATID".into(),
            kind: ConversationKind::Group
        })
    );
    assert_eq!(
        event.data.reply,
        Some(Reply {
            token: "https://example.invalid/r".into()
        })
    );
    assert_eq!(
        event.data.message.as_ref().unwrap().text.as_deref(),
        Some("@RobotA hello robot")
    );
    assert_eq!(event.time, "2023-11-14T22:13:20.000Z");
    // An app account expects XML, and the CorpID as receive id rather than the AI bot's empty one.
    let app = bindings(&[
        ("TOKEN", "bot-token"),
        ("ENCODING_AES_KEY", KEY),
        ("CORP_ID", CORP),
    ]);
    assert_eq!(
        run(&app, Method::POST, &query, &body, 1_700_000_000_000).unwrap_err(),
        Rejection::MalformedBody { expected: "XML" }
    );
    let encrypt: Value = serde_json::from_str(&body).unwrap();
    let xml = format!(
        "<xml><Encrypt><![CDATA[{}]]></Encrypt></xml>",
        encrypt["encrypt"].as_str().unwrap()
    );
    assert_eq!(
        run(&app, Method::POST, &query, &xml, 1_700_000_000_000).unwrap_err(),
        Rejection::Decrypt(DecryptError::ReceiveIdMismatch)
    );
}

/// WeCom always encrypts. Every shape of an unencrypted or unsigned request is refused: WeChat's plaintext
/// `signature`, a `msg_signature` over no `Encrypt`, a plaintext body beside a valid signature.
#[test]
fn nothing_unencrypted_or_unsigned_is_accepted() {
    let now = 1_409_659_813_000;
    let (ts, nonce) = ("1409659813", "1372623149");
    let plain_sig = wxbiz::signature_hex(&["QDG6eK", ts, nonce]);
    let plaintext = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[mycreate]]></FromUserName><CreateTime>1409659813</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[forged]]></Content><MsgId>1</MsgId><AgentID>218</AgentID></xml>";
    let cases = [
        (
            format!("signature={plain_sig}&timestamp={ts}&nonce={nonce}"),
            plaintext.to_owned(),
            Rejection::MissingSignature,
        ),
        (
            format!("msg_signature={plain_sig}&timestamp={ts}&nonce={nonce}"),
            plaintext.to_owned(),
            Rejection::MissingParameter("Encrypt"),
        ),
        (
            format!("msg_signature={plain_sig}&timestamp={ts}&nonce={nonce}"),
            MSG_BODY.to_owned(),
            Rejection::InvalidSignature,
        ),
        // The official message's signature with its plaintext fields put beside the Encrypt: decrypted
        // content only (checked below), never the plaintext.
    ];
    for (query, body, expected) in cases {
        assert_eq!(
            run(&sample(), Method::POST, &query, &body, now).unwrap_err(),
            expected,
            "{query}"
        );
    }
    let beside = MSG_BODY.replace(
        "<Encrypt>",
        "<FromUserName>attacker</FromUserName><Content>forged</Content><Encrypt>",
    );
    let event = &run(&sample(), Method::POST, MSG_QUERY, &beside, now)
        .unwrap()
        .events[0];
    assert_eq!(event.data.raw.value()["Content"], "hello");
    assert_eq!(event.data.sender.as_ref().unwrap().id, "mycreate");
    // AI bots: a plaintext JSON message is not an envelope.
    let mut bot = sample();
    bot.insert("WECOM_DEMO_MODE".into(), "aibot".into());
    let json =
        r#"{"msgid":"1","msgtype":"text","from":{"userid":"x"},"text":{"content":"forged"}}"#;
    let query = format!("msg_signature={plain_sig}&timestamp={ts}&nonce={nonce}");
    assert_eq!(
        run(&bot, Method::POST, &query, json, now).unwrap_err(),
        Rejection::MissingParameter("encrypt")
    );
    let no_signature = format!("timestamp={ts}&nonce={nonce}");
    assert_eq!(
        run(
            &bot,
            Method::POST,
            &no_signature,
            r#"{"encrypt":"abc"}"#,
            now
        )
        .unwrap_err(),
        Rejection::MissingSignature
    );
}

/// Only `<Encrypt>` (or the JSON `encrypt`) is read before the signature; a broken rest is refused after it.
#[test]
fn signature_is_checked_before_the_rest_of_the_envelope() {
    let now = 1_409_659_813_000;
    let tail = format!("{}<<</x>&bogus;", "<a><![CDATA[".repeat(90_000));
    let garbage = MSG_BODY.replace("</xml>", &tail);
    let wrong = MSG_QUERY.replace("51f3e6", "51f3e7");
    assert_eq!(
        run(&sample(), Method::POST, &wrong, &garbage, now).unwrap_err(),
        Rejection::InvalidSignature
    );
    assert_eq!(
        run(&sample(), Method::POST, MSG_QUERY, &garbage, now).unwrap_err(),
        Rejection::MalformedBody { expected: "XML" }
    );
    let plain_text = MSG_BODY
        .replace("<Encrypt><![CDATA[", "<Encrypt>")
        .replace("==]]></Encrypt>", "==</Encrypt>");
    assert!(run(&sample(), Method::POST, MSG_QUERY, &plain_text, now).is_ok());

    let b = bindings(&[
        ("TOKEN", "bot-token"),
        ("ENCODING_AES_KEY", KEY),
        ("MODE", "aibot"),
    ]);
    let signed = sign(&sign_params(
        r#"{"msgid":"m1","msgtype":"text","from":{"userid":"u"}}"#,
        &[("token", "bot-token"), ("aes-key", KEY), ("mode", "aibot")],
    ))
    .unwrap();
    let query = signed.query_string().trim_start_matches('?').to_owned();
    let body = String::from_utf8(signed.body).unwrap();
    let bad = format!("{}, {}", body.trim_end_matches('}'), "x".repeat(1_000_000));
    let wrong = {
        let q = Query::parse(Some(&query));
        let signature = q.get("msg_signature").unwrap();
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        query.replacen(signature, &format!("{flipped}{}", &signature[1..]), 1)
    };
    let now = 1_700_000_000_000;
    assert_eq!(
        run(&b, Method::POST, &wrong, &bad, now).unwrap_err(),
        Rejection::InvalidSignature
    );
    assert_eq!(
        run(&b, Method::POST, &query, &bad, now).unwrap_err(),
        Rejection::MalformedBody { expected: "JSON" }
    );
    assert!(run(&b, Method::POST, &query, &body, now).is_ok());
}

/// AI-bot msgids are scoped by the sender like the Official Account's MsgId.
#[test]
fn aibot_msgid_is_scoped_by_the_sender() {
    let b = bindings(&[
        ("TOKEN", "bot-token"),
        ("ENCODING_AES_KEY", KEY),
        ("MODE", "aibot"),
    ]);
    let id_for = |user: &str| {
        let message = format!(
            r#"{{"msgid":"same","msgtype":"text","from":{{"userid":"{user}"}},"text":{{"content":"hi"}}}}"#
        );
        let signed = sign(&sign_params(
            &message,
            &[("token", "bot-token"), ("aes-key", KEY), ("mode", "aibot")],
        ))
        .unwrap();
        let query = signed.query_string().trim_start_matches('?').to_owned();
        let body = String::from_utf8(signed.body).unwrap();
        run(&b, Method::POST, &query, &body, 1_700_000_000_000)
            .unwrap()
            .events[0]
            .id
            .clone()
    };
    // sha256("wecom\ndemo\n" + '["msgid","zhangsan","same"]'), computed with Python.
    assert_eq!(id_for("zhangsan"), "evt_08df89624d1bc6a663b7aaa0ce051985");
    assert_ne!(id_for("zhangsan"), id_for("lisi"));
}

proptest! {
    #[test]
    fn handle_never_panics(
        query in "(msg_signature|timestamp|nonce|echostr)=[a-zA-Z0-9%+/=]{0,16}(&(msg_signature|timestamp|nonce|echostr)=[a-zA-Z0-9%+/=]{0,16}){0,5}",
        body in ".{0,200}",
        get in any::<bool>(),
        aibot in any::<bool>(),
    ) {
        let mut b = sample();
        if aibot {
            b.insert("WECOM_DEMO_MODE".into(), "aibot".into());
        }
        let method = if get { Method::GET } else { Method::POST };
        let _ = run(&b, method, &query, &body, 1_409_659_813_000);
    }

    #[test]
    fn handle_never_panics_on_signed_encrypted_garbage(message in ".{0,300}", aibot in any::<bool>()) {
        let mut b = bindings(&[("TOKEN", "t"), ("ENCODING_AES_KEY", KEY), ("CORP_ID", CORP)]);
        let mut options = vec![("token", "t"), ("aes-key", KEY), ("corp-id", CORP)];
        if aibot {
            b.insert("WECOM_DEMO_MODE".into(), "aibot".into());
            options.push(("mode", "aibot"));
        }
        let signed = sign(&sign_params(&message, &options)).unwrap();
        let query = signed.query_string().trim_start_matches('?').to_owned();
        let _ = run(&b, Method::POST, &query, &String::from_utf8(signed.body).unwrap(), 1_700_000_000_000);
    }
}
