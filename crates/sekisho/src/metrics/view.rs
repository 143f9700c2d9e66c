//! The admin API's views, computed from stored rows: an account's time series and totals for a window, and
//! the accounts table with rotation status.

use std::collections::BTreeMap;

use serde::Serialize;

use super::accounts::ConfiguredAccount;
use super::histogram::{self, BUCKETS};
use super::rotation::{self, KeyStatus};
use super::window::Window;
use super::{
    key_fingerprint, secret_values, CounterRow, DeliveryOutcome, KeyRow, Metric, SeenRow, SendCount,
};
use crate::config::Bindings;
use crate::datetime::format_rfc3339_ms;

/// Counters summed over some buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sum {
    requests: u64,
    events: u64,
    duplicates: u64,
    rejected: BTreeMap<String, u64>,
    deliveries: [u64; 3],
    sends: [u64; 4],
    ack: [u64; BUCKETS],
    backend: [u64; BUCKETS],
}

impl Sum {
    fn add(&mut self, row: &CounterRow) {
        let Some(metric) = Metric::parse(&row.metric) else {
            return;
        };
        let slot = match metric {
            Metric::Requests => &mut self.requests,
            Metric::Events => &mut self.events,
            Metric::Duplicates => &mut self.duplicates,
            Metric::Rejected(reason) => self.rejected.entry(reason).or_default(),
            Metric::Delivery(outcome) => match outcome {
                DeliveryOutcome::Delivered => &mut self.deliveries[0],
                DeliveryOutcome::Retried => &mut self.deliveries[1],
                DeliveryOutcome::DeadLettered => &mut self.deliveries[2],
            },
            Metric::Send(count) => match count {
                SendCount::Queued => &mut self.sends[0],
                SendCount::Sent => &mut self.sends[1],
                SendCount::Retried => &mut self.sends[2],
                SendCount::Failed => &mut self.sends[3],
            },
            Metric::AckLatency(bucket) => match self.ack.get_mut(bucket) {
                Some(slot) => slot,
                None => return,
            },
            Metric::BackendLatency(bucket) => match self.backend.get_mut(bucket) {
                Some(slot) => slot,
                None => return,
            },
        };
        *slot += row.value;
    }

    fn totals(&self) -> Totals {
        Totals {
            requests: self.requests,
            events: self.events,
            duplicates: self.duplicates,
            rejected: self.rejected.values().sum(),
            rejected_by_reason: self.rejected.clone(),
            delivered: self.deliveries[0],
            retried: self.deliveries[1],
            dead_lettered: self.deliveries[2],
            sends_queued: self.sends[0],
            sends_sent: self.sends[1],
            sends_retried: self.sends[2],
            sends_failed: self.sends[3],
            ack_p50_ms: histogram::percentile(&self.ack, 0.5),
            ack_p99_ms: histogram::percentile(&self.ack, 0.99),
            backend_p50_ms: histogram::percentile(&self.backend, 0.5),
            backend_p99_ms: histogram::percentile(&self.backend, 0.99),
        }
    }
}

/// Counts and latency percentiles (bucket upper bounds, see [`histogram`]) of a window or a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub events: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    /// Sends through the channel's API (`POST /send/…`): queued (first attempt), sent, retried, failed.
    pub sends_queued: u64,
    pub sends_sent: u64,
    pub sends_retried: u64,
    pub sends_failed: u64,
    pub ack_p50_ms: Option<u64>,
    pub ack_p99_ms: Option<u64>,
    pub backend_p50_ms: Option<u64>,
    pub backend_p99_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub start: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Series {
    pub channel: String,
    pub account: String,
    pub window: Window,
    pub bucket_seconds: u64,
    pub points: Vec<Point>,
    pub totals: Totals,
}

fn of_account<'a>(
    rows: &'a [CounterRow],
    channel: &'a str,
    account: &'a str,
    window: Window,
) -> impl Iterator<Item = &'a CounterRow> + 'a {
    rows.iter().filter(move |row| {
        row.resolution == window.resolution() && row.channel == channel && row.account == account
    })
}

