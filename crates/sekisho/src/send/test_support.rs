//! For the senders' unit tests: an account `acme` of every channel, signed send calls, and one attempt's
//! request and answer.

use std::collections::HashMap;

use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;

use super::admit::{admit, AcceptedSend, SendRoute};
use super::{sender, ProviderAnswer, ProviderRequest, SendError, SendJob, SendOutcome};
use crate::config::Account;
use crate::crypto::standard_webhooks::SigningKeys;
use crate::forward::Target;

pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub(crate) const NOW_MS: u64 = 1_700_000_000_000;

/// The bindings of account `acme` on every channel (inbound secrets only) plus `extra`.
pub(crate) fn env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("BACKEND_SIGNING_SECRET", SECRET),
        (
            "LINE_ACME_CHANNEL_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
        ("TELEGRAM_ACME_SECRET_TOKEN", "tg-secret"),
        (
            "SLACK_ACME_SIGNING_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
        (
            "CHATWORK_ACME_WEBHOOK_TOKEN",
            "c2VjcmV0LXdlYmhvb2stdG9rZW4=",
        ),
        ("WECHAT_ACME_TOKEN", "token"),
        ("WECHAT_ACME_APP_ID", "wx0123456789abcdef"),
        ("WECOM_ACME_TOKEN", "token"),
        ("LINEWORKS_ACME_BOT_SECRET", "bot-secret"),
        ("LINEWORKS_ACME_BOT_ID", "2000001"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in extra {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    env
}

pub(crate) fn signed_headers(id: &str, body: &[u8], timestamp_s: u64, secret: &str) -> HeaderMap {
    let keys = SigningKeys::parse(&[secret]).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_str(id).unwrap());
    headers.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&timestamp_s.to_string()).unwrap(),
    );
    headers.insert(
        "webhook-signature",
        HeaderValue::from_str(&keys.signature(id, timestamp_s, body)).unwrap(),
    );
    headers
}

/// A send to account `acme` of `channel`, signed with [`SECRET`] now.
pub(crate) fn admit_signed(
    channel: &'static str,
    webhook_id: &str,
    body: &[u8],
    env: &HashMap<String, String>,
    now_ms: u64,
) -> Result<AcceptedSend, SendError> {
    let route = SendRoute {
        channel,
        account: "acme",
    };
    let headers = signed_headers(webhook_id, body, now_ms / 1000, SECRET);
    admit(&route, &Method::POST, &headers, body, env, now_ms).map_err(|refusal| refusal.error)
}

/// Admits `body` (a JSON value) for `channel` and builds its first attempt's request with `token`.
pub(crate) fn first_request(
    channel: &'static str,
    body: Value,
    env: &HashMap<String, String>,
    token: Option<&str>,
) -> Result<(SendJob, ProviderRequest), SendError> {
    let accepted = admit_signed(channel, "msg_1", body.to_string().as_bytes(), env, NOW_MS)?;
    let Target::Send(job) = accepted.delivery.target.clone() else {
        panic!("not a send")
    };
    let sender = sender(channel).unwrap();
    let account = Account::new(channel, "acme", env);
    let request = sender.request(&job, &accepted.delivery.body, &account, token)?;
    Ok((job, request))
}

pub(crate) fn body_json(request: &ProviderRequest) -> Value {
    serde_json::from_str(request.body.as_deref().unwrap()).unwrap()
}

pub(crate) fn header<'r>(request: &'r ProviderRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// How `channel` reads an answer with `status`, `body` and a `Retry-After`.
pub(crate) fn classify(
    channel: &str,
    status: u16,
    body: &str,
    retry_after: Option<&str>,
) -> SendOutcome {
    sender(channel).unwrap().classify(&ProviderAnswer {
        status,
        retry_after,
        ratelimit_reset: None,
        body: body.as_bytes(),
        now_s: NOW_MS / 1000,
    })
}
