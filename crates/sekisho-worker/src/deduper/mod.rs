//! `Deduper`, the de-duplication Durable Object with SQLite storage: one per channel/account and shard
//! (`/{channel}/{account}#{shard}`, see `sekisho::dedup::shards`). It performs the core's decisions: the accept
//! call's step machine (`sekisho::dedup::accept`: send the new events to the queue, then claim them, or spill
//! what the queue refused), the commit of a claim held for its reply (kept in the claim's row), replay guards,
//! the drain of the spill and the purge, by alarm.
//!
//! Tables are made when first needed, not in the constructor: creating one writes two rows, and an object that
//! only ever claims should not pay for the others. Claims go into one table per span of time
//! (`sekisho::dedup::buckets`), dropped whole after the retention.

use std::cell::RefCell;
use std::collections::HashMap;

use futures_channel::oneshot;

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

mod holds;
mod schema;
mod spill;

use super::durable::{at_epoch_ms, count};
use super::{emit, queue_message, EnvBindings};
use schema::{SchemaCache, LEGACY_CLAIMS};
use sekisho::channels::ReplayGuard;
use sekisho::dedup::buckets::{lookup_sql, Span};
use sekisho::dedup::{
    self, check_replay, AcceptEvent, Claim, DedupCall, DedupReply, Hold, InFlight, KeptReply,
    Known, ReplayCheck, ShardAccept, ShardOutcome, ShardStep, StoredGuard,
};
use sekisho::delivery::QueueSet;
use sekisho::log;

/// The tables besides the claims', each made on first use.
/// `WITHOUT ROWID`: remembering a guard writes one row, not a row and an index entry (measured in workerd: 1
/// against 2; its purge deletes one row either way).
const GUARDS: &str = "CREATE TABLE IF NOT EXISTS replay_guards (key TEXT PRIMARY KEY, digest TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID";
/// Guards of earlier versions (with a rowid): read and purged until empty, then dropped.
const LEGACY_GUARDS: &str = "guards";
/// Kept replies of earlier versions, in tables of their own (now in the claims' rows): dropped by the alarm.
const LEGACY_REPLIES: [&str; 2] = ["kept_replies", "replies"];
const SPILL: &str =
    "CREATE TABLE IF NOT EXISTS spill (seq INTEGER PRIMARY KEY AUTOINCREMENT, message TEXT NOT NULL)";
const DRAIN: &str = "CREATE TABLE IF NOT EXISTS drain (id INTEGER PRIMARY KEY CHECK (id = 0), failures INTEGER NOT NULL, source TEXT NOT NULL)";

#[derive(Deserialize)]
struct ClaimRow {
    committed: i64,
    at: i64,
    reply: Option<String>,
}

#[derive(Deserialize)]
struct GuardRow {
    digest: String,
    expires_at: i64,
}

/// The accept call's event with a reply call or a replay guard, held rather than claimed (and, with
/// `edge_sends`, sent by the Worker).
struct HeldEvent {
    hold: Option<Hold>,
    edge_sends: bool,
}

#[durable_object]
pub struct Deduper {
    state: State,
    env: Env,
    schema: SchemaCache,
    /// Ids an accept call of this instance is sending right now, or holds for its commit (see
    /// `sekisho::dedup::InFlight`).
    in_flight: RefCell<InFlight>,
    /// Calls waiting for the commit of a held id, woken by it.
    commit_waiters: RefCell<HashMap<String, Vec<oneshot::Sender<()>>>>,
}

