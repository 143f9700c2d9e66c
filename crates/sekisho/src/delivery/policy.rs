//! The retry schedule and what each answer of a destination means for it.

use crate::config::Bindings;

/// Exponential backoff with jitter: attempt n waits `min(max_delay, base * 2^(n-1))`, jittered into its upper
/// half. The defaults (20 attempts, 10 s doubling to a 6 h cap) keep retrying for 27 to 53 hours, depending on
/// jitter: never less than a day, whatever the destination answers (a `Retry-After` can lengthen a wait,
/// never shorten it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay_s: u32,
    pub max_delay_s: u32,
    /// How long one attempt may take before it counts as failed (`DELIVERY_TIMEOUT_S`).
    pub attempt_timeout_s: u32,
}

/// Cloudflare Queues accept a delay of at most 12 hours.
pub const QUEUE_MAX_DELAY_S: u32 = 12 * 60 * 60;
/// Default per-attempt timeout: long enough for a slow backend, short enough that a batch of attempts (run
/// concurrently) ends far inside the consumer's wall-clock limit.
pub const DEFAULT_ATTEMPT_TIMEOUT_S: u32 = 15;
/// The longest per-attempt timeout accepted: a consumer invocation may run 15 minutes of wall-clock time.
pub const MAX_ATTEMPT_TIMEOUT_S: u32 = 300;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 20,
            base_delay_s: 10,
            max_delay_s: 6 * 60 * 60,
            attempt_timeout_s: DEFAULT_ATTEMPT_TIMEOUT_S,
        }
    }
}

impl RetryPolicy {
    /// `DELIVERY_MAX_ATTEMPTS`, `DELIVERY_BASE_DELAY_S`, `DELIVERY_MAX_DELAY_S`, `DELIVERY_TIMEOUT_S`;
    /// defaults otherwise.
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
            attempt_timeout_s: read("DELIVERY_TIMEOUT_S", default.attempt_timeout_s)
                .clamp(1, MAX_ATTEMPT_TIMEOUT_S),
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

    /// The delay before the next attempt: the schedule's, or the destination's requested wait when that is
    /// longer (capped at the queue's maximum delay).
    pub fn delay_s(&self, attempts: u32, requested_s: Option<u32>, jitter: f64) -> u32 {
        let scheduled = self.backoff_s(attempts, jitter);
        match requested_s {
            Some(requested) => requested.min(QUEUE_MAX_DELAY_S).max(scheduled),
            None => scheduled,
        }
    }

    /// Total time the schedule keeps retrying without jitter (the upper bound), in seconds.
    pub fn span_s(&self) -> u64 {
        (1..self.max_attempts)
            .map(|attempt| u64::from(self.backoff_s(attempt, 1.0)))
            .sum()
    }
}

/// What an HTTP status from a destination means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    /// 2xx: the destination has the event.
    Delivered,
    /// 3xx: redirects are never followed (the body would be dropped or sent somewhere unconfigured), and a
    /// redirect is not a delivery. Retried on the schedule, with the `Location` recorded, so an admin sees where
    /// the backend points and fixes the URL; replayable after the horizon.
    Redirected,
    /// 408, 425, 429 and 5xx: the destination could not take it now.
    Temporary,
    /// Any other 4xx (or an unknown status): the destination refused this event; retrying will not help.
    Refused,
}

pub fn classify(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Delivered,
        300..=399 => StatusClass::Redirected,
        408 | 425 | 429 | 500..=599 => StatusClass::Temporary,
        _ => StatusClass::Refused,
    }
}

