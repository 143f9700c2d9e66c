//! Synchronous replies: the answer a backend gives the user *in the provider's own HTTP response*, before the
//! provider's deadline (WeChat/WeCom 5 s, Slack and Discord 3 s).
//!
//! The request is verified and its event durably accepted exactly as without a reply; then the gateway POSTs
//! the same event, signed like every delivery and with the same `webhook-id`, to the reply URL and waits at most
//! the budget. A `200` carrying `{"reply":{"text":"…"}}` (or `{"reply":{"raw":…}}`, the channel's own format) is
//! rendered by the channel's [`RenderReply`]; anything else — a timeout, an error, another status, no reply —
//! leaves the provider with the answer it gets today. The event's delivery is queued with a delay
//! ([`ReplyCall::delivery_delay_s`]) so that it reaches the backend after the reply call, with the same
//! `webhook-id`: a backend that answered the reply call recognises the delivery and does not act twice.
//!
//! Everything here is pure: the edge performs the call and passes in its outcome, the time and the entropy.

mod text;

pub use text::{cdata, limit_chars, plain_text, slack_escaped};

use std::fmt::Debug;

use serde_json::Value;

use crate::channels::EdgeResponse;
use crate::config::{Account, Bindings};
use crate::forward::{Delivery, Outgoing, SigningKeys};
use crate::{ConfigProblem, Rejection};

pub const REPLY_URL_FIELD: &str = "REPLY_URL";
pub const REPLY_TIMEOUT_FIELD: &str = "REPLY_TIMEOUT_MS";
/// A backend's answer to a reply call is read up to this many bytes; a longer one is no reply.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Sent on every reply call (and only there): how many milliseconds the backend has left. A backend tells the
/// reply call from the delivery of the same event by this header.
pub const BUDGET_HEADER: &str = "sekisho-reply-budget-ms";
/// A call is not started with less than this left of the budget: it could not come back in time.
pub const MIN_CALL_MS: u64 = 50;

/// How long a channel's provider waits for its answer, and so how long a reply may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Used when neither `{CHANNEL}_{ACCOUNT}_REPLY_TIMEOUT_MS` nor `REPLY_TIMEOUT_MS` is set.
    pub default_ms: u32,
    /// The most a setting may ask for: the provider's deadline less a margin for the rest of the request.
    pub max_ms: u32,
}

/// What the edge passes to a renderer: the time, and 32 random bytes (WeChat's encryption needs a random
/// prefix and a nonce).
#[derive(Debug, Clone, Copy)]
pub struct RenderContext {
    pub now_ms: u64,
    pub entropy: [u8; 32],
}

/// A channel's way of carrying a reply in its response, built by the channel while it handles the request
/// (it knows the conversation, the user and, for WeChat, the keys that opened the message).
pub trait RenderReply: Debug + Send + Sync {
    fn budget(&self) -> Budget;

    /// The provider's response carrying `reply`; [`NoReply::Unrenderable`] when the reply does not fit the
    /// channel (the provider then gets the default answer).
    fn render(
        &self,
        reply: &BackendReply,
        context: &RenderContext,
    ) -> Result<EdgeResponse, NoReply>;
}

/// The reply a backend asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendReply {
    /// `{"reply":{"text":"…"}}`: shown as plain text; markup in it is neutralised by the channel.
    Text(String),
    /// `{"reply":{"raw":…}}`: the channel's own reply format (Slack blocks, a Telegram method, WeChat fields),
    /// checked by the channel; the conversation it goes to is always the request's own.
    Raw(Value),
}

