//! Native cost of the request path for a ~1 KB LINE payload: verify + normalize + plan + sign the forward,
//! next to the bare HMAC-SHA256 over the same bytes (the floor any verifying gateway pays).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, Method};
use sekisho::channels;
use sekisho::crypto;
use sekisho::forward::SigningKeys;
use sekisho::gateway::{self, Inbound};
use sekisho::tooling::SignParams;

const SECRET: &str = "8c570fa6dd201bb328f1c1eac23a96d8";

fn payload() -> Vec<u8> {
    let text = "こんにちは。注文番号 12345 の配送状況を教えてください。".repeat(6);
    let body = format!(
        r#"{{"destination":"U0123456789abcdef0123456789abcdef","events":[{{"type":"message","mode":"active","timestamp":1700000000000,"webhookEventId":"01HBENCH00000000000000000A","deliveryContext":{{"isRedelivery":false}},"source":{{"type":"group","groupId":"Ca56f94637cc4347f90a25382909b24b9","userId":"U4af4980629aaaaaaaaaaaaaaaaaaaaaaa"}},"replyToken":"b60d432864f44d079f6d8efe86cf404b","message":{{"id":"444573844083572737","type":"text","quoteToken":"q3Plxr4AgKd","text":"{text}"}}}}]}}"#
    );
    body.into_bytes()
}

fn bench(c: &mut Criterion) {
    let body = payload();
    let signed = channels::find("line")
        .unwrap()
        .sign(&SignParams {
            body: body.clone(),
            options: [("secret".into(), SECRET.into())].into(),
            now_s: 0,
        })
        .unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in &signed.headers {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let bindings = HashMap::from([
        ("LINE_BENCH_CHANNEL_SECRET".to_owned(), SECRET.to_owned()),
        (
            "BACKEND_URL".to_owned(),
            "https://backend.example/events".to_owned(),
        ),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ),
    ]);
    let keys = SigningKeys::from_bindings(&bindings).unwrap();

    let mut group = c.benchmark_group(format!("line_{}B", body.len()));
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("bare_hmac_sha256", |b| {
        b.iter(|| crypto::hmac_sha256(black_box(SECRET.as_bytes()), &[black_box(&body)]))
    });
    group.bench_function("verify_normalize_sign_forward", |b| {
        b.iter(|| {
            let inbound = Inbound {
                method: &Method::POST,
                path: "/line/bench",
                query: None,
                headers: &headers,
                body: black_box(&body),
            };
            let accepted = gateway::handle(&inbound, &bindings, 1_700_000_000_000).unwrap();
            for delivery in &accepted.deliveries {
                black_box(keys.headers(delivery, 1_700_000_000));
            }
        })
    });
    group.finish();
}

/// WeChat safe mode: verify msg_signature + decrypt + parse XML + normalize + plan + sign the forward, next to
/// the bare decryption (base64 + AES-256-CBC + unpad) of the same `<Encrypt>` text.
fn bench_wechat(c: &mut Criterion) {
    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const APP_ID: &str = "wx2c2769f8efd9abc2";
    let plain = br#"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[Hello, I would like to check the status of order 12345.]]></Content><MsgId>7300000000000000001</MsgId></xml>"#;
    let options = [
        ("token", "spamtest"),
        ("aes-key", KEY),
        ("app-id", APP_ID),
        ("mode", "safe"),
        ("timestamp", "1700000000"),
    ];
    let signed = channels::find("wechat")
        .unwrap()
        .sign(&SignParams {
            body: plain.to_vec(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            now_s: 1_700_000_000,
        })
        .unwrap();
    let query = signed.query_string();
    let query = query.trim_start_matches('?').to_owned();
    let headers = HeaderMap::new();
    let bindings = HashMap::from([
        ("WECHAT_BENCH_TOKEN".to_owned(), "spamtest".to_owned()),
        ("WECHAT_BENCH_ENCODING_AES_KEY".to_owned(), KEY.to_owned()),
        ("WECHAT_BENCH_APP_ID".to_owned(), APP_ID.to_owned()),
        (
            "BACKEND_URL".to_owned(),
            "https://backend.example/events".to_owned(),
        ),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ),
    ]);
    let keys = SigningKeys::from_bindings(&bindings).unwrap();
    let body_text = String::from_utf8(signed.body.clone()).unwrap();
    let encrypt = body_text
        .split("<Encrypt><![CDATA[")
        .nth(1)
        .unwrap()
        .split("]]>")
        .next()
        .unwrap()
        .to_owned();
    let aes_key = sekisho::crypto::wxbiz::AesKey::from_encoding_aes_key(KEY).unwrap();

    let mut group = c.benchmark_group(format!("wechat_safe_{}B", signed.body.len()));
    group.bench_function("bare_decrypt", |b| {
        b.iter(|| sekisho::crypto::wxbiz::decrypt(&aes_key, black_box(&encrypt), APP_ID).unwrap())
    });
    group.bench_function("verify_decrypt_parse_normalize_sign_forward", |b| {
        b.iter(|| {
            let inbound = Inbound {
                method: &Method::POST,
                path: "/wechat/bench",
                query: Some(&query),
                headers: &headers,
                body: black_box(&signed.body),
            };
            let accepted = gateway::handle(&inbound, &bindings, 1_700_000_000_000).unwrap();
            for delivery in &accepted.deliveries {
                black_box(keys.headers(delivery, 1_700_000_000));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_wechat);
criterion_main!(benches);
