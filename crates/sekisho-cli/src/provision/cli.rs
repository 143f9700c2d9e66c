//! The `sekisho webhook …` command line: parsing, performing the provider calls, printing. Exit codes: 0 all
//! good, 1 the provider refused, could not be reached or reports a problem, 2 a usage error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::http::{perform, TransportFailed};
use super::secrets::{generate_secret, RandomSourceFailed};
use super::{ApiRequest, ApiResponse, Problem, ProviderError};
use sekisho::config::is_valid_account;

mod line_commands;
mod lineworks_commands;
mod meta_commands;
mod telegram_commands;

pub const USAGE: &str = "usage:
  sekisho webhook telegram set --url https://GW/telegram/ACCOUNT [--account ACCOUNT] [--bot-token T]
        [--secret-token S|generated] [--allowed-updates message,callback_query] [--drop-pending-updates]
  sekisho webhook telegram info [--url URL] [--recent-hours 24] [--bot-token T]
  sekisho webhook line set --url https://GW/line/ACCOUNT [--account ACCOUNT] [--channel-access-token T]
  sekisho webhook line test [--url URL] [--channel-access-token T]
  sekisho webhook line info [--url URL] [--channel-access-token T]
  sekisho webhook lineworks set --bot-id ID --url https://GW/lineworks/ACCOUNT [--account ACCOUNT]
        [--access-token T] [--events text,image,...]
  sekisho webhook lineworks info --bot-id ID [--url URL] [--events text,image] [--access-token T]
  sekisho webhook meta set --product whatsapp|messenger|instagram --url https://GW/PRODUCT/ACCOUNT
        [--account ACCOUNT] [--app-id ID] [--app-secret S] [--fields a,b] [--verify-token T|generated]
  sekisho webhook meta info [--product P] [--url URL] [--fields a,b] [--app-id ID] [--app-secret S]

Credentials may come from the environment instead (kept out of shell history): TELEGRAM_BOT_TOKEN,
LINE_CHANNEL_ACCESS_TOKEN, LINEWORKS_ACCESS_TOKEN, META_APP_ID, META_APP_SECRET. Every command takes
--api-base URL (or TELEGRAM_API_BASE, LINE_API_BASE, LINEWORKS_API_BASE, META_API_BASE); meta takes
--graph-version (default v24.0).";

/// Why a command did not succeed.
#[derive(Debug)]
pub(crate) enum Failure {
    Usage(String),
    Provider(ProviderError),
    Transport(TransportFailed),
    Random(RandomSourceFailed),
    /// The provider answered, and reported this many problems (already printed).
    Problems(usize),
}

impl Failure {
    fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) => f.write_str(message),
            Failure::Provider(error) => error.fmt(f),
            Failure::Transport(error) => error.fmt(f),
            Failure::Random(error) => error.fmt(f),
            Failure::Problems(1) => f.write_str("1 problem found"),
            Failure::Problems(n) => write!(f, "{n} problems found"),
        }
    }
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Failure::Provider(error)
    }
}

impl From<TransportFailed> for Failure {
    fn from(error: TransportFailed) -> Self {
        Failure::Transport(error)
    }
}

impl From<RandomSourceFailed> for Failure {
    fn from(error: RandomSourceFailed) -> Self {
        Failure::Random(error)
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(message.into())
}

/// Options that take no value.
const FLAGS: &[&str] = &["drop-pending-updates"];

/// Reads an environment variable (a closure so tests pass their own).
type Environment = Box<dyn Fn(&str) -> Option<String>>;

/// The command line after `webhook <provider> <action>`, consumed option by option so that leftovers (typos)
/// are refused.
pub(crate) struct Args {
    options: BTreeMap<String, String>,
    flags: BTreeSet<String>,
    env: Environment,
}

impl Args {
    fn parse(raw: &[String], env: Environment) -> Result<Self, Failure> {
        let mut options = BTreeMap::new();
        let mut flags = BTreeSet::new();
        let mut iter = raw.iter();
        while let Some(arg) = iter.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| usage(format!("unexpected argument `{arg}`\n{USAGE}")))?;
            if let Some((name, value)) = name.split_once('=') {
                options.insert(name.to_owned(), value.to_owned());
            } else if FLAGS.contains(&name) {
                flags.insert(name.to_owned());
            } else {
                let value = iter
                    .next()
                    .ok_or_else(|| usage(format!("--{name} needs a value")))?;
                options.insert(name.to_owned(), value.clone());
            }
        }
        Ok(Args {
            options,
            flags,
            env,
        })
    }

    fn take(&mut self, name: &str) -> Option<String> {
        self.options.remove(name).filter(|v| !v.is_empty())
    }

    fn required(&mut self, name: &str) -> Result<String, Failure> {
        self.take(name)
            .ok_or_else(|| usage(format!("--{name} is required")))
    }

    fn flag(&mut self, name: &str) -> bool {
        self.flags.remove(name)
    }

    /// `--{name}`, else the environment variable `variable`.
    fn credential(&mut self, name: &str, variable: &str) -> Result<String, Failure> {
        self.take(name)
            .or_else(|| (self.env)(variable).filter(|v| !v.trim().is_empty()))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| {
                usage(format!(
                    "--{name} (or the environment variable {variable}) is required"
                ))
            })
    }

    /// `--api-base`, else the environment variable `variable`, else the provider's own.
    fn api_base(&mut self, variable: &str, default: &str) -> String {
        self.take("api-base")
            .or_else(|| (self.env)(variable).filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| default.to_owned())
    }

    /// Refuses options nobody asked for.
    fn finish(self) -> Result<(), Failure> {
        let unknown: Vec<String> = self
            .options
            .keys()
            .chain(self.flags.iter())
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

/// The path of an absolute URL, without query or fragment.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    rest.find('/').and_then(|at| rest.get(at..)).unwrap_or("/")
}

