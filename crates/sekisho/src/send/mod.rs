//! Talking back: one signed call from the backend sends a message through a channel, durably.
//!
//! `POST /send/{channel}/{account}` carries the [`contract`] body, signed with Standard Webhooks by the backend
//! (the secret it already verifies deliveries with). [`admit`](admit::admit) decides everything before the send
//! is queued: route, account, signature, body, the channel's limits and credentials. The queued send is a
//! [`Delivery`](crate::forward::Delivery) whose target is [`Target::Send`](crate::forward::Target::Send): the
//! same queue, retry schedule and dead letters as every delivery. Each attempt builds the provider's request from
//! the configuration of that moment ([`Sender::request`]) and classifies its answer ([`Sender::classify`]); the
//! outcome is reported to the backend as a `message.sent` / `message.send_failed` event ([`outcome`]).
//!
//! One module per channel, each implementing [`Sender`]; provider access tokens (WeChat, WeCom, LINE WORKS) are
//! decided in [`tokens`] and cached by the edge, one object per account.

pub mod admit;
pub mod contract;
pub mod jwt;
pub mod outcome;
pub mod service_account;
pub mod tokens;

mod chatwork;
mod discord;
mod line;
mod lineworks;
mod slack;
mod telegram;
mod twilio;
mod wechat;
mod wecom;
mod whatsapp;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Account, Bindings};
use crate::Rejection;

pub use admit::{admit, route, AcceptedSend, SendRefusal};
pub use contract::{Outbound, Recipient, SendRequest};
pub use tokens::TokenKind;

/// Every channel with a send API.
static SENDERS: &[&dyn Sender] = &[
    &line::Line,
    &telegram::Telegram,
    &slack::Slack,
    &chatwork::Chatwork,
    &wechat::WeChat,
    &wecom::WeCom,
    &twilio::Twilio,
    &discord::Discord,
    &whatsapp::WhatsApp,
    &lineworks::LineWorks,
];

pub fn sender(channel: &str) -> Option<&'static dyn Sender> {
    SENDERS.iter().copied().find(|s| s.channel() == channel)
}

