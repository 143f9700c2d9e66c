//! The claims an accept call held ([`sekisho::dedup::Hold`]): written by the commit — with the reply the
//! provider got, or with the event's message in the spill when the Worker's send was refused — and the calls
//! of copies that wait for that write, woken by it.

use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{select, Either};
use worker::{Delay, Result, SqlStorage};

use super::{Deduper, EnvBindings};
use sekisho::dedup::{self, KeptReply};

impl Deduper {
    /// Writes the claim an accept call held, with the reply its provider got, and ends the hold.
    pub(super) async fn commit(
        &self,
        sql: &SqlStorage,
        id: &str,
        reply: Option<&KeptReply>,
        now_ms: u64,
    ) -> Result<()> {
        let retention = dedup::retention_ms(&EnvBindings::of(&self.env));
        let (span, new_table) = self.claims_table(sql, now_ms, retention)?;
        let text = reply
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| worker::Error::RustError(e.to_string()))?;
        match text {
            Some(text) => {
                if self
                    .schema
                    .with(sql, |schema| schema.without_reply.remove(&span))?
                {
                    sql.exec(&span.add_reply_column_sql(), None)?;
                }
                sql.exec(&span.commit_sql(), vec![id.into(), text.as_str().into()])?;
            }
            None => {
                sql.exec(&span.insert_sql(), vec![id.into()])?;
            }
        }
        self.end_hold(id);
        if let Some(at) = dedup::alarm_after_keep(false, new_table, now_ms, retention) {
            self.ensure_alarm(now_ms, Some(at)).await?;
        }
        Ok(())
    }

    /// The commit of a held event the edge's queue refused: its claim and its message in the spill, one write.
    pub(super) async fn commit_spilling(
        &self,
        sql: &SqlStorage,
        id: &str,
        spill: &[String],
        now_ms: u64,
        source: &str,
    ) -> Result<()> {
        let retention = dedup::retention_ms(&EnvBindings::of(&self.env));
        let new_table = self.keep(sql, &[id.to_owned()], spill, now_ms, retention, source)?;
        self.end_hold(id);
        if let Some(at) = dedup::alarm_after_keep(true, new_table, now_ms, retention) {
            self.ensure_alarm(now_ms, Some(at)).await?;
        }
        Ok(())
    }

    /// The held `id` was written: its hold ends, and the calls waiting for it are woken.
    fn end_hold(&self, id: &str) {
        self.in_flight.borrow_mut().committed(id);
        let waiters = self.commit_waiters.borrow_mut().remove(id);
        for waiter in waiters.into_iter().flatten() {
            let _ = waiter.send(());
        }
    }

    /// Waits until the held `id` is committed, at most `wait_ms` (`sekisho::dedup::InFlight::commit_wait_ms`).
    pub(super) async fn wait_for_commit(&self, id: String, wait_ms: u64) {
        let (sender, receiver) = oneshot::channel();
        self.commit_waiters
            .borrow_mut()
            .entry(id.clone())
            .or_default()
            .push(sender);
        let timeout = Delay::from(Duration::from_millis(wait_ms));
        futures_util::pin_mut!(timeout);
        if let Either::Right(_) = select(receiver, timeout).await {
            // No commit came: forget this call's waiter (and any other that gave up).
            let mut waiters = self.commit_waiters.borrow_mut();
            if let Some(list) = waiters.get_mut(&id) {
                list.retain(|waiter| !waiter.is_canceled());
                if list.is_empty() {
                    waiters.remove(&id);
                }
            }
        }
    }
}
