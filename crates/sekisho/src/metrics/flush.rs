//! Metrics at any scale: an isolate folds its observations into [`Writes`] per shard ([`Pending`]) and flushes
//! them at most once per flush interval, in the background of a request it is serving anyway. A shard is one
//! `Metrics` Durable Object holding the accounts whose `/{channel}/{account}` hashes to it ([`shard_of`]), so
//! the calls a shard receives grow with the number of isolates (at most one per isolate and interval), never
//! with the number of requests; a forged request costs no call of its own.
//!
//! What can be lost: an isolate that dies between an observation and its flush (evicted, crashed, or the
//! runtime ending the background work early) takes at most one interval of its own observations with it —
//! counts, latencies and rejections for the console, never an event. A flush that fails is put back and
//! tried with the next one.

use std::collections::BTreeMap;

use super::{Observation, Writes};
use crate::config::Bindings;
use crate::crypto;

/// Metrics shards of a deployment. A constant of the store: accounts would move to other shards if it changed.
pub const SHARDS: u16 = 16;
/// At most one flush per isolate this often, unless [`FLUSH_INTERVAL_BINDING`] says otherwise.
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 5_000;
/// `METRICS_FLUSH_SECONDS`: the flush interval, 1 to 25 seconds (the background work of a request may run
/// for 30 seconds after its answer).
pub const FLUSH_INTERVAL_BINDING: &str = "METRICS_FLUSH_SECONDS";
pub const MAX_FLUSH_INTERVAL_MS: u64 = 25_000;
/// The first observation after a quiet spell waits this long, so requests arriving together share a flush.
pub const FLUSH_GATHER_MS: u64 = 1_000;
/// A flush scheduled this long ago that has not run went with its request's background work: schedule anew.
pub const LOST_FLUSH_MS: u64 = 60_000;

/// The shard of an account.
pub fn shard_of(channel: &str, account: &str) -> u16 {
    let digest = crypto::sha256(&[b"/", channel.as_bytes(), b"/", account.as_bytes()]);
    u16::from_be_bytes([digest[0], digest[1]]) % SHARDS
}

/// The Durable Object name of a shard.
pub fn object_name(shard: u16) -> String {
    format!("metrics#{shard}")
}

/// Every shard, for the reads across them (the accounts table, the latest rejections).
pub fn all_shards() -> impl Iterator<Item = u16> {
    0..SHARDS
}

pub fn interval_ms(bindings: &dyn Bindings) -> u64 {
    bindings
        .get(FLUSH_INTERVAL_BINDING)
        .and_then(|raw| raw.trim().parse::<u64>().ok())
        .map_or(DEFAULT_FLUSH_INTERVAL_MS, |s| {
            s.saturating_mul(1000).clamp(1000, MAX_FLUSH_INTERVAL_MS)
        })
}

/// What an isolate has observed and not flushed yet.
#[derive(Debug, Default)]
pub struct Pending {
    shards: BTreeMap<u16, Writes>,
    /// When the scheduled flush runs, and when it was scheduled.
    scheduled: Option<(u64, u64)>,
    last_flush_ms: Option<u64>,
}

impl Pending {
    pub fn add(&mut self, observations: &[Observation]) {
        for observation in observations {
            self.shards
                .entry(shard_of(&observation.channel, &observation.account))
                .or_default()
                .add(observation);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.shards.values().all(Writes::is_empty)
    }

    /// Whoever just added observations asks this: `Some(wait_ms)` when no flush is scheduled yet, and then
    /// this caller runs it after `wait_ms` (in its request's background); `None` when one is on its way.
    pub fn schedule(&mut self, now_ms: u64, interval_ms: u64) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        if let Some((_, scheduled_on)) = self.scheduled {
            if now_ms.saturating_sub(scheduled_on) < LOST_FLUSH_MS {
                return None;
            }
        }
        let earliest = self
            .last_flush_ms
            .map_or(0, |last| last.saturating_add(interval_ms));
        let at = earliest.max(now_ms.saturating_add(FLUSH_GATHER_MS));
        self.scheduled = Some((at, now_ms));
        Some(at - now_ms)
    }

    /// For a caller that must not wait (a queue consumer: its invocation, and the batch's acknowledgements,
    /// last until its background work ends): whether it flushes now. Not when a request's flush is on its way
    /// (it takes these observations too); otherwise yes, or nothing might flush them while no request comes.
    /// So a consumer makes at most one call per batch and shard, and none under request traffic.
    pub fn flush_now(&self, now_ms: u64) -> bool {
        let scheduled = self
            .scheduled
            .is_some_and(|(_, on)| now_ms.saturating_sub(on) < LOST_FLUSH_MS);
        !self.is_empty() && !scheduled
    }

    /// For a caller that must not wait and may come once per message (a send's attempt): whether it flushes
    /// now — as [`Pending::flush_now`], and only once the interval since the last flush has passed, so sends
    /// make at most one call per shard and interval. What it leaves goes with the next flush (its outcome event's
    /// delivery, a request, the next batch).
    pub fn flush_due(&self, now_ms: u64, interval_ms: u64) -> bool {
        self.flush_now(now_ms)
            && self
                .last_flush_ms
                .is_none_or(|last| now_ms >= last.saturating_add(interval_ms))
    }

    /// Everything pending, by shard, for the flush that runs now.
    pub fn take(&mut self, now_ms: u64) -> Vec<(u16, Writes)> {
        self.scheduled = None;
        self.last_flush_ms = Some(now_ms);
        std::mem::take(&mut self.shards)
            .into_iter()
            .filter(|(_, writes)| !writes.is_empty())
            .collect()
    }