/// The wait a destination asked for, in seconds from `now_s`: `Retry-After` as delay-seconds or as an
/// HTTP-date (RFC 9110 §10.2.3), else Chatwork's `X-RateLimit-Reset` (the unix time the limit resets).
/// Unparseable values are ignored (the schedule applies).
pub fn requested_wait_s(
    retry_after: Option<&str>,
    ratelimit_reset: Option<&str>,
    now_s: u64,
) -> Option<u32> {
    let until = |target_s: u64| u32::try_from(target_s.saturating_sub(now_s)).unwrap_or(u32::MAX);
    if let Some(value) = retry_after.map(str::trim) {
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(u32::try_from(seconds).unwrap_or(u32::MAX));
        }
        if let Ok(date) = httpdate::parse_http_date(value) {
            let target_s = date
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Some(until(target_s));
        }
    }
    let reset: u64 = ratelimit_reset?.trim().parse().ok()?;
    Some(until(reset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(200), StatusClass::Delivered);
        assert_eq!(classify(204), StatusClass::Delivered);
        for redirect in [301, 302, 303, 307, 308] {
            assert_eq!(classify(redirect), StatusClass::Redirected);
        }
        for temporary in [408, 425, 429, 500, 502, 503, 599] {
            assert_eq!(classify(temporary), StatusClass::Temporary, "{temporary}");
        }
        for refused in [400, 401, 403, 404, 410, 413, 422, 100, 600, 0] {
            assert_eq!(classify(refused), StatusClass::Refused, "{refused}");
        }
    }

    #[test]
    fn retry_after_seconds_http_date_and_ratelimit_reset() {
        let now = 1_700_000_000;
        assert_eq!(requested_wait_s(Some("120"), None, now), Some(120));
        assert_eq!(requested_wait_s(Some(" 0 "), None, now), Some(0));
        // 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            requested_wait_s(Some("Tue, 14 Nov 2023 22:15:20 GMT"), None, now),
            Some(120)
        );
        assert_eq!(
            requested_wait_s(Some("Tue, 14 Nov 2023 22:00:00 GMT"), None, now),
            Some(0)
        );
        assert_eq!(requested_wait_s(None, Some("1700000100"), now), Some(100));
        assert_eq!(
            requested_wait_s(Some("30"), Some("1700000100"), now),
            Some(30)
        );
        assert_eq!(requested_wait_s(None, Some("1600000000"), now), Some(0));
        assert_eq!(requested_wait_s(Some("soon"), Some("later"), now), None);
        assert_eq!(
            requested_wait_s(Some("soon"), Some("1700000010"), now),
            Some(10)
        );
        assert_eq!(requested_wait_s(None, None, now), None);
        assert_eq!(
            requested_wait_s(Some("99999999999999"), None, now),
            Some(u32::MAX)
        );
    }

    #[test]
    fn a_requested_wait_lengthens_but_never_shortens_the_schedule() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_s(1, Some(0), 1.0), 10);
        assert_eq!(policy.delay_s(5, Some(0), 1.0), 160);
        assert_eq!(policy.delay_s(1, Some(120), 1.0), 120);
        assert_eq!(policy.delay_s(1, Some(u32::MAX), 1.0), QUEUE_MAX_DELAY_S);
        assert_eq!(policy.delay_s(3, None, 1.0), 40);
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
            ("DELIVERY_TIMEOUT_S".to_owned(), "0".to_owned()),
        ]);
        let policy = RetryPolicy::from_bindings(&bindings);
        assert_eq!(
            policy,
            RetryPolicy {
                max_attempts: 3,
                base_delay_s: 0,
                max_delay_s: QUEUE_MAX_DELAY_S,
                attempt_timeout_s: 1,
            }
        );
        assert_eq!(policy.backoff_s(2, 0.7), 0);
        let long = std::collections::HashMap::from([(
            "DELIVERY_TIMEOUT_S".to_owned(),
            "100000".to_owned(),
        )]);
        assert_eq!(
            RetryPolicy::from_bindings(&long).attempt_timeout_s,
            MAX_ATTEMPT_TIMEOUT_S
        );
        let empty = std::collections::HashMap::<String, String>::new();
        assert_eq!(RetryPolicy::from_bindings(&empty), RetryPolicy::default());
    }
}
