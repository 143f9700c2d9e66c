//! One module per channel, each implementing [`Channel`]. Adding a channel means adding its file, one line
//! in [`CHANNELS`], and fixtures under `fixtures/<channel>/`.

use http::{HeaderMap, Method};
use serde_json::Value;

use crate::config::Account;
use crate::envelope::{Event, EventParts, Raw};
use crate::query::Query;
use crate::reply::RenderReply;
use crate::Rejection;

pub mod chatplus;
pub mod chatwork;
pub mod discord;
mod form;
pub mod generic;
pub mod line;
pub mod lineworks;
pub mod meta;
pub mod slack;
pub mod telegram;
pub mod twilio;
pub mod wechat;

/// Every channel the gateway serves, by route name.
pub static CHANNELS: &[&dyn Channel] = &[
    &line::Line,
    &meta::WHATSAPP,
    &meta::MESSENGER,
    &meta::INSTAGRAM,
    &slack::Slack,
    &generic::Generic,
    &lineworks::LineWorks,
    &chatwork::Chatwork,
    &telegram::Telegram,
    &chatplus::ChatPlus,
    &wechat::WeChat,
    &wechat::WeCom,
    &discord::Discord,
    &twilio::Twilio,
];

pub fn find(name: &str) -> Option<&'static dyn Channel> {
    CHANNELS
        .iter()
        .copied()
        .find(|channel| channel.name() == name)
}

/// A request as a channel sees it: raw bytes, decoded query, and the current time passed in.
pub struct ChannelRequest<'a> {
    pub method: &'a Method,
    /// Scheme and host the provider called (`https://gate.example.com`); see [`ChannelRequest::url`].
    pub origin: &'a str,
    /// The request path as received, e.g. `/twilio/acme`.
    pub path: &'a str,
    /// The query string as received, without `?`.
    pub raw_query: Option<&'a str>,
    /// Path segments after `/{channel}/{account}` (ChatPlus carries its path secret there).
    pub extra_path: &'a [&'a str],
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    /// Milliseconds since the Unix epoch, from the runtime.
    pub now_ms: u64,
}

