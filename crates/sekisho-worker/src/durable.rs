//! Durable Objects with SQLite storage, performing the core's decisions ([`sekisho::dedup`],
//! [`sekisho::delivery::dead_letter`]):
//! - `Deduper`, one per channel/account and shard (`/{channel}/{account}#{shard}`, see `sekisho::dedup::shards`): two-phase event claims, replay guards, and the spill of events the
//!   queue refused, drained by alarm.
//! - `DeadLetters`, one per shard of webhook ids (`dead-letters#{shard}`, see
//!   `sekisho::delivery::dead_letter`; the single `dead-letters` of earlier versions is still read): deliveries
//!   that will not be retried any more, paged, replayed, deleted, purged after their retention.

use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, ScheduledTime, SqlStorage, State,
};

use super::{emit, queue_message, EnvBindings, QUEUE_BINDING};
use sekisho::channels::ReplayGuard;
use sekisho::dedup::{
    self, check_replay, Claim, DedupCall, DedupReply, ReplayCheck, StoredGuard,
    SPILL_DRAIN_MAX_MESSAGES, SPILL_FIRST_DRAIN_MS,
};
use sekisho::delivery::dead_letter::{self, Cursor, Page, PageRequest};
use sekisho::delivery::{batches, DeadLetter};
use sekisho::log;

#[derive(Deserialize)]
struct ReplyRow {
    reply: String,
}

#[derive(Deserialize)]
struct ClaimRow {
    committed: i64,
    at: i64,
}

#[derive(Deserialize)]
struct GuardRow {
    digest: String,
    expires_at: i64,
}

#[derive(Deserialize)]
struct SpillRow {
    seq: i64,
    message: String,
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[durable_object]
pub struct Deduper {
    state: State,
    env: Env,
}

/// An alarm at an absolute time. `set_alarm` reads a bare number as an offset from now (workers-rs
/// `From<i64> for ScheduledTime`), so absolute times must be passed as a date.
fn at_epoch_ms(epoch_ms: u64) -> ScheduledTime {
    ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        epoch_ms as f64,
    )))
}

fn count(sql: &SqlStorage, query: &str) -> Result<i64> {
    let rows: Vec<Count> = sql.exec(query, None)?.to_array()?;
    Ok(rows.first().map_or(0, |c| c.n))
}

