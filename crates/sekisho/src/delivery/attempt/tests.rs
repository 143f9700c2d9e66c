use super::*;
use crate::forward::Delivery;

fn queued() -> QueuedDelivery {
    QueuedDelivery::first(Delivery {
        webhook_id: "evt_0123".into(),
        url: "https://backend.example/events".into(),
        event_type: "message.received".into(),
        body: "{}".into(),
        target: Default::default(),
        origin: None,
    })
}

fn status(status: u16) -> AttemptOutcome {
    AttemptOutcome::answered(status, ResponseHeaders::default(), 1_700_000_000)
}

fn run(outcome: &AttemptOutcome, attempts_before: u32) -> Step {
    let mut message = queued();
    message.attempts = attempts_before;
    record_attempt(message, outcome, &RetryPolicy::default(), 5_000, 1.0)
}

#[test]
fn headers_are_read_only_for_the_answers_whose_schedule_uses_them() {
    for status in [200, 204, 299, 400, 404, 410, 422] {
        assert!(!ResponseHeaders::needed_for(status), "{status}");
    }
    for status in [301, 302, 307, 308, 408, 425, 429, 500, 503] {
        assert!(ResponseHeaders::needed_for(status), "{status}");
    }
    // What a 2xx or a refusal would have carried changes nothing: the step is the same without it.
    let carried = ResponseHeaders {
        retry_after: Some("120"),
        ratelimit_reset: None,
        location: Some("https://elsewhere.test/"),
    };
    for status in [204, 404] {
        let with = AttemptOutcome::answered(status, carried, 1_700_000_000);
        let without = AttemptOutcome::answered(status, ResponseHeaders::default(), 1_700_000_000);
        assert_eq!(run(&with, 0), run(&without, 0), "{status}");
    }
}

#[test]
fn a_2xx_is_delivered() {
    assert_eq!(run(&status(200), 0), Step::Delivered);
    assert_eq!(run(&status(204), 7), Step::Delivered);
}

#[test]
fn a_redirect_is_not_a_delivery_and_records_its_location() {
    for code in [301, 302, 303, 307, 308] {
        let outcome = AttemptOutcome::answered(
            code,
            ResponseHeaders {
                location: Some("https://elsewhere.example/login"),
                ..Default::default()
            },
            0,
        );
        match run(&outcome, 0) {
            Step::Retry { message, delay_s } => {
                assert_eq!(delay_s, 10);
                assert_eq!(message.attempts, 1);
                assert_eq!(message.last_status, Some(code));
                assert!(message
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("https://elsewhere.example/login")));
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    let Step::DeadLetter(letter) = run(&status(302), 19) else {
        panic!("the last redirected attempt is dead-lettered");
    };
    assert_eq!(letter.attempts, 20);
    assert_eq!(letter.last_status, Some(302));
}

#[test]
fn refusals_are_dead_lettered_at_once_with_their_status() {
    for code in [400, 401, 403, 404, 410, 422] {
        let Step::DeadLetter(letter) = run(&status(code), 0) else {
            panic!("{code}");
        };
        assert_eq!(letter.attempts, 1);
        assert_eq!(letter.last_status, Some(code));
        assert_eq!(letter.webhook_id, "evt_0123");
        assert_eq!(letter.dead_at_ms, 5_000);
    }
}

#[test]
fn timeouts_408_425_429_and_5xx_are_retried() {
    for outcome in [
        status(408),
        status(425),
        status(429),
        status(500),
        status(503),
        AttemptOutcome::TimedOut { after_s: 15 },
        AttemptOutcome::NetworkError("connection refused".into()),
    ] {
        assert!(
            matches!(run(&outcome, 0), Step::Retry { delay_s: 10, .. }),
            "{outcome:?}"
        );
    }
    let Step::Retry { message, .. } = run(&AttemptOutcome::TimedOut { after_s: 15 }, 0) else {
        panic!()
    };
    assert_eq!(message.last_status, None);
    assert_eq!(
        message.last_error.as_deref(),
        Some("no answer within 15 s (attempt aborted)")
    );
}

#[test]
fn retry_after_zero_cannot_shorten_the_horizon() {
    let policy = RetryPolicy::default();
    let always_zero = AttemptOutcome::Status {
        status: 503,
        wait_s: Some(0),
        location: None,
    };
    let mut message = queued();
    let mut waited_s: u64 = 0;
    loop {
        match record_attempt(message, &always_zero, &policy, 0, 0.0) {
            Step::Retry {
                message: next,
                delay_s,
            } => {
                waited_s += u64::from(delay_s);
                message = next;
            }
            Step::DeadLetter(letter) => {
                assert_eq!(letter.attempts, policy.max_attempts);
                break;
            }
            Step::Delivered => panic!("a 503 is not delivered"),
        }
    }
    assert!(waited_s >= 24 * 3600, "retried for only {waited_s} s");
}

#[test]
fn a_longer_retry_after_is_honoured_as_seconds_or_http_date() {
    let outcome = AttemptOutcome::answered(
        429,
        ResponseHeaders {
            retry_after: Some("Tue, 14 Nov 2023 22:23:20 GMT"),
            ..Default::default()
        },
        1_700_000_000,
    );
    assert!(matches!(run(&outcome, 0), Step::Retry { delay_s: 600, .. }));
    let outcome = AttemptOutcome::answered(
        503,
        ResponseHeaders {
            retry_after: Some("120"),
            ..Default::default()
        },
        0,
    );
    assert!(matches!(run(&outcome, 0), Step::Retry { delay_s: 120, .. }));
}

#[test]
fn unsendable_attempts_retry_unless_permanent() {
    let not_sent = |permanent| AttemptOutcome::NotSent {
        error: "binding `CHATWORK_API_TOKEN` is missing".into(),
        permanent,
    };
    assert!(matches!(run(&not_sent(false), 0), Step::Retry { .. }));
    assert!(matches!(run(&not_sent(false), 19), Step::DeadLetter(_)));
    let Step::DeadLetter(letter) = run(&not_sent(true), 0) else {
        panic!()
    };
    assert_eq!(
        letter.last_error.as_deref(),
        Some("binding `CHATWORK_API_TOKEN` is missing")
    );
}

#[test]
fn the_last_status_and_error_describe_the_last_attempt_only() {
    let Step::Retry { message, .. } = run(&AttemptOutcome::NetworkError("refused".into()), 0)
    else {
        panic!()
    };
    let Step::Retry { message, .. } =
        record_attempt(message, &status(500), &RetryPolicy::default(), 0, 0.5)
    else {
        panic!()
    };
    assert_eq!(message.attempts, 2);
    assert_eq!(message.last_status, Some(500));
    assert_eq!(message.last_error, None);
}
