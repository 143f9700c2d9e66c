//! `sekisho webhook …`: the CLI binary against local mock servers of the Telegram, LINE and Meta APIs. Each mock
//! records the request it got and answers with the provider's documented JSON.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const BOT_TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const BOT_SECRET_PART: &str = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const LINE_TOKEN: &str = "line-channel-access-token-0123456789abcdef";
const WORKS_TOKEN: &str = "kr1AAABBBCCCworks-oauth-access-token";
const APP_ID: &str = "188559381496048";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct Mock {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Mock {
    /// Answers every request with `status` and `body`.
    fn start(status: u16, body: String) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut parts = request_line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().to_owned(),
                );
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    let (name, value) = line.split_once(':').unwrap();
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut request_body = vec![0; length];
                reader.read_exact(&mut request_body).unwrap();
                recorder.lock().unwrap().push(Recorded {
                    method,
                    path,
                    headers,
                    body: request_body,
                });
                let answer = format!(
                    "HTTP/1.1 {status} Mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        Mock { base, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        requests[0].clone()
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn sekisho(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command.arg("webhook").args(args);
    for variable in [
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE",
        "LINE_CHANNEL_ACCESS_TOKEN",
        "LINE_API_BASE",
        "LINEWORKS_ACCESS_TOKEN",
        "LINEWORKS_API_BASE",
        "META_APP_ID",
        "META_APP_SECRET",
        "META_API_BASE",
    ] {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    let run = Run {
        code: status.code().unwrap(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    for credential in [BOT_SECRET_PART, LINE_TOKEN, WORKS_TOKEN, APP_SECRET] {
        assert!(
            !run.stdout.contains(credential) && !run.stderr.contains(credential),
            "a credential was printed:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

/// The value in `printf %s '<value>' | npx wrangler secret put <binding>`.
fn wrangler_value(stdout: &str, binding: &str) -> String {
    let line = stdout
        .lines()
        .find(|line| {
            line.trim_end()
                .ends_with(&format!("npx wrangler secret put {binding}"))
        })
        .unwrap_or_else(|| panic!("no wrangler line for {binding} in:\n{stdout}"));
    let quoted = line
        .trim()
        .strip_prefix("printf %s ")
        .unwrap()
        .split(" | ")
        .next()
        .unwrap();
    quoted
        .strip_prefix('\'')
        .unwrap()
        .strip_suffix('\'')
        .unwrap()
        .to_owned()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn telegram_ok() -> String {
    r#"{"ok":true,"result":true,"description":"Webhook was set"}"#.to_owned()
}

#[test]
fn telegram_set_sends_the_secret_that_the_wrangler_line_stores() {
    let mock = Mock::start(200, telegram_ok());
    let run = sekisho(
        &[
            "telegram",
            "set",
            "--account",
            "ACME",
            "--bot-token",
            BOT_TOKEN,
            "--url",
            "https://gw.example/telegram/acme",
            "--secret-token",
            "generated",
            "--allowed-updates",
            "message,callback_query",
            "--drop-pending-updates",
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let request = mock.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{BOT_TOKEN}/setWebhook"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    let body = request.json();
    let sent = body["secret_token"].as_str().unwrap().to_owned();
    assert!(
        sent.len() >= 32
            && sent
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    assert_eq!(
        body,
        json!({
            "url": "https://gw.example/telegram/acme",
            "secret_token": sent,
            "allowed_updates": ["message", "callback_query"],
            "drop_pending_updates": true
        })
    );
    assert_eq!(
        wrangler_value(&run.stdout, "TELEGRAM_ACME_SECRET_TOKEN"),
        sent
    );
    assert_eq!(
        run.stdout.matches(&sent).count(),
        1,
        "the secret appears only in the wrangler line"
    );
    assert!(run.stdout.contains("TELEGRAM_ACME_BOT_ID = \"123456789\""));
}

#[test]
fn telegram_set_with_a_given_secret_and_the_token_from_the_environment() {
    let mock = Mock::start(200, telegram_ok());
    let run = sekisho(
        &[
            "telegram",
            "set",
            "--url",
            "https://gw.example/telegram/acme-jp",
            "--secret-token",
            "my_Secret-1",
        ],
        &[
            ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
            ("TELEGRAM_API_BASE", &mock.base),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let body = mock.only_request().json();
    assert_eq!(
        body,
        json!({"url": "https://gw.example/telegram/acme-jp", "secret_token": "my_Secret-1"})
    );
    assert_eq!(
        wrangler_value(&run.stdout, "TELEGRAM_ACME_JP_SECRET_TOKEN"),
        "my_Secret-1"
    );
}

#[test]
fn telegram_errors_are_shown_and_fail() {
    let mock = Mock::start(
        401,
        r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#.to_owned(),
    );
    let run = sekisho(
        &[
            "telegram",
            "set",
            "--bot-token",
            BOT_TOKEN,
            "--url",
            "https://gw.example/telegram/acme",
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("Telegram refused the call (401): Unauthorized"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("wrangler"),
        "no secret line after a refusal: {}",
        run.stdout
    );

    let run = sekisho(
        &[
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("Unauthorized"), "{}", run.stderr);
}

fn webhook_info(url: &str, last_error_date: u64) -> String {
    json!({"ok": true, "result": {
        "url": url, "has_custom_certificate": false, "pending_update_count": 7,
        "last_error_date": last_error_date,
        "last_error_message": "Wrong response from the webhook: 401 Unauthorized",
        "max_connections": 40, "ip_address": "203.0.113.10"
    }})
    .to_string()
}

#[test]
fn telegram_info_fails_on_a_recent_delivery_error() {
    let mock = Mock::start(
        200,
        webhook_info("https://gw.example/telegram/acme", now_s() - 600),
    );
    let run = sekisho(
        &[
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let request = mock.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", &*format!("/bot{BOT_TOKEN}/getWebhookInfo"))
    );
    assert!(run.stdout.contains("pending_update_count: 7"));
    assert!(run
        .stdout
        .contains("last_error_message: Wrong response from the webhook: 401 Unauthorized"));
    assert!(
        run.stderr
            .contains("problem: the provider's last delivery failed at"),
        "{}",
        run.stderr
    );

    // The same error counts as old with a window of 0 hours.
    let run = sekisho(
        &[
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--recent-hours",
            "0",
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn telegram_info_passes_with_an_old_error_and_checks_the_url() {
    let mock = Mock::start(
        200,
        webhook_info("https://gw.example/telegram/acme", 1_764_637_200),
    );
    let run = sekisho(
        &[
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--url",
            "https://gw.example/telegram/acme",
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("url: https://gw.example/telegram/acme"));
    assert!(
        run.stdout
            .contains("last_error_date: 2025-12-02T01:00:00.000Z"),
        "{}",
        run.stdout
    );

    let run = sekisho(
        &[
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--url",
            "https://gw.example/telegram/other",
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("not the expected https://gw.example/telegram/other"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_call_nothing() {
    let mock = Mock::start(200, telegram_ok());
    for args in [
        vec![
            "telegram",
            "set",
            "--bot-token",
            "not-a-token",
            "--url",
            "https://gw/telegram/a",
        ],
        vec![
            "telegram",
            "set",
            "--bot-token",
            BOT_TOKEN,
            "--url",
            "https://gw/telegram/a",
            "--secret-token",
            "has space",
        ],
        vec![
            "telegram",
            "set",
            "--bot-token",
            BOT_TOKEN,
            "--url",
            "https://gw/hook",
        ],
        vec![
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--recent-hourz",
            "1",
        ],
        vec!["line", "info"],
        vec!["telegram", "delete"],
    ] {
        let mut args = args;
        args.extend(["--api-base", &mock.base]);
        let run = sekisho(&args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    assert!(mock.requests().is_empty());
}

#[test]
fn an_unreachable_api_fails_without_printing_the_token() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let run = sekisho(
        &[
            "telegram",
            "info",
            "--bot-token",
            BOT_TOKEN,
            "--api-base",
            &base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!("could not reach {base}")),
        "{}",
        run.stderr
    );
}

#[test]
fn line_set_puts_the_endpoint_with_the_channel_access_token() {
    let mock = Mock::start(200, "{}".to_owned());
    let run = sekisho(
        &[
            "line",
            "set",
            "--url",
            "https://gw.example/line/acme",
            "--channel-access-token",
            LINE_TOKEN,
        ],
        &[("LINE_API_BASE", &mock.base)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let request = mock.only_request();
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/v2/bot/channel/webhook/endpoint");
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {LINE_TOKEN}"))
    );
    assert_eq!(
        request.json(),
        json!({"endpoint": "https://gw.example/line/acme"})
    );
    assert!(
        run.stdout.contains(
            "printf %s \"$LINE_CHANNEL_SECRET\" | npx wrangler secret put LINE_ACME_CHANNEL_SECRET"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn line_errors_are_shown_and_fail() {
    let mock = Mock::start(
        400,
        r#"{"message":"Invalid webhook endpoint URL","details":[{"message":"must be https","property":"endpoint"}]}"#.to_owned(),
    );
    let run = sekisho(
        &[
            "line",
            "set",
            "--url",
            "http://gw.example/line/acme",
            "--channel-access-token",
            LINE_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "LINE refused the call (400): Invalid webhook endpoint URL (endpoint: must be https)"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("wrangler"));
}

#[test]
fn line_test_reports_the_delivery_result() {
    let failed = r#"{"success":false,"timestamp":"2026-12-02T01:00:00.000Z","statusCode":401,"reason":"ERROR_STATUS_CODE","detail":"401 Unauthorized"}"#;
    let mock = Mock::start(200, failed.to_owned());
    let run = sekisho(
        &[
            "line",
            "test",
            "--url",
            "https://gw.example/line/acme",
            "--channel-access-token",
            LINE_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    let request = mock.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v2/bot/channel/webhook/test")
    );
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {LINE_TOKEN}"))
    );
    assert_eq!(
        request.json(),
        json!({"endpoint": "https://gw.example/line/acme"})
    );
    assert!(run.stdout.contains("success: false") && run.stdout.contains("statusCode: 401"));
    assert!(
        run.stderr.contains("the test delivery failed: status 401"),
        "{}",
        run.stderr
    );

    let ok = r#"{"success":true,"timestamp":"2026-12-02T01:00:00.000Z","statusCode":200,"reason":"OK","detail":"200"}"#;
    let mock = Mock::start(200, ok.to_owned());
    let run = sekisho(
        &[
            "line",
            "test",
            "--channel-access-token",
            LINE_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(mock.only_request().json(), json!({}));
}

#[test]
fn line_info_checks_the_endpoint_and_the_active_flag() {
    let mock = Mock::start(
        200,
        r#"{"endpoint":"https://gw.example/line/acme","active":false}"#.to_owned(),
    );
    let run = sekisho(
        &[
            "line",
            "info",
            "--channel-access-token",
            LINE_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    let request = mock.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v2/bot/channel/webhook/endpoint")
    );
    assert!(
        run.stdout
            .contains("endpoint: https://gw.example/line/acme")
            && run.stdout.contains("active: false")
    );
    assert!(run.stderr.contains("not active"), "{}", run.stderr);

    let mock = Mock::start(
        200,
        r#"{"endpoint":"https://gw.example/line/acme","active":true}"#.to_owned(),
    );
    let args = [
        "line",
        "info",
        "--channel-access-token",
        LINE_TOKEN,
        "--api-base",
        &mock.base,
        "--url",
    ];
    let run = sekisho(
        &[&args[..], &["https://gw.example/line/acme"]].concat(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sekisho(
        &[&args[..], &["https://gw.example/line/other"]].concat(),
        &[],
    );
    assert_eq!(run.code, 1);
}

#[test]
fn meta_set_subscribes_with_the_verify_token_the_wrangler_line_stores() {
    let mock = Mock::start(200, r#"{"success":true}"#.to_owned());
    let run = sekisho(
        &[
            "meta",
            "set",
            "--product",
            "whatsapp",
            "--url",
            "https://gw.example/whatsapp/acme",
            "--verify-token",
            "vt.Token-1",
        ],
        &[
            ("META_APP_ID", APP_ID),
            ("META_APP_SECRET", APP_SECRET),
            ("META_API_BASE", &mock.base),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let request = mock.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v24.0/{APP_ID}/subscriptions"));
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {APP_ID}|{APP_SECRET}"))
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(field("object"), "whatsapp_business_account");
    assert_eq!(field("callback_url"), "https://gw.example/whatsapp/acme");
    assert_eq!(field("fields"), "messages");
    assert_eq!(
        field("verify_token"),
        wrangler_value(&run.stdout, "WHATSAPP_ACME_VERIFY_TOKEN")
    );
    assert!(run.stdout.contains(
        "printf %s \"$META_APP_SECRET\" | npx wrangler secret put WHATSAPP_ACME_APP_SECRET"
    ));
}

#[test]
fn meta_set_with_a_generated_token_stores_it_first_and_calls_nothing() {
    let mock = Mock::start(200, r#"{"success":true}"#.to_owned());
    let run = sekisho(
        &[
            "meta",
            "set",
            "--product",
            "messenger",
            "--url",
            "https://gw.example/messenger/acme",
            "--app-id",
            APP_ID,
            "--app-secret",
            APP_SECRET,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(mock.requests().is_empty());
    let token = wrangler_value(&run.stdout, "MESSENGER_ACME_VERIFY_TOKEN");
    assert!(token.len() >= 32);
    assert!(
        run.stdout.contains(&format!("--verify-token '{token}'")),
        "{}",
        run.stdout
    );
}

#[test]
fn meta_errors_are_shown_and_fail() {
    let refused = r#"{"error":{"message":"(#2200) callback verification failed with the following errors: HTTP Status Code = 403","type":"OAuthException","code":2200}}"#;
    let mock = Mock::start(400, refused.to_owned());
    let run = sekisho(
        &[
            "meta",
            "set",
            "--product",
            "instagram",
            "--url",
            "https://gw.example/instagram/acme",
            "--verify-token",
            "vt",
            "--app-id",
            APP_ID,
            "--app-secret",
            APP_SECRET,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("Meta refused the call (400): (#2200) callback verification failed"),
        "{}",
        run.stderr
    );
}

#[test]
fn meta_info_checks_one_products_subscription() {
    let listed = json!({"data": [
        {"object": "page", "callback_url": "https://gw.example/messenger/acme", "active": true,
         "fields": [{"name": "messages", "version": "v24.0"}, {"name": "messaging_postbacks", "version": "v24.0"}]}
    ]});
    let mock = Mock::start(200, listed.to_string());
    let base = [
        "meta",
        "info",
        "--app-id",
        APP_ID,
        "--app-secret",
        APP_SECRET,
        "--api-base",
        &mock.base,
    ];
    let run = sekisho(&base, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("object: page")
            && run.stdout.contains("fields: messages,messaging_postbacks")
    );
    let request = &mock.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", &*format!("/v24.0/{APP_ID}/subscriptions"))
    );
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {APP_ID}|{APP_SECRET}"))
    );

    let checked = [
        &base[..],
        &[
            "--product",
            "messenger",
            "--url",
            "https://gw.example/messenger/acme",
            "--fields",
            "messages",
        ],
    ]
    .concat();
    assert_eq!(sekisho(&checked, &[]).code, 0);
    let other_url = [
        &base[..],
        &[
            "--product",
            "messenger",
            "--url",
            "https://gw.example/messenger/beta",
        ],
    ]
    .concat();
    assert_eq!(sekisho(&other_url, &[]).code, 1);
    let missing = [
        &base[..],
        &[
            "--product",
            "messenger",
            "--fields",
            "messages,message_reads",
        ],
    ]
    .concat();
    let run = sekisho(&missing, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not subscribed to: message_reads"),
        "{}",
        run.stderr
    );
    let whatsapp = [&base[..], &["--product", "whatsapp"]].concat();
    assert_eq!(sekisho(&whatsapp, &[]).code, 1);
}

#[test]
fn lineworks_set_patches_the_bot_callback() {
    let mock = Mock::start(200, r#"{"botId":2000001,"botName":"Support"}"#.to_owned());
    let run = sekisho(
        &[
            "lineworks",
            "set",
            "--bot-id",
            "2000001",
            "--url",
            "https://gw.example/lineworks/acme-jp",
            "--events",
            "text,image",
        ],
        &[
            ("LINEWORKS_ACCESS_TOKEN", WORKS_TOKEN),
            ("LINEWORKS_API_BASE", &mock.base),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let request = mock.only_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("PATCH", "/v1.0/bots/2000001")
    );
    assert_eq!(
        request.header("authorization"),
        Some(&*format!("Bearer {WORKS_TOKEN}"))
    );
    assert_eq!(
        request.json(),
        json!({"enableCallback": true, "callbackUrl": "https://gw.example/lineworks/acme-jp", "callbackEvents": ["text", "image"]})
    );
    assert!(run.stdout.contains(
        "printf %s \"$LINEWORKS_BOT_SECRET\" | npx wrangler secret put LINEWORKS_ACME_JP_BOT_SECRET"
    ), "{}", run.stdout);
    assert!(run
        .stdout
        .contains("LINEWORKS_ACME_JP_BOT_ID = \"2000001\""));
}

#[test]
fn lineworks_errors_and_checks() {
    let mock = Mock::start(
        401,
        r#"{"code":"UNAUTHORIZED","description":"Authentication failed"}"#.to_owned(),
    );
    let run = sekisho(
        &[
            "lineworks",
            "set",
            "--bot-id",
            "2000001",
            "--url",
            "https://gw.example/lineworks/acme",
            "--access-token",
            WORKS_TOKEN,
            "--api-base",
            &mock.base,
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("LINE WORKS refused the call (401): UNAUTHORIZED: Authentication failed"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("wrangler"));

    let bot = r#"{"botId":2000001,"botName":"Support","enableCallback":false,"callbackUrl":"https://gw.example/lineworks/acme","callbackEvents":["text"]}"#;
    let mock = Mock::start(200, bot.to_owned());
    let base = [
        "lineworks",
        "info",
        "--bot-id",
        "2000001",
        "--access-token",
        WORKS_TOKEN,
        "--api-base",
        &mock.base,
    ];
    let run = sekisho(&base, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(mock.requests()[0].method, "GET");
    assert!(
        run.stdout.contains("enableCallback: false") && run.stdout.contains("callbackEvents: text")
    );
    assert!(run.stderr.contains("not active"), "{}", run.stderr);

    let bot = r#"{"botId":2000001,"botName":"Support","enableCallback":true,"callbackUrl":"https://gw.example/lineworks/acme","callbackEvents":["text"]}"#;
    let mock = Mock::start(200, bot.to_owned());
    let base = [
        "lineworks",
        "info",
        "--bot-id",
        "2000001",
        "--access-token",
        WORKS_TOKEN,
        "--api-base",
        &mock.base,
    ];
    assert_eq!(
        sekisho(
            &[&base[..], &["--url", "https://gw.example/lineworks/acme"]].concat(),
            &[]
        )
        .code,
        0
    );
    let run = sekisho(&[&base[..], &["--events", "text,file"]].concat(), &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("not subscribed to: file"),
        "{}",
        run.stderr
    );
}