/// Why a send cannot be accepted: each a 422 with its own reason, except [`SendError::Request`] (the usual
/// refusals: 401, 404, 405, 413, 500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Request(#[from] Rejection),
    #[error("the body is not a send request: {0}")]
    InvalidBody(&'static str),
    #[error("`to` is not an id this channel can address")]
    InvalidRecipient,
    #[error("this channel cannot send to `to.{0}`")]
    UnsupportedRecipient(&'static str),
    #[error("the text is empty")]
    EmptyText,
    #[error("the text is longer than the channel's limit of {limit} {unit}")]
    TextTooLong { limit: usize, unit: &'static str },
    #[error("the raw message is not one this channel accepts: {0}")]
    InvalidRaw(&'static str),
    #[error("the channel has no send API")]
    NoSendApi,
    #[error("the account's `{field}` is not set")]
    NotConfigured { field: &'static str },
}

impl SendError {
    pub fn status(&self) -> u16 {
        match self {
            SendError::Request(rejection) => rejection.status().as_u16(),
            _ => 422,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            SendError::Request(rejection) => rejection.reason(),
            SendError::InvalidBody(_) => "invalid_body",
            SendError::InvalidRecipient => "invalid_recipient",
            SendError::UnsupportedRecipient(_) => "unsupported_recipient",
            SendError::EmptyText => "empty_text",
            SendError::TextTooLong { .. } => "text_too_long",
            SendError::InvalidRaw(_) => "invalid_raw",
            SendError::NoSendApi => "no_send_api",
            SendError::NotConfigured { .. } => "not_configured",
        }
    }

    /// The JSON answer: `{"error":"…"}`, with the `field` of `not_configured` and the `limit` of
    /// `text_too_long`.
    pub fn body(&self) -> String {
        let body = match self {
            SendError::NotConfigured { field } => {
                serde_json::json!({ "error": self.reason(), "field": field })
            }
            SendError::TextTooLong { limit, unit } => {
                serde_json::json!({ "error": self.reason(), "limit": limit, "unit": unit })
            }
            _ => serde_json::json!({ "error": self.reason() }),
        };
        body.to_string()
    }
}

/// What travels in the queue for one send (no secret: credentials and tokens are read at each attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJob {
    pub send_id: String,
    pub to: Recipient,
    /// `text` or `raw` (not `kind`: the queued target is tagged with `kind`).
    pub message_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

/// `snd_` + 32 hex digits of SHA-256 over channel, account and the authenticated `webhook-id`: the same call
/// is the same send, and no unauthenticated caller can choose it.
pub fn send_id(channel: &str, account: &str, webhook_id: &str) -> String {
    let digest = crate::crypto::sha256(&[
        b"send\n",
        channel.as_bytes(),
        b"\n",
        account.as_bytes(),
        b"\n",
        webhook_id.as_bytes(),
    ]);
    let hex = crate::crypto::hex_encode(&digest);
    format!("snd_{}", hex.get(..32).unwrap_or(&hex))
}

/// One HTTP request to a provider (a send or a token fetch). Its `Debug` shows neither headers nor URL query
/// nor body: they carry tokens and secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRequest {
    /// `GET` or `POST`.
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl fmt::Debug for ProviderRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProviderRequest")
            .field("method", &self.method)
            .field("url", &self.redacted_url())
            .field("headers", &names)
            .field("body_bytes", &self.body.as_ref().map(String::len))
            .finish()
    }
}

impl ProviderRequest {
    pub fn post_json(url: String, headers: Vec<(String, String)>, body: String) -> Self {
        let mut headers = headers;
        headers.push(("content-type".into(), "application/json".into()));
        ProviderRequest {
            method: "POST".into(),
            url,
            headers,
            body: Some(body),
        }
    }

    /// The URL for a log line or an error: scheme and host only (Telegram's token is in the path, WeChat's
    /// and WeCom's in the query).
    pub fn redacted_url(&self) -> &str {
        let host_start = self.url.find("://").map_or(0, |i| i + 3);
        let end = self
            .url
            .get(host_start..)
            .and_then(|rest| rest.find(['/', '?']))
            .map_or(self.url.len(), |i| host_start + i);
        self.url.get(..end).unwrap_or_default()
    }
}

/// A provider's answer as the edge read it.
#[derive(Debug, Clone, Copy)]
pub struct ProviderAnswer<'a> {
    pub status: u16,
    pub retry_after: Option<&'a str>,
    pub ratelimit_reset: Option<&'a str>,
    pub body: &'a [u8],
    pub now_s: u64,
}

impl ProviderAnswer<'_> {
    pub fn json(&self) -> Value {
        crate::json::parse_slice(self.body).unwrap_or(Value::Null)
    }

    /// The wait the provider asked for (`Retry-After`, `X-RateLimit-Reset`).
    pub fn requested_wait_s(&self) -> Option<u32> {
        crate::delivery::policy::requested_wait_s(
            self.retry_after,
            self.ratelimit_reset,
            self.now_s,
        )
    }
}

/// What a provider's answer means for the send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The provider took the message; its id when it gives one.
    Sent { message_id: Option<String> },
    /// Too many requests: retried after the wait the provider asked for (or the schedule's).
    RateLimited {
        wait_s: Option<u32>,
        failure: Failure,
    },
    /// Retried on the schedule.
    Temporary(Failure),
    /// Retrying cannot help: reported as `message.send_failed` at once.
    Permanent(Failure),
    /// The provider says the access token is invalid or expired: drop it, fetch a new one, try once more.
    TokenRejected(Failure),
}