impl DurableObject for Deduper {
    fn new(state: State, env: Env) -> Self {
        Deduper {
            state,
            env,
            schema: SchemaCache::default(),
            in_flight: RefCell::new(InFlight::default()),
            commit_waiters: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call: DedupCall = req.json().await?;
        let sql = self.state.storage().sql();
        let reply = match call {
            DedupCall::Accept {
                events,
                now_ms,
                delay_s,
                source,
                hold,
                edge_sends,
            } => {
                let held = HeldEvent { hold, edge_sends };
                self.accept(&sql, events, now_ms, delay_s, &source, held)
                    .await?
            }
            DedupCall::CheckGuard { guard, now_ms } => {
                if self.check_guard(&sql, &guard, now_ms)? {
                    // The guard row is purged once it expired, by the hourly round.
                    self.ensure_alarm(now_ms, None).await?;
                    DedupReply::Done
                } else {
                    DedupReply::ReplayRefused
                }
            }
            DedupCall::Commit {
                id,
                reply,
                now_ms,
                spill,
                source,
            } => {
                if spill.is_empty() {
                    self.commit(&sql, &id, reply.as_ref(), now_ms).await?;
                } else {
                    self.commit_spilling(&sql, &id, &spill, now_ms, &source)
                        .await?;
                }
                DedupReply::Done
            }
        };
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let now = super::now_ms();
        let bindings = EnvBindings::of(&self.env);
        let retention = dedup::retention_ms(&bindings);
        let sql = self.state.storage().sql();
        let failures = if self.schema.has_table(&sql, "spill")? {
            spill::drain(&self.env, &sql).await?
        } else {
            0
        };
        let expired: Vec<Span> = self.schema.with(&sql, |schema| {
            let (expired, kept): (Vec<Span>, Vec<Span>) = schema
                .spans
                .iter()
                .partition(|span| span.expired(now, retention));
            schema.spans = kept;
            expired
        })?;
        for span in expired {
            sql.exec(&span.drop_sql(), None)?;
        }
        if self.schema.has_table(&sql, LEGACY_CLAIMS)?
            && !purge_expired(&sql, LEGACY_CLAIMS, "at", now.saturating_sub(retention))?
        {
            self.schema.drop_table(&sql, LEGACY_CLAIMS)?;
        }
        let oldest_table_expires_ms = self.schema.with(&sql, |schema| {
            schema
                .spans
                .iter()
                .map(|span| span.expires_at_ms(retention))
                .min()
        })?;
        let mut rows = self.schema.has_table(&sql, LEGACY_CLAIMS)?;
        for table in ["replay_guards", LEGACY_GUARDS] {
            if self.schema.has_table(&sql, table)? {
                let left = purge_expired(&sql, table, "expires_at", now)?;
                if !left && table == LEGACY_GUARDS {
                    self.schema.drop_table(&sql, table)?;
                }
                rows |= left;
            }
        }
        // Dropping writes no row; the replies in them were kept for minutes, and have expired by the time
        // this runs after an upgrade (or their duplicates get the usual answer, as when none was kept).
        for table in LEGACY_REPLIES {
            if self.schema.has_table(&sql, table)? {
                self.schema.drop_table(&sql, table)?;
            }
        }
        let spill_waiting = self.schema.has_table(&sql, "spill")?
            && count(&sql, "SELECT COUNT(*) AS n FROM spill")? > 0;
        let purge = dedup::Purge {
            rows,
            oldest_table_expires_ms,
        };
        if let Some(at) = dedup::next_alarm_ms(now, spill_waiting, failures, purge) {
            self.state.storage().set_alarm(at_epoch_ms(at)).await?;
        }
        Response::ok("")
    }
}

impl Deduper {
    /// The accept call: performs the core's step machine, with the new ids marked in flight throughout.
    async fn accept(
        &self,
        sql: &SqlStorage,
        events: Vec<AcceptEvent>,
        now_ms: u64,
        delay_s: Option<u32>,
        source: &str,
        HeldEvent { hold, edge_sends }: HeldEvent,
    ) -> Result<DedupReply> {
        let wait = self
            .in_flight
            .borrow()
            .commit_wait_ms(events.iter().map(|event| event.id.as_str()), now_ms);
        let now_ms = match wait {
            Some((id, wait_ms)) => {
                let started = super::now_ms();
                self.wait_for_commit(id, wait_ms).await;
                now_ms.saturating_add(super::now_ms().saturating_sub(started))
            }
            None => now_ms,
        };
        let query = self.schema.with(sql, |schema| {
            let spans: Vec<(Span, bool)> = schema
                .spans
                .iter()
                .map(|span| (*span, !schema.without_reply.contains(span)))
                .collect();
            lookup_sql(&spans, schema.tables.contains(LEGACY_CLAIMS))
        })?;
        let mut known = Vec::with_capacity(events.len());
        let mut kept = None;
        for event in &events {
            let (stored, reply) = match &query {
                Some(query) => lookup(sql, query, &event.id)?,
                None => (None, None),
            };
            if hold.as_ref().is_some_and(|hold| hold.id == event.id) {
                kept = reply;
            }
            known.push(Known {
                stored,
                in_flight: self.in_flight.borrow().is_taken(&event.id, now_ms),
            });
        }
        let bindings = EnvBindings::of(&self.env);
        let queues = QueueSet::from_bindings(&bindings);
        let mut accept = ShardAccept::new(events, &known, &queues, delay_s, now_ms);
        if let Some(hold) = hold {
            accept = accept.with_reply(hold, kept);
        }
        if edge_sends {
            accept = accept.edge_sends();
        }
        let fresh = accept.fresh().to_vec();
        self.in_flight.borrow_mut().sending(&fresh, now_ms);
        let result = self.perform(sql, &mut accept, now_ms, source).await;
        let held = result.as_ref().ok().and(accept.held());
        self.in_flight.borrow_mut().finished(&fresh, held);
        result
    }

