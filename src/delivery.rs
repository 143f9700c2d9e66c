//! Durable delivery decisions, free of IO: what to do after each attempt to reach the backend.
//!
//! The queue consumer asks [`decide`] after every attempt: delivered, retry after a delay, or dead-letter.
//! The attempt count travels in the queued message itself, so the schedule does not depend on the queue's
//! own retry counter.

use serde::{Deserialize, Serialize};

use crate::config::Bindings;
use crate::forward::Delivery;
use crate::Rejection;

/// A delivery as it sits in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedDelivery {
    pub delivery: Delivery,
    /// Attempts already made.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl QueuedDelivery {
    pub fn first(delivery: Delivery) -> Self {
        QueuedDelivery {
            delivery,
            attempts: 0,
            last_status: None,
            last_error: None,
        }
    }
}

/// Cloudflare Queues limits: one message at most 128 KB, one `sendBatch` at most 100 messages and 256 KB
/// (workerd's own check allows 288 KB but reports 256 KB as the limit: keep to the smaller). Messages are sent
/// as text, so their size is their UTF-8 length.
pub const QUEUE_MESSAGE_MAX_BYTES: usize = 128_000;
pub const QUEUE_BATCH_MAX_BYTES: usize = 256_000;
pub const QUEUE_BATCH_MAX_MESSAGES: usize = 100;
/// Room kept in every message for what a retry adds to it (attempt count, last status, last error).
pub const RETRY_BOOKKEEPING_BYTES: usize = 2_000;
/// The largest first queue message a delivery may need.
pub const QUEUED_DELIVERY_MAX_BYTES: usize = QUEUE_MESSAGE_MAX_BYTES - RETRY_BOOKKEEPING_BYTES;
/// `last_error` is cut to this many characters, so a retry never outgrows its message.
pub const LAST_ERROR_MAX_CHARS: usize = 500;

impl QueuedDelivery {
    /// The queue message for this delivery.
    pub fn to_message(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn set_last_error(&mut self, error: &str) {
        self.last_error = Some(error.chars().take(LAST_ERROR_MAX_CHARS).collect());
    }
}

/// Refuses a delivery whose first queue message would not leave room for retries: the provider gets a clear
/// 413 instead of an enqueue failure it would retry forever.
pub fn check_fits_queue(delivery: &Delivery) -> Result<(), Rejection> {
    let size = first_message_len(delivery);
    if size > QUEUED_DELIVERY_MAX_BYTES {
        return Err(Rejection::EventTooLarge {
            size,
            limit: QUEUED_DELIVERY_MAX_BYTES,
        });
    }
    Ok(())
}

/// The length of `QueuedDelivery::first(delivery).to_message()`, counted without copying the delivery or
/// building the message.
fn first_message_len(delivery: &Delivery) -> usize {
    /// The same JSON as a first [`QueuedDelivery`] (its optional fields are skipped when empty).
    #[derive(Serialize)]
    struct FirstAttempt<'a> {
        delivery: &'a Delivery,
        attempts: u32,
    }
    struct ByteCount(usize);
    impl std::io::Write for ByteCount {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = ByteCount(0);
    let first = FirstAttempt {
        delivery,
        attempts: 0,
    };
    match serde_json::to_writer(&mut count, &first) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Splits queue messages into `sendBatch` calls within the batch limits, keeping their order.
pub fn batches(messages: Vec<String>) -> Vec<Vec<String>> {
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let start_new = match batches.last() {
            None => true,
            Some(batch) => {
                batch.len() >= QUEUE_BATCH_MAX_MESSAGES
                    || bytes + message.len() > QUEUE_BATCH_MAX_BYTES
            }
        };
        if start_new {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += message.len();
        if let Some(batch) = batches.last_mut() {
            batch.push(message);
        }
    }
    batches
}

/// A delivery that will not be retried any more, kept for an admin to inspect and replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub webhook_id: String,
    pub delivery: Delivery,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub dead_at_ms: u64,
}

/// Exponential backoff with jitter: attempt n waits `min(max_delay, base * 2^(n-1))`, jittered into its upper
/// half. The defaults (20 attempts, 10 s doubling to a 6 h cap) keep retrying for 27 to 53 hours, depending on
/// jitter: never less than a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay_s: u32,
    pub max_delay_s: u32,
}

