//! Everything decided about `POST /send/{channel}/{account}` before the send is queued, in order: route and
//! account (404), method (405), size (413), the backend's Standard Webhooks signature (401), the body (422), the
//! channel's send API, credentials and limits (422). Nothing is queued for a request refused here.

use http::{HeaderMap, Method};

use super::contract::{Outbound, SendRequest, MAX_SEND_BODY_BYTES};
use super::{missing_credential, send_id, sender, SendError, SendJob};
use crate::channels::{self, EdgeResponse};
use crate::config::{self, split_values, Account, Bindings};
use crate::crypto::standard_webhooks::{ReceiveError, SigningKeys};
use crate::forward::{Delivery, Origin, Target, SIGNING_SECRET_BINDING};
use crate::Rejection;

pub const PATH_PREFIX: &str = "/send/";
/// The event type a queued send carries in the queue (never sent to the backend as such).
pub const SEND_EVENT_TYPE: &str = "message.send";
/// Longest `webhook-id` accepted: it becomes part of the de-duplication key.
const MAX_WEBHOOK_ID_BYTES: usize = 256;

/// `/send/{channel}/{account}`: the channel and account named, or why the path names none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRoute<'a> {
    pub channel: &'static str,
    pub account: &'a str,
}

/// `None` when `path` is not under `/send/`; else the route, or 404 for an unknown channel or a malformed
/// account.
pub fn route(path: &str) -> Option<Result<SendRoute<'_>, Rejection>> {
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let mut segments = rest.split('/');
    let (Some(channel), Some(account), None) = (segments.next(), segments.next(), segments.next())
    else {
        return Some(Err(Rejection::RouteNotFound));
    };
    let Some(channel) = channels::find(channel) else {
        return Some(Err(Rejection::RouteNotFound));
    };
    if !config::is_valid_account(account) {
        return Some(Err(Rejection::RouteNotFound));
    }
    Some(Ok(SendRoute {
        channel: channel.name(),
        account,
    }))
}

/// Checks made before the body is read: the account exists, the method is POST, the declared length fits.
pub fn admit_head(
    route: &SendRoute<'_>,
    method: &Method,
    declared_length: Option<u64>,
    bindings: &dyn Bindings,
) -> Result<usize, SendError> {
    let channel = channels::find(route.channel).ok_or(Rejection::RouteNotFound)?;
    let account = Account::new(channel.name(), route.account, bindings);
    if account.field(channel.account_field()).is_none() {
        return Err(Rejection::UnknownAccount.into());
    }
    if *method != Method::POST {
        return Err(Rejection::MethodNotAllowed.into());
    }
    if declared_length.is_some_and(|length| length > MAX_SEND_BODY_BYTES as u64) {
        return Err(Rejection::PayloadTooLarge {
            limit: MAX_SEND_BODY_BYTES,
        }
        .into());
    }
    Ok(MAX_SEND_BODY_BYTES)
}

/// A send accepted for the queue.
#[derive(Debug)]
pub struct AcceptedSend {
    pub send_id: String,
    /// The queued send: `webhook_id` is the send id (the de-duplication key), `body` the provider payload.
    pub delivery: Delivery,
    /// `202 {"send_id":"snd_…"}`, for this call and any repeat of it.
    pub response: EdgeResponse,
}

/// A refused send, with what the log line needs.
#[derive(Debug)]
pub struct SendRefusal {
    pub error: SendError,
    pub channel: &'static str,
    pub account: String,
}

impl SendRefusal {
    pub fn response(&self) -> EdgeResponse {
        EdgeResponse::json(self.error.status(), self.error.body())
    }
}

impl AcceptedSend {
    /// The send as an accepted request for the intake (claim by send id → queue → commit), so a repeated
    /// `webhook-id` within the de-duplication window is queued once and answered the same.
    pub fn into_accepted(self, route: &SendRoute<'_>) -> crate::gateway::Accepted {
        crate::gateway::Accepted {
            channel: Some(route.channel),
            account: Some(route.account.to_owned()),
            response: self.response,
            deliveries: vec![self.delivery],
            warnings: Vec::new(),
            replay_guard: None,
            reply: None,
        }
    }
}

