//! What an attempt's answer means for the queue (the existing delivery policy: [`record_attempt`]), and the
//! event the backend receives once the send is decided: `message.sent` with the provider's message id, or
//! `message.send_failed` with its error — in the usual envelope, signed like every delivery.
//!
//! [`record_attempt`]: crate::delivery::record_attempt

use serde_json::Value;

use super::{Failure, SendJob, SendOutcome};
use crate::config::{Account, Bindings};
use crate::delivery::{AttemptOutcome, Step};
use crate::envelope::{Event, EventData, EventParts, Message, Raw, SendFailure, Verification};
use crate::forward::{Delivery, BACKEND_URL_FIELD};

pub const SENT_TYPE: &str = "message.sent";
pub const FAILED_TYPE: &str = "message.send_failed";
/// The `data.verification.scheme` of an outcome event: the send was authenticated by its Standard Webhooks
/// signature.
const SCHEME: &str = "standard-webhooks";
/// The provider's answer kept in `data.raw` is cut at this size (a JSON string then).
const MAX_RAW_ANSWER_BYTES: usize = 16 * 1024;

/// The attempt as the retry schedule sees it: sent → delivered; rate limited → a 429 with the provider's wait;
/// temporary → retried; permanent → given up at once.
pub fn attempt_outcome(outcome: &SendOutcome, http_status: u16) -> AttemptOutcome {
    let described = |failure: &Failure| {
        format!(
            "provider answered {http_status}: {} {}",
            failure.code, failure.message
        )
    };
    match outcome {
        SendOutcome::Sent { .. } => AttemptOutcome::Status {
            status: 200,
            wait_s: None,
            location: None,
        },
        SendOutcome::RateLimited { wait_s, .. } => AttemptOutcome::Status {
            status: 429,
            wait_s: *wait_s,
            location: None,
        },
        SendOutcome::Temporary(failure) | SendOutcome::TokenRejected(failure) => {
            AttemptOutcome::NotSent {
                error: described(failure),
                permanent: false,
            }
        }
        SendOutcome::Permanent(failure) => AttemptOutcome::NotSent {
            error: described(failure),
            permanent: true,
        },
    }
}

/// The failure an attempt reports when the send is given up after it.
pub fn failure_of(outcome: &SendOutcome, attempt: &AttemptOutcome) -> Failure {
    match outcome {
        SendOutcome::Sent { .. } => Failure::new("unknown", attempt.error().unwrap_or_default()),
        SendOutcome::RateLimited { failure, .. }
        | SendOutcome::Temporary(failure)
        | SendOutcome::Permanent(failure)
        | SendOutcome::TokenRejected(failure) => failure.clone(),
    }
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    Sent { message_id: Option<String> },
    Failed(Failure),
}

impl SendResult {
    /// The result of the step the delivery policy took, `None` while the send is retried. `sent` is the
    /// attempt's provider message id, `failure` why the attempt failed.
    pub fn of_step(
        step: &Step,
        message_id: Option<String>,
        failure: Failure,
    ) -> Option<SendResult> {
        match step {
            Step::Delivered => Some(SendResult::Sent { message_id }),
            Step::DeadLetter(_) => Some(SendResult::Failed(failure)),
            Step::Retry { .. } => None,
        }
    }
}

/// The outcome event of `job` on `channel`/`account` at `now_ms`; `answer` is the provider's last answer,
/// kept in `data.raw` (its JSON, else `null`).
pub fn event(
    job: &SendJob,
    channel: &str,
    account: &str,
    result: &SendResult,
    answer: Option<&[u8]>,
    now_ms: u64,
) -> Event {
    let (event_type, message_id, error) = match result {
        SendResult::Sent { message_id } => (SENT_TYPE, message_id.clone(), None),
        SendResult::Failed(failure) => (
            FAILED_TYPE,
            None,
            Some(SendFailure {
                code: failure.code.clone(),
                message: failure.message.clone(),
            }),
        ),
    };
    let raw = answer
        .filter(|body| body.len() <= MAX_RAW_ANSWER_BYTES)
        .and_then(|body| crate::json::parse_slice(body).ok())
        .unwrap_or(Value::Null);
    let data = EventData {
        message: Some(Message {
            id: message_id,
            kind: job.message_kind.clone(),
            text: job.text.clone(),
            ..Message::default()
        }),
        send_id: Some(job.send_id.clone()),
        recipient: Some(job.to.envelope()),
        in_reply_to: job.in_reply_to.clone(),
        error,
        ..EventData::new(
            "send",
            Verification {
                scheme: SCHEME.to_owned(),
                key_index: 0,
            },
            Raw::rendered(&raw),
        )
    };
    // One outcome event per send and result: a replayed dead send that then succeeds reports once more.
    let dedupe_key = format!("{}:{event_type}", job.send_id);
    Event::new(
        channel,
        account,
        EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms: now_ms,
            data,
        },
    )
}