/// Cloudflare Queues accept a delay of at most 12 hours.
pub const QUEUE_MAX_DELAY_S: u32 = 12 * 60 * 60;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 20,
            base_delay_s: 10,
            max_delay_s: 6 * 60 * 60,
        }
    }
}

impl RetryPolicy {
    /// `DELIVERY_MAX_ATTEMPTS`, `DELIVERY_BASE_DELAY_S`, `DELIVERY_MAX_DELAY_S`; defaults otherwise.
    pub fn from_bindings(bindings: &dyn Bindings) -> Self {
        let default = RetryPolicy::default();
        let read = |name: &str, fallback: u32| {
            bindings
                .get(name)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(fallback)
        };
        RetryPolicy {
            max_attempts: read("DELIVERY_MAX_ATTEMPTS", default.max_attempts).max(1),
            base_delay_s: read("DELIVERY_BASE_DELAY_S", default.base_delay_s),
            max_delay_s: read("DELIVERY_MAX_DELAY_S", default.max_delay_s).min(QUEUE_MAX_DELAY_S),
        }
    }

    /// The delay before attempt `attempts + 1`, with `jitter` in `[0, 1)`.
    pub fn backoff_s(&self, attempts: u32, jitter: f64) -> u32 {
        let exponent = attempts.saturating_sub(1).min(31);
        let full = u64::from(self.base_delay_s)
            .saturating_mul(1u64 << exponent)
            .min(u64::from(self.max_delay_s));
        let half = full / 2;
        let jittered = half + ((full - half) as f64 * jitter.clamp(0.0, 1.0)) as u64;
        jittered.min(u64::from(self.max_delay_s)) as u32
    }

    /// Total time the schedule keeps retrying without jitter (the upper bound), in seconds.
    pub fn span_s(&self) -> u64 {
        (1..self.max_attempts)
            .map(|attempt| u64::from(self.backoff_s(attempt, 1.0)))
            .sum()
    }
}

/// What one attempt produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    NetworkError(String),
    /// The request could not be prepared: configuration missing or broken now (no signing secret, a
    /// notification template with an unknown placeholder) is retried on the same schedule, so fixing the
    /// binding is enough; a `permanent` problem (the notice would post into the room it came from) is
    /// dead-lettered at once.
    NotSent {
        error: String,
        permanent: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Delivered,
    Retry { delay_s: u32 },
    DeadLetter,
}

/// Decides after attempt number `attempts` (1-based, the attempt just made).
/// 2xx → delivered; 429, 5xx, network errors and unsendable (misconfigured) attempts → retry (honouring `Retry-After` seconds); any other status
/// → dead-letter at once (the backend refused the event itself).
pub fn decide(policy: &RetryPolicy, attempts: u32, outcome: &AttemptOutcome, jitter: f64) -> Next {
    let retry_after = match outcome {
        AttemptOutcome::Status { status, .. } if (200..300).contains(status) => {
            return Next::Delivered
        }
        AttemptOutcome::Status {
            status,
            retry_after,
        } if *status == 429 || (500..600).contains(status) => retry_after
            .as_deref()
            .and_then(|v| v.trim().parse::<u32>().ok()),
        AttemptOutcome::Status { .. } => return Next::DeadLetter,
        AttemptOutcome::NotSent {
            permanent: true, ..
        } => return Next::DeadLetter,
        AttemptOutcome::NetworkError(_) | AttemptOutcome::NotSent { .. } => None,
    };
    if attempts >= policy.max_attempts {
        return Next::DeadLetter;
    }
    let delay_s = retry_after
        .map(|s| s.min(policy.max_delay_s))
        .unwrap_or_else(|| policy.backoff_s(attempts, jitter));
    Next::Retry { delay_s }
}

