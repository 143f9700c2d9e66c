//! Native cost of the request path for a ~1 KB LINE payload: verify + normalize + plan + sign the forward,
//! next to the bare HMAC-SHA256 over the same bytes (the floor any verifying gateway pays). Also WeChat safe
//! mode, inbound e-mail (MIME parse + normalize + plan + sign the forward, next to the bare parse) and Chatwork
//! notifications (template rendering, and planning a form event with its notice).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::{HeaderMap, Method};
use sekisho::channels;
use sekisho::crypto;
use sekisho::forward::SigningKeys;
use sekisho::forward::Target;
use sekisho::gateway::{self, Inbound};
use sekisho::mail::InboundEmail;
use sekisho::notify::Template;
use sekisho::tooling::SignParams;

const SECRET: &str = "8c570fa6dd201bb328f1c1eac23a96d8";

/// A webhook through the core in the Worker's order: router, admission, the channel (bodies here fit the limit).
fn handle(
    inbound: &Inbound<'_>,
    bindings: &dyn sekisho::config::Bindings,
    now_ms: u64,
) -> Result<gateway::Accepted, gateway::Refusal> {
    let sekisho::route::Route::Channel(channel) =
        sekisho::route::route(inbound.method, inbound.path)
    else {
        panic!("{} is a webhook's path", inbound.path);
    };
    let target = gateway::admit(
        channel,
        inbound.method,
        inbound.path,
        inbound.query,
        inbound.headers,
        bindings,
    )?;
    gateway::handle_admitted(&target, inbound, bindings, now_ms)
}

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
                origin: "https://gateway.test",
                path: "/line/bench",
                query: None,
                headers: &headers,
                body: black_box(&body),
            };
            let accepted = handle(&inbound, &bindings, 1_700_000_000_000).unwrap();
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
                origin: "https://gateway.test",
                path: "/wechat/bench",
                query: Some(&query),
                headers: &headers,
                body: black_box(&signed.body),
            };
            let accepted = handle(&inbound, &bindings, 1_700_000_000_000).unwrap();
            for delivery in &accepted.deliveries {
                black_box(keys.headers(delivery, 1_700_000_000));
            }
        })
    });
    group.finish();

    // Unauthenticated garbage before `<Encrypt>`, with a wrong msg_signature: only what the signature needs
    // may be read before it is checked. At the channel's default 64 KiB body limit, and at 1 MB for an account
    // that raised its limit. The reference is a full quick-xml pass over the same bytes (the old first step).
    let forged_query = query.replace("msg%5Fsignature=", "msg%5Fsignature=0");
    for size in [64 * 1024 - 200, 1_000_000] {
        let mut bindings = bindings.clone();
        bindings.insert(
            "WECHAT_BENCH_MAX_BODY_BYTES".to_owned(),
            "2000000".to_owned(),
        );
        let mut garbage = String::from("<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>");
        while garbage.len() < size - 200 {
            garbage.push_str("<a x=\"1\"><b>text &amp; more</b><c/></a>");
        }
        garbage.push_str(&format!("<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"));
        let mut group = c.benchmark_group(format!("wechat_forged_{}B", garbage.len()));
        group.sample_size(20);
        group.bench_function("refused_before_parsing", |b| {
            b.iter(|| {
                let inbound = Inbound {
                    method: &Method::POST,
                    origin: "https://gateway.test",
                    path: "/wechat/bench",
                    query: Some(&forged_query),
                    headers: &headers,
                    body: black_box(garbage.as_bytes()),
                };
                let refused = handle(&inbound, &bindings, 1_700_000_000_000).unwrap_err();
                assert_eq!(refused.rejection.reason(), "invalid_signature");
            })
        });
        group.bench_function("reference_full_xml_parse", |b| {
            b.iter(|| {
                let mut reader = quick_xml::Reader::from_str(black_box(&garbage));
                let mut events = 0usize;
                loop {
                    match reader.read_event() {
                        Ok(quick_xml::events::Event::Eof) | Err(_) => break,
                        Ok(_) => events += 1,
                    }
                }
                black_box(events)
            })
        });
        group.finish();
    }
}

