//! Counters as the store keeps them: one row per resolution, bucket, channel and account holding every metric
//! count of that account in the bucket, as a JSON object `{"metric key": count, …}`. SQLite storage in Durable
//! Objects bills each row written, so a sparse account's request costs one row per resolution instead of one
//! per metric. A flush groups its counters into such rows ([`group`]); the object reads the stored counts of
//! each row, merges the batch's into them ([`merge`]) and writes the row once (it runs one call at a time and
//! does not wait between the read and the write). Reads expand the rows back into [`CounterRow`]s ([`expand`]),
//! the records the views read.

use std::collections::BTreeMap;

use super::window::Resolution;
use super::CounterRow;

/// Metric key → count.
pub type Counts = BTreeMap<String, u64>;

/// One account's counts in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRow {
    pub resolution: Resolution,
    pub bucket_ms: u64,
    pub channel: String,
    pub account: String,
    pub counts: Counts,
}

/// The batch's counters, one row per resolution, bucket, channel and account (counts of the same metric
/// summed), in the order each row first appears.
pub fn group(counters: &[CounterRow]) -> Vec<PackedRow> {
    let mut rows: Vec<PackedRow> = Vec::new();
    for counter in counters {
        let position = rows.iter().position(|row| {
            row.resolution == counter.resolution
                && row.bucket_ms == counter.bucket_ms
                && row.channel == counter.channel
                && row.account == counter.account
        });
        let row = match position.and_then(|index| rows.get_mut(index)) {
            Some(row) => row,
            None => {
                rows.push(PackedRow {
                    resolution: counter.resolution,
                    bucket_ms: counter.bucket_ms,
                    channel: counter.channel.clone(),
                    account: counter.account.clone(),
                    counts: Counts::new(),
                });
                match rows.last_mut() {
                    Some(row) => row,
                    None => continue,
                }
            }
        };
        add(&mut row.counts, &counter.metric, counter.value);
    }
    rows
}

fn add(counts: &mut Counts, metric: &str, value: u64) {
    let slot = counts.entry(metric.to_owned()).or_default();
    *slot = slot.saturating_add(value);
}

/// The stored counts of a row; empty for a value that is not a JSON object of counts (never written so: the
/// row's counts start again rather than block every later write to it).
pub fn decode(stored: &str) -> Counts {
    serde_json::from_str(stored).unwrap_or_default()
}

pub fn encode(counts: &Counts) -> String {
    serde_json::to_string(counts).unwrap_or_else(|_| "{}".to_owned())
}

/// The value to store: the row's stored counts (none when the row is new) with the batch's added.
pub fn merge(stored: Option<&str>, batch: &Counts) -> String {
    let mut counts = stored.map(decode).unwrap_or_default();
    for (metric, value) in batch {
        add(&mut counts, metric, *value);
    }
    encode(&counts)
}

/// One stored row back as the per-metric records the views read.
pub fn expand(
    resolution: Resolution,
    bucket_ms: u64,
    channel: &str,
    account: &str,
    stored: &str,
) -> Vec<CounterRow> {
    decode(stored)
        .into_iter()
        .map(|(metric, value)| CounterRow {
            resolution,
            bucket_ms,
            channel: channel.to_owned(),
            account: account.to_owned(),
            metric,
            value,
        })
        .collect()
}

