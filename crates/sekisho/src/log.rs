//! Every structured log line, built in one place: one JSON object per line, with a level the edge maps to
//! `console.log`/`warn`/`error`. Lines name events, bindings and reasons — never a body or a secret.

use serde_json::{json, Value};

use crate::delivery::{DeadLetter, QueuedDelivery};
use crate::gateway::{Accepted, Refusal};
use crate::Rejection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub level: Level,
    fields: Value,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.fields)
    }
}

fn line(level: Level, msg: &str, mut fields: Value) -> Line {
    if let Value::Object(map) = &mut fields {
        map.insert("level".into(), level.as_str().into());
        map.insert("msg".into(), msg.into());
    }
    Line { level, fields }
}

/// A refused send (`POST /send/…`): reason, status, channel, account; `not_configured` names the field.
pub fn send_refused(refusal: &crate::send::SendRefusal) -> Line {
    let status = refusal.error.status();
    let level = if status >= 500 {
        Level::Error
    } else {
        Level::Warn
    };
    line(
        level,
        "send refused",
        json!({
            "reason": refusal.error.reason(),
            "status": status,
            "channel": refusal.channel,
            "account": refusal.account,
            "detail": refusal.error.to_string(),
        }),
    )
}

/// A send decided: sent (with the provider's message id) or given up (with the provider's code). The failure
/// message is the provider's own words about the request, never a credential.
pub fn send_decided(
    send_id: &str,
    channel: &str,
    account: &str,
    result: &crate::send::outcome::SendResult,
) -> Line {
    match result {
        crate::send::outcome::SendResult::Sent { message_id } => line(
            Level::Info,
            "message sent",
            json!({ "send_id": send_id, "channel": channel, "account": account, "message_id": message_id }),
        ),
        crate::send::outcome::SendResult::Failed(failure) => line(
            Level::Warn,
            "message send failed",
            json!({
                "send_id": send_id, "channel": channel, "account": account,
                "code": failure.code, "error": failure.message,
            }),
        ),
    }
}

/// A refused request: reason, status, channel, account and the operator-facing detail (which names a
/// misconfigured binding, never its value).
pub fn request_rejected(refusal: &Refusal) -> Line {
    let status = refusal.rejection.status();
    let level = if status.is_server_error() {
        Level::Error
    } else {
        Level::Warn
    };
    line(
        level,
        "request rejected",
        json!({
            "reason": refusal.rejection.reason(),
            "status": status.as_u16(),
            "channel": refusal.channel,
            "account": refusal.account,
            "detail": refusal.rejection.to_string(),
        }),
    )
}

/// How an accepted request's events were kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Queued,
    /// The queue refused; the events are in the de-duplication object's spill and drain by alarm.
    Spilled,
    /// No queue bound: forwarded once after the response.
    BestEffort,
}

/// An accepted request; `warn` with the configuration problems when there are any, or when spilled.
pub fn request_accepted(accepted: &Accepted, duplicates: Option<usize>, kept: Kept) -> Line {
    let level = if accepted.warnings.is_empty() && kept != Kept::Spilled {
        Level::Info
    } else {
        Level::Warn
    };
    let mut fields = serde_json::Map::new();
    fields.insert("channel".into(), json!(accepted.channel));
    fields.insert("account".into(), json!(accepted.account));
    let events: Vec<&str> = accepted
        .deliveries
        .iter()
        .map(|d| d.webhook_id.as_str())
        .collect();
    fields.insert("events".into(), json!(events));
    if let Some(duplicates) = duplicates {
        fields.insert("duplicates".into(), duplicates.into());
    }
    if kept == Kept::Spilled {
        fields.insert("spilled".into(), true.into());
    }
    if !accepted.warnings.is_empty() {
        let warnings = accepted
            .warnings
            .iter()
            .map(|w| json!({"reason": w.reason(), "detail": w.to_string()}))
            .collect();
        fields.insert("warnings".into(), warnings);
    }
    line(level, "request accepted", Value::Object(fields))
}

pub fn enqueue_failed(source: &str, error: &str, spilled: bool) -> Line {
    line(
        if spilled { Level::Warn } else { Level::Error },
        if spilled {
            "queue refused the events; kept in the spill store, drained by alarm"
        } else {
            "enqueue failed and the spill store did not take the events"
        },
        json!({"source": source, "error": error}),
    )
}

pub fn attempt_failed(queued: &QueuedDelivery, next: &str) -> Line {
    line(
        Level::Warn,
        "delivery attempt failed",
        json!({
            "event_id": queued.delivery.webhook_id,
            "event_type": queued.delivery.event_type,
            "attempts": queued.attempts,
            "status": queued.last_status,
            "error": queued.last_error,
            "next": next,
        }),
    )
}

