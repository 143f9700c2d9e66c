//! `sekisho`: the admin and test companion of the gateway (native only, not part of the Worker).
//!
//!   sekisho sign <channel> --secret S --body FILE [--option value …]   print a request the channel accepts
//!   sekisho send <channel> <URL> --secret S --body FILE [--option …]    send it to URL (…/<channel>/<account>)
//!   sekisho send-message <channel> <URL> --secret whsec_… --to-conversation ID --text T
//!                                                                       one signed send (src/send_message.rs)
//!   sekisho receive --port P --secret whsec_… [--status N] [--jsonl] [--reply-text T]
//!                                                                       a backend that verifies and prints events
//!   sekisho dlq list|replay [ID]|delete ID --url https://gw --token T  the dead-letter admin API
//!   sekisho webhook telegram|line|lineworks|meta set|info|test …        wire the provider to the gateway (src/provision/)
//!   sekisho status --url https://gw --token T [--window 24h] [--json]  accounts, counters, rotation status
//!   sekisho accounts put|get|list|rotate|retire|delete|reseal|audit|import …  the account registry (src/accounts/)
//!   sekisho schema                                                      print schema/event-v1.schema.json

pub mod accounts;
pub mod provision;
pub mod send_message;
pub mod status;

mod cli {
    use std::collections::BTreeMap;
    use std::io::Read;
    use std::time::{SystemTime, UNIX_EPOCH};

    use sekisho::channels;
    use sekisho::forward::SigningKeys;
    use sekisho::tooling::{SignParams, SignedRequest, ToolingError};

    const USAGE: &str = "usage:
  sekisho sign <channel> --secret S --body FILE [--option value ...]
  sekisho send <channel> <URL> --secret S --body FILE [--option value ...]
  sekisho send-message <channel> <URL> --secret whsec_... (--to-conversation ID | --to-user ID) (--text T | --raw JSON)
      [--in-reply-to EVENT_ID] [--id WEBHOOK_ID]   (URL: https://gateway/send/<channel>/<account>)
  sekisho receive --port P --secret whsec_... [--host 127.0.0.1] [--status 204] [--jsonl] [--reply-text T]
      (--reply-text: answer the gateway's reply calls with {\"reply\":{\"text\":T}}; see README, Replies)
  sekisho dlq list --url https://gateway --token ADMIN_TOKEN [--limit N] [--cursor C]
  sekisho dlq delete WEBHOOK_ID --url https://gateway --token ADMIN_TOKEN
  sekisho dlq replay [WEBHOOK_ID] --url https://gateway --token ADMIN_TOKEN
  sekisho webhook telegram|line|lineworks|meta set|info|test ...   (sekisho webhook: its options)
  sekisho status --url https://gateway --token ADMIN_TOKEN [--window 1h|24h|7d] [--json]
  sekisho accounts put|get|list|rotate|retire|delete|reseal|audit|import ...   (sekisho accounts: its options)
  sekisho schema    (the event envelope's JSON Schema, generated from src/envelope.rs)

FILE may be - for standard input. Channel options are listed in docs/channels/<channel>.md.";

    struct Args {
        positional: Vec<String>,
        options: BTreeMap<String, String>,
    }

    fn parse(args: Vec<String>) -> Result<Args, String> {
        let mut positional = Vec::new();
        let mut options = BTreeMap::new();
        let mut iter = args.into_iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                if let Some((name, value)) = name.split_once('=') {
                    options.insert(name.to_owned(), value.to_owned());
                } else if name == "jsonl" || name == "json" {
                    options.insert(name.to_owned(), "true".to_owned());
                } else {
                    let value = iter.next().ok_or(format!("--{name} needs a value"))?;
                    options.insert(name.to_owned(), value);
                }
            } else {
                positional.push(arg);
            }
        }
        Ok(Args {
            positional,
            options,
        })
    }

    pub(crate) fn main(raw: Vec<String>) -> i32 {
        // `webhook` has its own options (flags without values): src/provision/cli.rs.
        if let Some(("webhook", rest)) = raw
            .split_first()
            .map(|(first, rest)| (first.as_str(), rest))
        {
            return crate::provision::cli::main(rest);
        }
        // `accounts` too: repeated --field options, secrets read from files or the environment.
        if let Some(("accounts", rest)) = raw
            .split_first()
            .map(|(first, rest)| (first.as_str(), rest))
        {
            return crate::accounts::cli::main(rest);
        }
        let result =
            parse(raw).and_then(|args| match args.positional.first().map(String::as_str) {
                Some("sign") => sign(&args),
                Some("send") => send(&args),
                Some("send-message") => crate::send_message::run(&args.positional, &args.options),
                Some("receive") => receive(&args),
                Some("dlq") => dlq(&args),
                Some("status") => crate::status::run(
                    args.options.get("url"),
                    args.options.get("token"),
                    args.options.get("window"),
                    args.options.contains_key("json"),
                ),
                Some("schema") if args.positional.len() == 1 => {
                    print!("{}", sekisho::schema::event_schema_json());
                    Ok(())
                }
                _ => Err(USAGE.to_owned()),
            });
        match result {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("sekisho: {message}");
                2
            }
        }
    }

