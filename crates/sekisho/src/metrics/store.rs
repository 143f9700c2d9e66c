//! The calls to a `Metrics` shard and their replies, the merge of the reads across shards, and the alert
//! candidates a flushed batch raises (decided here from what the shard loads for it).

use serde::{Deserialize, Serialize};

use super::alert::{self, Alert, AlertKind};
use super::window::{Resolution, Window};
use super::{CounterRow, DeliveryOutcome, KeyRow, Metric, RejectionRow, SeenRow, Writes};
use crate::Rejection;

/// How many previous 5-minute buckets a signature jump is measured against.
pub const JUMP_BASELINE_BUCKETS: u64 = 12;
/// Key fingerprints not matched for this long are forgotten.
pub const KEY_RETENTION_MS: u64 = 30 * 24 * 3_600_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsCall {
    /// Store a flushed batch; with `alerts`, also decide which alerts it raises.
    Record {
        writes: Writes,
        now_ms: u64,
        alerts: bool,
    },
    /// The shard's rows for a window (merged across shards by [`Loaded::merge`] for the accounts table).
    Load { window: Window, now_ms: u64 },
    /// An account's time series (see [`super::view::series`]).
    Series {
        channel: String,
        account: String,
        window: Window,
        now_ms: u64,
    },
    /// The latest rejections, newest first.
    Rejections { limit: usize },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub alerts: Vec<Alert>,
}

/// What the store holds for a window: its counters, every key row and last-event time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    pub counters: Vec<CounterRow>,
    pub keys: Vec<KeyRow>,
    pub seen: Vec<SeenRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentRejections {
    pub rejections: Vec<RejectionRow>,
}

impl Loaded {
    /// The shards' rows together (each account lives in one shard, so nothing is counted twice).
    pub fn merge(shards: impl IntoIterator<Item = Loaded>) -> Loaded {
        let mut all = Loaded::default();
        for shard in shards {
            all.counters.extend(shard.counters);
            all.keys.extend(shard.keys);
            all.seen.extend(shard.seen);
        }
        all
    }
}

impl RecentRejections {
    /// The latest `limit` of the shards' rejections, newest first.
    pub fn merge(shards: impl IntoIterator<Item = RecentRejections>, limit: usize) -> Self {
        let mut rejections: Vec<RejectionRow> =
            shards.into_iter().flat_map(|s| s.rejections).collect();
        rejections.sort_by_key(|row| std::cmp::Reverse(row.at_ms));
        rejections.truncate(limit);
        RecentRejections { rejections }
    }
}

/// What the store knows about one channel/account when it decides alerts.
pub trait AlertState {
    /// `invalid_signature` rejections in the 5-minute bucket of `now_ms`, and in the
    /// [`JUMP_BASELINE_BUCKETS`] before it.
    fn signature_counts(&self, channel: &str, account: &str) -> (u64, u64);
    /// Since when the backend of the account has failed without a delivery in between.
    fn failing_since(&self, channel: &str, account: &str) -> Option<u64>;
}

/// The metric key of `invalid_signature` rejections.
pub fn invalid_signature_key() -> String {
    Metric::Rejected(Rejection::InvalidSignature.reason().to_owned()).key()
}