/// The whole decision for a send whose body has been read.
pub fn admit(
    route: &SendRoute<'_>,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    bindings: &dyn Bindings,
    now_ms: u64,
) -> Result<AcceptedSend, SendRefusal> {
    let refuse = |error| SendRefusal {
        error,
        channel: route.channel,
        account: route.account.to_owned(),
    };
    admit_head(route, method, None, bindings).map_err(refuse)?;
    if body.len() > MAX_SEND_BODY_BYTES {
        return Err(refuse(
            Rejection::PayloadTooLarge {
                limit: MAX_SEND_BODY_BYTES,
            }
            .into(),
        ));
    }
    let account = Account::new(route.channel, route.account, bindings);
    let webhook_id = verify(&account, headers, body, now_ms).map_err(refuse)?;
    let request = SendRequest::parse(body).map_err(refuse)?;
    let sender = sender(route.channel)
        .ok_or(SendError::NoSendApi)
        .map_err(refuse)?;
    if let Some(field) = missing_credential(sender, &account) {
        return Err(refuse(SendError::NotConfigured { field }));
    }
    let send_id = send_id(route.channel, route.account, &webhook_id);
    let payload = sender
        .render(&request.to, &request.message, &send_id)
        .map_err(refuse)?;
    let (kind, text) = match &request.message {
        Outbound::Text(text) => ("text", Some(text.clone())),
        Outbound::Raw(_) => ("raw", None),
    };
    let job = SendJob {
        send_id: send_id.clone(),
        to: request.to,
        message_kind: kind.to_owned(),
        text,
        in_reply_to: request.in_reply_to,
    };
    let delivery = Delivery {
        webhook_id: send_id.clone(),
        url: format!("{PATH_PREFIX}{}/{}", route.channel, route.account),
        event_type: SEND_EVENT_TYPE.to_owned(),
        body: payload,
        target: Target::Send(job),
        origin: Some(Origin {
            channel: route.channel.to_owned(),
            account: route.account.to_owned(),
        }),
    };
    crate::delivery::check_fits_queue(&delivery).map_err(|rejection| refuse(rejection.into()))?;
    let response = EdgeResponse::json(202, serde_json::json!({ "send_id": send_id }).to_string());
    Ok(AcceptedSend {
        send_id,
        delivery,
        response,
    })
}

