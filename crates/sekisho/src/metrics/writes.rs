//! What a batch of observations writes into a metrics shard, merged: one row per counter and bucket however
//! many observations it sums, one per key fingerprint, one last-event time per account, the latest
//! rejections (at most [`MAX_REJECTIONS`]) and one change of each account's backend-failing state. An isolate
//! folds every observation into these ([`super::flush`]) and writes them once per flush.

use serde::{Deserialize, Serialize};

use super::window::Resolution;
use super::{
    histogram, CounterRow, DeliveryOutcome, KeyRow, Metric, Observation, Observed, RejectionRow,
    SeenRow,
};

/// The latest rejections one batch carries to the shard's ring; older ones of the same batch are counted in
/// the counters but not listed.
pub const MAX_REJECTIONS: usize = 20;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writes {
    pub counters: Vec<CounterRow>,
    pub keys: Vec<KeyRow>,
    pub seen: Vec<SeenRow>,
    /// Oldest first.
    pub rejections: Vec<RejectionRow>,
    pub failing: Vec<FailingUpdate>,
}

/// How an account's backend-failing state changes: `recovered` when an attempt was delivered in the batch (the
/// stored state is cleared), then `failing_since` when an attempt failed after the last delivered one (set
/// unless already failing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailingUpdate {
    pub channel: String,
    pub account: String,
    pub recovered: bool,
    pub failing_since_ms: Option<u64>,
}

impl Observation {
    pub(crate) fn increments(&self) -> Vec<(Metric, u64)> {
        match &self.observed {
            Observed::Accepted {
                events,
                duplicates,
                ack_ms,
                ..
            } => {
                let mut out = vec![
                    (Metric::Requests, 1),
                    (Metric::AckLatency(histogram::bucket_of(*ack_ms)), 1),
                ];
                if *events > 0 {
                    out.push((Metric::Events, u64::from(*events)));
                }
                if *duplicates > 0 {
                    out.push((Metric::Duplicates, u64::from(*duplicates)));
                }
                out
            }
            Observed::Rejected { reason, .. } => vec![(Metric::Rejected(reason.clone()), 1)],
            Observed::Delivery {
                outcome,
                latency_ms,
            } => {
                let mut out = vec![(Metric::Delivery(*outcome), 1)];
                if let Some(latency) = latency_ms {
                    out.push((Metric::BackendLatency(histogram::bucket_of(*latency)), 1));
                }
                out
            }
            Observed::Send { count } => vec![(Metric::Send(*count), 1)],
        }
    }
}