/// The gateway account a webhook URL serves: `--account` (case-insensitive), else the last path segment of a
/// URL ending in `/{channel}/{account}`. A URL that does not end so earns a warning: the gateway routes on it.
pub(crate) fn resolve_account(
    given: Option<String>,
    channel: &str,
    url: &str,
) -> Result<String, Failure> {
    let mut segments = url_path(url).trim_end_matches('/').rsplit('/');
    let from_url = match (segments.next(), segments.next()) {
        (Some(account), Some(c)) if c == channel && is_valid_account(account) => {
            Some(account.to_owned())
        }
        _ => None,
    };
    let account = match (given, &from_url) {
        (Some(given), _) => given.to_ascii_lowercase(),
        (None, Some(from_url)) => from_url.clone(),
        (None, None) => {
            return Err(usage(format!(
                "--account is required: the URL does not end in /{channel}/<account>"
            )))
        }
    };
    if !is_valid_account(&account) {
        return Err(usage(format!(
            "--account `{account}` is not [a-z0-9-]{{1,64}}"
        )));
    }
    if from_url.as_deref() != Some(account.as_str()) {
        eprintln!("warning: the gateway serves account `{account}` at …/{channel}/{account}, which {url} is not");
    }
    Ok(account)
}

/// Values separated by commas, trimmed, empty ones dropped.
pub(crate) fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A secret given on the command line, or a fresh one when absent or `generated`; `valid` is the provider's rule.
pub(crate) fn secret_or_generated(
    given: Option<String>,
    valid: fn(&str) -> bool,
    rule: &str,
) -> Result<(String, bool), Failure> {
    match given.as_deref() {
        None | Some("generated") => Ok((generate_secret()?, true)),
        Some(secret) if valid(secret) => Ok((secret.to_owned(), false)),
        Some(_) => Err(usage(format!("the given secret does not follow {rule}"))),
    }
}

pub(crate) fn call(request: &ApiRequest) -> Result<ApiResponse, Failure> {
    Ok(perform(request)?)
}

/// Prints the problems to stderr; `Err` when there were any.
pub(crate) fn report(problems: &[Problem]) -> Result<(), Failure> {
    for problem in problems {
        eprintln!("problem: {problem}");
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Problems(problems.len()))
    }
}

pub(crate) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn run(raw: &[String], env: Environment) -> Result<(), Failure> {
    let (provider, action, rest) = match raw {
        [provider, action, rest @ ..] => (provider.as_str(), action.as_str(), rest),
        _ => return Err(usage(USAGE)),
    };
    let args = Args::parse(rest, env)?;
    match (provider, action) {
        ("telegram", "set") => telegram_commands::set(args)?,
        ("telegram", "info") => telegram_commands::info(args)?,
        ("line", "set") => line_commands::set(args)?,
        ("line", "test") => line_commands::test(args)?,
        ("line", "info") => line_commands::info(args)?,
        ("lineworks", "set") => lineworks_commands::set(args)?,
        ("lineworks", "info") => lineworks_commands::info(args)?,
        ("meta", "set") => meta_commands::set(args)?,
        ("meta", "info") => meta_commands::info(args)?,
        _ => return Err(usage(USAGE)),
    }
    Ok(())
}