/// The backend's Standard Webhooks signature, with the account's own `BACKEND_SIGNING_SECRET` or the
/// gateway's; returns the authenticated `webhook-id`.
fn verify(
    account: &Account<'_>,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: u64,
) -> Result<String, SendError> {
    let secrets = account
        .field_or_global(SIGNING_SECRET_BINDING)
        .map(|raw| split_values(&raw))
        .unwrap_or_default();
    let keys = SigningKeys::parse(&secrets)
        .map_err(|_| Rejection::misconfigured(SIGNING_SECRET_BINDING))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signature)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err(Rejection::MissingSignature.into());
    };
    keys.verify(id, timestamp, signature, body, now_ms / 1000)
        .map_err(|error| match error {
            ReceiveError::BadTimestamp => Rejection::StaleTimestamp,
            ReceiveError::BadSignature => Rejection::InvalidSignature,
        })?;
    if id.is_empty() || id.len() > MAX_WEBHOOK_ID_BYTES || !id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Rejection::InvalidParameter("webhook-id").into());
    }
    Ok(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::*;

    #[test]
    fn routes_name_a_known_channel_and_a_valid_account() {
        assert_eq!(route("/line/acme"), None);
        assert_eq!(
            route("/send/line/acme"),
            Some(Ok(SendRoute {
                channel: "line",
                account: "acme"
            }))
        );
        for path in [
            "/send/nope/acme",
            "/send/line/Acme",
            "/send/line",
            "/send/line/a/b",
        ] {
            assert_eq!(route(path), Some(Err(Rejection::RouteNotFound)), "{path}");
        }
    }

    #[test]
    fn a_signed_send_is_queued_with_its_send_id() {
        let env = env(&[("LINE_ACME_CHANNEL_ACCESS_TOKEN", "tok-0123456789abcdefghij")]);
        let body = br#"{"to":{"conversation":"U0123456789abcdef0123456789abcdef"},"message":{"text":"hello"}}"#;
        let accepted = admit_signed("line", "msg_1", body, &env, NOW_MS).unwrap();
        assert_eq!(accepted.send_id, send_id("line", "acme", "msg_1"));
        assert_eq!(accepted.response.status, 202);
        assert_eq!(
            String::from_utf8(accepted.response.body).unwrap(),
            format!("{{\"send_id\":\"{}\"}}", accepted.send_id)
        );
        assert_eq!(accepted.delivery.webhook_id, accepted.send_id);
        let Target::Send(job) = &accepted.delivery.target else {
            panic!()
        };
        assert_eq!(job.text.as_deref(), Some("hello"));
        // The queued payload holds no credential.
        let message =
            crate::delivery::QueuedDelivery::first(accepted.delivery.clone()).to_message();
        assert!(!message.contains("tok-0123"), "{message}");
        let round_trip: crate::delivery::QueuedDelivery = serde_json::from_str(&message).unwrap();
        assert_eq!(round_trip.delivery, accepted.delivery);
    }

    #[test]
    fn unsigned_stale_and_forged_calls_are_401() {
        let env = env(&[("LINE_ACME_CHANNEL_ACCESS_TOKEN", "tok-0123456789abcdefghij")]);
        let body =
            br#"{"to":{"user":"U0123456789abcdef0123456789abcdef"},"message":{"text":"hi"}}"#;
        let route = SendRoute {
            channel: "line",
            account: "acme",
        };
        let run = |headers: HeaderMap| {
            admit(&route, &Method::POST, &headers, body, &env, NOW_MS)
                .unwrap_err()
                .response()
        };
        assert_eq!(run(HeaderMap::new()).status, 401);
        let stale = signed_headers("msg_1", body, NOW_MS / 1000 - 301, SECRET);
        let stale = run(stale);
        assert_eq!(
            (stale.status, stale.body),
            (401, br#"{"error":"stale_timestamp"}"#.to_vec())
        );
        let forged = signed_headers("msg_1", body, NOW_MS / 1000, "whsec_b3RoZXItc2VjcmV0");
        assert_eq!(run(forged).status, 401);
        // The account's own secret replaces the gateway's.
        let mut own = env.clone();
        own.insert(
            "LINE_ACME_BACKEND_SIGNING_SECRET".into(),
            "whsec_b3RoZXItc2VjcmV0".into(),
        );
        let headers = signed_headers("msg_1", body, NOW_MS / 1000, "whsec_b3RoZXItc2VjcmV0");
        assert!(admit(&route, &Method::POST, &headers, body, &own, NOW_MS).is_ok());
    }

    #[test]
    fn what_can_never_be_sent_is_422_after_the_signature() {
        let env = env(&[
            (
                "GENERIC_HOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            (
                "LINE_BARE_CHANNEL_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
        ]);
        let body = br#"{"to":{"user":"U1"},"message":{"text":"hi"}}"#;
        let refused = |channel: &'static str, account: &'static str| {
            let route = SendRoute { channel, account };
            let headers = signed_headers("m", body, NOW_MS / 1000, SECRET);
            admit(&route, &Method::POST, &headers, body, &env, NOW_MS)
                .unwrap_err()
                .response()
        };
        let none = refused("generic", "hook");
        assert_eq!(
            (none.status, none.body),
            (422, br#"{"error":"no_send_api"}"#.to_vec())
        );
        let bare = refused("line", "bare");
        assert_eq!(
            (bare.status, String::from_utf8(bare.body).unwrap()),
            (
                422,
                r#"{"error":"not_configured","field":"CHANNEL_ACCESS_TOKEN"}"#.to_owned()
            )
        );
        assert_eq!(refused("line", "missing").status, 404);
    }

    #[test]
    fn the_head_is_checked_before_the_body_is_read() {
        let env = env(&[(
            "LINE_ACME_CHANNEL_SECRET",
            "0123456789abcdef0123456789abcdef",
        )]);
        let route = SendRoute {
            channel: "line",
            account: "acme",
        };
        assert_eq!(
            admit_head(&route, &Method::POST, Some(100), &env),
            Ok(MAX_SEND_BODY_BYTES)
        );
        assert_eq!(
            admit_head(&route, &Method::GET, None, &env)
                .unwrap_err()
                .status(),
            405
        );
        assert_eq!(
            admit_head(&route, &Method::POST, Some(1 << 20), &env)
                .unwrap_err()
                .status(),
            413
        );
    }
}