/// The wait a destination asked for, in seconds: `Retry-After` (seconds), else Chatwork's
/// `X-RateLimit-Reset` (the unix time the limit resets) turned into seconds from `now_s`.
pub fn requested_wait(
    retry_after: Option<&str>,
    ratelimit_reset: Option<&str>,
    now_s: u64,
) -> Option<String> {
    retry_after.map(str::to_owned).or_else(|| {
        let reset: u64 = ratelimit_reset?.trim().parse().ok()?;
        Some(reset.saturating_sub(now_s).to_string())
    })
}

/// Retention of de-duplication keys: `DEDUP_RETENTION_HOURS`, default 72.
pub fn dedup_retention_ms(bindings: &dyn Bindings) -> u64 {
    let hours: u64 = bindings
        .get("DEDUP_RETENTION_HOURS")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(72);
    hours.saturating_mul(3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> AttemptOutcome {
        AttemptOutcome::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn success_client_errors_and_retryable_errors() {
        let policy = RetryPolicy::default();
        assert_eq!(decide(&policy, 1, &status(204), 0.5), Next::Delivered);
        assert_eq!(decide(&policy, 1, &status(400), 0.5), Next::DeadLetter);
        assert_eq!(decide(&policy, 1, &status(404), 0.5), Next::DeadLetter);
        assert!(matches!(
            decide(&policy, 1, &status(500), 0.5),
            Next::Retry { .. }
        ));
        assert!(matches!(
            decide(&policy, 1, &status(429), 0.5),
            Next::Retry { .. }
        ));
        assert!(matches!(
            decide(
                &policy,
                1,
                &AttemptOutcome::NetworkError("refused".into()),
                0.5
            ),
            Next::Retry { .. }
        ));
        assert_eq!(decide(&policy, 20, &status(503), 0.5), Next::DeadLetter);
    }

    #[test]
    fn unsendable_attempts_retry_unless_permanent() {
        let policy = RetryPolicy::default();
        let not_sent = |permanent| AttemptOutcome::NotSent {
            error: "binding `CHATWORK_API_TOKEN` is missing".into(),
            permanent,
        };
        assert!(matches!(
            decide(&policy, 1, &not_sent(false), 0.5),
            Next::Retry { .. }
        ));
        assert_eq!(
            decide(&policy, policy.max_attempts, &not_sent(false), 0.5),
            Next::DeadLetter
        );
        assert_eq!(decide(&policy, 1, &not_sent(true), 0.5), Next::DeadLetter);
    }

    #[test]
    fn retry_after_seconds_are_honoured_and_capped() {
        let policy = RetryPolicy::default();
        let outcome = AttemptOutcome::Status {
            status: 503,
            retry_after: Some("120".into()),
        };
        assert_eq!(
            decide(&policy, 1, &outcome, 0.0),
            Next::Retry { delay_s: 120 }
        );
        let outcome = AttemptOutcome::Status {
            status: 429,
            retry_after: Some("999999".into()),
        };
        assert_eq!(
            decide(&policy, 1, &outcome, 0.0),
            Next::Retry {
                delay_s: policy.max_delay_s
            }
        );
    }

    #[test]
    fn batches_respect_count_and_byte_limits_in_order() {
        let small: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
        let split = batches(small.clone());
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(split.concat(), small);

        let big: Vec<String> = (0..5).map(|i| format!("{i}").repeat(100_000)).collect();
        let split = batches(big.clone());
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let exact: Vec<String> = (0..3)
            .map(|_| "z".repeat(QUEUE_BATCH_MAX_BYTES / 2))
            .collect();
        assert_eq!(
            batches(exact).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1]
        );
        for batch in &split {
            assert!(batch.iter().map(String::len).sum::<usize>() <= QUEUE_BATCH_MAX_BYTES);
        }
        assert_eq!(split.concat(), big);
        assert!(batches(Vec::new()).is_empty());
    }

    #[test]
    fn the_counted_length_is_the_first_queue_message_length() {
        let delivery = Delivery {
            webhook_id: "evt_1".into(),
            url: "https://backend.example/events".into(),
            event_type: "message.received".into(),
            body: "{\"text\":\"こんにちは \\\"quoted\\\"\"}".into(),
            target: Default::default(),
        };
        assert_eq!(
            first_message_len(&delivery),
            QueuedDelivery::first(delivery.clone()).to_message().len()
        );
    }

    #[test]
    fn deliveries_too_large_for_a_queue_message_are_refused_with_their_size() {
        let delivery = |body_len: usize| Delivery {
            webhook_id: "evt_1".into(),
            url: "https://backend.example/events".into(),
            event_type: "message.received".into(),
            body: "\"".repeat(body_len),
            target: Default::default(),
        };
        assert!(check_fits_queue(&delivery(1000)).is_ok());
        // Every `"` is escaped once more inside the queue message: 70,000 of them need 140,000 bytes.
        match check_fits_queue(&delivery(70_000)) {
            Err(Rejection::EventTooLarge { size, limit }) => {
                assert!(size > 140_000);
                assert_eq!(limit, QUEUED_DELIVERY_MAX_BYTES);
            }
            other => panic!("{other:?}"),
        }
        let mut queued = QueuedDelivery::first(delivery(10));
        queued.set_last_error(&"e".repeat(10_000));
        assert_eq!(
            queued.last_error.as_deref().map(str::len),
            Some(LAST_ERROR_MAX_CHARS)
        );
    }

    #[test]
    fn chatwork_ratelimit_reset_becomes_a_wait_when_there_is_no_retry_after() {
        assert_eq!(
            requested_wait(Some("30"), Some("1700000100"), 1_700_000_000).as_deref(),
            Some("30")
        );
        assert_eq!(
            requested_wait(None, Some("1700000100"), 1_700_000_000).as_deref(),
            Some("100")
        );
        assert_eq!(
            requested_wait(None, Some("1600000000"), 1_700_000_000).as_deref(),
            Some("0")
        );
        assert_eq!(requested_wait(None, Some("soon"), 1_700_000_000), None);
        assert_eq!(requested_wait(None, None, 1_700_000_000), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff_s(1, 0.0), 5);
        assert_eq!(policy.backoff_s(1, 1.0), 10);
        assert_eq!(policy.backoff_s(2, 1.0), 20);
        assert_eq!(policy.backoff_s(5, 1.0), 160);
        assert_eq!(policy.backoff_s(30, 1.0), 6 * 3600);
        assert_eq!(policy.backoff_s(u32::MAX, 0.99), policy.backoff_s(40, 0.99));
    }

    #[test]
    fn default_schedule_covers_at_least_24_hours() {
        let policy = RetryPolicy::default();
        // The lower bound (all jitter 0) must still exceed a day.
        let lower: u64 = (1..policy.max_attempts)
            .map(|a| u64::from(policy.backoff_s(a, 0.0)))
            .sum();
        assert!(lower >= 24 * 3600, "lower bound {lower} s");
        assert!(policy.span_s() < 54 * 3600);
    }

    #[test]
    fn configuration_is_read_and_clamped() {
        let bindings = std::collections::HashMap::from([
            ("DELIVERY_MAX_ATTEMPTS".to_owned(), "3".to_owned()),
            ("DELIVERY_BASE_DELAY_S".to_owned(), "0".to_owned()),
            ("DELIVERY_MAX_DELAY_S".to_owned(), "99999999".to_owned()),
        ]);
        let policy = RetryPolicy::from_bindings(&bindings);
        assert_eq!(
            policy,
            RetryPolicy {
                max_attempts: 3,
                base_delay_s: 0,
                max_delay_s: QUEUE_MAX_DELAY_S
            }
        );
        assert_eq!(policy.backoff_s(2, 0.7), 0);
    }
}
