//! `sekisho accounts …`: the CLI binary against a local mock of the gateway's admin API (tiny_http). The mock
//! records every request and answers as the API does; the tests check what the CLI sends and that no secret
//! value it was given appears in anything it prints.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

const TOKEN: &str = "admin-token-for-the-accounts-cli-0123456789";
const SECRET_NEW: &str = "0123456789abcdef0123456789abcdef";
const SECRET_OLD: &str = "fedcba9876543210fedcba9876543210";
const TELEGRAM_SECRET: &str = "telegram-secret-token-of-desk";
const ROTATED: &str = "aaaabbbbccccddddeeeeffff00001111";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

type Responder = Box<dyn Fn(&Recorded, usize) -> (u16, Value) + Send>;

struct Mock {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Mock {
    /// Answers the n-th request (from 0) with `respond(request, n)`.
    fn start(respond: Responder) -> Mock {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&requests);
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                request.as_reader().read_to_string(&mut body).unwrap();
                let recorded = Recorded {
                    method: request.method().to_string(),
                    url: request.url().to_owned(),
                    headers: request
                        .headers()
                        .iter()
                        .map(|h| (h.field.to_string(), h.value.to_string()))
                        .collect(),
                    body,
                };
                let n = {
                    let mut all = recorder.lock().unwrap();
                    all.push(recorded.clone());
                    all.len() - 1
                };
                let (status, answer) = respond(&recorded, n);
                let response = tiny_http::Response::from_string(answer.to_string())
                    .with_status_code(status)
                    .with_header(
                        "content-type: application/json"
                            .parse::<tiny_http::Header>()
                            .unwrap(),
                    );
                request.respond(response).unwrap();
            }
        });
        Mock { base, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn assert_no_secret(&self) {
        for secret in [SECRET_NEW, SECRET_OLD, TELEGRAM_SECRET, ROTATED, TOKEN] {
            assert!(
                !self.stdout.contains(secret),
                "stdout shows a secret:\n{}",
                self.stdout
            );
            assert!(
                !self.stderr.contains(secret),
                "stderr shows a secret:\n{}",
                self.stderr
            );
        }
    }
}