    fn now_s() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn build(args: &Args) -> Result<SignedRequest, String> {
        let channel_name = args.positional.get(1).ok_or(USAGE)?;
        let channel = channels::find(channel_name)
            .ok_or_else(|| ToolingError::UnknownChannel(channel_name.clone()).to_string())?;
        let body = match args.options.get("body").map(String::as_str) {
            None => Vec::new(),
            Some("-") => {
                let mut body = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut body)
                    .map_err(|e| format!("reading stdin: {e}"))?;
                body
            }
            Some(path) => std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?,
        };
        let mut options = args.options.clone();
        options.remove("body");
        channel
            .sign(&SignParams {
                body,
                options,
                now_s: now_s(),
            })
            .map_err(|e| e.to_string())
    }

    fn sign(args: &Args) -> Result<(), String> {
        let request = build(args)?;
        println!(
            "{} /{}/<account>{}{}",
            request.method,
            args.positional.get(1).map(String::as_str).unwrap_or(""),
            request
                .extra_path
                .iter()
                .map(|s| format!("/{s}"))
                .collect::<String>(),
            request.query_string()
        );
        for (name, value) in &request.headers {
            println!("{name}: {value}");
        }
        Ok(())
    }

    fn send(args: &Args) -> Result<(), String> {
        let request = build(args)?;
        let base = args.positional.get(2).ok_or(USAGE)?.trim_end_matches('/');
        let url = format!(
            "{base}{}{}",
            request
                .extra_path
                .iter()
                .map(|s| format!("/{s}"))
                .collect::<String>(),
            request.query_string()
        );
        let mut call = ureq::request(request.method.as_str(), &url);
        for (name, value) in &request.headers {
            call = call.set(name, value);
        }
        let response = if request.method == http::Method::GET {
            call.call()
        } else {
            call.send_bytes(&request.body)
        };
        let (status, body) = match response {
            Ok(response) => (
                response.status(),
                response.into_string().unwrap_or_default(),
            ),
            Err(ureq::Error::Status(status, response)) => {
                (status, response.into_string().unwrap_or_default())
            }
            Err(error) => return Err(format!("sending to {url}: {error}")),
        };
        println!("{status} {body}");
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the gateway answered {status}"))
        }
    }

    fn dlq(args: &Args) -> Result<(), String> {
        let base = args
            .options
            .get("url")
            .ok_or("dlq needs --url (the gateway's base URL)")?
            .trim_end_matches('/');
        let token = args
            .options
            .get("token")
            .ok_or("dlq needs --token (ADMIN_TOKEN)")?;
        let (method, path) = match (
            args.positional.get(1).map(String::as_str),
            args.positional.get(2),
        ) {
            (Some("list"), None) => {
                let mut query = Vec::new();
                for option in ["limit", "cursor"] {
                    if let Some(value) = args.options.get(option) {
                        let value: String =
                            form_urlencoded::byte_serialize(value.as_bytes()).collect();
                        query.push(format!("{option}={value}"));
                    }
                }
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", query.join("&"))
                };
                ("GET", format!("/admin/dead-letters{query}"))
            }
            (Some("delete"), Some(id)) => ("DELETE", format!("/admin/dead-letters/{id}")),
            (Some("replay"), None) => ("POST", "/admin/dead-letters/replay".to_owned()),
            (Some("replay"), Some(id)) => ("POST", format!("/admin/dead-letters/{id}/replay")),
            _ => return Err(USAGE.to_owned()),
        };
        let response = ureq::request(method, &format!("{base}{path}"))
            .set("authorization", &format!("Bearer {token}"))
            .call();
        match response {
            Ok(response) => {
                println!("{}", response.into_string().unwrap_or_default());
                Ok(())
            }
            Err(ureq::Error::Status(status, response)) => Err(format!(
                "the gateway answered {status} {}",
                response.into_string().unwrap_or_default()
            )),
            Err(error) => Err(error.to_string()),
        }
    }

    fn receive(args: &Args) -> Result<(), String> {
        let port = args.options.get("port").ok_or("receive needs --port")?;
        let host = args
            .options
            .get("host")
            .map(String::as_str)
            .unwrap_or("127.0.0.1");
        let secrets: Vec<String> = args
            .options
            .get("secret")
            .map(|s| sekisho::config::split_values(s))
            .ok_or("receive needs --secret")?;
        let keys = SigningKeys::parse(&secrets).map_err(|e| e.to_string())?;
        let ok_status: u16 = args
            .options
            .get("status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(204);
        let jsonl = args.options.contains_key("jsonl");
        let reply_text = args.options.get("reply-text");
        let server =
            tiny_http::Server::http(format!("{host}:{port}")).map_err(|e| e.to_string())?;
        eprintln!("sekisho receive: listening on http://{host}:{port}/ (verifying Standard Webhooks signatures)");
        for mut request in server.incoming_requests() {
            let header = |name: &str| {
                request
                    .headers()
                    .iter()
                    .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                    .map(|h| h.value.as_str().to_owned())
                    .unwrap_or_default()
            };
            let (id, timestamp, signature, budget) = (
                header("webhook-id"),
                header("webhook-timestamp"),
                header("webhook-signature"),
                header(sekisho::reply::BUDGET_HEADER),
            );
            let mut body = Vec::new();
            let _ = request.as_reader().read_to_end(&mut body);
            let verdict = keys.verify(&id, &timestamp, &signature, &body, now_s());
            // A reply call (it carries the budget header): answered with the reply, the event printed when its
            // delivery (same webhook-id) arrives a few seconds later.
            if verdict.is_ok() && !budget.is_empty() {
                eprintln!("↩ reply call {id} ({budget} ms left)");
                let response = match reply_text {
                    Some(text) => tiny_http::Response::from_string(
                        serde_json::json!({ "reply": { "text": text } }).to_string(),
                    )
                    .with_header(tiny_http::Header {
                        field: "content-type".parse().map_err(|_| "header")?,
                        value: "application/json".parse().map_err(|_| "header")?,
                    }),
                    None => tiny_http::Response::from_string(String::new()).with_status_code(204),
                };
                let _ = request.respond(response);
                continue;
            }
            let status = match verdict {
                Ok(()) => {
                    let event: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    if jsonl {
                        println!("{event}");
                    } else {
                        eprintln!(
                            "✓ {id} {}",
                            event.get("type").and_then(|t| t.as_str()).unwrap_or("?")
                        );
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&event).unwrap_or_default()
                        );
                    }
                    ok_status
                }
                Err(error) => {
                    eprintln!("✗ rejected {id}: {error}");
                    401
                }
            };
            let _ = request.respond(tiny_http::Response::empty(status));
        }
        Ok(())
    }
}

/// Runs the command line (without the program name) and returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    cli::main(args)
}
