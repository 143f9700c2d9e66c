//! The whole request path as one pure function: route → account → size → channel → delivery plan.

use http::{HeaderMap, Method};

use crate::channels::{self, ChannelRequest, EdgeResponse, ReplayGuard};
use crate::config::{self, Account, Bindings};
use crate::forward::{self, Delivery};
use crate::notify::NotifyError;
use crate::query::Query;
use crate::Rejection;

/// An incoming HTTP request, with the body already read as bytes.
pub struct Inbound<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A request the gateway answers with success: the response, and the events to forward after it.
#[derive(Debug)]
pub struct Accepted {
    pub channel: Option<&'static str>,
    pub account: Option<String>,
    pub response: EdgeResponse,
    pub deliveries: Vec<Delivery>,
    /// Configuration problems that did not stop the events (a broken notification template), logged with the
    /// request so an admin finds them at first use.
    pub warnings: Vec<NotifyError>,
    /// See [`ReplayGuard`]: checked against what the de-duplication store remembers before anything is queued.
    pub replay_guard: Option<ReplayGuard>,
}

/// A refused request, with enough context for one structured log line.
#[derive(Debug)]
pub struct Refusal {
    pub rejection: Rejection,
    pub channel: Option<&'static str>,
    pub account: Option<String>,
}

impl Refusal {
    pub fn response(&self) -> EdgeResponse {
        EdgeResponse::json(self.rejection.status().as_u16(), self.rejection.body())
    }

    /// One JSON log line: reason, status, channel, account and the operator-facing detail (which names a
    /// misconfigured binding, never its value). Never the body or a secret.
    pub fn log_line(&self) -> String {
        serde_json::json!({
            "level": if self.rejection.status().is_server_error() { "error" } else { "warn" },
            "msg": "request rejected",
            "reason": self.rejection.reason(),
            "status": self.rejection.status().as_u16(),
            "channel": self.channel,
            "account": self.account,
            "detail": self.rejection.to_string(),
        })
        .to_string()
    }
}

impl Accepted {
    /// One JSON log line; `warn` level with the configuration problems when there are any.
    pub fn log_line(&self, duplicates: Option<usize>) -> String {
        let mut line = serde_json::json!({
            "level": if self.warnings.is_empty() { "info" } else { "warn" },
            "msg": "request accepted",
            "channel": self.channel,
            "account": self.account,
            "events": self.deliveries.iter().map(|d| d.webhook_id.as_str()).collect::<Vec<_>>(),
        });
        if let Some(duplicates) = duplicates {
            line["duplicates"] = duplicates.into();
        }
        if !self.warnings.is_empty() {
            line["warnings"] = self
                .warnings
                .iter()
                .map(|w| serde_json::json!({"reason": w.reason(), "detail": w.to_string()}))
                .collect();
        }
        line.to_string()
    }
}

/// Refuses a request whose declared `content-length` is over the limit, before its body is read.
pub fn check_declared_length(
    content_length: Option<&str>,
    bindings: &dyn Bindings,
) -> Result<(), Rejection> {
    let limit = config::max_body_bytes(bindings);
    match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(length) if length > limit as u64 => Err(Rejection::PayloadTooLarge { limit }),
        _ => Ok(()),
    }
}

pub fn handle(
    inbound: &Inbound<'_>,
    bindings: &dyn Bindings,
    now_ms: u64,
) -> Result<Accepted, Refusal> {
    let refuse = |rejection, channel, account: Option<&str>| Refusal {
        rejection,
        channel,
        account: account.map(str::to_owned),
    };
    let mut segments = inbound.path.trim_start_matches('/').split('/');
    let channel_name = segments.next().unwrap_or_default();
    if channel_name == "healthz" && segments.next().is_none() {
        return Ok(Accepted {
            channel: None,
            account: None,
            response: EdgeResponse::text("ok"),
            deliveries: vec![],
            warnings: vec![],
            replay_guard: None,
        });
    }
    let channel =
        channels::find(channel_name).ok_or_else(|| refuse(Rejection::RouteNotFound, None, None))?;
    let account_name = segments.next().unwrap_or_default();
    if !config::is_valid_account(account_name) {
        return Err(refuse(Rejection::RouteNotFound, Some(channel.name()), None));
    }
    let extra_path: Vec<&str> = segments.collect();
    let query = Query::parse(inbound.query);
    let request = ChannelRequest {
        method: inbound.method,
        extra_path: &extra_path,
        query: &query,
        headers: inbound.headers,
        body: inbound.body,
        now_ms,
    };
    // Size before account lookup, so a 413 never tells an unknown account from a known one.
    let limit = config::max_body_bytes(bindings);
    if inbound.body.len() > limit {
        return Err(refuse(
            Rejection::PayloadTooLarge { limit },
            Some(channel.name()),
            Some(account_name),
        ));
    }
    let account = Account::new(channel.name(), account_name, bindings);
    if account.field(channel.account_field()).is_none() {
        return Err(refuse(
            channel.unknown_account(&request),
            Some(channel.name()),
            Some(account_name),
        ));
    }
    let handled = channel
        .handle(&request, &account)
        .map_err(|e| refuse(e, Some(channel.name()), Some(account_name)))?;
    let plan = forward::plan(&handled.events, &account)
        .map_err(|e| refuse(e, Some(channel.name()), Some(account_name)))?;
    Ok(Accepted {
        channel: Some(channel.name()),
        account: Some(account_name.to_owned()),
        response: handled.response,
        deliveries: plan.deliveries,
        warnings: plan.warnings,
        replay_guard: handled.replay_guard,
    })
}
