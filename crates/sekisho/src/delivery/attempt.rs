//! One attempt's bookkeeping as a state machine: a queued delivery and what the attempt produced go in, the
//! next step comes out (delivered, retry with a delay and the updated message, or a dead letter).

use super::policy::{classify, requested_wait_s, RetryPolicy, StatusClass};
use super::queue::QueuedDelivery;
use super::DeadLetter;

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The destination answered. `wait_s` is the wait it asked for (see [`requested_wait_s`]); `location` is
    /// the `Location` of a redirect, which is never followed.
    Status {
        status: u16,
        wait_s: Option<u32>,
        location: Option<String>,
    },
    /// No answer within the policy's attempt timeout; the request was aborted.
    TimedOut { after_s: u32 },
    /// Connection refused, DNS, TLS: nothing was answered.
    NetworkError(String),
    /// The request could not be prepared: configuration missing or broken now (no signing secret, a
    /// notification template with an unknown placeholder) is retried on the same schedule, so fixing the
    /// binding is enough; a `permanent` problem (the notice would post into the room it came from) is
    /// dead-lettered at once.
    NotSent { error: String, permanent: bool },
}

/// The response headers that matter to the schedule, as the edge read them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseHeaders<'a> {
    pub retry_after: Option<&'a str>,
    pub ratelimit_reset: Option<&'a str>,
    pub location: Option<&'a str>,
}

impl ResponseHeaders<'_> {
    /// Whether an answer with `status` has headers worth reading: a wait asked for (`Retry-After`,
    /// `X-RateLimit-Reset`) only counts for a temporary failure and a `Location` only for a redirect, so a 2xx
    /// or a refusal is judged on its status alone (three fewer header reads on every delivered event).
    pub fn needed_for(status: u16) -> bool {
        matches!(
            classify(status),
            StatusClass::Temporary | StatusClass::Redirected
        )
    }
}

/// The longest `Location` kept in the bookkeeping.
const LOCATION_MAX_CHARS: usize = 300;

impl AttemptOutcome {
    /// The outcome of an answered attempt at `now_s`.
    pub fn answered(status: u16, headers: ResponseHeaders<'_>, now_s: u64) -> Self {
        let location = match classify(status) {
            StatusClass::Redirected => Some(
                headers
                    .location
                    .map(|l| l.chars().take(LOCATION_MAX_CHARS).collect())
                    .unwrap_or_default(),
            ),
            _ => None,
        };
        AttemptOutcome::Status {
            status,
            wait_s: requested_wait_s(headers.retry_after, headers.ratelimit_reset, now_s),
            location,
        }
    }

    /// A short description for the log and the dead letter's `last_error`.
    pub fn error(&self) -> Option<String> {
        match self {
            AttemptOutcome::Status {
                location: Some(location),
                ..
            } => Some(format!(
                "redirected to `{location}` (redirects are not followed)"
            )),
            AttemptOutcome::Status { .. } => None,
            AttemptOutcome::TimedOut { after_s } => {
                Some(format!("no answer within {after_s} s (attempt aborted)"))
            }
            AttemptOutcome::NetworkError(error) | AttemptOutcome::NotSent { error, .. } => {
                Some(error.clone())
            }
        }
    }
}

/// What the consumer must do after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Delivered,
    /// Send `message` to the queue again, delayed by `delay_s`.
    Retry {
        message: QueuedDelivery,
        delay_s: u32,
    },
    /// Keep it in the dead-letter store.
    DeadLetter(DeadLetter),
}

/// Records attempt number `queued.attempts + 1` and decides what follows. `jitter` is in `[0, 1)`.
pub fn record_attempt(
    mut queued: QueuedDelivery,
    outcome: &AttemptOutcome,
    policy: &RetryPolicy,
    now_ms: u64,
    jitter: f64,
) -> Step {
    queued.attempts = queued.attempts.saturating_add(1);
    match outcome {
        AttemptOutcome::Status { status, .. } => queued.last_status = Some(*status),
        _ => queued.last_status = None,
    }
    queued.last_error = None;
    if let Some(error) = outcome.error() {
        queued.set_last_error(&error);
    }
    let (retryable, wait_s) = match outcome {
        AttemptOutcome::Status { status, wait_s, .. } => match classify(*status) {
            StatusClass::Delivered => return Step::Delivered,
            StatusClass::Refused => (false, None),
            StatusClass::Redirected => (true, None),
            StatusClass::Temporary => (true, *wait_s),
        },
        AttemptOutcome::NotSent { permanent, .. } => (!permanent, None),
        AttemptOutcome::TimedOut { .. } | AttemptOutcome::NetworkError(_) => (true, None),
    };
    if !retryable || queued.attempts >= policy.max_attempts {
        return Step::DeadLetter(DeadLetter::from_queued(queued, now_ms));
    }
    let delay_s = policy.delay_s(queued.attempts, wait_s, jitter);
    Step::Retry {
        message: queued,
        delay_s,
    }
}

#[cfg(test)]
mod tests;
