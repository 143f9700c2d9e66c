use serde_json::json;

use super::*;
use crate::crypto::wxbiz;

/// The Official Account's documented key and AppID (shared/vectors/wechat_oa.json).
const OA_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_ID: &str = "wxb11529c136998cb6";
const TOKEN: &str = "pamtest";

fn reply_to(sealed: bool) -> PassiveReplyTo {
    PassiveReplyTo {
        user: "oUser".into(),
        account: "gh_account".into(),
        seal: sealed.then(|| Seal {
            key: AesKey::from_encoding_aes_key(OA_KEY).unwrap(),
            token: TOKEN.into(),
            receive_id: APP_ID.into(),
        }),
    }
}

const CONTEXT: RenderContext = RenderContext {
    now_ms: 1_700_000_000_123,
    entropy: [7; 32],
};

fn text_of(xml: &str, element: &str) -> String {
    let fields = crate::channels::wechat::xml::parse(xml).unwrap();
    fields[element].as_str().unwrap().to_owned()
}

#[test]
fn a_safe_mode_reply_decrypts_with_the_key_to_the_swapped_message_and_is_signed() {
    let response = reply_to(true)
        .render(&BackendReply::Text("受け付けました".into()), &CONTEXT)
        .unwrap();
    assert_eq!(response.status, 200);
    let envelope = std::str::from_utf8(&response.body).unwrap();
    let encrypt = text_of(envelope, "Encrypt");
    let timestamp = text_of(envelope, "TimeStamp");
    let nonce = text_of(envelope, "Nonce");
    assert_eq!(timestamp, "1700000000");
    assert!(!nonce.is_empty() && nonce.bytes().all(|b| b.is_ascii_digit()));
    // msg_signature = sha1(sort(token, timestamp, nonce, encrypt)), as WeChat checks it.
    assert_eq!(
        text_of(envelope, "MsgSignature"),
        wxbiz::signature_hex(&[TOKEN, &timestamp, &nonce, &encrypt])
    );
    let key = AesKey::from_encoding_aes_key(OA_KEY).unwrap();
    let message = wxbiz::decrypt(&key, &encrypt, APP_ID).unwrap().message;
    let fields = crate::channels::wechat::xml::parse(&message).unwrap();
    assert_eq!(fields["ToUserName"], "oUser");
    assert_eq!(fields["FromUserName"], "gh_account");
    assert_eq!(fields["CreateTime"], "1700000000");
    assert_eq!(fields["MsgType"], "text");
    assert_eq!(fields["Content"], "受け付けました");
}

#[test]
fn a_plaintext_mode_reply_is_the_message_itself() {
    let response = reply_to(false)
        .render(&BackendReply::Text("hi".into()), &CONTEXT)
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&response.body).unwrap(),
        "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_account]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content></xml>"
    );
}

#[test]
fn reply_text_cannot_inject_elements() {
    let attack = "x]]></Content><ToUserName><![CDATA[victim]]></ToUserName><Content><![CDATA[y";
    let response = reply_to(false)
        .render(&BackendReply::Text(attack.into()), &CONTEXT)
        .unwrap();
    let fields =
        crate::channels::wechat::xml::parse(std::str::from_utf8(&response.body).unwrap()).unwrap();
    assert_eq!(fields["ToUserName"], "oUser");
    assert_eq!(fields["Content"], attack);
    assert_eq!(fields.len(), 5);
}

#[test]
fn raw_fields_become_elements_and_cannot_redirect_the_reply() {
    let raw = json!({"MsgType": "news", "ArticleCount": 1, "Articles": [{"Title": "t", "Url": "https://x"}]});
    let response = reply_to(false)
        .render(&BackendReply::Raw(raw), &CONTEXT)
        .unwrap();
    let fields =
        crate::channels::wechat::xml::parse(std::str::from_utf8(&response.body).unwrap()).unwrap();
    assert_eq!(fields["MsgType"], "news");
    assert_eq!(fields["ArticleCount"], "1");
    assert_eq!(fields["Articles"]["item"]["Title"], "t");
    for refused in [
        json!({"MsgType": "text", "ToUserName": "victim"}),
        json!({"Content": "no type"}),
        json!({"MsgType": "text", "a b": "x"}),
        json!({"MsgType": "text", "x": {"y": {"z": {"w": {"v": "deep"}}}}}),
        json!("text"),
    ] {
        assert!(
            matches!(
                reply_to(false).render(&BackendReply::Raw(refused.clone()), &CONTEXT),
                Err(NoReply::Unrenderable(_))
            ),
            "{refused}"
        );
    }
}

#[test]
fn the_reply_names_the_message_sender() {
    let fields = crate::channels::wechat::xml::parse(
        "<xml><ToUserName>gh_a</ToUserName><FromUserName>oU</FromUserName><MsgType>text</MsgType></xml>",
    )
    .unwrap();
    let reply = PassiveReplyTo::for_message(&fields, None).unwrap();
    assert_eq!(
        (reply.user.as_str(), reply.account.as_str()),
        ("oU", "gh_a")
    );
    let anonymous =
        crate::channels::wechat::xml::parse("<xml><ToUserName>gh_a</ToUserName></xml>").unwrap();
    assert!(PassiveReplyTo::for_message(&anonymous, None).is_none());
}
