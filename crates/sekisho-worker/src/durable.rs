//! The dead-letter store, a Durable Object with SQLite storage performing the core's decisions
//! ([`sekisho::delivery::dead_letter`]): `DeadLetters`, one per shard of webhook ids (`dead-letters#{shard}`; the
//! single `dead-letters` of earlier versions is still read): deliveries that will not be retried any more,
//! paged, replayed, deleted, purged after their retention. The de-duplication object is in `deduper.rs`.

use serde::{Deserialize, Serialize};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, ScheduledTime, SqlStorage, State,
};

use super::EnvBindings;
use sekisho::delivery::dead_letter::{self, Cursor, Page, PageRequest};
use sekisho::delivery::DeadLetter;

#[derive(Deserialize)]
struct Count {
    n: i64,
}

/// An alarm at an absolute time. `set_alarm` reads a bare number as an offset from now (workers-rs
/// `From<i64> for ScheduledTime`), so absolute times must be passed as a date.
pub(super) fn at_epoch_ms(epoch_ms: u64) -> ScheduledTime {
    ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        epoch_ms as f64,
    )))
}

pub(super) fn count(sql: &SqlStorage, query: &str) -> Result<i64> {
    let rows: Vec<Count> = sql.exec(query, None)?.to_array()?;
    Ok(rows.first().map_or(0, |c| c.n))
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
