//! What the admin console shows, as pure decisions: what one request or delivery attempt contributes
//! ([`Observation`] → [`Writes`]), the time buckets and their retention ([`window`]), latency histograms
//! ([`histogram`]), the per-account views ([`view`]), secret-rotation advice ([`rotation`]), the configured
//! accounts ([`accounts`]) and alert rate limiting ([`alert`]). The `Metrics` Durable Object only stores and
//! loads the rows these functions produce and read.

pub mod accounts;
pub mod alert;
pub mod flush;
pub mod histogram;
pub mod observe;
pub mod packed;
pub mod ring;
pub mod rotation;
pub mod schema;
pub mod store;
pub mod tables;
pub mod view;
pub mod window;
mod writes;

pub use writes::{plan_writes, FailingUpdate, Writes, MAX_REJECTIONS};

use serde::{Deserialize, Serialize};

use crate::config::{binding_name, split_values, Bindings};
use crate::crypto;
use window::Resolution;

/// The Durable Object binding of the metrics store, sharded by account (see [`flush`]).
pub const METRICS_BINDING: &str = "METRICS";
/// How many of the latest rejections each shard keeps (reason and time only; never bodies or secrets).
pub const REJECTION_RING: usize = 200;

/// How a delivery attempt ended, as counted per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    Delivered,
    Retried,
    DeadLettered,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Retried,
        DeliveryOutcome::DeadLettered,
    ];

    /// What the step the delivery machine decided after an attempt counts as.
    pub fn of(step: &crate::delivery::Step) -> DeliveryOutcome {
        match step {
            crate::delivery::Step::Delivered => DeliveryOutcome::Delivered,
            crate::delivery::Step::Retry { .. } => DeliveryOutcome::Retried,
            crate::delivery::Step::DeadLetter(_) => DeliveryOutcome::DeadLettered,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retried => "retried",
            DeliveryOutcome::DeadLettered => "dead_lettered",
        }
    }
}

/// What became of a send (`POST /send/…`), as counted per bucket: taken from the queue for its first attempt,
/// sent, retried after an attempt, or failed (reported as `message.send_failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SendCount {
    Queued,
    Sent,
    Retried,
    Failed,
}

impl SendCount {
    pub const ALL: [SendCount; 4] = [
        SendCount::Queued,
        SendCount::Sent,
        SendCount::Retried,
        SendCount::Failed,
    ];

    /// What the step taken after a send's attempt counts as.
    pub fn of(step: &crate::delivery::Step) -> SendCount {
        match step {
            crate::delivery::Step::Delivered => SendCount::Sent,
            crate::delivery::Step::Retry { .. } => SendCount::Retried,
            crate::delivery::Step::DeadLetter(_) => SendCount::Failed,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SendCount::Queued => "queued",
            SendCount::Sent => "sent",
            SendCount::Retried => "retried",
            SendCount::Failed => "failed",
        }
    }
}

/// What happened, for one channel/account at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// A request the gateway accepted (2xx): `events` new ones, `duplicates` already seen. `key` is the secret
    /// that matched, when the request produced an event (only events carry `data.verification.key_index`).
    Accepted {
        events: u32,
        duplicates: u32,
        ack_ms: u64,
        key: Option<KeyMatch>,
    },
    /// A refused request of a configured account, with its machine-readable reason.
    Rejected { reason: String, ack_ms: u64 },
    /// One backend delivery attempt's result. `latency_ms` is absent when nothing was sent.
    Delivery {
        outcome: DeliveryOutcome,
        latency_ms: Option<u64>,
    },
    /// One step of a send through the channel's API.
    Send { count: SendCount },
}

/// Which configured value of the account's secret binding matched: its position and a fingerprint (a
/// domain-separated SHA-256 prefix that stays in the store and is never shown), so counts follow a value
/// when a rotation shifts the positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMatch {
    pub index: u32,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub channel: String,
    pub account: String,
    pub at_ms: u64,
    pub observed: Observed,
}