pub fn dead_lettered(letter: &DeadLetter) -> Line {
    line(
        Level::Warn,
        "delivery dead-lettered",
        json!({
            "event_id": letter.webhook_id,
            "event_type": letter.delivery.event_type,
            "attempts": letter.attempts,
            "status": letter.last_status,
            "error": letter.last_error,
        }),
    )
}

pub fn step_not_recorded(event_id: &str, error: &str) -> Line {
    line(
        Level::Error,
        "could not requeue or dead-letter; the queue will retry (then its dead-letter queue)",
        json!({"event_id": event_id, "error": error}),
    )
}

pub fn unreadable_queue_message(queue_message_id: &str) -> Line {
    line(
        Level::Error,
        "unreadable queue message dropped",
        json!({"queue_message_id": queue_message_id}),
    )
}

pub fn best_effort_mode() -> Line {
    line(
        Level::Warn,
        "no EVENTS queue binding: best-effort mode, events are forwarded once after the response and lost if the backend is down",
        json!({}),
    )
}

pub fn forward_failed(event_id: &str, event_type: &str, error: &str) -> Line {
    line(
        Level::Error,
        "forward failed",
        json!({"event_id": event_id, "event_type": event_type, "error": error}),
    )
}

pub fn spill_drain_failed(source: &str, waiting: usize, error: &str) -> Line {
    line(
        Level::Warn,
        "spill drain failed; retrying by alarm",
        json!({"source": source, "waiting": waiting, "error": error}),
    )
}

pub fn no_dedup_store(source: &str) -> Line {
    line(
        Level::Warn,
        "no DEDUP binding: events are not de-duplicated, replay guards are not kept and nothing can be spilled",
        json!({"source": source}),
    )
}

/// A reply call's end: `replied` when the provider got the backend's reply, else the reason it got the default
/// answer (`info` when the backend had nothing to say, `warn` when the call went wrong). `elapsed_ms` counts from
/// the request's arrival.
pub fn reply_outcome(
    event_id: &str,
    outcome: Result<(), &crate::reply::NoReply>,
    elapsed_ms: u64,
) -> Line {
    match outcome {
        Ok(()) => line(
            Level::Info,
            "reply sent",
            json!({"event_id": event_id, "elapsed_ms": elapsed_ms}),
        ),
        Err(no_reply) => {
            let level = match no_reply {
                crate::reply::NoReply::Declined => Level::Info,
                _ => Level::Warn,
            };
            line(
                level,
                "no reply: default answer",
                json!({
                    "event_id": event_id,
                    "reason": no_reply.reason(),
                    "detail": no_reply.to_string(),
                    "elapsed_ms": elapsed_ms,
                }),
            )
        }
    }
}

pub fn alerts_without_links() -> Line {
    line(
        Level::Warn,
        "no PUBLIC_URL (an http(s) URL): alerts are sent without a link to the console",
        json!({}),
    )
}

pub fn no_attachment_bucket() -> Line {
    line(
        Level::Warn,
        "no ATTACHMENTS bucket binding: e-mail attachments are not stored, events list their names, types and sizes only",
        json!({}),
    )
}

/// Attachments were stored, but the event carries no links to them.
pub fn attachment_links_disabled(rejection: &Rejection, event_id: &str) -> Line {
    let binding = match rejection {
        Rejection::Misconfigured { binding, .. } => binding.as_str(),
        _ => "",
    };
    line(
        Level::Warn,
        "attachments stored without links: set the binding",
        json!({"binding": binding, "event_id": event_id}),
    )
}

pub fn attachments_stored(event_id: &str, stored: usize, already_stored: usize) -> Line {
    line(
        Level::Info,
        "attachments stored",
        json!({"event_id": event_id, "stored": stored, "already_stored": already_stored}),
    )
}

pub fn operation_failed(what: &str, error: &str) -> Line {
    line(Level::Error, what, json!({"error": error}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_level_and_message_and_no_body() {
        let refusal = Refusal {
            rejection: Rejection::misconfigured("LINE_ACME_CHANNEL_SECRET"),
            channel: Some("line"),
            account: Some("acme".into()),
        };
        let line = request_rejected(&refusal);
        assert_eq!(line.level, Level::Error);
        let value: Value = serde_json::from_str(&line.to_string()).unwrap();
        assert_eq!(value["msg"], "request rejected");
        assert_eq!(value["level"], "error");
        assert_eq!(value["reason"], "misconfigured");
        assert_eq!(value["status"], 500);
        assert!(value["detail"]
            .as_str()
            .unwrap()
            .contains("LINE_ACME_CHANNEL_SECRET"));

        let spilled = enqueue_failed("/line/acme", "queue down", true);
        assert_eq!(spilled.level, Level::Warn);
        assert_eq!(enqueue_failed("/line/acme", "x", false).level, Level::Error);
    }
}
