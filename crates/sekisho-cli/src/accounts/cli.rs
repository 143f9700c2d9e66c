//! The `sekisho accounts …` command line: parsing, performing the admin API calls, printing. Exit codes: 0 done,
//! 1 the API refused (or could not be reached), 2 a usage error.

use std::collections::BTreeSet;
use std::fmt;

use sekisho::config::is_valid_account;
use sekisho::registry::fields::fields_of;
use serde_json::Value;

use super::values::{declared, fields_body, resolve, Readers, Source};
use super::{
    account_name, dotvars, interpret, next_cursor, render_account, render_audit, render_listing,
    reseal_step, Gateway, Refusal,
};
use crate::provision::http::{perform, TransportFailed};
use crate::provision::{ApiRequest, ApiResponse};

pub const USAGE: &str = "usage:
  sekisho accounts put CHANNEL ACCOUNT --field NAME=VALUE|@FILE|env:VAR [--field …] [--if-match vN]
  sekisho accounts get CHANNEL ACCOUNT [--json]
  sekisho accounts list [--channel CHANNEL] [--limit N] [--cursor C] [--json]
  sekisho accounts rotate CHANNEL ACCOUNT FIELD --value @FILE|env:VAR [--if-match vN]
  sekisho accounts retire CHANNEL ACCOUNT FIELD FINGERPRINT [--if-match vN]
  sekisho accounts delete CHANNEL ACCOUNT [--if-match vN]
  sekisho accounts reseal
  sekisho accounts audit [--channel CHANNEL] [--account ACCOUNT] [--limit N] [--cursor C] [--json]
  sekisho accounts import FILE [--dry-run]    (a .dev.vars bindings file → registry accounts)
Every command takes --url https://gateway and --token ADMIN_TOKEN (or the environment variable
SEKISHO_ADMIN_TOKEN). Secret fields are read from a file (NAME=@FILE) or the environment (NAME=env:VAR), never
given on the command line; a secret given several times is a list, newest first.";

const TOKEN_VARIABLE: &str = "SEKISHO_ADMIN_TOKEN";
/// Re-seal pages followed at most (each page is up to the API's page size of records).
const MAX_RESEAL_PAGES: usize = 100_000;

#[derive(Debug)]
enum Failure {
    Usage(String),
    Refused(Refusal),
    Transport(TransportFailed),
    /// Some of an import's accounts were refused (each already printed).
    Partly {
        refused: usize,
        total: usize,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => f.write_str(message),
            Failure::Refused(refusal) => write!(f, "refused: {refusal}"),
            Failure::Transport(error) => error.fmt(f),
            Failure::Partly { refused, total } => {
                write!(f, "{refused} of {total} accounts refused")
            }
        }
    }
}

impl From<TransportFailed> for Failure {
    fn from(error: TransportFailed) -> Self {
        Failure::Transport(error)
    }
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(refusal)
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

const FLAGS: &[&str] = &["json", "dry-run"];
/// Options that may be given more than once.
const REPEATED: &[&str] = &["field"];

struct Args {
    positional: Vec<String>,
    options: Vec<(String, String)>,
    flags: BTreeSet<String>,
}

impl Args {
    fn parse(raw: &[String]) -> Result<Args, Failure> {
        let mut args = Args {
            positional: Vec::new(),
            options: Vec::new(),
            flags: BTreeSet::new(),
        };
        let mut iter = raw.iter();
        while let Some(arg) = iter.next() {
            let Some(name) = arg.strip_prefix("--") else {
                args.positional.push(arg.clone());
                continue;
            };
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None if FLAGS.contains(&name) => {
                    args.flags.insert(name.to_owned());
                    continue;
                }
                None => (
                    name.to_owned(),
                    iter.next()
                        .ok_or_else(|| usage(format!("--{name} needs a value")))?
                        .clone(),
                ),
            };
            if !REPEATED.contains(&name.as_str()) && args.options.iter().any(|(n, _)| *n == name) {
                return Err(usage(format!("--{name} is given twice")));
            }
            args.options.push((name, value));
        }
        Ok(args)
    }

    fn take_all(&mut self, name: &str) -> Vec<String> {
        let (taken, kept) = std::mem::take(&mut self.options)
            .into_iter()
            .partition(|(n, _)| n == name);
        self.options = kept;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.take_all(name).pop().filter(|v| !v.is_empty())
    }

    fn number(&mut self, name: &str) -> Result<Option<usize>, Failure> {
        self.take(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| usage(format!("--{name} takes a number")))
            })
            .transpose()
    }

    fn flag(&mut self, name: &str) -> bool {
        self.flags.remove(name)
    }

    /// Exactly `names.len()` positional arguments after the command.
    fn positional(&self, names: &[&str]) -> Result<Vec<String>, Failure> {
        let given = self.positional.get(1..).unwrap_or_default();
        if given.len() != names.len() {
            return Err(usage(format!(
                "expected {} after `{}`\n{USAGE}",
                if names.is_empty() {
                    "no argument".to_owned()
                } else {
                    names.join(" ")
                },
                self.positional
                    .first()
                    .map(String::as_str)
                    .unwrap_or("accounts")
            )));
        }
        Ok(given.to_vec())
    }

    fn finish(self) -> Result<(), Failure> {
        let unknown: Vec<String> = self
            .options
            .iter()
            .map(|(name, _)| name.clone())
            .chain(self.flags)
            .map(|name| format!("--{name}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(usage(format!(
                "unknown option {}\n{USAGE}",
                unknown.join(", ")
            )))
        }
    }
}