impl DurableObject for Deduper {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for statement in [
            // WITHOUT ROWID: a claim is one B-tree entry, so taking it writes one row and committing it
            // (an upsert of the same key) one more; with a rowid it was a row and an index entry each.
            "CREATE TABLE IF NOT EXISTS event_claims (id TEXT PRIMARY KEY, committed INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID",
            "CREATE TABLE IF NOT EXISTS guards (key TEXT PRIMARY KEY, digest TEXT NOT NULL, expires_at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS replies (id TEXT PRIMARY KEY, reply TEXT NOT NULL, at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS spill (seq INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS drain (id INTEGER PRIMARY KEY CHECK (id = 0), failures INTEGER NOT NULL, source TEXT NOT NULL)",
            // Objects of earlier versions kept claims in `claims` (with a rowid), and before two-phase claims
            // committed ids in `seen`: moved once (both statements fail harmlessly when the table is gone).
            "INSERT OR IGNORE INTO event_claims (id, committed, at) SELECT id, committed, at FROM claims",
            "DROP TABLE IF EXISTS claims",
            "INSERT OR IGNORE INTO event_claims (id, committed, at) SELECT id, 1, seen_at FROM seen",
            "DROP TABLE IF EXISTS seen",
        ] {
            let _ = sql.exec(statement, None);
        }
        Deduper { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call: DedupCall = req.json().await?;
        let sql = self.state.storage().sql();
        let reply = match call {
            DedupCall::Claim { ids, guard, now_ms } => {
                if let Some(guard) = &guard {
                    if !self.check_guard(&sql, guard, now_ms)? {
                        return Response::from_json(&DedupReply::ReplayRefused);
                    }
                }
                let mut answers = Vec::with_capacity(ids.len());
                for id in &ids {
                    let rows: Vec<ClaimRow> = sql
                        .exec(
                            "SELECT committed, at FROM event_claims WHERE id = ?",
                            vec![id.as_str().into()],
                        )?
                        .to_array()?;
                    let existing = rows.first().map(|row| {
                        let at = row.at.max(0) as u64;
                        if row.committed != 0 {
                            Claim::Committed { at_ms: at }
                        } else {
                            Claim::Pending { since_ms: at }
                        }
                    });
                    let (answer, write) = dedup::claim(existing, now_ms);
                    if let Some(Claim::Pending { since_ms }) = write {
                        sql.exec(
                            "INSERT INTO event_claims (id, committed, at) VALUES (?, 0, ?) ON CONFLICT (id) DO UPDATE SET committed = 0, at = excluded.at",
                            vec![id.as_str().into(), (since_ms as i64).into()],
                        )?;
                    }
                    answers.push(answer);
                }
                self.ensure_alarm(now_ms, None).await?;
                DedupReply::Claimed { answers }
            }
            DedupCall::Commit { ids, now_ms } => {
                for id in &ids {
                    commit(&sql, id, now_ms)?;
                }
                DedupReply::Done
            }
            DedupCall::Release { ids } => {
                for id in &ids {
                    sql.exec(
                        "DELETE FROM event_claims WHERE id = ? AND committed = 0",
                        vec![id.as_str().into()],
                    )?;
                }
                DedupReply::Done
            }
            DedupCall::KeepReply { id, reply } => {
                let at = reply.at_ms;
                let text = serde_json::to_string(&reply)
                    .map_err(|e| worker::Error::RustError(e.to_string()))?;
                sql.exec(
                    "INSERT OR REPLACE INTO replies (id, reply, at) VALUES (?, ?, ?)",
                    vec![id.as_str().into(), text.as_str().into(), (at as i64).into()],
                )?;
                self.ensure_alarm(at, None).await?;
                DedupReply::Done
            }
            DedupCall::KeptReply { id } => {
                let rows: Vec<ReplyRow> = sql
                    .exec(
                        "SELECT reply FROM replies WHERE id = ?",
                        vec![id.as_str().into()],
                    )?
                    .to_array()?;
                let reply = rows
                    .first()
                    .and_then(|row| serde_json::from_str(&row.reply).ok());
                DedupReply::Kept { reply }
            }
            DedupCall::Spill {
                ids,
                messages,
                now_ms,
                source,
            } => {
                sql.exec(
                    "INSERT OR IGNORE INTO drain (id, failures, source) VALUES (0, 0, ?)",
                    vec![source.as_str().into()],
                )?;
                for message in &messages {
                    sql.exec(
                        "INSERT INTO spill (message) VALUES (?)",
                        vec![message.as_str().into()],
                    )?;
                }
                for id in &ids {
                    commit(&sql, id, now_ms)?;
                }
                self.ensure_alarm(now_ms, Some(now_ms + SPILL_FIRST_DRAIN_MS))
                    .await?;
                DedupReply::Done
            }
        };
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let now = super::now_ms();
        let bindings = EnvBindings::of(&self.env);
        let sql = self.state.storage().sql();
        let failures = self.drain(&sql).await?;
        let oldest_kept = now.saturating_sub(dedup::retention_ms(&bindings)) as i64;
        sql.exec(
            "DELETE FROM event_claims WHERE at < ?",
            vec![oldest_kept.into()],
        )?;
        sql.exec(
            "DELETE FROM guards WHERE expires_at < ?",
            vec![(now as i64).into()],
        )?;
        sql.exec(
            "DELETE FROM replies WHERE at < ?",
            vec![(now.saturating_sub(dedup::REPLY_KEPT_MS) as i64).into()],
        )?;
        let spill_waiting = count(&sql, "SELECT COUNT(*) AS n FROM spill")? > 0;
        let rows = count(
            &sql,
            "SELECT (SELECT COUNT(*) FROM event_claims) + (SELECT COUNT(*) FROM guards) + (SELECT COUNT(*) FROM replies) AS n",
        )? > 0;
        if let Some(at) = dedup::next_alarm_ms(now, spill_waiting, failures, rows) {
            self.state.storage().set_alarm(at_epoch_ms(at)).await?;
        }
        Response::ok("")
    }
}

fn commit(sql: &SqlStorage, id: &str, now_ms: u64) -> Result<()> {
    sql.exec(
        "INSERT INTO event_claims (id, committed, at) VALUES (?, 1, ?) ON CONFLICT (id) DO UPDATE SET committed = 1, at = excluded.at",
        vec![id.into(), (now_ms as i64).into()],
    )?;
    Ok(())
}

