//! `sekisho webhook`: registering and checking the gateway's webhook URL at the providers through their own APIs
//! (native only; the Worker carries none of it).
//!
//! Sans-IO like the rest of the crate: each provider module has pure functions that build an [`ApiRequest`] and
//! interpret an [`ApiResponse`]; [`http`] performs them, [`cli`] parses the command line and prints. Secrets
//! (bot tokens, access tokens, app secrets) are only ever printed masked ([`mask`]); the one exception is the
//! webhook secret in the `wrangler secret put` line the admin must run ([`wrangler_put_line`]).

pub mod cli;
pub(crate) mod http;
pub mod line;
pub mod lineworks;
pub mod meta;
pub mod secrets;
pub mod telegram;

use std::fmt;

use sekisho::control_chars::single_line;

pub use secrets::{mask, wrangler_put_line, wrangler_put_placeholder};

/// The providers `sekisho webhook` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Telegram,
    Line,
    LineWorks,
    Meta,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Telegram => "Telegram",
            Provider::Line => "LINE",
            Provider::LineWorks => "LINE WORKS",
            Provider::Meta => "Meta",
        })
    }
}

/// A request body: JSON, or form fields (`application/x-www-form-urlencoded`).
#[derive(Debug, Clone, PartialEq)]
pub enum ApiBody {
    None,
    Json(serde_json::Value),
    Form(Vec<(&'static str, String)>),
}

/// One call to a provider's API, built by a provider module and performed by [`http`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: ::http::Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: ApiBody,
}

/// What the provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The provider refused the call, or answered something that is not its documented shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} refused the call ({status}): {message}")]
    Refused {
        provider: Provider,
        status: u16,
        message: String,
    },
    #[error("{provider} answered {status} with a body that is not its documented JSON")]
    Unreadable { provider: Provider, status: u16 },
}

/// Something `info`/`test` found wrong with the wiring: the command exits non-zero when there is any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The provider's last delivery to the webhook failed within the recent window.
    RecentDeliveryError { at: String, message: String },
    /// The provider has no webhook URL at all.
    NotConfigured,
    /// The provider's URL is not the one the admin expects.
    UrlDiffers {
        configured: String,
        expected: String,
    },
    /// The webhook is registered but switched off (LINE's "Use webhook", an inactive Meta subscription).
    Inactive,
    /// A Meta subscription or a LINE WORKS bot lacks fields (events) the admin asked for.
    MissingFields(Vec<String>),
    /// The provider's test delivery did not succeed.
    TestDeliveryFailed { status_code: i64, reason: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::RecentDeliveryError { at, message } => {
                write!(f, "the provider's last delivery failed at {at}: {message}")
            }
            Problem::NotConfigured => f.write_str("no webhook URL is registered"),
            Problem::UrlDiffers {
                configured,
                expected,
            } => write!(
                f,
                "the registered URL is {configured}, not the expected {expected}"
            ),
            Problem::Inactive => f.write_str("the webhook is registered but not active"),
            Problem::MissingFields(fields) => {
                write!(f, "not subscribed to: {}", fields.join(", "))
            }
            Problem::TestDeliveryFailed {
                status_code,
                reason,
            } => write!(
                f,
                "the test delivery failed: status {status_code}, reason {reason}"
            ),
        }
    }
}

/// Longest provider-supplied text shown (error descriptions, reasons).
const MAX_SHOWN_CHARS: usize = 500;

/// Text from a provider, safe to print on one line: control characters neutralised, length bounded.
pub(crate) fn shown(text: &str) -> String {
    let line = single_line(text);
    let mut out: String = line.chars().take(MAX_SHOWN_CHARS).collect();
    if line.chars().nth(MAX_SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// `{base}` without a trailing slash, so paths can be appended.
pub(crate) fn trimmed_base(base: &str) -> &str {
    base.trim_end_matches('/')
}

/// Whether the configured URL is the expected one (exact, except for one trailing slash).
pub(crate) fn same_url(configured: &str, expected: &str) -> bool {
    configured.trim_end_matches('/') == expected.trim_end_matches('/')
}

/// The URL check shared by every `info`: `None` when no URL was expected or it matches.
pub(crate) fn url_problem(configured: &str, expected: Option<&str>) -> Option<Problem> {
    let expected = expected?;
    if configured.is_empty() {
        Some(Problem::NotConfigured)
    } else if same_url(configured, expected) {
        None
    } else {
        Some(Problem::UrlDiffers {
            configured: shown(configured),
            expected: expected.to_owned(),
        })
    }
}

/// A callback registration checked against what the admin expects: its URL, that it is on, and that it covers
/// every expected event (LINE WORKS callback events, Meta subscription fields).
pub(crate) fn registration_problems(
    configured_url: &str,
    expected_url: Option<&str>,
    active: bool,
    covered: &[String],
    expected: &[String],
) -> Vec<Problem> {
    let mut problems: Vec<Problem> = url_problem(configured_url, expected_url)
        .into_iter()
        .collect();
    if !active {
        problems.push(Problem::Inactive);
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|name| !covered.contains(name))
        .cloned()
        .collect();
    if !missing.is_empty() {
        problems.push(Problem::MissingFields(missing));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_text_is_one_bounded_line() {
        assert_eq!(
            shown("Bad Request:\r\nforged line"),
            "Bad Request: forged line"
        );
        let long = "x".repeat(MAX_SHOWN_CHARS + 10);
        let out = shown(&long);
        assert_eq!(out.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(out.ends_with('…'));
        assert_eq!(shown("short"), "short");
    }

    #[test]
    fn url_check_ignores_one_trailing_slash_only() {
        assert_eq!(
            url_problem("https://gw/line/acme/", Some("https://gw/line/acme")),
            None
        );
        assert_eq!(url_problem("anything", None), None);
        assert_eq!(
            url_problem("", Some("https://gw/line/acme")),
            Some(Problem::NotConfigured)
        );
        assert_eq!(
            url_problem("https://gw/line/other", Some("https://gw/line/acme")),
            Some(Problem::UrlDiffers {
                configured: "https://gw/line/other".to_owned(),
                expected: "https://gw/line/acme".to_owned()
            })
        );
    }
}