fn checked_account(channel: &str, account: &str) -> Result<(), Failure> {
    if fields_of(channel).is_none() {
        return Err(usage(format!("unknown channel `{channel}`")));
    }
    if !is_valid_account(account) {
        return Err(usage(format!(
            "account `{account}` is not [a-z0-9-]{{1,64}}"
        )));
    }
    Ok(())
}

/// Performs a request and reads the answer: its status and JSON, or the refusal.
fn call(request: &ApiRequest) -> Result<(u16, Value), Failure> {
    let response: ApiResponse = perform(request)?;
    let body = interpret(&response)?;
    Ok((response.status, body))
}

fn print_json_or(json: bool, body: &Value, text: impl FnOnce(&Value) -> String) {
    if json {
        println!("{body}");
    } else {
        print!("{}", text(body));
    }
}

fn run(raw: &[String], readers: &Readers<'_>) -> Result<(), Failure> {
    let mut args = Args::parse(raw)?;
    let command = args.positional.first().cloned().unwrap_or_default();
    if command.is_empty() || command == "help" {
        return Err(usage(USAGE));
    }
    let base = args
        .take("url")
        .ok_or_else(|| usage("--url (the gateway's base URL) is required"))?;
    let token = args
        .take("token")
        .or_else(|| (readers.env)(TOKEN_VARIABLE).filter(|t| !t.trim().is_empty()))
        .map(|t| t.trim().to_owned())
        .ok_or_else(|| {
            usage(format!(
                "--token (or the environment variable {TOKEN_VARIABLE}) is required"
            ))
        })?;
    let gateway = Gateway { base, token };
    let if_match = args.take("if-match");
    let json = args.flag("json");
    match command.as_str() {
        "put" => {
            let [channel, account] =
                <[String; 2]>::try_from(args.positional(&["CHANNEL", "ACCOUNT"])?)
                    .map_err(|_| usage(USAGE))?;
            checked_account(&channel, &account)?;
            let given = args.take_all("field");
            if given.is_empty() {
                return Err(usage("put needs at least one --field NAME=…"));
            }
            let fields = fields_body(&channel, &given, readers).map_err(usage)?;
            args.finish()?;
            let (status, body) =
                call(&gateway.put(&channel, &account, &fields, if_match.as_deref()))?;
            println!("{}", if status == 201 { "created" } else { "replaced" });
            print!("{}", render_account(&body));
        }
        "get" => {
            let [channel, account] =
                <[String; 2]>::try_from(args.positional(&["CHANNEL", "ACCOUNT"])?)
                    .map_err(|_| usage(USAGE))?;
            checked_account(&channel, &account)?;
            args.finish()?;
            let (_, body) = call(&gateway.get(&channel, &account))?;
            print_json_or(json, &body, render_account);
        }
        "list" => {
            args.positional(&[])?;
            let channel = args.take("channel");
            let limit = args.number("limit")?;
            let cursor = args.take("cursor");
            args.finish()?;
            let (_, page) = call(&gateway.list(channel.as_deref(), limit, cursor.as_deref()))?;
            print_json_or(json, &page, render_listing);
            if let (false, Some(next)) = (json, next_cursor(&page)) {
                println!("more: --cursor {}", crate::provision::shown(&next));
            }
        }
        "rotate" => {
            let [channel, account, field] =
                <[String; 3]>::try_from(args.positional(&["CHANNEL", "ACCOUNT", "FIELD"])?)
                    .map_err(|_| usage(USAGE))?;
            checked_account(&channel, &account)?;
            let source = Source::parse(
                &args
                    .take("value")
                    .ok_or_else(|| usage("rotate needs --value @FILE or --value env:VAR"))?,
            );
            let spec = declared(&channel, &field, &source).map_err(usage)?;
            if !spec.secret {
                return Err(usage(format!(
                    "{field} is a setting, not a secret: change it with put"
                )));
            }
            let value = resolve(&field, &source, readers).map_err(usage)?;
            args.finish()?;
            let (_, body) =
                call(&gateway.add_secret(&channel, &account, &field, &value, if_match.as_deref()))?;
            println!("added a value to {field} (now index 0)");
            print!("{}", render_account(&body));
        }
        "retire" => {
            let [channel, account, field, fingerprint] =
                <[String; 4]>::try_from(args.positional(&[
                    "CHANNEL",
                    "ACCOUNT",
                    "FIELD",
                    "FINGERPRINT",
                ])?)
                .map_err(|_| usage(USAGE))?;
            checked_account(&channel, &account)?;
            args.finish()?;
            let request = gateway.retire_secret(
                &channel,
                &account,
                &field,
                &fingerprint,
                if_match.as_deref(),
            );
            let (_, body) = call(&request)?;
            println!(
                "retired {} from {field}",
                crate::provision::shown(&fingerprint)
            );
            print!("{}", render_account(&body));
        }
        "delete" => {
            let [channel, account] =
                <[String; 2]>::try_from(args.positional(&["CHANNEL", "ACCOUNT"])?)
                    .map_err(|_| usage(USAGE))?;
            checked_account(&channel, &account)?;
            args.finish()?;
            call(&gateway.delete(&channel, &account, if_match.as_deref()))?;
            println!("deleted {channel}/{account}");
        }
        "reseal" => {
            args.positional(&[])?;
            args.finish()?;
            reseal(&gateway)?;
        }
        "audit" => {
            args.positional(&[])?;
            let channel = args.take("channel");
            let account = args.take("account");
            let limit = args.number("limit")?;
            let cursor = args.take("cursor");
            args.finish()?;
            let (_, mut page) = call(&gateway.audit(limit, cursor.as_deref()))?;
            if let Some(entries) = page.get_mut("entries").and_then(Value::as_array_mut) {
                entries.retain(|entry| {
                    let is = |key: &str, wanted: &Option<String>| {
                        wanted
                            .as_deref()
                            .is_none_or(|w| entry.get(key).and_then(Value::as_str) == Some(w))
                    };
                    is("channel", &channel) && is("account", &account)
                });
            }
            print_json_or(json, &page, render_audit);
            if let (false, Some(next)) = (json, next_cursor(&page)) {
                println!("more: --cursor {}", crate::provision::shown(&next));
            }
        }
        "import" => {
            let [path] =
                <[String; 1]>::try_from(args.positional(&["FILE"])?).map_err(|_| usage(USAGE))?;
            let dry_run = args.flag("dry-run");
            args.finish()?;
            import(&gateway, &path, dry_run, readers)?;
        }
        other => return Err(usage(format!("unknown command `{other}`\n{USAGE}"))),
    }
    Ok(())
}