    /// The claims table of the span of `now_ms`, made if this object has none yet (then returned as new: the
    /// purge alarm must cover its expiry).
    fn claims_table(
        &self,
        sql: &SqlStorage,
        now_ms: u64,
        retention_ms: u64,
    ) -> Result<(Span, Option<Span>)> {
        let span = Span::at(now_ms, retention_ms);
        let new_table = !self
            .schema
            .with(sql, |schema| schema.spans.contains(&span))?;
        if new_table {
            sql.exec(&span.create_sql(), None)?;
            self.schema.with(sql, |schema| schema.spans.push(span))?;
        }
        Ok((span, new_table.then_some(span)))
    }

    async fn perform(
        &self,
        sql: &SqlStorage,
        accept: &mut ShardAccept,
        now_ms: u64,
        source: &str,
    ) -> Result<DedupReply> {
        let mut queue_error = None;
        let mut outcome = ShardOutcome::Start;
        loop {
            outcome = match accept.next(outcome) {
                ShardStep::Send {
                    queue,
                    messages,
                    delay_s,
                } => {
                    let batch: Vec<_> = messages
                        .into_iter()
                        .map(|message| queue_message(message, delay_s))
                        .collect();
                    let sent = match self.env.queue(&queue) {
                        Ok(queue) => queue.send_batch(batch).await,
                        Err(error) => Err(error),
                    }
                    .map_err(|error| error.to_string());
                    if let Err(error) = &sent {
                        queue_error = Some(error.clone());
                    }
                    ShardOutcome::Sent(sent)
                }
                ShardStep::Keep { commit, spill } => {
                    let retention = dedup::retention_ms(&EnvBindings::of(&self.env));
                    let kept = self
                        .keep(sql, &commit, &spill, now_ms, retention, source)
                        .map_err(|error| error.to_string());
                    let kept = match kept {
                        Ok(new_table) => {
                            match dedup::alarm_after_keep(
                                !spill.is_empty(),
                                new_table,
                                now_ms,
                                retention,
                            ) {
                                Some(at) => self
                                    .ensure_alarm(now_ms, Some(at))
                                    .await
                                    .map_err(|error| error.to_string()),
                                None => Ok(()),
                            }
                        }
                        Err(error) => Err(error),
                    };
                    ShardOutcome::Kept(kept)
                }
                ShardStep::Reply(reply) => {
                    if let (Some(error), DedupReply::Accepted { spilled: true, .. }) =
                        (&queue_error, &reply)
                    {
                        emit(&log::enqueue_failed(source, error, true));
                    }
                    return Ok(reply);
                }
                ShardStep::Fail(error) => {
                    let error = match queue_error {
                        Some(queue_error) => format!("{queue_error}; spill: {error}"),
                        None => error,
                    };
                    emit(&log::enqueue_failed(source, &error, false));
                    return Err(worker::Error::RustError(error));
                }
            };
        }
    }