/// One counter of one bucket, as the store keeps it: `metric` is a [`Metric`] key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterRow {
    pub resolution: Resolution,
    pub bucket_ms: u64,
    pub channel: String,
    pub account: String,
    pub metric: String,
    pub value: u64,
}

/// What the store keeps per key fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRow {
    pub channel: String,
    pub account: String,
    pub fingerprint: String,
    pub matched: u64,
    pub last_matched_ms: u64,
}

/// When an account last had an accepted event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRow {
    pub channel: String,
    pub account: String,
    pub last_event_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectionRow {
    pub at_ms: u64,
    pub channel: String,
    pub account: String,
    pub reason: String,
}

/// A counter, named by its key in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    Requests,
    Events,
    Duplicates,
    Rejected(String),
    Delivery(DeliveryOutcome),
    Send(SendCount),
    /// Acknowledgement latency histogram: the bucket index of [`histogram::BOUNDS_MS`].
    AckLatency(usize),
    BackendLatency(usize),
}

impl Metric {
    pub fn key(&self) -> String {
        match self {
            Metric::Requests => "requests".to_owned(),
            Metric::Events => "events".to_owned(),
            Metric::Duplicates => "duplicates".to_owned(),
            Metric::Rejected(reason) => format!("rejected.{reason}"),
            Metric::Delivery(outcome) => format!("delivery.{}", outcome.name()),
            Metric::Send(count) => format!("send.{}", count.name()),
            Metric::AckLatency(bucket) => format!("ack.{bucket}"),
            Metric::BackendLatency(bucket) => format!("backend.{bucket}"),
        }
    }

    pub fn parse(key: &str) -> Option<Metric> {
        let (head, tail) = key.split_once('.').unwrap_or((key, ""));
        let bucket = || {
            tail.parse::<usize>()
                .ok()
                .filter(|b| *b < histogram::BUCKETS)
        };
        match head {
            "requests" if tail.is_empty() => Some(Metric::Requests),
            "events" if tail.is_empty() => Some(Metric::Events),
            "duplicates" if tail.is_empty() => Some(Metric::Duplicates),
            "rejected" if !tail.is_empty() => Some(Metric::Rejected(tail.to_owned())),
            "delivery" => DeliveryOutcome::ALL
                .into_iter()
                .find(|o| o.name() == tail)
                .map(Metric::Delivery),
            "send" => SendCount::ALL
                .into_iter()
                .find(|c| c.name() == tail)
                .map(Metric::Send),
            "ack" => bucket().map(Metric::AckLatency),
            "backend" => bucket().map(Metric::BackendLatency),
            _ => None,
        }
    }
}

/// The fingerprint of one secret value of an account: never the value, and useless without it.
pub fn key_fingerprint(channel: &str, account: &str, value: &str) -> String {
    let digest = crypto::sha256(&[
        b"sekisho-key-fingerprint\0",
        channel.as_bytes(),
        b"\0",
        account.as_bytes(),
        b"\0",
        value.as_bytes(),
    ]);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The account's secret values in order (newest first), from its secret binding.
pub fn secret_values(channel: &str, account: &str, bindings: &dyn Bindings) -> Vec<String> {
    let Some(field) = accounts::secret_field(channel) else {
        return Vec::new();
    };
    bindings
        .get(&binding_name(channel, account, field))
        .map(|raw| split_values(&raw))
        .unwrap_or_default()
}

/// The key that matched for an event's `data.verification.key_index`, when that index is configured.
pub fn key_match(
    channel: &str,
    account: &str,
    key_index: u64,
    bindings: &dyn Bindings,
) -> Option<KeyMatch> {
    let values = secret_values(channel, account, bindings);
    let index = usize::try_from(key_index).ok()?;
    let value = values.get(index)?;
    Some(KeyMatch {
        index: u32::try_from(index).ok()?,
        fingerprint: key_fingerprint(channel, account, value),
    })
}

/// `data.verification.key_index` of a forwarded event body (the envelope's JSON), if it has one.
pub fn key_index_of_event(body: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.pointer("/data/verification/key_index")?.as_u64()
}

#[cfg(test)]
mod tests;