/// `sekisho webhook <args>` → the process exit code.
pub fn main(raw: &[String]) -> i32 {
    match run(raw, Box::new(|name| std::env::var(name).ok())) {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("sekisho webhook: {failure}");
            failure.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str], env: &'static [(&'static str, &'static str)]) -> Args {
        let raw: Vec<String> = raw.iter().map(|s| (*s).to_owned()).collect();
        Args::parse(
            &raw,
            Box::new(move |name| {
                env.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }),
        )
        .unwrap()
    }

    #[test]
    fn options_flags_and_leftovers() {
        let mut parsed = args(
            &[
                "--url",
                "https://gw/telegram/a",
                "--drop-pending-updates",
                "--x=1",
            ],
            &[],
        );
        assert_eq!(parsed.take("url").as_deref(), Some("https://gw/telegram/a"));
        assert!(parsed.flag("drop-pending-updates"));
        assert!(
            matches!(parsed.finish(), Err(Failure::Usage(m)) if m.starts_with("unknown option --x"))
        );
        let raw = vec!["--url".to_owned()];
        assert!(matches!(
            Args::parse(&raw, Box::new(|_| None)),
            Err(Failure::Usage(_))
        ));
        let raw = vec!["stray".to_owned()];
        assert!(matches!(
            Args::parse(&raw, Box::new(|_| None)),
            Err(Failure::Usage(_))
        ));
    }

    #[test]
    fn credentials_and_bases_fall_back_to_the_environment() {
        let mut parsed = args(
            &[],
            &[
                ("TELEGRAM_BOT_TOKEN", " 1:a \n"),
                ("TELEGRAM_API_BASE", "http://127.0.0.1:1"),
            ],
        );
        assert_eq!(
            parsed
                .credential("bot-token", "TELEGRAM_BOT_TOKEN")
                .unwrap(),
            "1:a"
        );
        assert_eq!(
            parsed.api_base("TELEGRAM_API_BASE", "https://x"),
            "http://127.0.0.1:1"
        );
        let mut parsed = args(
            &["--bot-token", "2:b", "--api-base", "http://h"],
            &[("TELEGRAM_BOT_TOKEN", "1:a")],
        );
        assert_eq!(
            parsed
                .credential("bot-token", "TELEGRAM_BOT_TOKEN")
                .unwrap(),
            "2:b"
        );
        assert_eq!(
            parsed.api_base("TELEGRAM_API_BASE", "https://x"),
            "http://h"
        );
        let mut parsed = args(&[], &[]);
        assert!(parsed
            .credential("bot-token", "TELEGRAM_BOT_TOKEN")
            .is_err());
        assert_eq!(
            parsed.api_base("TELEGRAM_API_BASE", "https://x"),
            "https://x"
        );
    }

    #[test]
    fn accounts_come_from_the_flag_or_the_url() {
        assert_eq!(
            resolve_account(None, "telegram", "https://gw.example/telegram/acme-1").unwrap(),
            "acme-1"
        );
        assert_eq!(
            resolve_account(None, "line", "https://gw/line/acme/?x=1").unwrap(),
            "acme"
        );
        assert_eq!(
            resolve_account(
                Some("ACME".to_owned()),
                "telegram",
                "https://gw/telegram/acme"
            )
            .unwrap(),
            "acme"
        );
        assert_eq!(
            resolve_account(Some("acme".to_owned()), "telegram", "https://gw/hook").unwrap(),
            "acme"
        );
        assert!(resolve_account(None, "telegram", "https://gw/line/acme").is_err());
        assert!(resolve_account(
            Some("a_b".to_owned()),
            "telegram",
            "https://gw/telegram/a_b"
        )
        .is_err());
    }

    #[test]
    fn lists_and_paths() {
        assert_eq!(
            list(" message, ,callback_query "),
            vec!["message", "callback_query"]
        );
        assert_eq!(url_path("https://gw.example:8443/a/b?q#f"), "/a/b");
        assert_eq!(url_path("https://gw.example"), "/");
    }

    #[test]
    fn given_secrets_are_checked_and_absent_ones_generated() {
        let valid = crate::provision::telegram::is_valid_secret_token;
        let (secret, generated) = secret_or_generated(None, valid, "r").unwrap();
        assert!(generated && valid(&secret));
        let (_, generated) = secret_or_generated(Some("generated".to_owned()), valid, "r").unwrap();
        assert!(generated);
        assert_eq!(
            secret_or_generated(Some("mine".to_owned()), valid, "r").unwrap(),
            ("mine".to_owned(), false)
        );
        assert!(secret_or_generated(Some("not mine".to_owned()), valid, "r").is_err());
    }
}