/// One sum per bucket of the window (oldest first) and one over all of them.
fn sums(
    rows: &[CounterRow],
    channel: &str,
    account: &str,
    window: Window,
    now_ms: u64,
) -> (Vec<(u64, Sum)>, Sum) {
    let mut points: Vec<(u64, Sum)> = window
        .bucket_starts(now_ms)
        .into_iter()
        .map(|start| (start, Sum::default()))
        .collect();
    let mut all = Sum::default();
    for row in of_account(rows, channel, account, window) {
        if let Some((_, sum)) = points.iter_mut().find(|(start, _)| *start == row.bucket_ms) {
            sum.add(row);
            all.add(row);
        }
    }
    (points, all)
}

/// The time series behind an account's charts.
pub fn series(
    rows: &[CounterRow],
    channel: &str,
    account: &str,
    window: Window,
    now_ms: u64,
) -> Series {
    let (points, all) = sums(rows, channel, account, window, now_ms);
    Series {
        channel: channel.to_owned(),
        account: account.to_owned(),
        window,
        bucket_seconds: window.resolution().bucket_ms() / 1000,
        points: points
            .into_iter()
            .map(|(start, sum)| Point {
                start: format_rfc3339_ms(start),
                totals: sum.totals(),
            })
            .collect(),
        totals: all.totals(),
    }
}

/// One row of `GET /admin/api/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    pub channel: &'static str,
    pub account: String,
    pub last_event_at: Option<String>,
    pub window: Window,
    #[serde(flatten)]
    pub totals: Totals,
    /// Accepted requests per bucket of the window, oldest first (the console's sparkline).
    pub sparkline: Vec<u64>,
    /// The account's secret binding, and the status of each configured value (never the value).
    pub secret_binding: Option<String>,
    pub keys: Vec<KeyStatus>,
}

pub struct Stored<'a> {
    pub counters: &'a [CounterRow],
    pub keys: &'a [KeyRow],
    pub seen: &'a [SeenRow],
}

/// The whole answer of `GET /admin/api/accounts`. `recording`: whether there is a store at all.
pub fn accounts_answer(
    loaded: &super::store::Loaded,
    bindings: &dyn Bindings,
    window: Window,
    now_ms: u64,
    recording: bool,
) -> String {
    let stored = Stored {
        counters: &loaded.counters,
        keys: &loaded.keys,
        seen: &loaded.seen,
    };
    let table = accounts(
        &super::accounts::configured(bindings),
        &stored,
        bindings,
        window,
        now_ms,
    );
    serde_json::to_string(&AccountsAnswer {
        window,
        recording,
        accounts: table,
    })
    .unwrap_or_default()
}

#[derive(Serialize)]
struct AccountsAnswer {
    window: Window,
    recording: bool,
    accounts: Vec<AccountView>,
}

/// The accounts table: every configured account, with or without recorded traffic.
pub fn accounts(
    configured: &[ConfiguredAccount],
    stored: &Stored<'_>,
    bindings: &dyn Bindings,
    window: Window,
    now_ms: u64,
) -> Vec<AccountView> {
    configured
        .iter()
        .map(|entry| {
            let (channel, account) = (entry.channel, entry.account.as_str());
            let (points, all) = sums(stored.counters, channel, account, window, now_ms);
            let fingerprints: Vec<String> = secret_values(channel, account, bindings)
                .iter()
                .map(|value| key_fingerprint(channel, account, value))
                .collect();
            let key_rows: Vec<KeyRow> = stored
                .keys
                .iter()
                .filter(|row| row.channel == channel && row.account == account)
                .cloned()
                .collect();
            AccountView {
                channel,
                account: account.to_owned(),
                last_event_at: stored
                    .seen
                    .iter()
                    .find(|row| row.channel == channel && row.account == account)
                    .map(|row| format_rfc3339_ms(row.last_event_ms)),
                window,
                totals: all.totals(),
                sparkline: points.iter().map(|(_, sum)| sum.requests).collect(),
                secret_binding: super::accounts::secret_field(channel)
                    .map(|field| crate::config::binding_name(channel, account, field)),
                keys: rotation::status(&fingerprints, &key_rows, now_ms),
            }
        })
        .collect()
}