fn reseal(gateway: &Gateway) -> Result<(), Failure> {
    let (mut resealed, mut scanned) = (0u64, 0u64);
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_RESEAL_PAGES {
        let (_, page) = call(&gateway.reseal(cursor.as_deref()))?;
        let (page_resealed, page_scanned, next) = reseal_step(&page);
        resealed += page_resealed;
        scanned += page_scanned;
        if next.is_none() || next == cursor {
            println!("re-sealed {resealed} of {scanned} records");
            return Ok(());
        }
        cursor = next;
    }
    Err(usage(format!(
        "stopped after {MAX_RESEAL_PAGES} pages (re-sealed {resealed} of {scanned} so far)"
    )))
}

/// Creates (or replaces) the registry account of every account the file describes; one line each, no values.
fn import(
    gateway: &Gateway,
    path: &str,
    dry_run: bool,
    readers: &Readers<'_>,
) -> Result<(), Failure> {
    let text = (readers.file)(path).map_err(|e| usage(format!("reading {path}: {}", e.kind())))?;
    let bindings = dotvars::parse(&text).map_err(|e| usage(format!("{path}: {e}")))?;
    let planned = dotvars::plan(&bindings);
    if planned.is_empty() {
        return Err(usage(format!("{path} configures no account")));
    }
    let mut refused = 0;
    for account in &planned {
        let name = format!("{}/{}", account.channel, account.account);
        if dry_run {
            println!("would put {name}: {}", account.summary());
            continue;
        }
        let request = gateway.put(account.channel, &account.account, &account.fields, None);
        match perform(&request).map(|response| (response.status, interpret(&response))) {
            Ok((status, Ok(body))) => {
                let verb = if status == 201 { "created" } else { "replaced" };
                let version = body.get("version").and_then(Value::as_u64).unwrap_or(0);
                println!(
                    "{verb} {} (version {version}): {}",
                    account_name(&body),
                    account.summary()
                );
            }
            Ok((_, Err(refusal))) => {
                refused += 1;
                println!("refused {name}: {refusal}");
            }
            Err(error) => {
                refused += 1;
                println!("failed {name}: {error}");
            }
        }
    }
    if refused > 0 {
        return Err(Failure::Partly {
            refused,
            total: planned.len(),
        });
    }
    if !dry_run {
        println!("imported {} accounts", planned.len());
    }
    Ok(())
}

/// Runs `sekisho accounts …` (the arguments after `accounts`) and returns the exit code.
pub fn main(raw: &[String]) -> i32 {
    let file = |path: &str| std::fs::read_to_string(path);
    let env = |name: &str| std::env::var(name).ok();
    let readers = Readers {
        file: &file,
        env: &env,
    };
    match run(raw, &readers) {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("sekisho accounts: {failure}");
            match failure {
                Failure::Usage(_) => 2,
                _ => 1,
            }
        }
    }
}