/// Why the provider gets the default answer instead of a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoReply {
    #[error("less than the minimum of the budget was left for the call")]
    BudgetSpent,
    #[error("the reply URL did not answer within {after_ms} ms")]
    TimedOut { after_ms: u64 },
    #[error("the reply call failed: {0}")]
    CallFailed(String),
    #[error("the reply call could not be prepared: {0}")]
    NotPrepared(Rejection),
    #[error("the reply URL answered {0}")]
    Status(u16),
    #[error("the answer is over {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("the answer is not JSON")]
    NotJson,
    #[error("the answer has no reply")]
    Declined,
    #[error("the reply is not of the documented shape: {0}")]
    Invalid(&'static str),
    #[error("the reply cannot be rendered for this channel: {0}")]
    Unrenderable(&'static str),
}

impl NoReply {
    /// The short reason in the log line.
    pub fn reason(&self) -> &'static str {
        match self {
            NoReply::BudgetSpent => "budget_spent",
            NoReply::TimedOut { .. } => "timed_out",
            NoReply::CallFailed(_) => "call_failed",
            NoReply::NotPrepared(_) => "not_prepared",
            NoReply::Status(_) => "status",
            NoReply::TooLarge => "too_large",
            NoReply::NotJson => "not_json",
            NoReply::Declined => "declined",
            NoReply::Invalid(_) => "invalid",
            NoReply::Unrenderable(_) => "unrenderable",
        }
    }
}

/// What became of the reply call, as the edge saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Answered { status: u16, body: Vec<u8> },
    TimedOut { after_ms: u64 },
    Failed(String),
    TooLarge,
}

/// The backend's answer → the reply it asks for. Only `200` with a JSON object carrying `reply` counts.
pub fn read_answer(outcome: CallOutcome) -> Result<BackendReply, NoReply> {
    let body = match outcome {
        CallOutcome::Answered { status: 200, body } => body,
        CallOutcome::Answered { status, .. } => return Err(NoReply::Status(status)),
        CallOutcome::TimedOut { after_ms } => return Err(NoReply::TimedOut { after_ms }),
        CallOutcome::Failed(error) => return Err(NoReply::CallFailed(error)),
        CallOutcome::TooLarge => return Err(NoReply::TooLarge),
    };
    if body.len() > MAX_ANSWER_BYTES {
        return Err(NoReply::TooLarge);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(NoReply::Declined);
    }
    let answer: Value = serde_json::from_slice(&body).map_err(|_| NoReply::NotJson)?;
    let reply = match answer.get("reply") {
        None | Some(Value::Null) => return Err(NoReply::Declined),
        Some(Value::Object(reply)) => reply,
        Some(_) => return Err(NoReply::Invalid("`reply` must be an object")),
    };
    match (reply.get("text"), reply.get("raw")) {
        (Some(_), Some(_)) => Err(NoReply::Invalid("`reply` has both `text` and `raw`")),
        (Some(Value::String(text)), None) if text.trim().is_empty() => Err(NoReply::Declined),
        (Some(Value::String(text)), None) => Ok(BackendReply::Text(text.clone())),
        (Some(_), None) => Err(NoReply::Invalid("`reply.text` must be a string")),
        (None, Some(Value::Null)) | (None, None) => Err(NoReply::Declined),
        (None, Some(raw)) => Ok(BackendReply::Raw(raw.clone())),
    }
}

/// Where and how long: `{CHANNEL}_{ACCOUNT}_REPLY_URL` → `REPLY_URL`, and the same for `REPLY_TIMEOUT_MS`
/// (else the channel's default). No URL → no reply calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySettings {
    pub url: String,
    pub timeout_ms: u32,
}

impl ReplySettings {
    pub fn load(account: &Account<'_>, budget: Budget) -> Result<Option<ReplySettings>, Rejection> {
        let Some(url) = account.field_or_global(REPLY_URL_FIELD) else {
            return Ok(None);
        };
        let url_binding = || setting_binding(account, REPLY_URL_FIELD);
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(Rejection::misconfigured(url_binding()));
        }
        let timeout_ms = match account.field_or_global(REPLY_TIMEOUT_FIELD) {
            None => budget.default_ms,
            Some(value) => {
                let binding = setting_binding(account, REPLY_TIMEOUT_FIELD);
                let timeout_ms: u32 = value
                    .parse()
                    .ok()
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| Rejection::misconfigured(binding.clone()))?;
                if timeout_ms > budget.max_ms {
                    return Err(Rejection::misconfigured_because(
                        binding,
                        ConfigProblem::OverProviderDeadline {
                            max_ms: budget.max_ms,
                        },
                    ));
                }
                timeout_ms
            }
        };
        Ok(Some(ReplySettings { url, timeout_ms }))
    }
}