fn sekisho(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho"));
    command.arg("accounts").args(args);
    command.env_remove("SEKISHO_ADMIN_TOKEN");
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    Run {
        code: status.code().unwrap(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn temp_file(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sekisho-accounts-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The account the API answers: secrets by fingerprint only.
fn account(channel: &str, name: &str, version: u64, prints: &[&str]) -> Value {
    json!({
        "channel": channel, "account": name, "source": "registry",
        "webhook_url": format!("https://gw.example/{channel}/{name}"),
        "fields": {
            "CHANNEL_SECRET": {"secret": true, "values": prints.iter().enumerate().map(|(i, p)| json!({"index": i, "fingerprint": p})).collect::<Vec<_>>()},
            "CHANNEL_ID": {"secret": false, "value": "1234567890"}
        },
        "created_at": "2026-05-01T00:00:00.000Z", "updated_at": "2026-05-01T00:00:00.000Z", "version": version
    })
}

#[test]
fn put_sends_secrets_from_a_file_and_the_environment_and_prints_only_fingerprints() {
    let mock = Mock::start(Box::new(|_, _| {
        (201, account("line", "acme", 1, &["1a2b3c4d", "5e6f7a8b"]))
    }));
    let file = temp_file("line-secret", &format!("{SECRET_NEW}\n"));
    let field = format!("CHANNEL_SECRET=@{}", file.display());
    let run = sekisho(
        &[
            "put",
            "line",
            "acme",
            "--url",
            &mock.base,
            "--field",
            &field,
            "--field",
            "CHANNEL_SECRET=env:OLD_SECRET",
            "--field",
            "CHANNEL_ID=1234567890",
            "--field",
            "BACKEND_URL=https://backend.example/in",
        ],
        &[("SEKISHO_ADMIN_TOKEN", TOKEN), ("OLD_SECRET", SECRET_OLD)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let put = &requests[0];
    assert_eq!(
        (put.method.as_str(), put.url.as_str()),
        ("PUT", "/admin/api/accounts/line/acme")
    );
    assert_eq!(
        put.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(put.header("if-match"), None);
    assert_eq!(
        put.json(),
        json!({"fields": {
            "CHANNEL_SECRET": [SECRET_NEW, SECRET_OLD],
            "CHANNEL_ID": "1234567890",
            "BACKEND_URL": "https://backend.example/in",
        }})
    );
    assert!(
        run.stdout
            .starts_with("created\nline/acme (registry, version 1"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("webhook URL: https://gw.example/line/acme"));
    assert!(run.stdout.contains("secret [0] 1a2b3c4d, [1] 5e6f7a8b"));
    run.assert_no_secret();
}

#[test]
fn a_secret_given_on_the_command_line_is_refused_before_anything_is_sent() {
    let mock = Mock::start(Box::new(|_, _| (201, json!({}))));
    let literal = format!("CHANNEL_SECRET={SECRET_NEW}");
    let run = sekisho(
        &[
            "put", "line", "acme", "--url", &mock.base, "--token", TOKEN, "--field", &literal,
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("CHANNEL_SECRET is a secret field"),
        "{}",
        run.stderr
    );
    run.assert_no_secret();
    let rotate = sekisho(
        &[
            "rotate",
            "line",
            "acme",
            "CHANNEL_SECRET",
            "--value",
            SECRET_NEW,
            "--url",
            &mock.base,
            "--token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(rotate.code, 2);
    rotate.assert_no_secret();
    let no_token = sekisho(&["get", "line", "acme", "--url", &mock.base], &[]);
    assert_eq!(no_token.code, 2);
    assert!(no_token.stderr.contains("SEKISHO_ADMIN_TOKEN"));
    let bad_account = sekisho(
        &[
            "get", "line", "Acme!", "--url", &mock.base, "--token", TOKEN,
        ],
        &[],
    );
    assert_eq!(bad_account.code, 2);
    assert!(mock.requests().is_empty(), "nothing sent");
}

#[test]
fn rotate_retire_and_delete_carry_if_match_and_a_refusal_exits_1() {
    let mock = Mock::start(Box::new(|request, _| {
        match (request.method.as_str(), request.header("if-match")) {
            (_, Some("\"v1\"")) => (412, json!({"error": "precondition_failed"})),
            ("POST", _) => (200, account("line", "acme", 3, &["99aa88bb", "1a2b3c4d"])),
            ("DELETE", _) if request.url.contains("/secrets/") => {
                (409, json!({"error": "last_value"}))
            }
            ("DELETE", _) => (200, json!({"deleted": true})),
            _ => (404, json!({"error": "not_found"})),
        }
    }));
    let env = [("SEKISHO_ADMIN_TOKEN", TOKEN), ("NEW_SECRET", ROTATED)];
    let rotate = sekisho(
        &[
            "rotate",
            "line",
            "acme",
            "CHANNEL_SECRET",
            "--value",
            "env:NEW_SECRET",
            "--if-match",
            "v2",
            "--url",
            &mock.base,
        ],
        &env,
    );
    assert_eq!(rotate.code, 0, "{}", rotate.stderr);
    assert!(
        rotate.stdout.contains("secret [0] 99aa88bb, [1] 1a2b3c4d"),
        "{}",
        rotate.stdout
    );
    rotate.assert_no_secret();
    let stale = sekisho(
        &[
            "rotate",
            "line",
            "acme",
            "CHANNEL_SECRET",
            "--value",
            "env:NEW_SECRET",
            "--if-match",
            "\"v1\"",
            "--url",
            &mock.base,
        ],
        &env,
    );
    assert_eq!(stale.code, 1);
    assert!(
        stale.stderr.contains("412 precondition_failed"),
        "{}",
        stale.stderr
    );
    stale.assert_no_secret();
    let retire = sekisho(
        &[
            "retire",
            "line",
            "acme",
            "CHANNEL_SECRET",
            "1a2b3c4d",
            "--url",
            &mock.base,
        ],
        &env,
    );
    assert_eq!(retire.code, 1);
    assert!(
        retire.stderr.contains("409 last_value"),
        "{}",
        retire.stderr
    );
    let delete = sekisho(
        &[
            "delete",
            "line",
            "acme",
            "--if-match",
            "v3",
            "--url",
            &mock.base,
        ],
        &env,
    );
    assert_eq!(delete.code, 0, "{}", delete.stderr);
    assert_eq!(delete.stdout, "deleted line/acme\n");

    let requests = mock.requests();
    let sent: Vec<(&str, &str, Option<&str>)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.url.as_str(), r.header("if-match")))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "POST",
                "/admin/api/accounts/line/acme/secrets/CHANNEL_SECRET",
                Some("\"v2\"")
            ),
            (
                "POST",
                "/admin/api/accounts/line/acme/secrets/CHANNEL_SECRET",
                Some("\"v1\"")
            ),
            (
                "DELETE",
                "/admin/api/accounts/line/acme/secrets/CHANNEL_SECRET/1a2b3c4d",
                None
            ),
            ("DELETE", "/admin/api/accounts/line/acme", Some("\"v3\"")),
        ]
    );
    assert_eq!(requests[0].json(), json!({"value": ROTATED}));
}

#[test]
fn reseal_follows_every_page_and_prints_the_total() {
    let mock = Mock::start(Box::new(|request, n| {
        let expected = [
            "/admin/api/registry/reseal",
            "/admin/api/registry/reseal?cursor=p1",
            "/admin/api/registry/reseal?cursor=p2",
        ];
        assert_eq!(request.url, expected[n]);
        let next = [json!("p1"), json!("p2"), Value::Null][n].clone();
        (
            200,
            json!({"resealed": ([2, 0, 3][n]), "scanned": ([100, 100, 40][n]), "next_cursor": next}),
        )
    }));
    let run = sekisho(&["reseal", "--url", &mock.base, "--token", TOKEN], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "re-sealed 5 of 240 records\n");
    assert!(mock.requests().iter().all(|r| r.method == "POST"));
}

#[test]
fn list_get_and_audit_print_one_line_each() {
    let mock = Mock::start(Box::new(|request, _| {
        let path = request.url.split('?').next().unwrap();
        match path {
            "/admin/api/registry" => (
                200,
                json!({"accounts": [
                {"channel": "line", "account": "shop", "source": "env", "webhook_url": "https://gw.example/line/shop", "fields": {}},
                account("line", "acme", 2, &["1a2b3c4d"])], "next_cursor": "n2"}),
            ),
            "/admin/api/audit" => (
                200,
                json!({"entries": [
                {"at": "2026-05-02T00:00:00.000Z", "at_ms": 2, "token": {"index": 0, "fingerprint": "9f8e7d6c"}, "channel": "line", "account": "acme", "action": "put", "fields": ["CHANNEL_SECRET"], "version": 1},
                {"at": "2026-05-01T00:00:00.000Z", "at_ms": 1, "token": {"index": 1, "fingerprint": "00aa11bb"}, "channel": "line", "account": "other", "action": "delete", "fields": []}
            ], "next_cursor": null}),
            ),
            _ => (200, account("line", "acme", 2, &["1a2b3c4d"])),
        }
    }));
    let auth = [("SEKISHO_ADMIN_TOKEN", TOKEN)];
    let list = sekisho(
        &[
            "list",
            "--channel",
            "line",
            "--limit",
            "2",
            "--url",
            &mock.base,
        ],
        &auth,
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert_eq!(list.stdout.lines().count(), 3, "{}", list.stdout);
    assert!(list.stdout.contains("line/shop") && list.stdout.contains("env"));
    assert!(list.stdout.ends_with("more: --cursor n2\n"));
    let audit = sekisho(&["audit", "--account", "acme", "--url", &mock.base], &auth);
    assert_eq!(audit.code, 0, "{}", audit.stderr);
    assert_eq!(
        audit.stdout,
        "2026-05-02T00:00:00.000Z line/acme put [CHANNEL_SECRET] by token 0 (9f8e7d6c) → v1\n"
    );
    let get = sekisho(
        &["get", "line", "acme", "--json", "--url", &mock.base],
        &auth,
    );
    assert_eq!(
        serde_json::from_str::<Value>(&get.stdout).unwrap()["version"],
        2
    );
    let urls: Vec<String> = mock.requests().iter().map(|r| r.url.clone()).collect();
    assert_eq!(
        urls,
        [
            "/admin/api/registry?channel=line&limit=2",
            "/admin/api/audit",
            "/admin/api/accounts/line/acme"
        ]
    );
}

#[test]
fn import_creates_each_account_of_a_dev_vars_file_and_prints_nothing_secret() {
    let vars = format!(
        "# gateway-wide\nBACKEND_URL=http://127.0.0.1:8788/events\nADMIN_TOKEN={TOKEN}\n\n\
         # rotating: newest first\nLINE_SHOP_CHANNEL_SECRET=\"{SECRET_NEW},{SECRET_OLD}\"\nLINE_SHOP_CHANNEL_ID=1234567890\n\
         TELEGRAM_DESK_SECRET_TOKEN={TELEGRAM_SECRET} # from setWebhook\n"
    );
    let file = temp_file("dev.vars", &vars);
    let mock = Mock::start(Box::new(|request, _| {
        let (channel, name) = if request.url.contains("/line/") {
            ("line", "shop")
        } else {
            ("telegram", "desk")
        };
        if channel == "telegram" {
            (
                200,
                json!({"channel": channel, "account": name, "source": "registry", "fields": {}, "version": 4}),
            )
        } else {
            (201, account(channel, name, 1, &["1a2b3c4d", "5e6f7a8b"]))
        }
    }));
    let run = sekisho(
        &[
            "import",
            file.to_str().unwrap(),
            "--url",
            &mock.base,
            "--token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "created line/shop (version 1): CHANNEL_ID, CHANNEL_SECRET[2]\n\
         replaced telegram/desk (version 4): SECRET_TOKEN\n\
         imported 2 accounts\n"
    );
    run.assert_no_secret();
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].url.as_str()),
        ("PUT", "/admin/api/accounts/line/shop")
    );
    assert_eq!(
        requests[0].json(),
        json!({"fields": {"CHANNEL_SECRET": [SECRET_NEW, SECRET_OLD], "CHANNEL_ID": "1234567890"}})
    );
    assert_eq!(requests[1].url, "/admin/api/accounts/telegram/desk");
    assert_eq!(
        requests[1].json(),
        json!({"fields": {"SECRET_TOKEN": TELEGRAM_SECRET}})
    );

    // A refused account is reported with the problem, the others still go in, and the exit code is 1.
    let refusing = Mock::start(Box::new(|request, _| {
        if request.url.contains("/line/") {
            (
                422,
                json!({"error": "invalid_field", "field": "CHANNEL_SECRET", "problem": "must be 32 hexadecimal digits"}),
            )
        } else {
            (
                201,
                json!({"channel": "telegram", "account": "desk", "source": "registry", "fields": {}, "version": 1}),
            )
        }
    }));
    let refused = sekisho(
        &[
            "import",
            file.to_str().unwrap(),
            "--url",
            &refusing.base,
            "--token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(refused.code, 1);
    assert!(refused.stdout.contains(
        "refused line/shop: 422 invalid_field: field `CHANNEL_SECRET` must be 32 hexadecimal digits\n"
    ), "{}", refused.stdout);
    assert!(refused
        .stdout
        .contains("created telegram/desk (version 1): SECRET_TOKEN\n"));
    assert!(refused.stderr.contains("1 of 2 accounts refused"));
    refused.assert_no_secret();
    assert_eq!(refusing.requests().len(), 2);

    let dry = sekisho(
        &[
            "import",
            file.to_str().unwrap(),
            "--dry-run",
            "--url",
            &refusing.base,
            "--token",
            TOKEN,
        ],
        &[],
    );
    assert_eq!(dry.code, 0);
    assert_eq!(dry.stdout, "would put line/shop: CHANNEL_ID, CHANNEL_SECRET[2]\nwould put telegram/desk: SECRET_TOKEN\n");
    assert_eq!(refusing.requests().len(), 2, "a dry run sends nothing");
}