impl SendOutcome {
    /// Whether the provider refused the account's credential itself (HTTP 401 not cured by a new token: LINE's
    /// channel access token, Telegram's bot token, a LINE WORKS app whose new token is refused too). A
    /// registry account served from the isolate's cache may hold a value replaced since: it is read again (as
    /// after a failed webhook signature, at most every 2 s per account) and the send tried once more with it.
    pub fn credential_refused(&self, status: u16) -> bool {
        status == 401 && !matches!(self, SendOutcome::Sent { .. })
    }
}

/// The provider's error: its code (or the HTTP status) and message, cut short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

const FAILURE_MESSAGE_MAX_CHARS: usize = 300;

impl Failure {
    pub fn new(code: impl Into<String>, message: impl AsRef<str>) -> Failure {
        Failure {
            code: crate::control_chars::single_line(&code.into())
                .chars()
                .take(64)
                .collect(),
            message: crate::control_chars::single_line(message.as_ref())
                .chars()
                .take(FAILURE_MESSAGE_MAX_CHARS)
                .collect(),
        }
    }
}

/// A channel's send API.
pub trait Sender: Sync {
    fn channel(&self) -> &'static str;

    /// The account fields a send needs, in the order they are checked (`not_configured` names the first
    /// missing one). Read through [`Account`], so registry accounts and environment bindings alike.
    fn credentials(&self) -> &'static [&'static str];

    /// Whether a credential missing from the account is read from the gateway-wide binding of the same name
    /// (Chatwork's `CHATWORK_API_TOKEN`, shared with notifications).
    fn gateway_credentials(&self) -> bool {
        false
    }

    /// The access token the API needs besides the credentials, if any.
    fn token(&self) -> Option<TokenKind> {
        None
    }

    /// The provider's request body for this message to this recipient (no secret in it: it waits in the
    /// queue). Refuses what can never be sent: a recipient of the wrong shape, a text over the limit.
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        send_id: &str,
    ) -> Result<String, SendError>;

    /// The request of one attempt, with the credentials and token of this moment.
    fn request(
        &self,
        job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        token: Option<&str>,
    ) -> Result<ProviderRequest, SendError>;

    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome;

    /// Where to send once more when the provider's answer (`status`) says the recipient is addressed through
    /// another endpoint (LINE WORKS: a 1:1 talk's conversation id is the user's id, not a channel's).
    fn readdress(&self, _job: &SendJob, _status: u16) -> Option<Recipient> {
        None
    }
}

