use std::collections::HashMap;

use super::accounts::configured;
use super::rotation::Advice;
use super::view::{accounts, series, Stored};
use super::window::{Resolution, Window};
use super::*;

const T: u64 = 1_764_633_600_000; // 2025-12-02T00:00:00Z
const MIN: u64 = 60_000;

fn obs(account: &str, at_ms: u64, observed: Observed) -> Observation {
    Observation {
        channel: "line".into(),
        account: account.into(),
        at_ms,
        observed,
    }
}

fn accepted(ack_ms: u64, key: Option<KeyMatch>) -> Observed {
    Observed::Accepted {
        events: 2,
        duplicates: 1,
        ack_ms,
        key,
    }
}

fn rejected(reason: &str) -> Observed {
    Observed::Rejected {
        reason: reason.into(),
        ack_ms: 1,
    }
}

/// What the store does with the rows: sum by primary key (the `Metrics` object's upsert).
fn store(writes: &[Writes]) -> (Vec<CounterRow>, Vec<KeyRow>, Vec<SeenRow>) {
    let mut counters: Vec<CounterRow> = Vec::new();
    let mut keys: Vec<KeyRow> = Vec::new();
    let mut seen: Vec<SeenRow> = Vec::new();
    for w in writes {
        for row in &w.counters {
            match counters.iter_mut().find(|r| {
                (r.resolution, r.bucket_ms, &r.channel, &r.account, &r.metric)
                    == (
                        row.resolution,
                        row.bucket_ms,
                        &row.channel,
                        &row.account,
                        &row.metric,
                    )
            }) {
                Some(r) => r.value += row.value,
                None => counters.push(row.clone()),
            }
        }
        for row in &w.keys {
            match keys.iter_mut().find(|r| r.fingerprint == row.fingerprint) {
                Some(r) => {
                    r.matched += row.matched;
                    r.last_matched_ms = r.last_matched_ms.max(row.last_matched_ms);
                }
                None => keys.push(row.clone()),
            }
        }
        for row in &w.seen {
            seen.retain(|r| (&r.channel, &r.account) != (&row.channel, &row.account));
            seen.push(row.clone());
        }
    }
    (counters, keys, seen)
}

#[test]
fn metric_keys_round_trip_and_unknown_keys_are_ignored() {
    for metric in [
        Metric::Requests,
        Metric::Events,
        Metric::Duplicates,
        Metric::Rejected("invalid_signature".into()),
        Metric::Delivery(DeliveryOutcome::DeadLettered),
        Metric::Send(SendCount::Queued),
        Metric::Send(SendCount::Failed),
        Metric::AckLatency(3),
        Metric::BackendLatency(14),
    ] {
        assert_eq!(
            Metric::parse(&metric.key()),
            Some(metric.clone()),
            "{metric:?}"
        );
    }
    for key in [
        "",
        "requests.1",
        "ack.15",
        "ack.x",
        "delivery.lost",
        "send.lost",
        "send",
        "rejected",
        "other",
    ] {
        assert_eq!(Metric::parse(key), None, "{key}");
    }
}

#[test]
fn a_batch_writes_each_counter_once_per_resolution() {
    let writes = plan_writes(&[
        obs("acme", T + MIN, accepted(3, None)),
        obs("acme", T + 2 * MIN, accepted(4, None)),
        obs("acme", T + 2 * MIN, rejected("invalid_signature")),
    ]);
    let requests: Vec<_> = writes
        .counters
        .iter()
        .filter(|r| r.metric == "requests")
        .map(|r| (r.resolution, r.bucket_ms, r.value))
        .collect();
    assert_eq!(
        requests,
        vec![(Resolution::FiveMinutes, T, 2), (Resolution::Hour, T, 2)]
    );
    let ack: Vec<_> = writes
        .counters
        .iter()
        .filter(|r| r.metric == "ack.2" && r.resolution == Resolution::Hour)
        .map(|r| r.value)
        .collect();
    assert_eq!(ack, vec![2]);
    assert_eq!(writes.rejections.len(), 1);
    assert_eq!(writes.rejections[0].reason, "invalid_signature");
    assert_eq!(writes.seen.len(), 1, "one last-event time per account");
}

