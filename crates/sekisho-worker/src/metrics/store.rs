//! The `Metrics` Durable Object (SQLite): one per shard of accounts ([`sekisho::metrics::flush`]), storing the
//! batches isolates flush and loading the rows [`sekisho::metrics`] reads. Counters are kept one row per
//! resolution, bucket and account in tables by day, dropped whole past their retention ([`super::counters`]);
//! the latest rejections one row per flushed batch ([`super::rejections`]); key fingerprints unused for 30 days
//! are deleted on every write (once per flush).
//! Each table is made when first written ([`sekisho::metrics::schema`]), never in the constructor: the schema
//! is read once per instance, and a read of a table that is not there answers empty.

use std::cell::{RefCell, RefMut};

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use sekisho::metrics::alert::{self, Alert};
use sekisho::metrics::schema::{Schema, Table};
use sekisho::metrics::store::{
    alert_candidates, invalid_signature_key, AlertState, Loaded, MetricsCall, Recorded,
    JUMP_BASELINE_BUCKETS, KEY_RETENTION_MS,
};
use sekisho::metrics::view;
use sekisho::metrics::window::Resolution;
use sekisho::metrics::{KeyRow, SeenRow, Writes};

use super::{counters, rejections};

#[durable_object]
pub struct Metrics {
    state: State,
    /// The object's tables, read from its schema once per instance and kept up to date by it (the only writer).
    schema: RefCell<Option<Schema>>,
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
struct TableName {
    name: String,
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
        Metrics {
            state,
            schema: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        let call = req.json::<MetricsCall>().await?;
        // From here on nothing waits: the call runs to its answer before the object takes another.
        let mut schema = self.schema(&sql)?;
        match call {
            MetricsCall::Record {
                writes,
                now_ms,
                alerts,
            } => {
                write(&sql, &mut schema, &writes, now_ms)?;
                let alerts = if alerts {
                    decide_alerts(&sql, &mut schema, &writes, now_ms)?
                } else {
                    Vec::new()
                };
                Response::from_json(&Recorded { alerts })
            }
            MetricsCall::Load { window, now_ms } => Response::from_json(&load(
                &sql,
                &schema,
                window.resolution(),
                window.since_ms(now_ms),
            )?),
            MetricsCall::Series {
                channel,
                account,
                window,
                now_ms,
            } => {
                let loaded = load(&sql, &schema, window.resolution(), window.since_ms(now_ms))?;
                let series = view::series(&loaded.counters, &channel, &account, window, now_ms);
                Response::from_json(&series)
            }
            MetricsCall::Rejections { limit } => {
                Response::from_json(&rejections::recent(&sql, &schema, limit)?)
            }
        }
    }
}

impl Metrics {
    /// The object's tables, read from the schema on the instance's first call.
    fn schema(&self, sql: &SqlStorage) -> Result<RefMut<'_, Schema>> {
        let mut slot = self.schema.borrow_mut();
        if slot.is_none() {
            let names: Vec<TableName> = sql
                .exec("SELECT name FROM sqlite_master WHERE type = 'table'", None)?
                .to_array()?;
            *slot = Some(Schema::from_names(
                names.iter().map(|row| row.name.as_str()),
            ));
        }
        Ok(RefMut::map(slot, |slot| {
            slot.get_or_insert_with(Schema::default)
        }))
    }
}

/// Makes `table` unless it is there.
pub(super) fn ensure(sql: &SqlStorage, schema: &mut Schema, table: Table) -> Result<()> {
    if let Some(create) = schema.to_make(table) {
        sql.exec(create, None)?;
        schema.made(table);
    }
    Ok(())
}

fn write(sql: &SqlStorage, schema: &mut Schema, writes: &Writes, now_ms: u64) -> Result<()> {
    counters::write(sql, &mut schema.counters, &writes.counters, now_ms)?;
    if !writes.keys.is_empty() {
        ensure(sql, schema, Table::Keys)?;
    }
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
    if !writes.seen.is_empty() {
        ensure(sql, schema, Table::Seen)?;
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
    rejections::store(sql, schema, &writes.rejections)?;
    for update in &writes.failing {
        let (channel, account) = (update.channel.as_str(), update.account.as_str());
        if update.recovered && schema.has(Table::Failing) {
            sql.exec(
                "DELETE FROM failing WHERE channel = ? AND account = ?",
                vec![channel.into(), account.into()],
            )?;
        }
        if let Some(since) = update.failing_since_ms {
            ensure(sql, schema, Table::Failing)?;
            sql.exec(
                "INSERT OR IGNORE INTO failing (channel, account, since) VALUES (?, ?, ?)",
                vec![channel.into(), account.into(), db(since)],
            )?;
        }
    }
    if schema.has(Table::Keys) {
        sql.exec(
            "DELETE FROM keys WHERE last_matched < ?",
            vec![db(now_ms.saturating_sub(KEY_RETENTION_MS))],
        )?;
    }
    Ok(())
}

fn load(
    sql: &SqlStorage,
    schema: &Schema,
    resolution: Resolution,
    since_ms: u64,
) -> Result<Loaded> {
    let counters = counters::load(sql, &schema.counters, resolution, since_ms)?;
    let keys: Vec<KeyRecord> = if schema.has(Table::Keys) {
        sql.exec(
            "SELECT channel, account, fingerprint, matched, last_matched FROM keys",
            None,
        )?
        .to_array()?
    } else {
        Vec::new()
    };
    let seen: Vec<SeenRecord> = if schema.has(Table::Seen) {
        sql.exec("SELECT channel, account, last_event FROM seen", None)?
            .to_array()?
    } else {
        Vec::new()
    };
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
    schema: &'a Schema,
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
                &self.schema.counters,
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
        if !self.schema.has(Table::Failing) {
            return None;
        }
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
    schema: &mut Schema,
    writes: &Writes,
    now_ms: u64,
) -> Result<Vec<Alert>> {
    let state = StoredAlertState {
        sql,
        schema,
        now_ms,
    };
    let candidates = alert_candidates(writes, &state, now_ms);
    let sent_before = schema.has(Table::AlertsSent);
    let last_sent = |key: &str| {
        if !sent_before {
            return None;
        }
        let at = number(
            sql,
            "SELECT at AS n FROM alerts_sent WHERE key = ?",
            vec![key.into()],
        );
        (at > 0).then_some(at)
    };
    let alerts = alert::to_send(candidates, last_sent, now_ms);
    if !alerts.is_empty() {
        ensure(sql, schema, Table::AlertsSent)?;
    }
    for alert in &alerts {
        sql.exec(
            "INSERT OR REPLACE INTO alerts_sent (key, at) VALUES (?, ?)",
            vec![alert.key().into(), db(now_ms)],
        )?;
    }
    Ok(alerts)
}
