//! A webhook's path as pure functions, in the Worker's order: [`crate::route::route`] found the channel,
//! [`admit`] decides account → declared size before the body is read, [`handle_admitted`] channel → delivery
//! plan once it is.

use http::{HeaderMap, Method};

use crate::channels::{self, Channel, ChannelRequest, EdgeResponse, ReplayGuard};
use crate::config::{self, Account, Bindings};
use crate::forward::{self, Delivery};
use crate::notify::NotifyError;
use crate::query::Query;
use crate::reply::ReplyCall;
use crate::route::ChannelRoute;
use crate::Rejection;

/// An incoming HTTP request, with the body already read as bytes.
pub struct Inbound<'a> {
    pub method: &'a Method,
    /// Scheme and host the provider called, e.g. `https://gate.example.com` (Twilio signs the full URL).
    pub origin: &'a str,
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
    /// The reply call to make once the event is durably accepted ([`crate::reply`]).
    pub reply: Option<ReplyCall>,
}

/// A refused request, with enough context for one structured log line.
#[derive(Debug)]
pub struct Refusal {
    pub rejection: Rejection,
    pub channel: Option<&'static str>,
    pub account: Option<String>,
}

impl Refusal {
    /// A refusal before any channel or account is known (an unknown path, the admin API, an attachment link).
    pub fn unrouted(rejection: Rejection) -> Self {
        Refusal {
            rejection,
            channel: None,
            account: None,
        }
    }

    pub fn response(&self) -> EdgeResponse {
        EdgeResponse::json(self.rejection.status().as_u16(), self.rejection.body())
    }
}

/// A webhook admitted before its body is read: the account exists, and the declared length (if any) is within
/// the limit. The body is then read from the stream with a [`BodyBuffer`] of `body_limit`.
pub struct ChannelTarget<'a> {
    channel: &'static dyn Channel,
    account: &'a str,
    extra_path: Vec<&'a str>,
    pub body_limit: usize,
}

impl ChannelTarget<'_> {
    /// A refusal of this request, with its channel and account for the log.
    pub fn refusal(&self, rejection: Rejection) -> Refusal {
        Refusal {
            rejection,
            channel: Some(self.channel.name()),
            account: Some(self.account.to_owned()),
        }
    }

    /// Whether the method carries a body worth reading (GET and HEAD handshakes do not).
    pub fn reads_body(method: &Method) -> bool {
        !matches!(*method, Method::GET | Method::HEAD)
    }
}

/// Everything decided from the request line and headers once the route is a channel's: account → declared
/// size. Nothing here reads the body, so an unknown account, or a declared oversize body, costs no upload.
pub fn admit<'a>(
    route: ChannelRoute<'a>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    bindings: &dyn Bindings,
) -> Result<ChannelTarget<'a>, Refusal> {
    let ChannelRoute {
        channel,
        account: account_name,
        extra_path,
    } = route;
    let refuse = |rejection, account: Option<&str>| Refusal {
        rejection,
        channel: Some(channel.name()),
        account: account.map(str::to_owned),
    };
    if !config::is_valid_account(account_name) {
        return Err(refuse(Rejection::RouteNotFound, None));
    }
    let account = Account::new(channel.name(), account_name, bindings);
    if account.field(channel.account_field()).is_none() {
        let parsed_query = Query::parse(query);
        let request = ChannelRequest {
            method,
            origin: "",
            path,
            raw_query: query,
            extra_path: &extra_path,
            query: &parsed_query,
            headers,
            body: &[],
            now_ms: 0,
        };
        return Err(refuse(
            channel.unknown_account(&request),
            Some(account_name),
        ));
    }
    channels::check_route(channel, method, &extra_path)
        .map_err(|rejection| refuse(rejection, Some(account_name)))?;
    let body_limit = config::body_limit(&account, channel.default_max_body_bytes())
        .map_err(|rejection| refuse(rejection, Some(account_name)))?;
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > body_limit as u64) {
        return Err(refuse(
            Rejection::PayloadTooLarge { limit: body_limit },
            Some(account_name),
        ));
    }
    Ok(ChannelTarget {
        channel,
        account: account_name,
        extra_path,
        body_limit,
    })
}

/// A body read chunk by chunk from the stream, refused as soon as it passes the limit — whatever
/// `content-length` said, so a chunked upload can never grow memory past the limit.
pub struct BodyBuffer {
    bytes: Vec<u8>,
    limit: usize,
}

