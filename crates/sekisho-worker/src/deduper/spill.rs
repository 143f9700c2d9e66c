//! The spill: events the queue refused, kept in the object's SQLite with their claims and sent on by the
//! alarm, oldest first, with a backoff while the queue keeps refusing ([`sekisho::dedup::drain_delay_ms`]).

use serde::Deserialize;
use worker::{Env, Result, SqlStorage};

use super::super::durable::count;
use super::super::{emit, queue_message, EnvBindings};
use sekisho::dedup::SPILL_DRAIN_MAX_MESSAGES;
use sekisho::delivery::{batches, QueueSet};
use sekisho::log;

#[derive(Deserialize)]
struct SpillRow {
    seq: i64,
    message: String,
}

/// Sends spilled messages to the primary queue, oldest first, deleting each batch once sent. Returns the
/// number of failed drains in a row (0 after a drain that emptied or advanced the spill).
pub(super) async fn drain(env: &Env, sql: &SqlStorage) -> Result<u32> {
    let rows: Vec<SpillRow> = sql
        .exec(
            "SELECT seq, message FROM spill ORDER BY seq LIMIT ?",
            vec![(SPILL_DRAIN_MAX_MESSAGES as i64).into()],
        )?
        .to_array()?;
    if rows.is_empty() {
        return Ok(0);
    }
    let queues = QueueSet::from_bindings(&EnvBindings::of(env));
    let queue = env.queue(queues.primary())?;
    let mut seqs = rows.iter().map(|row| row.seq);
    let messages: Vec<String> = rows.iter().map(|row| row.message.clone()).collect();
    for batch in batches(messages) {
        let sent: Vec<i64> = seqs.by_ref().take(batch.len()).collect();
        let batch: Vec<_> = batch.into_iter().map(|m| queue_message(m, None)).collect();
        if let Err(error) = queue.send_batch(batch).await {
            let failures = drain_failures(sql)?.saturating_add(1);
            sql.exec(
                "UPDATE drain SET failures = ? WHERE id = 0",
                vec![i64::from(failures).into()],
            )?;
            let waiting = count(sql, "SELECT COUNT(*) AS n FROM spill")?;
            emit(&log::spill_drain_failed(
                &drain_source(sql)?,
                waiting.max(0) as usize,
                &error.to_string(),
            ));
            return Ok(failures);
        }
        for seq in sent {
            sql.exec("DELETE FROM spill WHERE seq = ?", vec![seq.into()])?;
        }
    }
    sql.exec("DELETE FROM drain", None)?;
    Ok(0)
}

fn drain_source(sql: &SqlStorage) -> Result<String> {
    #[derive(Deserialize)]
    struct Source {
        source: String,
    }
    let rows: Vec<Source> = sql
        .exec("SELECT source FROM drain WHERE id = 0", None)?
        .to_array()?;
    Ok(rows
        .into_iter()
        .next()
        .map(|r| r.source)
        .unwrap_or_default())
}

fn drain_failures(sql: &SqlStorage) -> Result<u32> {
    let failures = count(sql, "SELECT failures AS n FROM drain WHERE id = 0")?;
    Ok(failures.clamp(0, i64::from(u32::MAX)) as u32)
}
