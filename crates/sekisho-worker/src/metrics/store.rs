//! The `Metrics` Durable Object (SQLite): one per shard of accounts ([`sekisho::metrics::flush`]), storing the
//! batches isolates flush and loading the rows [`sekisho::metrics`] reads. Counters are kept one row per
//! resolution, bucket and account in tables by day, dropped whole past their retention ([`super::counters`]);
//! key fingerprints unused for 30 days and rejections beyond the ring are deleted on every write (once per
//! flush).
//! The tables are `WITHOUT ROWID`: a row is one B-tree entry, not a row plus an index entry, so an upsert
//! writes one row.

use std::cell::{RefCell, RefMut};

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use sekisho::metrics::alert::{self, Alert};
use sekisho::metrics::store::{
    alert_candidates, invalid_signature_key, AlertState, Loaded, MetricsCall, RecentRejections,
    Recorded, JUMP_BASELINE_BUCKETS, KEY_RETENTION_MS,
};
use sekisho::metrics::tables::CounterTables;
use sekisho::metrics::view;
use sekisho::metrics::window::Resolution;
use sekisho::metrics::{KeyRow, RejectionRow, SeenRow, Writes, REJECTION_RING};

use super::counters;

#[durable_object]
pub struct Metrics {
    state: State,
    /// The counter tables, read from the schema once per instance and kept up to date by it (the only writer).
    tables: RefCell<Option<CounterTables>>,
}

#[derive(Deserialize)]
struct KeyRecord {
    channel: String,
    account: String,
    fingerprint: String,
    matched: i64,
    last_matched: i64,
}

#[derive(Deserialize)]
struct SeenRecord {
    channel: String,
    account: String,
    last_event: i64,
}

#[derive(Deserialize)]
struct RejectionRecord {
    at: i64,
    channel: String,
    account: String,
    reason: String,
}

#[derive(Deserialize)]
struct Number {
    n: Option<i64>,
}

pub(super) fn ms(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(super) fn db(value: u64) -> worker::SqlStorageValue {
    i64::try_from(value).unwrap_or(i64::MAX).into()
}

impl DurableObject for Metrics {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in [
            "CREATE TABLE IF NOT EXISTS keys (channel TEXT NOT NULL, account TEXT NOT NULL, fingerprint TEXT NOT NULL, matched INTEGER NOT NULL, last_matched INTEGER NOT NULL, PRIMARY KEY (channel, account, fingerprint)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS seen (channel TEXT NOT NULL, account TEXT NOT NULL, last_event INTEGER NOT NULL, PRIMARY KEY (channel, account)) WITHOUT ROWID",
            // INTEGER PRIMARY KEY is the rowid itself: one entry per row already.
            "CREATE TABLE IF NOT EXISTS rejections (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, channel TEXT NOT NULL, account TEXT NOT NULL, reason TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS failing (channel TEXT NOT NULL, account TEXT NOT NULL, since INTEGER NOT NULL, PRIMARY KEY (channel, account)) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS alerts_sent (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID",
        ] {
            let _ = sql.exec(statement, None);
        }
        Metrics {
            state,
            tables: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        let call = req.json::<MetricsCall>().await?;
        // From here on nothing waits: the call runs to its answer before the object takes another.
        let mut tables = self.tables(&sql)?;
        match call {
            MetricsCall::Record {
                writes,
                now_ms,
                alerts,
            } => {
                write(&sql, &mut tables, &writes, now_ms)?;
                let alerts = if alerts {
                    decide_alerts(&sql, &tables, &writes, now_ms)?
                } else {
                    Vec::new()
                };
                Response::from_json(&Recorded { alerts })
            }
            MetricsCall::Load { window, now_ms } => Response::from_json(&load(
                &sql,
                &tables,
                window.resolution(),
                window.since_ms(now_ms),
            )?),
            MetricsCall::Series {
                channel,
                account,
                window,
                now_ms,
            } => {
                let loaded = load(&sql, &tables, window.resolution(), window.since_ms(now_ms))?;
                let series = view::series(&loaded.counters, &channel, &account, window, now_ms);
                Response::from_json(&series)
            }
            MetricsCall::Rejections { limit } => {
                let limit = limit.clamp(1, REJECTION_RING) as i64;
                let rows: Vec<RejectionRecord> = sql
                    .exec(
                        "SELECT at, channel, account, reason FROM rejections ORDER BY seq DESC LIMIT ?",
                        vec![limit.into()],
                    )?
                    .to_array()?;
                let rejections = rows
                    .into_iter()
                    .map(|r| RejectionRow {
                        at_ms: ms(r.at),
                        channel: r.channel,
                        account: r.account,
                        reason: r.reason,
                    })
                    .collect();
                Response::from_json(&RecentRejections { rejections })
            }
        }
    }
}

impl Metrics {
    /// The counter tables, read from the schema on the instance's first call.
    fn tables(&self, sql: &SqlStorage) -> Result<RefMut<'_, CounterTables>> {
        let mut slot = self.tables.borrow_mut();
        if slot.is_none() {
            *slot = Some(counters::read_schema(sql)?);
        }
        Ok(RefMut::map(slot, |slot| {
            slot.get_or_insert_with(CounterTables::default)
        }))
    }
}