impl Writes {
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
            && self.keys.is_empty()
            && self.seen.is_empty()
            && self.rejections.is_empty()
            && self.failing.is_empty()
    }

    /// Folds one observation in.
    pub fn add(&mut self, observation: &Observation) {
        let (channel, account) = (&observation.channel, &observation.account);
        for (metric, delta) in observation.increments() {
            let key = metric.key();
            for resolution in Resolution::ALL {
                let bucket_ms = resolution.bucket_start(observation.at_ms);
                match self.counters.iter_mut().find(|row| {
                    row.resolution == resolution
                        && row.bucket_ms == bucket_ms
                        && &row.channel == channel
                        && &row.account == account
                        && row.metric == key
                }) {
                    Some(row) => row.value += delta,
                    None => self.counters.push(CounterRow {
                        resolution,
                        bucket_ms,
                        channel: channel.clone(),
                        account: account.clone(),
                        metric: key.clone(),
                        value: delta,
                    }),
                }
            }
        }
        match &observation.observed {
            Observed::Accepted { events, key, .. } => {
                if let Some(key) = key {
                    self.add_key(KeyRow {
                        channel: channel.clone(),
                        account: account.clone(),
                        fingerprint: key.fingerprint.clone(),
                        matched: 1,
                        last_matched_ms: observation.at_ms,
                    });
                }
                if *events > 0 {
                    match self
                        .seen
                        .iter_mut()
                        .find(|row| &row.channel == channel && &row.account == account)
                    {
                        Some(row) => row.last_event_ms = row.last_event_ms.max(observation.at_ms),
                        None => self.seen.push(SeenRow {
                            channel: channel.clone(),
                            account: account.clone(),
                            last_event_ms: observation.at_ms,
                        }),
                    }
                }
            }
            Observed::Rejected { reason, .. } => {
                let at = self
                    .rejections
                    .iter()
                    .position(|row| row.at_ms > observation.at_ms)
                    .unwrap_or(self.rejections.len());
                self.rejections.insert(
                    at,
                    RejectionRow {
                        at_ms: observation.at_ms,
                        channel: channel.clone(),
                        account: account.clone(),
                        reason: reason.clone(),
                    },
                );
                if self.rejections.len() > MAX_REJECTIONS {
                    self.rejections.remove(0);
                }
            }
            Observed::Delivery { outcome, .. } => {
                let update = match self
                    .failing
                    .iter_mut()
                    .position(|u| &u.channel == channel && &u.account == account)
                {
                    Some(index) => self.failing.get_mut(index),
                    None => {
                        self.failing.push(FailingUpdate {
                            channel: channel.clone(),
                            account: account.clone(),
                            recovered: false,
                            failing_since_ms: None,
                        });
                        self.failing.last_mut()
                    }
                };
                if let Some(update) = update {
                    if *outcome == DeliveryOutcome::Delivered {
                        update.recovered = true;
                        update.failing_since_ms = None;
                    } else if update.failing_since_ms.is_none() {
                        update.failing_since_ms = Some(observation.at_ms);
                    }
                }
            }
            // Counted only: a provider refusing a send says nothing of the backend's health.
            Observed::Send { .. } => {}
        }
    }

    fn add_key(&mut self, key: KeyRow) {
        match self.keys.iter_mut().find(|row| {
            row.channel == key.channel
                && row.account == key.account
                && row.fingerprint == key.fingerprint
        }) {
            Some(row) => {
                row.matched += key.matched;
                row.last_matched_ms = row.last_matched_ms.max(key.last_matched_ms);
            }
            None => self.keys.push(key),
        }
    }

    /// Folds another batch in (a flush that could not be written, put back).
    pub fn merge(&mut self, other: Writes) {
        for row in other.counters {
            match self.counters.iter_mut().find(|mine| {
                mine.resolution == row.resolution
                    && mine.bucket_ms == row.bucket_ms
                    && mine.channel == row.channel
                    && mine.account == row.account
                    && mine.metric == row.metric
            }) {
                Some(mine) => mine.value += row.value,
                None => self.counters.push(row),
            }
        }
        for key in other.keys {
            self.add_key(key);
        }
        for row in other.seen {
            match self
                .seen
                .iter_mut()
                .find(|mine| mine.channel == row.channel && mine.account == row.account)
            {
                Some(mine) => mine.last_event_ms = mine.last_event_ms.max(row.last_event_ms),
                None => self.seen.push(row),
            }
        }
        self.rejections.extend(other.rejections);
        self.rejections.sort_by_key(|row| row.at_ms);
        let excess = self.rejections.len().saturating_sub(MAX_REJECTIONS);
        self.rejections.drain(..excess);
        // The batch put back is older than what arrived since: its failing state comes first.
        let newer = std::mem::replace(&mut self.failing, other.failing);
        for update in newer {
            match self
                .failing
                .iter_mut()
                .find(|u| u.channel == update.channel && u.account == update.account)
            {
                Some(older) if update.recovered => *older = update,
                Some(older) => {
                    older.failing_since_ms = older.failing_since_ms.or(update.failing_since_ms)
                }
                None => self.failing.push(update),
            }
        }
    }
}