/// The binding a setting came from: the account's own when set, else the gateway-wide one.
fn setting_binding(account: &Account<'_>, field: &str) -> String {
    if account.field(field).is_some() {
        account.binding_name(field)
    } else {
        field.to_owned()
    }
}

/// A reply call to make once the request's event is durably accepted.
#[derive(Debug)]
pub struct ReplyCall {
    pub settings: ReplySettings,
    /// The event's backend delivery: its `webhook-id` and body are the reply call's.
    pub delivery: Delivery,
    pub renderer: Box<dyn RenderReply>,
}

impl ReplyCall {
    /// A call for a request that carries exactly one event with a backend delivery and whose channel can carry
    /// a reply, when a reply URL is configured. A request with several events has no single conversation to
    /// answer: it gets no call.
    pub fn plan(
        renderer: Option<Box<dyn RenderReply>>,
        account: &Account<'_>,
        event_count: usize,
        deliveries: &[Delivery],
    ) -> Result<Option<ReplyCall>, Rejection> {
        let Some(renderer) = renderer else {
            return Ok(None);
        };
        let Some(settings) = ReplySettings::load(account, renderer.budget())? else {
            return Ok(None);
        };
        let mut backend = deliveries.iter().filter(|d| d.target.is_backend());
        let (Some(delivery), None, 1) = (backend.next(), backend.next(), event_count) else {
            return Ok(None);
        };
        Ok(Some(ReplyCall {
            settings,
            delivery: delivery.clone(),
            renderer,
        }))
    }

    /// When the provider must have its answer at the latest, for a request received at `received_ms`.
    pub fn deadline_ms(&self, received_ms: u64) -> u64 {
        received_ms.saturating_add(u64::from(self.settings.timeout_ms))
    }

    /// How long the call may take when started at `now_ms`; `None` when too little is left to try.
    pub fn remaining_ms(&self, received_ms: u64, now_ms: u64) -> Option<u64> {
        Some(self.deadline_ms(received_ms).saturating_sub(now_ms)).filter(|&ms| ms >= MIN_CALL_MS)
    }

    /// The queued delivery of this event waits this long, so it reaches the backend after the reply call has
    /// ended (the budget, rounded up, plus a second).
    pub fn delivery_delay_s(&self) -> u32 {
        self.settings.timeout_ms.div_ceil(1000) + 1
    }

    /// The request: the event's body and `webhook-id`, signed with the backend signing secrets at `now_s`,
    /// plus the [`BUDGET_HEADER`].
    pub fn outgoing(
        &self,
        bindings: &dyn Bindings,
        now_s: u64,
        remaining_ms: u64,
    ) -> Result<Outgoing, Rejection> {
        let keys = SigningKeys::from_bindings(bindings)?;
        let mut headers: Vec<(&'static str, String)> =
            keys.headers(&self.delivery, now_s).into_iter().collect();
        headers.push((BUDGET_HEADER, remaining_ms.to_string()));
        Ok(Outgoing {
            url: self.settings.url.clone(),
            headers,
            body: self.delivery.body.clone(),
        })
    }

    /// The provider's response for the call's outcome, or why it gets the default answer.
    pub fn answer(
        &self,
        outcome: CallOutcome,
        context: &RenderContext,
    ) -> Result<EdgeResponse, NoReply> {
        let reply = read_answer(outcome)?;
        self.renderer.render(&reply, context)
    }
}

#[cfg(test)]
mod tests;