/// The alerts a flushed batch raises, before de-duplication and rate limiting ([`alert::to_send`]): one per
/// account and kind, read from the batch's 5-minute counters.
pub fn alert_candidates(writes: &Writes, state: &dyn AlertState, now_ms: u64) -> Vec<Alert> {
    let invalid = invalid_signature_key();
    let dead = Metric::Delivery(DeliveryOutcome::DeadLettered).key();
    let retried = Metric::Delivery(DeliveryOutcome::Retried).key();
    let mut out: Vec<Alert> = Vec::new();
    let mut push = |alert: Alert| match out.iter_mut().find(|a| a.key() == alert.key()) {
        Some(existing) if alert.kind == AlertKind::DeadLettered => existing.count += alert.count,
        Some(existing) => existing.count = existing.count.max(alert.count),
        None => out.push(alert),
    };
    for row in writes
        .counters
        .iter()
        .filter(|row| row.resolution == Resolution::FiveMinutes)
    {
        let (channel, account) = (&row.channel, &row.account);
        let candidate = |kind, count| Alert {
            kind,
            channel: channel.clone(),
            account: account.clone(),
            count,
        };
        if row.metric == dead {
            push(candidate(AlertKind::DeadLettered, row.value));
        } else if row.metric == retried {
            if let Some(since) = state.failing_since(channel, account) {
                if alert::is_backend_failing(since, now_ms) {
                    let minutes = now_ms.saturating_sub(since) / 60_000;
                    push(candidate(AlertKind::BackendFailing, minutes));
                }
            }
        } else if row.metric == invalid {
            let (current, previous) = state.signature_counts(channel, account);
            if alert::is_signature_jump(current, previous, JUMP_BASELINE_BUCKETS) {
                push(candidate(AlertKind::SignatureJump, current));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{plan_writes, Observation, Observed};

    const NOW: u64 = 1_764_633_600_000;

    struct State {
        counts: (u64, u64),
        failing_since: Option<u64>,
    }

    impl AlertState for State {
        fn signature_counts(&self, _: &str, _: &str) -> (u64, u64) {
            self.counts
        }
        fn failing_since(&self, _: &str, _: &str) -> Option<u64> {
            self.failing_since
        }
    }

    fn obs(observed: Observed) -> Observation {
        Observation {
            channel: "line".into(),
            account: "acme".into(),
            at_ms: NOW,
            observed,
        }
    }

    fn delivery(outcome: DeliveryOutcome) -> Observation {
        obs(Observed::Delivery {
            outcome,
            latency_ms: Some(5),
        })
    }

    #[test]
    fn dead_letters_of_a_batch_make_one_alert_counting_them() {
        let state = State {
            counts: (0, 0),
            failing_since: None,
        };
        let alerts = alert_candidates(
            &plan_writes(&[
                delivery(DeliveryOutcome::DeadLettered),
                delivery(DeliveryOutcome::DeadLettered),
                delivery(DeliveryOutcome::Delivered),
            ]),
            &state,
            NOW,
        );
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            (alerts[0].kind, alerts[0].count),
            (AlertKind::DeadLettered, 2)
        );
    }

    #[test]
    fn a_retry_raises_a_backend_alert_only_after_the_failing_duration() {
        let failing = |since| State {
            counts: (0, 0),
            failing_since: Some(since),
        };
        let retry = plan_writes(&[delivery(DeliveryOutcome::Retried)]);
        assert!(alert_candidates(&retry, &failing(NOW - 60_000), NOW).is_empty());
        let alerts = alert_candidates(&retry, &failing(NOW - 12 * 60_000), NOW);
        assert_eq!(
            (alerts[0].kind, alerts[0].count),
            (AlertKind::BackendFailing, 12)
        );
    }

    #[test]
    fn invalid_signatures_raise_an_alert_on_a_jump_only() {
        let rejected = plan_writes(&[obs(Observed::Rejected {
            reason: "invalid_signature".into(),
            ack_ms: 1,
        })]);
        let quiet = State {
            counts: (3, 0),
            failing_since: None,
        };
        assert!(alert_candidates(&rejected, &quiet, NOW).is_empty());
        let jump = State {
            counts: (8, 12),
            failing_since: None,
        };
        let alerts = alert_candidates(&rejected, &jump, NOW);
        assert_eq!(
            (alerts[0].kind, alerts[0].count),
            (AlertKind::SignatureJump, 8)
        );
        let other = plan_writes(&[obs(Observed::Rejected {
            reason: "stale_timestamp".into(),
            ack_ms: 1,
        })]);
        assert!(alert_candidates(&other, &jump, NOW).is_empty());
        assert_eq!(invalid_signature_key(), "rejected.invalid_signature");
    }
}
