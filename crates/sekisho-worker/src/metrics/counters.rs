//! The `Metrics` object's counter tables ([`sekisho::metrics::tables`]): one row per resolution, bucket and
//! account ([`sekisho::metrics::packed`]) in a table per resolution and day, made on first use and dropped whole
//! past the retention; the per-metric `counters` table of earlier versions read and purged row by row until
//! it is empty, then dropped.

use serde::Deserialize;
use worker::{Result, SqlStorage};

use sekisho::metrics::packed::{self, PackedRow};
use sekisho::metrics::tables::{CounterTables, CountersTable, LEGACY_TABLE};
use sekisho::metrics::window::Resolution;
use sekisho::metrics::CounterRow;

use super::store::{db, ms, number};

#[derive(Deserialize)]
struct PackedRecord {
    bucket: i64,
    channel: String,
    account: String,
    counts: String,
}

#[derive(Deserialize)]
struct LegacyRecord {
    res: i64,
    bucket: i64,
    channel: String,
    account: String,
    metric: String,
    value: i64,
}

/// Adds the batch's counters into their rows (one read and one upsert per row), then drops the tables past
/// their retention and purges the legacy table.
pub(super) fn write(
    sql: &SqlStorage,
    tables: &mut CounterTables,
    counters: &[CounterRow],
    now_ms: u64,
) -> Result<()> {
    for row in packed::group(counters) {
        let table = CountersTable::of(row.resolution, row.bucket_ms);
        // A batch put back for longer than the retention: purged at once, so not written.
        if table.expired(now_ms) {
            continue;
        }
        if tables.is_missing(&table) {
            sql.exec(&table.create_sql(), None)?;
            tables.made(table);
        }
        add(sql, &table, &row)?;
    }
    for table in tables.take_expired(now_ms) {
        sql.exec(&table.drop_sql(), None)?;
    }
    if tables.legacy {
        purge_legacy(sql, tables, now_ms)?;
    }
    Ok(())
}

fn add(sql: &SqlStorage, table: &CountersTable, row: &PackedRow) -> Result<()> {
    let key = || {
        vec![
            row.channel.as_str().into(),
            row.account.as_str().into(),
            db(row.bucket_ms),
        ]
    };
    let stored: Vec<PackedRecord> = sql.exec(&table.stored_sql(), key())?.to_array()?;
    let merged = packed::merge(stored.first().map(|s| s.counts.as_str()), &row.counts);
    let mut bindings = key();
    bindings.push(merged.into());
    sql.exec(&table.upsert_sql(), bindings)?;
    Ok(())
}

fn purge_legacy(sql: &SqlStorage, tables: &mut CounterTables, now_ms: u64) -> Result<()> {
    for resolution in Resolution::ALL {
        sql.exec(
            "DELETE FROM counters WHERE res = ? AND bucket < ?",
            vec![
                resolution.code().into(),
                db(resolution.purge_before(now_ms)),
            ],
        )?;
    }
    let left: Vec<serde::de::IgnoredAny> = sql
        .exec("SELECT 1 AS present FROM counters LIMIT 1", None)?
        .to_array()?;
    if left.is_empty() {
        sql.exec(&format!("DROP TABLE IF EXISTS {LEGACY_TABLE}"), None)?;
        tables.legacy = false;
    }
    Ok(())
}

/// Every account's counters of `resolution` in buckets from `since_ms` on.
pub(super) fn load(
    sql: &SqlStorage,
    tables: &CounterTables,
    resolution: Resolution,
    since_ms: u64,
) -> Result<Vec<CounterRow>> {
    let mut counters = Vec::new();
    for table in tables.to_read(resolution, since_ms, u64::MAX) {
        let rows: Vec<PackedRecord> = sql
            .exec(&table.window_sql(), vec![db(since_ms)])?
            .to_array()?;
        counters.extend(expanded(resolution, rows));
    }
    if tables.legacy {
        let rows: Vec<LegacyRecord> = sql
            .exec(
                "SELECT res, bucket, channel, account, metric, value FROM counters WHERE res = ? AND bucket >= ?",
                vec![resolution.code().into(), db(since_ms)],
            )?
            .to_array()?;
        counters.extend(rows.into_iter().filter_map(|r| {
            Some(CounterRow {
                resolution: Resolution::from_code(r.res)?,
                bucket_ms: ms(r.bucket),
                channel: r.channel,
                account: r.account,
                metric: r.metric,
                value: ms(r.value),
            })
        }));
    }
    Ok(counters)
}

fn expanded(resolution: Resolution, rows: Vec<PackedRecord>) -> impl Iterator<Item = CounterRow> {
    rows.into_iter().flat_map(move |r| {
        packed::expand(resolution, ms(r.bucket), &r.channel, &r.account, &r.counts)
    })
}

/// One account's count of `metric` in the `resolution` buckets starting in `[from_ms, to_ms)`.
pub(super) fn sum(
    sql: &SqlStorage,
    tables: &CounterTables,
    (channel, account): (&str, &str),
    (resolution, metric): (Resolution, &str),
    (from_ms, to_ms): (u64, u64),
) -> Result<u64> {
    let mut total: u64 = 0;
    for table in tables.to_read(resolution, from_ms, to_ms) {
        let rows: Vec<PackedRecord> = sql
            .exec(
                &table.account_sql(),
                vec![channel.into(), account.into(), db(from_ms), db(to_ms)],
            )?
            .to_array()?;
        total = rows.iter().fold(total, |sum, row| {
            sum.saturating_add(packed::count_of(&row.counts, metric))
        });
    }
    if tables.legacy {
        let legacy = number(
            sql,
            "SELECT sum(value) AS n FROM counters WHERE res = ? AND channel = ? AND account = ? AND metric = ? AND bucket >= ? AND bucket < ?",
            vec![
                resolution.code().into(),
                channel.into(),
                account.into(),
                metric.into(),
                db(from_ms),
                db(to_ms),
            ],
        );
        total = total.saturating_add(legacy);
    }
    Ok(total)
}