/// The first credential of the sender the account lacks.
pub fn missing_credential(sender: &dyn Sender, account: &Account<'_>) -> Option<&'static str> {
    sender
        .credentials()
        .iter()
        .copied()
        .find(|field| credential_value(sender, account, field).is_none())
}

fn credential_value(sender: &dyn Sender, account: &Account<'_>, field: &str) -> Option<String> {
    if sender.gateway_credentials() {
        account.field_or_global(field)
    } else {
        account.field(field)
    }
}

/// The account's value of a credential (printable ASCII: it goes into a header or URL), or `not_configured`.
/// A field being rotated holds several values, newest first (`crate::config::split_values`): the newest is
/// the one sent.
pub(crate) fn credential(
    sender: &dyn Sender,
    account: &Account<'_>,
    field: &'static str,
) -> Result<String, SendError> {
    credential_value(sender, account, field)
        .and_then(|value| crate::config::split_values(&value).into_iter().next())
        .filter(|value| value.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(SendError::NotConfigured { field })
}

/// A provider API base: the binding when set (tests and local mocks), else the provider's host.
pub fn api_base(bindings: &dyn Bindings, binding: &str, default: &str) -> String {
    bindings
        .get(binding)
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The usual reading of an HTTP status when the body says nothing more: 429 rate limited (with the wait
/// asked for), 408/425/5xx temporary, other 4xx permanent.
pub(crate) fn by_status(answer: &ProviderAnswer<'_>, failure: Failure) -> SendOutcome {
    match answer.status {
        429 => SendOutcome::RateLimited {
            wait_s: answer.requested_wait_s(),
            failure,
        },
        408 | 425 | 500..=599 => SendOutcome::Temporary(failure),
        _ => SendOutcome::Permanent(failure),
    }
}

/// A text checked against a limit counted in `unit`s by `count`.
pub(crate) fn within_limit(
    text: &str,
    limit: usize,
    unit: &'static str,
    count: fn(&str) -> usize,
) -> Result<(), SendError> {
    if count(text) > limit {
        return Err(SendError::TextTooLong { limit, unit });
    }
    Ok(())
}

/// `<` and `>` as their full-width forms: WeChat, WeCom and LINE WORKS texts read angle brackets as markup
/// (links, mentions); full-width ones look alike and are never parsed.
pub(crate) fn without_angle_markup(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => '＜',
            '>' => '＞',
            other => other,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod test_support;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_ids_are_stable_scoped_and_not_the_webhook_id() {
        let id = send_id("line", "acme", "msg_1");
        assert_eq!(id, send_id("line", "acme", "msg_1"));
        assert_ne!(id, send_id("line", "other", "msg_1"));
        assert_ne!(id, send_id("line", "acme", "msg_2"));
        assert!(id.starts_with("snd_") && id.len() == 36);
    }

    #[test]
    fn errors_carry_their_field_and_limit() {
        assert_eq!(
            SendError::NotConfigured {
                field: "CHANNEL_ACCESS_TOKEN"
            }
            .body(),
            r#"{"error":"not_configured","field":"CHANNEL_ACCESS_TOKEN"}"#
        );
        let long = SendError::TextTooLong {
            limit: 5000,
            unit: "utf16",
        };
        assert_eq!(long.status(), 422);
        assert_eq!(
            long.body(),
            r#"{"error":"text_too_long","limit":5000,"unit":"utf16"}"#
        );
        assert_eq!(
            SendError::Request(Rejection::InvalidSignature).status(),
            401
        );
        assert_eq!(
            SendError::Request(Rejection::UnknownAccount).body(),
            r#"{"error":"not_found"}"#
        );
    }

    #[test]
    fn provider_requests_never_print_credentials() {
        let request = ProviderRequest {
            method: "GET".into(),
            url: "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=SECRET".into(),
            headers: vec![("authorization".into(), "Bearer TOKEN".into())],
            body: Some("{\"secret\":\"SECRET\"}".into()),
        };
        let printed = format!("{request:?}");
        assert!(
            !printed.contains("SECRET") && !printed.contains("TOKEN"),
            "{printed}"
        );
        assert_eq!(request.redacted_url(), "https://qyapi.weixin.qq.com");
    }

    #[test]
    fn only_a_refused_credential_reads_a_cached_account_again() {
        let failure = || Failure::new("401", "Authentication failed");
        assert!(SendOutcome::Permanent(failure()).credential_refused(401));
        assert!(SendOutcome::TokenRejected(failure()).credential_refused(401));
        assert!(!SendOutcome::Permanent(failure()).credential_refused(400));
        assert!(!SendOutcome::Permanent(failure()).credential_refused(403));
        assert!(!SendOutcome::Temporary(failure()).credential_refused(0));
        assert!(!SendOutcome::Sent { message_id: None }.credential_refused(401));
        // LINE's 401 is what a rotated channel access token looks like.
        let line = sender("line").unwrap().classify(&ProviderAnswer {
            status: 401,
            retry_after: None,
            ratelimit_reset: None,
            body: br#"{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}"#,
            now_s: 0,
        });
        assert!(line.credential_refused(401));
    }

    #[test]
    fn failures_are_one_short_line() {
        let failure = Failure::new("45015\n", "a\r\nb".repeat(200));
        assert_eq!(failure.code, "45015 ");
        assert_eq!(failure.message.chars().count(), FAILURE_MESSAGE_MAX_CHARS);
        assert!(!failure.message.contains('\n'));
    }
}