impl ChannelRequest<'_> {
    /// The full URL the provider called: origin, path and query exactly as received.
    pub fn url(&self) -> String {
        match self.raw_query {
            Some(query) => format!("{}{}?{}", self.origin, self.path, query),
            None => format!("{}{}", self.origin, self.path),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// What the gateway checks for every channel before its own code runs: extra path segments (404), then the
/// method (405).
pub fn check_route(
    channel: &dyn Channel,
    method: &Method,
    extra_path: &[&str],
) -> Result<(), Rejection> {
    if !extra_path.is_empty() && !channel.takes_extra_path() {
        return Err(Rejection::RouteNotFound);
    }
    if !channel.allows(method) {
        return Err(Rejection::MethodNotAllowed);
    }
    Ok(())
}

/// What the gateway answers the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl EdgeResponse {
    pub fn json(status: u16, body: String) -> Self {
        EdgeResponse {
            status,
            content_type: "application/json",
            body: body.into_bytes(),
        }
    }

    pub fn text(body: impl Into<Vec<u8>>) -> Self {
        EdgeResponse {
            status: 200,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    /// The usual acknowledgement: `{"accepted":N}`.
    pub fn accepted(count: usize) -> Self {
        Self::json(200, format!("{{\"accepted\":{count}}}"))
    }
}

/// What a channel decided about a request it verified: the answer, and the events it found. The gateway turns
/// the events into envelope [`Event`]s of this channel and account ([`Handled::new`]).
#[derive(Debug)]
pub struct Verdict {
    pub answer: Answer,
    pub events: Vec<EventParts>,
    /// Set by channels whose signature does not cover the body (WeChat plaintext mode): the gateway accepts
    /// the signed query again only with the same body.
    pub replay_guard: Option<ReplayGuard>,
    /// Set by channels whose response can carry a backend's reply to this request ([`crate::reply`]).
    pub reply: Option<Box<dyn RenderReply>>,
}

/// What the provider is answered.
#[derive(Debug)]
pub enum Answer {
    /// The usual acknowledgement, `{"accepted":N}` with N the number of events.
    Accepted,
    /// A response the provider's protocol prescribes (a handshake, `success`, an interaction callback).
    Respond(EdgeResponse),
}

impl Verdict {
    /// Events acknowledged with `{"accepted":N}`.
    pub fn accepted(events: Vec<EventParts>) -> Verdict {
        Verdict {
            answer: Answer::Accepted,
            events,
            replay_guard: None,
            reply: None,
        }
    }

    /// Events acknowledged with the response the provider expects.
    pub fn respond(response: EdgeResponse, events: Vec<EventParts>) -> Verdict {
        Verdict {
            answer: Answer::Respond(response),
            events,
            replay_guard: None,
            reply: None,
        }
    }

    /// A handshake: an answer and no event.
    pub fn handshake(response: EdgeResponse) -> Verdict {
        Verdict::respond(response, Vec::new())
    }

    pub fn guarded_by(self, replay_guard: Option<ReplayGuard>) -> Verdict {
        Verdict {
            replay_guard,
            ..self
        }
    }

    /// The response can carry a reply to this request, rendered by `renderer` when the backend gives one.
    pub fn replying_with(self, renderer: impl RenderReply + 'static) -> Verdict {
        Verdict {
            reply: Some(Box::new(renderer)),
            ..self
        }
    }
}

/// A verdict whose events are envelope events of one channel and account: what the gateway answers and forwards.
#[derive(Debug)]
pub struct Handled {
    pub response: EdgeResponse,
    pub events: Vec<Event>,
    pub replay_guard: Option<ReplayGuard>,
    pub reply: Option<Box<dyn RenderReply>>,
}

impl Handled {
    pub fn new(channel: &str, account: &str, verdict: Verdict) -> Handled {
        let events: Vec<Event> = verdict
            .events
            .into_iter()
            .map(|parts| Event::new(channel, account, parts))
            .collect();
        let response = match verdict.answer {
            Answer::Accepted => EdgeResponse::accepted(events.len()),
            Answer::Respond(response) => response,
        };
        Handled {
            response,
            events,
            replay_guard: verdict.replay_guard,
            reply: verdict.reply,
        }
    }
}

/// A signed query that authenticates no body. The gateway remembers the body digest it first came with until
/// `expires_at_ms` (the end of the channel's timestamp window) and refuses the same query with another body; a
/// provider retry carries the same body and stays an ordinary duplicate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplayGuard {
    /// Identifies the signed query (e.g. a digest of timestamp, nonce and signature), scoped by the gateway
    /// to the channel and account.
    pub key: String,
    /// SHA-256 of the raw body, hex.
    pub body_digest: String,
    pub expires_at_ms: u64,
}

/// Natively every channel also signs requests for the CLI and tests ([`crate::tooling::Sign`]); in the
/// Worker that code is not compiled at all.
#[cfg(feature = "tooling")]
pub use crate::tooling::Sign as Tooling;
#[cfg(not(feature = "tooling"))]
pub trait Tooling {}
#[cfg(not(feature = "tooling"))]
impl<T: ?Sized> Tooling for T {}

pub trait Channel: Sync + Tooling {
    /// The route segment, e.g. `line`.
    fn name(&self) -> &'static str;

    /// The field whose binding makes an account exist, e.g. `CHANNEL_SECRET` for `LINE_{ACCOUNT}_CHANNEL_SECRET`.
    fn account_field(&self) -> &'static str;

    /// Every field an account of this channel may hold (its registry form is checked against these; the
    /// gateway adds [`crate::config::field::COMMON_FIELDS`]).
    fn fields(&self) -> &'static [crate::config::field::FieldSpec];

    /// The methods this channel answers; the gateway refuses any other with 405 before reading the body.
    fn allows(&self, method: &Method) -> bool {
        *method == Method::POST
    }

    /// Whether `/{channel}/{account}/…` may carry more segments (ChatPlus's path secret); otherwise the
    /// gateway answers 404.
    fn takes_extra_path(&self) -> bool {
        false
    }

    /// Verify, answer handshakes, and normalize; the gateway has checked the route, the account's existence
    /// and the method. Must never panic on any input.
    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection>;

    /// The body limit of this channel's requests when the account sets none (`{CHANNEL}_{ACCOUNT}_MAX_BODY_BYTES`);
    /// never above the gateway-wide `MAX_BODY_BYTES`. Channels whose messages are known to be small declare one,
    /// so an unauthenticated request costs little to refuse.
    fn default_max_body_bytes(&self) -> Option<usize> {
        None
    }

    /// Called instead of [`handle`](Channel::handle) when the account does not exist. Channels whose secret
    /// is part of the URL override it to spend the same work as a wrong secret.
    fn unknown_account(&self, _request: &ChannelRequest<'_>) -> Rejection {
        Rejection::UnknownAccount
    }
}

/// The common scheme of LINE, LINE WORKS and Chatwork: `base64(HMAC-SHA256(key, raw body))` in a header.
/// Returns which key matched (0 = newest). Absent → `missing_signature`; not base64 or no match →
/// `invalid_signature`.
pub(crate) fn verify_base64_body_hmac<K: AsRef<[u8]>>(
    keys: &[K],
    signature: Option<&str>,
    body: &[u8],
) -> Result<usize, Rejection> {
    let signature = signature.ok_or(Rejection::MissingSignature)?;
    let tag = crate::crypto::base64_decode(signature).ok_or(Rejection::InvalidSignature)?;
    crate::crypto::hmac_sha256_matches(keys, &[body], &tag).ok_or(Rejection::InvalidSignature)
}

/// A JSON body: its value for normalization, and its exact text for `data.raw`. Refuses anything but an
/// object (every JSON provider sends one) as `malformed_body`.
pub(crate) fn json_object_body(body: &[u8]) -> Result<(Value, Raw), Rejection> {
    let (value, raw) = json_body(body, "JSON")?;
    if !value.is_object() {
        return Err(Rejection::MalformedBody { expected: "JSON" });
    }
    Ok((value, raw))
}

/// A JSON body of any shape: its value for normalization and its exact text for `data.raw`; anything else is
/// `malformed_body` with `expected`.
pub(crate) fn json_body(body: &[u8], expected: &'static str) -> Result<(Value, Raw), Rejection> {
    let malformed = || Rejection::MalformedBody { expected };
    let value = crate::json::parse_slice(body).map_err(|_| malformed())?;
    let raw = Raw::from_body(body).map_err(|_| malformed())?;
    Ok((value, raw))
}

/// A string at a JSON path; numbers are rendered as their decimal text (ids are numbers in some payloads).
pub(crate) fn text_at(value: &Value, path: &[&str]) -> Option<String> {
    match value_at(value, path)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

pub(crate) fn value_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |current, key| current.get(*key))
}

pub(crate) fn u64_at(value: &Value, path: &[&str]) -> Option<u64> {
    match value_at(value, path)? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

pub(crate) fn f64_at(value: &Value, path: &[&str]) -> Option<f64> {
    match value_at(value, path)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// A de-duplication key for providers that send no event id: SHA-256 of the given bytes.
pub(crate) fn content_hash_key(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        crate::crypto::hex_encode(&crate::crypto::sha256(&[bytes]))
    )
}

/// For the channels' unit tests: one request, built from plain parts, through a channel for the account `demo`.
#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::HashMap;

    use http::{HeaderMap, HeaderName, HeaderValue, Method};

    use super::{Channel, ChannelRequest, Handled};
    use crate::config::Account;
    use crate::query::Query;
    use crate::Rejection;

    pub(crate) struct DemoRequest<'a, V: AsRef<[u8]>> {
        pub method: Method,
        pub extra_path: &'a [&'a str],
        pub query: Option<&'a str>,
        pub headers: &'a [(&'a str, V)],
        pub body: &'a [u8],
        pub now_ms: u64,
    }

    pub(crate) fn run<V: AsRef<[u8]>>(
        channel: &dyn Channel,
        bindings: &HashMap<String, String>,
        demo: DemoRequest<'_, V>,
    ) -> Result<Handled, Rejection> {
        let mut headers = HeaderMap::new();
        for (name, value) in demo.headers {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_ref()).unwrap(),
            );
        }
        let query = Query::parse(demo.query);
        let request = ChannelRequest {
            method: &demo.method,
            origin: "https://gateway.test",
            path: "/demo",
            raw_query: demo.query,
            extra_path: demo.extra_path,
            query: &query,
            headers: &headers,
            body: demo.body,
            now_ms: demo.now_ms,
        };
        super::check_route(channel, &demo.method, demo.extra_path)?;
        let verdict = channel.handle(&request, &Account::new(channel.name(), "demo", bindings))?;
        Ok(Handled::new(channel.name(), "demo", verdict))
    }
}