    /// A shard's batch that could not be written: kept for the next flush.
    pub fn put_back(&mut self, shard: u16, writes: Writes) {
        self.shards.entry(shard).or_default().merge(writes);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::metrics::Observed;

    const T: u64 = 1_765_000_000_000;

    fn accepted(account: &str) -> Observation {
        Observation {
            channel: "line".into(),
            account: account.into(),
            at_ms: T,
            observed: Observed::Accepted {
                events: 1,
                duplicates: 0,
                ack_ms: 5,
                key: None,
            },
        }
    }

    #[test]
    fn one_flush_per_interval_whatever_the_number_of_requests() {
        let mut pending = Pending::default();
        assert_eq!(pending.schedule(T, 5_000), None, "nothing to flush");
        pending.add(&[accepted("acme")]);
        assert_eq!(pending.schedule(T, 5_000), Some(FLUSH_GATHER_MS));
        let mut flushes = 0;
        for i in 1..1000 {
            pending.add(&[accepted("acme")]);
            if pending.schedule(T + i, 5_000).is_some() {
                flushes += 1;
            }
        }
        assert_eq!(flushes, 0, "the scheduled flush takes them all");
        let taken = pending.take(T + FLUSH_GATHER_MS);
        assert_eq!(taken.len(), 1);
        let requests: u64 = taken[0]
            .1
            .counters
            .iter()
            .filter(|r| r.metric == "requests")
            .map(|r| r.value)
            .sum();
        assert_eq!(requests, 2 * 1000, "two resolutions");
        assert!(pending.is_empty());
        // The next observation waits for the interval since the last flush.
        pending.add(&[accepted("acme")]);
        assert_eq!(
            pending.schedule(T + FLUSH_GATHER_MS + 100, 5_000),
            Some(4_900)
        );
    }

    #[test]
    fn a_consumer_flushes_unless_a_request_flush_is_on_its_way() {
        let mut pending = Pending::default();
        assert!(!pending.flush_now(T), "nothing pending");
        pending.add(&[accepted("acme")]);
        assert!(pending.flush_now(T));
        assert!(pending.schedule(T, 5_000).is_some());
        assert!(
            !pending.flush_now(T + 1_000),
            "a request's flush is on its way"
        );
        assert!(pending.flush_now(T + LOST_FLUSH_MS), "unless it was lost");
    }

    #[test]
    fn sends_flush_at_most_once_per_interval() {
        let mut pending = Pending::default();
        assert!(!pending.flush_due(T, 5_000), "nothing pending");
        pending.add(&[accepted("acme")]);
        assert!(pending.flush_due(T, 5_000), "never flushed yet");
        let _ = pending.take(T);
        // A batch of a hundred sends right after: folded, no call of their own.
        for i in 0..100 {
            pending.add(&[accepted("acme")]);
            assert!(!pending.flush_due(T + i, 5_000));
        }
        assert!(pending.flush_due(T + 5_000, 5_000));
        assert!(pending.schedule(T + 5_000, 5_000).is_some());
        assert!(
            !pending.flush_due(T + 6_000, 5_000),
            "a request's flush is on its way"
        );
    }

    #[test]
    fn a_flush_that_never_ran_is_scheduled_again() {
        let mut pending = Pending::default();
        pending.add(&[accepted("acme")]);
        assert!(pending.schedule(T, 5_000).is_some());
        assert_eq!(pending.schedule(T + 30_000, 5_000), None);
        assert!(pending.schedule(T + LOST_FLUSH_MS, 5_000).is_some());
    }

    #[test]
    fn a_failed_flush_is_put_back() {
        let mut pending = Pending::default();
        pending.add(&[accepted("acme")]);
        let taken = pending.take(T);
        for (shard, writes) in taken {
            pending.put_back(shard, writes);
        }
        pending.add(&[accepted("acme")]);
        let again = pending.take(T + 5_000);
        let events: u64 = again[0]
            .1
            .counters
            .iter()
            .filter(|r| r.metric == "events")
            .map(|r| r.value)
            .sum();
        assert_eq!(events, 4);
    }

    #[test]
    fn accounts_spread_over_the_shards() {
        let mut per_shard = HashMap::new();
        for i in 0..800 {
            *per_shard
                .entry(shard_of("line", &format!("account-{i}")))
                .or_insert(0) += 1;
        }
        assert_eq!(per_shard.len(), usize::from(SHARDS));
        assert!(
            per_shard.values().all(|n| (25..=80).contains(n)),
            "{per_shard:?}"
        );
        assert_eq!(shard_of("line", "acme"), shard_of("line", "acme"));
        assert_eq!(object_name(3), "metrics#3");
    }

    #[test]
    fn the_interval_is_bounded() {
        let of = |v: &str| {
            interval_ms(&HashMap::from([(
                FLUSH_INTERVAL_BINDING.to_owned(),
                v.to_owned(),
            )]))
        };
        assert_eq!(
            interval_ms(&HashMap::<String, String>::new()),
            DEFAULT_FLUSH_INTERVAL_MS
        );
        assert_eq!(of("2"), 2_000);
        assert_eq!(of("0"), 1_000);
        assert_eq!(of("600"), MAX_FLUSH_INTERVAL_MS);
        assert_eq!(of("x"), DEFAULT_FLUSH_INTERVAL_MS);
    }
}