/// The outcome event's delivery to the account's backend (`BACKEND_URL`, as configured at each attempt).
pub fn delivery(event: &Event, bindings: &dyn Bindings) -> Delivery {
    let channel = crate::channels::find(&event.channel).map_or("", |c| c.name());
    let url = Account::new(channel, &event.account, bindings)
        .field_or_global(BACKEND_URL_FIELD)
        .unwrap_or_default();
    Delivery::for_event(event, &url)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{env, NOW_MS};
    use super::super::Recipient;
    use super::*;
    use crate::delivery::{record_attempt, QueuedDelivery, RetryPolicy};

    fn job() -> SendJob {
        SendJob {
            send_id: super::super::send_id("line", "acme", "msg_1"),
            to: Recipient::User("U0123456789abcdef0123456789abcdef".into()),
            message_kind: "text".into(),
            text: Some("hello".into()),
            in_reply_to: Some("evt_0123".into()),
        }
    }

    fn step(outcome: &SendOutcome, status: u16, attempts_before: u32) -> Step {
        let mut queued = QueuedDelivery::first(Delivery {
            webhook_id: job().send_id,
            url: "/send/line/acme".into(),
            event_type: "message.send".into(),
            body: "{}".into(),
            target: crate::forward::Target::Send(job()),
            origin: None,
        });
        queued.attempts = attempts_before;
        record_attempt(
            queued,
            &attempt_outcome(outcome, status),
            &RetryPolicy::default(),
            0,
            1.0,
        )
    }

    #[test]
    fn each_kind_of_answer_takes_its_step() {
        let failure = Failure::new("x", "y");
        assert_eq!(
            step(&SendOutcome::Sent { message_id: None }, 200, 0),
            Step::Delivered
        );
        assert!(matches!(
            step(
                &SendOutcome::RateLimited {
                    wait_s: Some(90),
                    failure: failure.clone()
                },
                429,
                0
            ),
            Step::Retry { delay_s: 90, .. }
        ));
        assert!(matches!(
            step(&SendOutcome::Temporary(failure.clone()), 200, 0),
            Step::Retry { .. }
        ));
        assert!(matches!(
            step(&SendOutcome::TokenRejected(failure.clone()), 200, 0),
            Step::Retry { .. }
        ));
        let Step::DeadLetter(letter) = step(
            &SendOutcome::Permanent(Failure::new("45015", "out of time")),
            200,
            0,
        ) else {
            panic!()
        };
        assert_eq!(letter.attempts, 1);
        assert_eq!(
            letter.last_error.as_deref(),
            Some("provider answered 200: 45015 out of time")
        );
        // A temporary failure on the last attempt is given up too.
        assert!(matches!(
            step(&SendOutcome::Temporary(failure), 503, 19),
            Step::DeadLetter(_)
        ));
    }

    #[test]
    fn outcome_events_are_envelopes_with_the_send_id() {
        let sent = event(
            &job(),
            "line",
            "acme",
            &SendResult::Sent {
                message_id: Some("4612".into()),
            },
            Some(br#"{"sentMessages":[{"id":"4612"}]}"#),
            NOW_MS,
        );
        assert_eq!(sent.event_type, "message.sent");
        assert_eq!(sent.source, "/line/acme");
        assert_eq!(sent.data.send_id.as_deref(), Some(job().send_id.as_str()));
        assert_eq!(
            sent.data.message.as_ref().unwrap().id.as_deref(),
            Some("4612")
        );
        assert_eq!(sent.data.in_reply_to.as_deref(), Some("evt_0123"));
        assert_eq!(sent.data.raw.value()["sentMessages"][0]["id"], "4612");
        let failed = event(
            &job(),
            "line",
            "acme",
            &SendResult::Failed(Failure::new("400", "bad")),
            Some(b"<html>"),
            NOW_MS,
        );
        assert_eq!(failed.event_type, "message.send_failed");
        assert_eq!(
            failed.data.error,
            Some(SendFailure {
                code: "400".into(),
                message: "bad".into()
            })
        );
        assert_eq!(failed.data.raw.get(), "null");
        assert_ne!(sent.id, failed.id);
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(
            json["data"]["recipient"],
            serde_json::json!({"user":"U0123456789abcdef0123456789abcdef"})
        );

        let env = env(&[("BACKEND_URL", "https://backend.test/events")]);
        let delivery = delivery(&sent, &env);
        assert!(delivery.target.is_backend());
        assert_eq!(delivery.webhook_id, sent.id);
        assert_eq!(delivery.url, "https://backend.test/events");
    }
}