/// The rows a batch adds, increments of the same counter merged (one upsert each).
pub fn plan_writes(observations: &[Observation]) -> Writes {
    let mut writes = Writes::default();
    for observation in observations {
        writes.add(observation);
    }
    writes
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_765_000_000_000 - 1_765_000_000_000 % 3_600_000;

    fn obs(at_ms: u64, observed: Observed) -> Observation {
        Observation {
            channel: "line".into(),
            account: "acme".into(),
            at_ms,
            observed,
        }
    }

    fn delivery(at_ms: u64, outcome: DeliveryOutcome) -> Observation {
        obs(
            at_ms,
            Observed::Delivery {
                outcome,
                latency_ms: None,
            },
        )
    }

    #[test]
    fn a_thousand_requests_of_one_account_are_a_few_rows() {
        let observations: Vec<_> = (0..1000)
            .map(|i| {
                obs(
                    T + i,
                    Observed::Accepted {
                        events: 1,
                        duplicates: 0,
                        ack_ms: 20,
                        key: None,
                    },
                )
            })
            .collect();
        let writes = plan_writes(&observations);
        // requests, events, one ack bucket: each at two resolutions.
        assert_eq!(writes.counters.len(), 6);
        assert!(writes.counters.iter().all(|row| row.value == 1000));
        assert_eq!(writes.seen.len(), 1);
        assert_eq!(writes.seen[0].last_event_ms, T + 999);
    }

    #[test]
    fn the_batch_keeps_the_latest_rejections_only() {
        let rejected = |at| {
            obs(
                at,
                Observed::Rejected {
                    reason: "invalid_signature".into(),
                    ack_ms: 1,
                },
            )
        };
        let mut writes = plan_writes(&(0..50).map(|i| rejected(T + i)).collect::<Vec<_>>());
        writes.add(&rejected(T + 5));
        assert_eq!(writes.rejections.len(), MAX_REJECTIONS);
        assert_eq!(writes.rejections[0].at_ms, T + 30);
        assert_eq!(writes.rejections.last().map(|r| r.at_ms), Some(T + 49));
        let counted: u64 = writes
            .counters
            .iter()
            .filter(|r| r.resolution == Resolution::Hour)
            .map(|r| r.value)
            .sum();
        assert_eq!(counted, 51, "every rejection is counted");
    }

    #[test]
    fn the_failing_state_follows_the_last_delivery() {
        let writes = plan_writes(&[
            delivery(T, DeliveryOutcome::Retried),
            delivery(T + 1, DeliveryOutcome::Delivered),
            delivery(T + 2, DeliveryOutcome::Retried),
            delivery(T + 3, DeliveryOutcome::DeadLettered),
        ]);
        assert_eq!(
            writes.failing,
            vec![FailingUpdate {
                channel: "line".into(),
                account: "acme".into(),
                recovered: true,
                failing_since_ms: Some(T + 2),
            }]
        );
        let recovered = plan_writes(&[
            delivery(T, DeliveryOutcome::Retried),
            delivery(T + 1, DeliveryOutcome::Delivered),
        ]);
        assert_eq!(recovered.failing[0].failing_since_ms, None);
        assert!(recovered.failing[0].recovered);
    }

    #[test]
    fn a_batch_put_back_merges_with_what_came_since() {
        let older = plan_writes(&[delivery(T, DeliveryOutcome::Retried)]);
        let mut newer = plan_writes(&[delivery(T + 5, DeliveryOutcome::Delivered)]);
        newer.merge(older.clone());
        assert!(newer.failing[0].recovered);
        assert_eq!(newer.failing[0].failing_since_ms, None);
        let mut still_failing = plan_writes(&[delivery(T + 5, DeliveryOutcome::Retried)]);
        still_failing.merge(older);
        assert_eq!(still_failing.failing[0].failing_since_ms, Some(T));
        let delivered: u64 = still_failing
            .counters
            .iter()
            .filter(|r| r.metric == "delivery.retried" && r.resolution == Resolution::Hour)
            .map(|r| r.value)
            .sum();
        assert_eq!(delivered, 2);
    }
}