#[test]
fn sends_are_counted_per_account_apart_from_events_and_backend_health() {
    let now = T + 10 * MIN;
    let send = |account: &str, count| obs(account, now - MIN, Observed::Send { count });
    let writes = plan_writes(&[
        send("acme", SendCount::Queued),
        send("acme", SendCount::Queued),
        send("acme", SendCount::Sent),
        send("acme", SendCount::Retried),
        send("acme", SendCount::Failed),
        send("other", SendCount::Queued),
    ]);
    assert!(
        writes.failing.is_empty(),
        "a send says nothing of the backend"
    );
    assert!(writes.seen.is_empty(), "nor of the last inbound event");
    let (counters, _, _) = store(&[writes]);
    let totals = series(&counters, "line", "acme", Window::Hour, now).totals;
    assert_eq!(
        (
            totals.sends_queued,
            totals.sends_sent,
            totals.sends_retried,
            totals.sends_failed
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(
        (totals.requests, totals.events, totals.delivered),
        (0, 0, 0)
    );
    let json = serde_json::to_value(&totals).unwrap();
    assert_eq!(json["sends_queued"], 2);
    assert_eq!(json["sends_failed"], 1);
    let other = series(&counters, "line", "other", Window::Day, now).totals;
    assert_eq!((other.sends_queued, other.sends_sent), (1, 0));
}

#[test]
fn series_and_totals_sum_the_buckets_of_the_window_only() {
    let now = T + 3 * 3_600_000 + 10 * MIN;
    let writes = plan_writes(&[
        obs("acme", now - 2 * MIN, accepted(3, None)),
        obs("acme", now - 20 * MIN, accepted(150, None)),
        obs("acme", now - 20 * MIN, rejected("invalid_signature")),
        obs("acme", now - 21 * MIN, rejected("stale_timestamp")),
        obs("acme", now - 2 * 3_600_000, accepted(3, None)),
        obs("other", now - 2 * MIN, accepted(3, None)),
        obs(
            "acme",
            now - MIN,
            Observed::Delivery {
                outcome: DeliveryOutcome::Delivered,
                latency_ms: Some(40),
            },
        ),
        obs(
            "acme",
            now - MIN,
            Observed::Delivery {
                outcome: DeliveryOutcome::Retried,
                latency_ms: None,
            },
        ),
    ]);
    let (counters, _, _) = store(&[writes]);
    let hour = series(&counters, "line", "acme", Window::Hour, now);
    assert_eq!(hour.points.len(), 12);
    assert_eq!(hour.bucket_seconds, 300);
    assert_eq!(hour.totals.requests, 2);
    assert_eq!(hour.totals.events, 4);
    assert_eq!(hour.totals.duplicates, 2);
    assert_eq!(hour.totals.rejected, 2);
    assert_eq!(
        hour.totals.rejected_by_reason.get("invalid_signature"),
        Some(&1)
    );
    assert_eq!((hour.totals.delivered, hour.totals.retried), (1, 1));
    assert_eq!(hour.totals.ack_p50_ms, Some(5));
    assert_eq!(hour.totals.ack_p99_ms, Some(200));
    assert_eq!(hour.totals.backend_p99_ms, Some(50));
    let last = hour.points.last().unwrap();
    assert_eq!(last.start, "2025-12-02T03:10:00.000Z");
    assert_eq!(last.totals.requests, 0);
    assert_eq!(hour.points[10].start, "2025-12-02T03:05:00.000Z");
    assert_eq!(hour.points[10].totals.requests, 1);
    assert_eq!(hour.points[10].totals.delivered, 1);
    let day = series(&counters, "line", "acme", Window::Day, now);
    assert_eq!(day.points.len(), 24);
    assert_eq!(day.totals.requests, 3);
    let per_hour: Vec<u64> = day.points[20..].iter().map(|p| p.totals.requests).collect();
    assert_eq!(per_hour, vec![0, 1, 1, 1]);
}

#[test]
fn the_accounts_table_lists_every_configured_account_with_rotation_status() {
    let bindings: HashMap<String, String> = HashMap::from([
        (
            "LINE_ACME_JP_CHANNEL_SECRET".to_owned(),
            "new-secret,old-secret".to_owned(),
        ),
        ("TELEGRAM_BOT_SECRET_TOKEN".to_owned(), "t0".to_owned()),
    ]);
    let now = T + 10 * 24 * 3_600_000;
    let old = key_match("line", "acme-jp", 1, &bindings).unwrap();
    let new = key_match("line", "acme-jp", 0, &bindings).unwrap();
    assert_eq!(old.index, 1);
    assert_ne!(old.fingerprint, new.fingerprint);
    assert!(!old.fingerprint.contains("old-secret"));
    assert_eq!(key_match("line", "acme-jp", 2, &bindings), None);
    let mut observations = vec![obs(
        "acme-jp",
        now - 4 * 24 * 3_600_000,
        accepted(2, Some(old)),
    )];
    for hours in [3, 2, 1] {
        observations.push(obs(
            "acme-jp",
            now - hours * 3_600_000,
            accepted(2, Some(new.clone())),
        ));
    }
    let (counters, keys, seen) = store(&[plan_writes(&observations)]);
    let table = accounts(
        &configured(&bindings),
        &Stored {
            counters: &counters,
            keys: &keys,
            seen: &seen,
        },
        &bindings,
        Window::Day,
        now,
    );
    assert_eq!(table.len(), 2);
    let line = &table[0];
    assert_eq!((line.channel, line.account.as_str()), ("line", "acme-jp"));
    assert_eq!(line.totals.requests, 3, "the old request is outside 24h");
    assert_eq!(line.sparkline.len(), 24);
    assert_eq!(line.sparkline.iter().sum::<u64>(), 3);
    assert_eq!(
        line.last_event_at.as_deref(),
        Some("2025-12-11T23:00:00.000Z")
    );
    assert_eq!(
        line.secret_binding.as_deref(),
        Some("LINE_ACME_JP_CHANNEL_SECRET")
    );
    assert_eq!(line.keys.len(), 2);
    assert_eq!((line.keys[0].matched, line.keys[1].matched), (3, 1));
    assert_eq!(line.keys[1].advice, Advice::Removable { idle_days: 4 });
    let json = serde_json::to_string(&table).unwrap();
    assert!(!json.contains("new-secret") && !json.contains("old-secret"));
    let telegram = &table[1];
    assert_eq!(telegram.totals.requests, 0);
    assert_eq!(telegram.last_event_at, None);
    assert_eq!(telegram.keys.len(), 1);
    assert_eq!(telegram.keys[0].advice, Advice::Current);
}

#[test]
fn the_key_index_is_read_from_the_event_envelope() {
    let body =
        r#"{"id":"evt_1","data":{"verification":{"scheme":"line-hmac-sha256","key_index":1}}}"#;
    assert_eq!(key_index_of_event(body), Some(1));
    assert_eq!(key_index_of_event(r#"{"data":{}}"#), None);
    assert_eq!(key_index_of_event("not json"), None);
}

#[test]
fn each_step_of_the_delivery_machine_counts_as_its_outcome() {
    use crate::delivery::{record_attempt, AttemptOutcome, QueuedDelivery, RetryPolicy};
    let queued = |attempts| {
        let mut message = QueuedDelivery::first(crate::forward::Delivery {
            webhook_id: "evt_0123".into(),
            url: "https://backend.example/events".into(),
            event_type: "message.received".into(),
            body: "{}".into(),
            target: Default::default(),
            origin: None,
        });
        message.attempts = attempts;
        message
    };
    let policy = RetryPolicy::default();
    let step = |status, attempts| {
        let outcome = AttemptOutcome::answered(status, Default::default(), 0);
        DeliveryOutcome::of(&record_attempt(queued(attempts), &outcome, &policy, 0, 1.0))
    };
    assert_eq!(step(204, 0), DeliveryOutcome::Delivered);
    assert_eq!(step(503, 0), DeliveryOutcome::Retried);
    assert_eq!(step(400, 0), DeliveryOutcome::DeadLettered);
}