const BACKEND_URL: &str = "https://backend.example/events";
const BACKEND_SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn email_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../fixtures/email/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Inbound e-mail as Email Routing hands it over: MIME parse (ISO-2022-JP text; multipart with a PDF and a
/// PNG) + normalize + plan + sign the forward, next to the bare `mail-parser` parse of the same message.
fn bench_email(c: &mut Criterion) {
    let iso2022jp = email_fixture("iso2022jp.eml");
    let attachments = email_fixture("attachments.eml");
    let bindings = HashMap::from([
        (
            "EMAIL_SUPPORT_ADDRESS".to_owned(),
            "support@example.com, info@example.co.jp".to_owned(),
        ),
        ("BACKEND_URL".to_owned(), BACKEND_URL.to_owned()),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            BACKEND_SIGNING_SECRET.to_owned(),
        ),
    ]);
    let keys = SigningKeys::from_bindings(&bindings).unwrap();
    const NOW_MS: u64 = 1_710_306_400_000;
    let inbound = |raw| InboundEmail {
        envelope_from: "ichiro.suzuki@example.co.jp",
        envelope_to: "support@example.com",
        raw,
    };
    // Once, outside the timing: a broken setup must fail here, not measure a fast refusal.
    for raw in [&iso2022jp, &attachments] {
        let accepted = sekisho::mail::handle(
            &inbound(raw),
            &bindings,
            NOW_MS,
            &sekisho::mail::charset::EncodingRs,
        )
        .unwrap();
        assert_eq!(accepted.account.as_deref(), Some("support"));
        assert_eq!(accepted.deliveries.len(), 1);
        assert!(accepted.warnings.is_empty());
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(&attachments)
        .unwrap();
    assert_eq!(parsed.attachments().count(), 2);

    let mut group = c.benchmark_group("email");
    for (id, raw) in [
        ("iso2022jp_full", &iso2022jp),
        ("attachments_full", &attachments),
    ] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(id, |b| {
            b.iter(|| {
                let accepted = sekisho::mail::handle(
                    &inbound(black_box(raw)),
                    &bindings,
                    NOW_MS,
                    &sekisho::mail::charset::EncodingRs,
                )
                .unwrap();
                for delivery in &accepted.deliveries {
                    black_box(keys.headers(delivery, NOW_MS / 1000));
                }
            })
        });
    }
    group.throughput(Throughput::Bytes(attachments.len() as u64));
    group.bench_function("parse_only", |b| {
        b.iter(|| {
            mail_parser::MessageParser::default()
                .parse(black_box(&attachments))
                .unwrap()
        })
    });
    group.finish();
}

const SATORI_SECRET: &str = "sk_satori_Zq4vN8cTnW2mR7pL";
const NOTIFY_TEMPLATE: &str = "[info][title]資料請求がありました[/title]{{data.raw.company}} {{data.raw.name}} 様\n{{data.raw.message}}[/info]";

/// A SATORI-style form submission: `Authorization: Bearer`, form-urlencoded Japanese fields.
fn satori_form() -> (HeaderMap, Vec<u8>, HashMap<String, String>) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("company", "株式会社サンプル")
        .append_pair("name", "山田 太郎")
        .append_pair("email", "taro.yamada@example.co.jp")
        .append_pair("tel", "03-5555-0123")
        .append_pair(
            "message",
            "業務用プリンターの資料を送付してください。\n導入台数は3台、設置は4月中を予定しています。",
        )
        .finish()
        .into_bytes();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {SATORI_SECRET}").parse().unwrap(),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded; charset=UTF-8"
            .parse()
            .unwrap(),
    );
    let bindings = HashMap::from([
        ("GENERIC_SATORI_SECRET".to_owned(), SATORI_SECRET.to_owned()),
        (
            "GENERIC_SATORI_NOTIFY_CHATWORK_ROOM".to_owned(),
            "271828".to_owned(),
        ),
        (
            "GENERIC_SATORI_NOTIFY_TEMPLATE".to_owned(),
            NOTIFY_TEMPLATE.to_owned(),
        ),
        ("BACKEND_URL".to_owned(), BACKEND_URL.to_owned()),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            BACKEND_SIGNING_SECRET.to_owned(),
        ),
    ]);
    (headers, body, bindings)
}

/// Chatwork notifications: rendering a parsed template over a form event, and the whole request path of a
/// form POST whose account announces it (backend delivery + `.chatwork` notice).
fn bench_notify(c: &mut Criterion) {
    const NOW_MS: u64 = 1_700_000_000_000;
    let (headers, body, bindings) = satori_form();
    let inbound = |body| Inbound {
        method: &Method::POST,
        origin: "https://gateway.test",
        path: "/generic/satori",
        query: None,
        headers: &headers,
        body,
    };
    // Once, outside the timing: a broken setup must fail here, not measure a fast refusal.
    let accepted = handle(&inbound(&body), &bindings, NOW_MS).unwrap();
    assert!(accepted.warnings.is_empty(), "{:?}", accepted.warnings);
    let [backend, notice] = accepted.deliveries.as_slice() else {
        panic!("expected 2 deliveries, got {:?}", accepted.deliveries);
    };
    assert!(backend.target.is_backend());
    assert_eq!(
        notice.webhook_id,
        format!("{}.chatwork", backend.webhook_id)
    );
    assert!(matches!(&notice.target, Target::ChatworkRoom(n) if n.room_id == "271828"));

    // The event exactly as it is forwarded: what a notice is rendered from.
    let event: serde_json::Value = serde_json::from_str(&backend.body).unwrap();
    let template = Template::parse(NOTIFY_TEMPLATE).unwrap();
    let rendered = template.render(&event);
    assert_eq!(
        rendered,
        "[info][title]資料請求がありました[/title]株式会社サンプル 山田 太郎 様\n\
         業務用プリンターの資料を送付してください。\n導入台数は3台、設置は4月中を予定しています。[/info]"
    );

    let mut group = c.benchmark_group("notify");
    group.bench_function("render_template", |b| {
        b.iter(|| template.render(black_box(&event)))
    });
    group.bench_function("plan_with_notice", |b| {
        b.iter(|| handle(&inbound(black_box(&body)), &bindings, NOW_MS).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench, bench_wechat, bench_email, bench_notify);
criterion_main!(benches);