fn write(sql: &SqlStorage, tables: &mut CounterTables, writes: &Writes, now_ms: u64) -> Result<()> {
    counters::write(sql, tables, &writes.counters, now_ms)?;
    for row in &writes.keys {
        sql.exec(
            "INSERT INTO keys (channel, account, fingerprint, matched, last_matched) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (channel, account, fingerprint) DO UPDATE SET matched = matched + excluded.matched, \
             last_matched = max(last_matched, excluded.last_matched)",
            vec![
                row.channel.as_str().into(),
                row.account.as_str().into(),
                row.fingerprint.as_str().into(),
                db(row.matched),
                db(row.last_matched_ms),
            ],
        )?;
    }
    for row in &writes.seen {
        sql.exec(
            "INSERT INTO seen (channel, account, last_event) VALUES (?, ?, ?) \
             ON CONFLICT (channel, account) DO UPDATE SET last_event = max(last_event, excluded.last_event)",
            vec![
                row.channel.as_str().into(),
                row.account.as_str().into(),
                db(row.last_event_ms),
            ],
        )?;
    }
    for row in &writes.rejections {
        sql.exec(
            "INSERT INTO rejections (at, channel, account, reason) VALUES (?, ?, ?, ?)",
            vec![
                db(row.at_ms),
                row.channel.as_str().into(),
                row.account.as_str().into(),
                row.reason.as_str().into(),
            ],
        )?;
    }
    for update in &writes.failing {
        let (channel, account) = (update.channel.as_str(), update.account.as_str());
        if update.recovered {
            sql.exec(
                "DELETE FROM failing WHERE channel = ? AND account = ?",
                vec![channel.into(), account.into()],
            )?;
        }
        if let Some(since) = update.failing_since_ms {
            sql.exec(
                "INSERT OR IGNORE INTO failing (channel, account, since) VALUES (?, ?, ?)",
                vec![channel.into(), account.into(), db(since)],
            )?;
        }
    }
    sql.exec(
        "DELETE FROM keys WHERE last_matched < ?",
        vec![db(now_ms.saturating_sub(KEY_RETENTION_MS))],
    )?;
    if !writes.rejections.is_empty() {
        sql.exec(
            "DELETE FROM rejections WHERE seq <= (SELECT max(seq) FROM rejections) - ?",
            vec![(REJECTION_RING as i64).into()],
        )?;
    }
    Ok(())
}

fn load(
    sql: &SqlStorage,
    tables: &CounterTables,
    resolution: Resolution,
    since_ms: u64,
) -> Result<Loaded> {
    let counters = counters::load(sql, tables, resolution, since_ms)?;
    let keys: Vec<KeyRecord> = sql
        .exec(
            "SELECT channel, account, fingerprint, matched, last_matched FROM keys",
            None,
        )?
        .to_array()?;
    let seen: Vec<SeenRecord> = sql
        .exec("SELECT channel, account, last_event FROM seen", None)?
        .to_array()?;
    Ok(Loaded {
        counters,
        keys: keys
            .into_iter()
            .map(|r| KeyRow {
                channel: r.channel,
                account: r.account,
                fingerprint: r.fingerprint,
                matched: ms(r.matched),
                last_matched_ms: ms(r.last_matched),
            })
            .collect(),
        seen: seen
            .into_iter()
            .map(|r| SeenRow {
                channel: r.channel,
                account: r.account,
                last_event_ms: ms(r.last_event),
            })
            .collect(),
    })
}

struct StoredAlertState<'a> {
    sql: &'a SqlStorage,
    tables: &'a CounterTables,
    now_ms: u64,
}

/// The one number a query selects as `n` (0 when there is none or the query fails).
pub(super) fn number(sql: &SqlStorage, query: &str, bindings: Vec<worker::SqlStorageValue>) -> u64 {
    sql.exec(query, bindings)
        .and_then(|cursor| cursor.to_array::<Number>())
        .ok()
        .and_then(|rows| rows.first().and_then(|row| row.n))
        .map_or(0, ms)
}

impl AlertState for StoredAlertState<'_> {
    fn signature_counts(&self, channel: &str, account: &str) -> (u64, u64) {
        let resolution = Resolution::FiveMinutes;
        let current = resolution.bucket_start(self.now_ms);
        let baseline_start = current.saturating_sub(JUMP_BASELINE_BUCKETS * resolution.bucket_ms());
        let metric = invalid_signature_key();
        let sum = |from: u64, to: u64| {
            counters::sum(
                self.sql,
                self.tables,
                (channel, account),
                (resolution, &metric),
                (from, to),
            )
            .unwrap_or(0)
        };
        (
            sum(current, current + resolution.bucket_ms()),
            sum(baseline_start, current),
        )
    }

    fn failing_since(&self, channel: &str, account: &str) -> Option<u64> {
        let since = number(
            self.sql,
            "SELECT since AS n FROM failing WHERE channel = ? AND account = ?",
            vec![channel.into(), account.into()],
        );
        (since > 0).then_some(since)
    }
}

fn decide_alerts(
    sql: &SqlStorage,
    tables: &CounterTables,
    writes: &Writes,
    now_ms: u64,
) -> Result<Vec<Alert>> {
    let state = StoredAlertState {
        sql,
        tables,
        now_ms,
    };
    let candidates = alert_candidates(writes, &state, now_ms);
    let last_sent = |key: &str| {
        let at = number(
            sql,
            "SELECT at AS n FROM alerts_sent WHERE key = ?",
            vec![key.into()],
        );
        (at > 0).then_some(at)
    };
    let alerts = alert::to_send(candidates, last_sent, now_ms);
    for alert in &alerts {
        sql.exec(
            "INSERT OR REPLACE INTO alerts_sent (key, at) VALUES (?, ?)",
            vec![alert.key().into(), db(now_ms)],
        )?;
    }
    Ok(alerts)
}
