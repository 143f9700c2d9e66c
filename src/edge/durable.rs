//! Durable Objects with SQLite storage: `Deduper` (one per channel/account: event ids seen within the
//! retention window) and `DeadLetters` (one instance: deliveries that will not be retried any more).

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::EnvBindings;
use crate::delivery::{dedup_retention_ms, DeadLetter};

#[derive(Serialize, Deserialize)]
pub(super) struct DedupRequest {
    pub release: bool,
    pub ids: Vec<String>,
    pub now_ms: u64,
}

#[derive(Serialize, Deserialize)]
pub(super) struct DedupAnswer {
    /// One flag per requested id: true when this request claimed it first.
    pub fresh: Vec<bool>,
}

#[derive(Deserialize)]
struct Row {
    #[allow(dead_code)]
    id: String,
}

const PURGE_EVERY_MS: i64 = 60 * 60 * 1000;

#[durable_object]
pub struct Deduper {
    state: State,
    env: Env,
}

impl DurableObject for Deduper {
    fn new(state: State, env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL)",
            None,
        );
        Deduper { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let request: DedupRequest = req.json().await?;
        let sql = self.state.storage().sql();
        let mut fresh = Vec::with_capacity(request.ids.len());
        for id in &request.ids {
            if request.release {
                sql.exec("DELETE FROM seen WHERE id = ?", vec![id.as_str().into()])?;
                fresh.push(true);
            } else {
                // INSERT … RETURNING yields a row only when the id was not there yet.
                let inserted: Vec<Row> = sql
                    .exec(
                        "INSERT INTO seen (id, seen_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING RETURNING id",
                        vec![id.as_str().into(), (request.now_ms as i64).into()],
                    )?
                    .to_array()?;
                fresh.push(!inserted.is_empty());
            }
        }
        if self.state.storage().get_alarm().await?.is_none() {
            self.state
                .storage()
                .set_alarm(request.now_ms as i64 + PURGE_EVERY_MS)
                .await?;
        }
        Response::from_json(&DedupAnswer { fresh })
    }

    async fn alarm(&self) -> Result<Response> {
        let now = worker::Date::now().as_millis() as i64;
        let retention = dedup_retention_ms(&EnvBindings(&self.env)) as i64;
        let sql = self.state.storage().sql();
        sql.exec(
            "DELETE FROM seen WHERE seen_at < ?",
            vec![(now - retention).into()],
        )?;
        #[derive(Deserialize)]
        struct Count {
            n: i64,
        }
        let remaining: Vec<Count> = sql
            .exec("SELECT COUNT(*) AS n FROM seen", None)?
            .to_array()?;
        if remaining.first().is_some_and(|c| c.n > 0) {
            self.state.storage().set_alarm(now + PURGE_EVERY_MS).await?;
        }
        Response::ok("")
    }
}

#[derive(Serialize, Deserialize)]
pub(super) enum DeadLetterRequest {
    Put(DeadLetter),
    List,
    /// Removes and returns one (by webhook id) or all.
    Take(Option<String>),
}

#[derive(Deserialize)]
struct RecordRow {
    record: String,
}

#[durable_object]
pub struct DeadLetters {
    state: State,
}

impl DurableObject for DeadLetters {
    fn new(state: State, _env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS dead (webhook_id TEXT PRIMARY KEY, record TEXT NOT NULL, dead_at INTEGER NOT NULL)",
            None,
        );
        DeadLetters { state }
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
        match req.json::<DeadLetterRequest>().await? {
            DeadLetterRequest::Put(letter) => {
                let record = serde_json::to_string(&letter)?;
                sql.exec(
                    "INSERT OR REPLACE INTO dead (webhook_id, record, dead_at) VALUES (?, ?, ?)",
                    vec![
                        letter.webhook_id.as_str().into(),
                        record.into(),
                        (letter.dead_at_ms as i64).into(),
                    ],
                )?;
                Response::from_json(&Vec::<DeadLetter>::new())
            }
            DeadLetterRequest::List => Response::from_json(&read(
                "SELECT record FROM dead ORDER BY dead_at LIMIT 1000",
                vec![],
            )?),
            DeadLetterRequest::Take(None) => {
                let letters = read(
                    "SELECT record FROM dead ORDER BY dead_at LIMIT 1000",
                    vec![],
                )?;
                for letter in &letters {
                    sql.exec(
                        "DELETE FROM dead WHERE webhook_id = ?",
                        vec![letter.webhook_id.as_str().into()],
                    )?;
                }
                Response::from_json(&letters)
            }
            DeadLetterRequest::Take(Some(id)) => {
                let letters = read(
                    "SELECT record FROM dead WHERE webhook_id = ?",
                    vec![id.as_str().into()],
                )?;
                sql.exec(
                    "DELETE FROM dead WHERE webhook_id = ?",
                    vec![id.as_str().into()],
                )?;
                Response::from_json(&letters)
            }
        }
    }
}