    /// The claims of `commit` and the `spill` messages, in one implicit transaction (no `await` in between).
    /// Returns the claims table it made, if it had to (then the purge alarm must cover its expiry).
    fn keep(
        &self,
        sql: &SqlStorage,
        commit: &[String],
        spill: &[String],
        now_ms: u64,
        retention_ms: u64,
        source: &str,
    ) -> Result<Option<Span>> {
        let (span, new_table) = self.claims_table(sql, now_ms, retention_ms)?;
        let insert = span.insert_sql();
        for id in commit {
            sql.exec(&insert, vec![id.as_str().into()])?;
        }
        if !spill.is_empty() {
            self.schema.ensure_table(sql, "spill", SPILL)?;
            self.schema.ensure_table(sql, "drain", DRAIN)?;
            sql.exec(
                "INSERT OR IGNORE INTO drain (id, failures, source) VALUES (0, 0, ?)",
                vec![source.into()],
            )?;
            for message in spill {
                sql.exec(
                    "INSERT INTO spill (message) VALUES (?)",
                    vec![message.as_str().into()],
                )?;
            }
        }
        Ok(new_table)
    }

    /// False when the signed query was already used with another body.
    fn check_guard(&self, sql: &SqlStorage, guard: &ReplayGuard, now_ms: u64) -> Result<bool> {
        self.schema.ensure_table(sql, "replay_guards", GUARDS)?;
        let query = if self.schema.has_table(sql, LEGACY_GUARDS)? {
            "SELECT digest, expires_at FROM (SELECT digest, expires_at FROM replay_guards WHERE key = ?1 \
             UNION ALL SELECT digest, expires_at FROM guards WHERE key = ?1) ORDER BY expires_at DESC LIMIT 1"
        } else {
            "SELECT digest, expires_at FROM replay_guards WHERE key = ?1"
        };
        let rows: Vec<GuardRow> = sql
            .exec(query, vec![guard.key.as_str().into()])?
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
                    "INSERT OR REPLACE INTO replay_guards (key, digest, expires_at) VALUES (?, ?, ?)",
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
}

/// Deletes the rows of `table` whose `column` is before `before_ms` (each a written row); whether any are left.
fn purge_expired(sql: &SqlStorage, table: &str, column: &str, before_ms: u64) -> Result<bool> {
    sql.exec(
        &format!("DELETE FROM {table} WHERE {column} < ?"),
        vec![(before_ms as i64).into()],
    )?;
    Ok(count(sql, &format!("SELECT COUNT(*) AS n FROM {table}"))? > 0)
}

/// One id's stored claim, from the claims tables (and the legacy table), with the reply kept in its row (a row
/// that does not decode is no reply: the usual answer).
fn lookup(sql: &SqlStorage, query: &str, id: &str) -> Result<(Option<Claim>, Option<KeptReply>)> {
    let rows: Vec<ClaimRow> = sql.exec(query, vec![id.into()])?.to_array()?;
    let Some(row) = rows.first() else {
        return Ok((None, None));
    };
    let at = row.at.max(0) as u64;
    let claim = if row.committed != 0 {
        Claim::Committed { at_ms: at }
    } else {
        Claim::Pending { since_ms: at }
    };
    let reply = row
        .reply
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok());
    Ok((Some(claim), reply))
}