/// One metric's count in a stored row.
pub fn count_of(stored: &str, metric: &str) -> u64 {
    decode(stored).get(metric).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{plan_writes, DeliveryOutcome, Observation, Observed};

    const T: u64 = 1_764_633_600_000; // 2025-12-02T00:00:00Z

    fn accepted(account: &str, at_ms: u64) -> Observation {
        Observation {
            channel: "line".into(),
            account: account.into(),
            at_ms,
            observed: Observed::Accepted {
                events: 1,
                duplicates: 0,
                ack_ms: 20,
                key: None,
            },
        }
    }

    fn delivered(account: &str, at_ms: u64) -> Observation {
        Observation {
            channel: "line".into(),
            account: account.into(),
            at_ms,
            observed: Observed::Delivery {
                outcome: DeliveryOutcome::Delivered,
                latency_ms: Some(150),
            },
        }
    }

    fn counts(pairs: &[(&str, u64)]) -> Counts {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn an_event_and_its_delivery_are_one_row_per_resolution() {
        let writes = plan_writes(&[accepted("acme", T + 1_000), delivered("acme", T + 2_000)]);
        // requests, events, one ack bucket, delivered, one backend bucket: each at two resolutions.
        assert_eq!(writes.counters.len(), 10);
        let rows = group(&writes.counters);
        assert_eq!(rows.len(), 2);
        let five = &rows[0];
        assert_eq!(
            (five.resolution, five.bucket_ms, five.account.as_str()),
            (Resolution::FiveMinutes, T, "acme")
        );
        assert_eq!(
            five.counts,
            counts(&[
                ("ack.4", 1),
                ("backend.7", 1),
                ("delivery.delivered", 1),
                ("events", 1),
                ("requests", 1),
            ])
        );
        assert_eq!(rows[1].resolution, Resolution::Hour);
        assert_eq!(rows[1].counts, five.counts);
    }

    #[test]
    fn rows_are_per_account_and_bucket() {
        let writes = plan_writes(&[
            accepted("a", T),
            accepted("b", T + 10),
            accepted("a", T + 20),
            // The next 5-minute bucket, the same hour.
            accepted("a", T + 300_000),
        ]);
        let rows = group(&writes.counters);
        let of = |res: Resolution, bucket: u64, account: &str| {
            rows.iter()
                .find(|r| r.resolution == res && r.bucket_ms == bucket && r.account == account)
                .map(|r| r.counts.get("requests").copied())
        };
        assert_eq!(rows.len(), 5);
        assert_eq!(of(Resolution::FiveMinutes, T, "a"), Some(Some(2)));
        assert_eq!(of(Resolution::FiveMinutes, T + 300_000, "a"), Some(Some(1)));
        assert_eq!(of(Resolution::FiveMinutes, T, "b"), Some(Some(1)));
        assert_eq!(of(Resolution::Hour, T, "a"), Some(Some(3)));
        assert_eq!(of(Resolution::Hour, T, "b"), Some(Some(1)));
    }

    #[test]
    fn a_flush_adds_to_what_the_row_holds() {
        let stored = r#"{"events":4,"requests":3,"rejected.invalid_signature":2}"#;
        let merged = merge(
            Some(stored),
            &counts(&[("requests", 2), ("delivery.retried", 1)]),
        );
        assert_eq!(
            merged,
            r#"{"delivery.retried":1,"events":4,"rejected.invalid_signature":2,"requests":5}"#
        );
        assert_eq!(merge(None, &counts(&[("events", 7)])), r#"{"events":7}"#);
        // Counts saturate instead of wrapping.
        assert_eq!(
            merge(
                Some(&format!("{{\"events\":{}}}", u64::MAX - 1)),
                &counts(&[("events", 5)])
            ),
            format!("{{\"events\":{}}}", u64::MAX)
        );
    }

    #[test]
    fn an_unreadable_stored_value_starts_again() {
        for stored in [
            "",
            "[1,2]",
            "{\"events\":-1}",
            "{\"events\":\"x\"}",
            "not json",
        ] {
            assert_eq!(decode(stored), Counts::new(), "{stored}");
            assert_eq!(
                merge(Some(stored), &counts(&[("events", 1)])),
                r#"{"events":1}"#
            );
        }
    }

    #[test]
    fn a_stored_row_expands_back_into_the_counters_written() {
        let writes = plan_writes(&[
            accepted("acme", T + 1),
            accepted("acme", T + 2),
            delivered("acme", T + 3),
        ]);
        let mut expanded: Vec<CounterRow> = group(&writes.counters)
            .iter()
            .flat_map(|row| {
                expand(
                    row.resolution,
                    row.bucket_ms,
                    &row.channel,
                    &row.account,
                    &merge(None, &row.counts),
                )
            })
            .collect();
        let mut written = writes.counters.clone();
        let order = |r: &CounterRow| (r.resolution.code(), r.metric.clone());
        expanded.sort_by_key(order);
        written.sort_by_key(order);
        assert_eq!(expanded, written);
        assert_eq!(count_of(r#"{"events":2,"requests":2}"#, "events"), 2);
        assert_eq!(count_of(r#"{"events":2}"#, "rejected.invalid_signature"), 0);
    }
}
