//! The `Metrics` object's ring of latest rejections ([`sekisho::metrics::ring`]): one row per flushed batch in
//! `rejection_batches`, the batches beyond the ring deleted in one statement; the per-rejection table of
//! earlier versions read after them until the ring hides it, then dropped.

use serde::Deserialize;
use worker::{Result, SqlStorage};

use sekisho::metrics::ring::{self, StoredBatch};
use sekisho::metrics::schema::{Schema, Table};
use sekisho::metrics::store::RecentRejections;
use sekisho::metrics::{RejectionRow, REJECTION_RING};

use super::store::{db, ensure, ms};

#[derive(Deserialize)]
struct BatchRecord {
    seq: i64,
    n: i64,
}

#[derive(Deserialize)]
struct RowsRecord {
    rows: String,
}

#[derive(Deserialize)]
struct LegacyRecord {
    at: i64,
    channel: String,
    account: String,
    reason: String,
}

/// Stores a flush's rejections (oldest first) as one row, then trims the ring.
pub(super) fn store(
    sql: &SqlStorage,
    schema: &mut Schema,
    rejections: &[RejectionRow],
) -> Result<()> {
    if rejections.is_empty() {
        return Ok(());
    }
    ensure(sql, schema, Table::RejectionBatches)?;
    sql.exec(
        "INSERT INTO rejection_batches (n, rows) VALUES (?, ?)",
        vec![db(rejections.len() as u64), ring::encode(rejections).into()],
    )?;
    let stored: Vec<BatchRecord> = sql
        .exec(
            "SELECT seq, n FROM rejection_batches ORDER BY seq DESC",
            None,
        )?
        .to_array()?;
    let stored: Vec<StoredBatch> = stored
        .into_iter()
        .map(|b| StoredBatch {
            seq: ms(b.seq),
            count: ms(b.n),
        })
        .collect();
    let trim = ring::trim(&stored, REJECTION_RING);
    if let Some(before) = trim.delete_before {
        sql.exec(
            "DELETE FROM rejection_batches WHERE seq < ?",
            vec![db(before)],
        )?;
    }
    if trim.drop_legacy && schema.has(Table::LegacyRejections) {
        sql.exec("DROP TABLE IF EXISTS rejections", None)?;
        schema.dropped(Table::LegacyRejections);
    }
    Ok(())
}

/// The latest `limit` rejections (at most the ring), newest first.
pub(super) fn recent(sql: &SqlStorage, schema: &Schema, limit: usize) -> Result<RecentRejections> {
    let limit = limit.clamp(1, REJECTION_RING);
    // Each batch holds at least one rejection: `limit` batches are enough.
    let batches: Vec<RowsRecord> = if schema.has(Table::RejectionBatches) {
        sql.exec(
            "SELECT rows FROM rejection_batches ORDER BY seq DESC LIMIT ?",
            vec![db(limit as u64)],
        )?
        .to_array()?
    } else {
        Vec::new()
    };
    let legacy: Vec<LegacyRecord> = if schema.has(Table::LegacyRejections) {
        sql.exec(
            "SELECT at, channel, account, reason FROM rejections ORDER BY seq DESC LIMIT ?",
            vec![db(limit as u64)],
        )?
        .to_array()?
    } else {
        Vec::new()
    };
    let legacy = legacy
        .into_iter()
        .map(|r| RejectionRow {
            at_ms: ms(r.at),
            channel: r.channel,
            account: r.account,
            reason: r.reason,
        })
        .collect();
    Ok(RecentRejections {
        rejections: ring::latest(batches.iter().map(|b| b.rows.as_str()), legacy, limit),
    })
}