impl Deduper {
    /// False when the signed query was already used with another body.
    fn check_guard(&self, sql: &SqlStorage, guard: &ReplayGuard, now_ms: u64) -> Result<bool> {
        let rows: Vec<GuardRow> = sql
            .exec(
                "SELECT digest, expires_at FROM guards WHERE key = ?",
                vec![guard.key.as_str().into()],
            )?
            .to_array()?;
        let stored = rows.first().map(|row| StoredGuard {
            body_digest: row.digest.clone(),
            expires_at_ms: row.expires_at.max(0) as u64,
        });
        match check_replay(stored.as_ref(), guard, now_ms) {
            ReplayCheck::OtherBody => Ok(false),
            ReplayCheck::SameBody => Ok(true),
            ReplayCheck::First => {
                sql.exec(
                    "INSERT OR REPLACE INTO guards (key, digest, expires_at) VALUES (?, ?, ?)",
                    vec![
                        guard.key.as_str().into(),
                        guard.body_digest.as_str().into(),
                        (guard.expires_at_ms as i64).into(),
                    ],
                )?;
                Ok(true)
            }
        }
    }

    /// Sets the alarm to `wanted` (or, with none, to the purge time) unless an earlier one is set.
    async fn ensure_alarm(&self, now_ms: u64, wanted: Option<u64>) -> Result<()> {
        let wanted = wanted.unwrap_or(now_ms + dedup::PURGE_EVERY_MS) as i64;
        let storage = self.state.storage();
        match storage.get_alarm().await? {
            Some(current) if current <= wanted => Ok(()),
            _ => storage.set_alarm(at_epoch_ms(wanted as u64)).await,
        }
    }