impl BodyBuffer {
    /// For a body of unknown length (a body with a declared one is read whole, see [`BodyBuffer::whole`]).
    pub fn new(limit: usize) -> Self {
        BodyBuffer {
            bytes: Vec::new(),
            limit,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), Rejection> {
        if self.bytes.len().saturating_add(chunk.len()) > self.limit {
            return Err(Rejection::PayloadTooLarge { limit: self.limit });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// A body read in one piece (its declared length was within the limit), checked without copying.
    pub fn whole(limit: usize, bytes: Vec<u8>) -> Result<Vec<u8>, Rejection> {
        if bytes.len() > limit {
            return Err(Rejection::PayloadTooLarge { limit });
        }
        Ok(bytes)
    }
}

/// The rest of the request path, once the body is read: the channel verifies, answers and normalizes; the
/// events are planned for delivery.
pub fn handle_admitted(
    target: &ChannelTarget<'_>,
    inbound: &Inbound<'_>,
    bindings: &dyn Bindings,
    now_ms: u64,
) -> Result<Accepted, Refusal> {
    let channel = target.channel;
    let refuse = |rejection| Refusal {
        rejection,
        channel: Some(channel.name()),
        account: Some(target.account.to_owned()),
    };
    if inbound.body.len() > target.body_limit {
        return Err(refuse(Rejection::PayloadTooLarge {
            limit: target.body_limit,
        }));
    }
    let query = Query::parse(inbound.query);
    let request = ChannelRequest {
        method: inbound.method,
        origin: inbound.origin,
        path: inbound.path,
        raw_query: inbound.query,
        extra_path: &target.extra_path,
        query: &query,
        headers: inbound.headers,
        body: inbound.body,
        now_ms,
    };
    let account = Account::new(channel.name(), target.account, bindings);
    let verdict = channel.handle(&request, &account).map_err(refuse)?;
    let handled = channels::Handled::new(channel.name(), target.account, verdict);
    let plan = forward::plan(&handled.events, &account).map_err(refuse)?;
    let reply = ReplyCall::plan(
        handled.reply,
        &account,
        handled.events.len(),
        &plan.deliveries,
    )
    .map_err(refuse)?;
    Ok(Accepted {
        channel: Some(channel.name()),
        account: Some(target.account.to_owned()),
        response: handled.response,
        deliveries: plan.deliveries,
        warnings: plan.warnings,
        replay_guard: handled.replay_guard,
        reply,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn bindings() -> HashMap<String, String> {
        HashMap::from([
            ("LINE_ACME_CHANNEL_SECRET".to_owned(), "s".to_owned()),
            ("MAX_BODY_BYTES".to_owned(), "10".to_owned()),
        ])
    }

    fn admit_with(path: &str, content_length: Option<&str>) -> Result<usize, Rejection> {
        let mut headers = HeaderMap::new();
        if let Some(length) = content_length {
            headers.insert(http::header::CONTENT_LENGTH, length.parse().unwrap());
        }
        let route = match crate::route::route(&Method::POST, path) {
            crate::route::Route::Channel(route) => route,
            _ => return Err(Rejection::RouteNotFound),
        };
        admit(route, &Method::POST, path, None, &headers, &bindings())
            .map(|target| target.body_limit)
            .map_err(|refusal| refusal.rejection)
    }

    #[test]
    fn route_account_and_declared_size_are_decided_before_the_body() {
        assert_eq!(admit_with("/line/acme", None), Ok(10));
        assert_eq!(admit_with("/line/acme", Some("10")), Ok(10));
        assert_eq!(
            admit_with("/line/acme", Some("11")),
            Err(Rejection::PayloadTooLarge { limit: 10 })
        );
        // Unknown routes and accounts are refused before the size: nothing to read for them.
        assert_eq!(
            admit_with("/nope/acme", Some("999999")),
            Err(Rejection::RouteNotFound)
        );
        assert_eq!(
            admit_with("/line/other", Some("999999")),
            Err(Rejection::UnknownAccount)
        );
        assert_eq!(
            admit_with("/line/bad.name", Some("999999")),
            Err(Rejection::RouteNotFound)
        );
    }

    #[test]
    fn the_body_buffer_refuses_as_soon_as_the_limit_is_passed() {
        let mut body = BodyBuffer::new(10);
        assert_eq!(body.push(b"12345"), Ok(()));
        assert_eq!(body.push(b"67890"), Ok(()));
        assert_eq!(
            body.push(b"1"),
            Err(Rejection::PayloadTooLarge { limit: 10 })
        );
        assert_eq!(body.into_bytes(), b"1234567890");
        let mut big = BodyBuffer::new(10);
        assert_eq!(
            big.push(&[0; 1 << 20]),
            Err(Rejection::PayloadTooLarge { limit: 10 })
        );
        assert!(big.into_bytes().is_empty());
        assert_eq!(
            BodyBuffer::whole(10, b"0123456789".to_vec()).map(|b| b.len()),
            Ok(10)
        );
        assert_eq!(
            BodyBuffer::whole(10, vec![0; 11]),
            Err(Rejection::PayloadTooLarge { limit: 10 })
        );
    }
}