    /// Sends spilled messages to the queue, oldest first, deleting each batch once sent. Returns the number of
    /// failed drains in a row (0 after a drain that emptied or advanced the spill).
    async fn drain(&self, sql: &SqlStorage) -> Result<u32> {
        let rows: Vec<SpillRow> = sql
            .exec(
                "SELECT seq, message FROM spill ORDER BY seq LIMIT ?",
                vec![(SPILL_DRAIN_MAX_MESSAGES as i64).into()],
            )?
            .to_array()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let queue = self.env.queue(QUEUE_BINDING)?;
        let mut seqs = rows.iter().map(|row| row.seq);
        let messages: Vec<String> = rows.iter().map(|row| row.message.clone()).collect();
        for batch in batches(messages) {
            let sent: Vec<i64> = seqs.by_ref().take(batch.len()).collect();
            let batch: Vec<_> = batch.into_iter().map(|m| queue_message(m, None)).collect();
            if let Err(error) = queue.send_batch(batch).await {
                let failures = self.drain_failures(sql)?.saturating_add(1);
                sql.exec(
                    "UPDATE drain SET failures = ? WHERE id = 0",
                    vec![i64::from(failures).into()],
                )?;
                let waiting = count(sql, "SELECT COUNT(*) AS n FROM spill")?;
                emit(&log::spill_drain_failed(
                    &self.drain_source(sql)?,
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

    fn drain_source(&self, sql: &SqlStorage) -> Result<String> {
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

    fn drain_failures(&self, sql: &SqlStorage) -> Result<u32> {
        let rows: Vec<Count> = sql
            .exec("SELECT failures AS n FROM drain WHERE id = 0", None)?
            .to_array()?;
        Ok(rows
            .first()
            .map_or(0, |c| c.n.clamp(0, i64::from(u32::MAX)) as u32))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum DeadLetterCall {
    Put {
        letter: DeadLetter,
    },
    Page {
        page: PageRequest,
    },
    Get {
        webhook_id: String,
    },
    /// Deletes letters exactly as they were read (id and time of death), so a letter that died again after it
    /// was read — replayed, failed, dead-lettered anew — is kept.
    Delete {
        letters: Vec<Cursor>,
    },
    DeleteId {
        webhook_id: String,
    },
}

#[derive(Serialize, Deserialize)]
pub(super) struct Deleted {
    pub deleted: u64,
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
}

#[durable_object]
pub struct DeadLetters {
    state: State,
    env: Env,
}

const DEAD_LETTER_PURGE_EVERY_MS: i64 = 60 * 60 * 1000;

impl DurableObject for DeadLetters {
    fn new(state: State, env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS dead (webhook_id TEXT PRIMARY KEY, record TEXT NOT NULL, dead_at INTEGER NOT NULL)",
            None,
        );
        DeadLetters { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        let read =
            |query: &str, bindings: Vec<worker::SqlStorageValue>| -> Result<Vec<DeadLetter>> {
                let rows: Vec<RecordRow> = sql.exec(query, bindings)?.to_array()?;
                Ok(rows
                    .iter()
                    .filter_map(|row| serde_json::from_str(&row.record).ok())
                    .collect())
            };
        match req.json::<DeadLetterCall>().await? {
            DeadLetterCall::Put { letter } => {
                let record = serde_json::to_string(&letter)?;
                sql.exec(
                    "INSERT OR REPLACE INTO dead (webhook_id, record, dead_at) VALUES (?, ?, ?)",
                    vec![
                        letter.webhook_id.as_str().into(),
                        record.into(),
                        (letter.dead_at_ms as i64).into(),
                    ],
                )?;
                let storage = self.state.storage();
                if storage.get_alarm().await?.is_none() {
                    storage
                        .set_alarm(at_epoch_ms(
                            (letter.dead_at_ms as i64 + DEAD_LETTER_PURGE_EVERY_MS) as u64,
                        ))
                        .await?;
                }
                Response::from_json(&Deleted { deleted: 0 })
            }
            DeadLetterCall::Page { page } => {
                let total = count(&sql, "SELECT COUNT(*) AS n FROM dead")?.max(0) as u64;
                let fetch = i64::from(page.limit) + 1;
                let rows = match &page.after {
                    None => read(
                        "SELECT record FROM dead ORDER BY dead_at, webhook_id LIMIT ?",
                        vec![fetch.into()],
                    )?,
                    Some(after) => read(
                        "SELECT record FROM dead WHERE dead_at > ? OR (dead_at = ? AND webhook_id > ?) ORDER BY dead_at, webhook_id LIMIT ?",
                        vec![
                            (after.dead_at_ms as i64).into(),
                            (after.dead_at_ms as i64).into(),
                            after.webhook_id.as_str().into(),
                            fetch.into(),
                        ],
                    )?,
                };
                Response::from_json(&Page::from_rows(rows, page.limit, total))
            }
            DeadLetterCall::Get { webhook_id } => Response::from_json(&read(
                "SELECT record FROM dead WHERE webhook_id = ?",
                vec![webhook_id.as_str().into()],
            )?),
            DeadLetterCall::Delete { letters } => {
                let before = count(&sql, "SELECT COUNT(*) AS n FROM dead")?;
                for letter in &letters {
                    sql.exec(
                        "DELETE FROM dead WHERE webhook_id = ? AND dead_at = ?",
                        vec![
                            letter.webhook_id.as_str().into(),
                            (letter.dead_at_ms as i64).into(),
                        ],
                    )?;
                }
                let after = count(&sql, "SELECT COUNT(*) AS n FROM dead")?;
                Response::from_json(&Deleted {
                    deleted: (before - after).max(0) as u64,
                })
            }
            DeadLetterCall::DeleteId { webhook_id } => {
                let before = count(&sql, "SELECT COUNT(*) AS n FROM dead")?;
                sql.exec(
                    "DELETE FROM dead WHERE webhook_id = ?",
                    vec![webhook_id.as_str().into()],
                )?;
                let after = count(&sql, "SELECT COUNT(*) AS n FROM dead")?;
                Response::from_json(&Deleted {
                    deleted: (before - after).max(0) as u64,
                })
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let now = super::now_ms();
        let retention = dead_letter::retention_ms(&EnvBindings::of(&self.env));
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM dead WHERE dead_at < ?",
            vec![(now.saturating_sub(retention) as i64).into()],
        )?;
        if count(&sql, "SELECT COUNT(*) AS n FROM dead")? > 0 {
            self.state
                .storage()
                .set_alarm(at_epoch_ms(
                    (now as i64 + DEAD_LETTER_PURGE_EVERY_MS) as u64,
                ))
                .await?;
        }
        Response::ok("")
    }
}
