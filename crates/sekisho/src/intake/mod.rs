//! Moving an accepted request's events into durable hands before the provider gets its 2xx, as a step
//! machine: the Worker asks [`Intake::next`] what to do, performs that one step (calls to the de-duplication
//! shards, one queue batch) and feeds the result back, until the machine says how to answer.
//!
//! The order: claim every event id (two-phase, with the replay guard; see [`crate::dedup`]) → send the fresh
//! events to the queue, batch by batch → answer, and commit the claims after the answer. When the queue
//! refuses, the events not sent are spilled into their shards (which commit the claims in the same write).
//! Whatever went wrong before the events were queued or spilled, the claims this request took are released
//! and the answer is a 5xx, so the provider retries.
//!
//! The two promises, proven against in-memory fakes in `tests.rs`: never a 2xx unless every accepted event is
//! queued or spilled; never a provider retry turned into a loss (a request that dies between any two steps
//! leaves claims that are either committed with their events kept, or pending and free after the lease).

use crate::dedup::{self, ClaimDecision, ClaimPlan, DedupCall, DedupReply};
use crate::delivery::{batches, QueuedDelivery};
use crate::forward::Delivery;
use crate::gateway::{Accepted, Refusal};
use crate::log::{self, Kept, Line};
use crate::Rejection;

/// Which of the durable bindings the deployment has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stores {
    /// The `EVENTS` queue. Without it events are forwarded once after the response (best effort).
    pub queue: bool,
    /// The de-duplication Durable Object namespace ([`dedup::STORE_BINDING`]).
    pub dedup: bool,
}

/// One step for the Worker to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make these calls to the de-duplication shards (in parallel) and feed back [`Outcome::Replies`], one
    /// per call, in this order.
    Call(Vec<ShardCall>),
    /// Send these messages to the queue in one `sendBatch`, each held back `delay_s` when given, and feed back
    /// [`Outcome::Sent`].
    Send {
        messages: Vec<String>,
        delay_s: Option<u32>,
    },
    /// Answer the request; nothing more is asked of this machine.
    Finish(Finish),
}

/// One call to one shard's object ([`dedup::object_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCall {
    pub shard: u16,
    pub call: DedupCall,
}

/// What the Worker feeds back after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The first call of [`Intake::next`]: nothing performed yet.
    Start,
    /// The replies to a [`Step::Call`], or each call's error.
    Replies(Vec<Result<DedupReply, String>>),
    /// The result of a [`Step::Send`].
    Sent(Result<(), String>),
}

/// How the request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every event is queued, spilled or a duplicate of one that was (or, without a queue, is forwarded best
    /// effort): answer 2xx.
    Accepted(Acceptance),
    /// Nothing durable took the events (or the replay guard refused them): answer this and let the provider
    /// retry.
    Refused(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acceptance {
    /// How many of the request's backend deliveries were duplicates (for the metrics).
    pub duplicate_events: usize,
    /// Done after the answer, in the background.
    pub after: After,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// Commit the claims of the queued events. Until then a retry of the same event is told to come back; a
    /// commit that fails (or never runs) leaves the claims pending, and after the lease a retry is queued
    /// again — a duplicate the backend drops by webhook-id, never a loss.
    Commit(Vec<ShardCall>),
    /// No queue: forward every delivery once.
    ForwardBestEffort,
}

#[derive(Debug)]
enum Stage {
    Start,
    /// Best-effort mode: the replay guard's claim, alone.
    CheckingGuard(ClaimPlan),
    Claiming(ClaimPlan),
    Sending(Sending),
    Spilling {
        fresh: Vec<usize>,
        duplicates: usize,
        calls: Vec<ShardCall>,
        error: String,
    },
    Releasing(Rejection),
    Finished(Finish),
}

#[derive(Debug)]
struct Sending {
    /// `None` without a de-duplication store: nothing was claimed, nothing to commit, spill or release.
    claimed: Option<Claimed>,
    /// The indices of the deliveries to queue, in the order of their messages.
    fresh: Vec<usize>,
    batches: std::vec::IntoIter<Vec<String>>,
    current: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Claimed {
    duplicates: usize,
}

/// The intake of one accepted request.
#[derive(Debug)]
pub struct Intake<'a> {
    accepted: &'a Accepted,
    stores: Stores,
    now_ms: u64,
    /// `/{channel}/{account}`: names the shards' objects and the log lines.
    source: String,
    stage: Stage,
    lines: Vec<Line>,
}

impl<'a> Intake<'a> {
    pub fn new(accepted: &'a Accepted, stores: Stores, now_ms: u64) -> Self {
        let source = format!(
            "/{}/{}",
            accepted.channel.unwrap_or_default(),
            accepted.account.as_deref().unwrap_or_default()
        );
        Intake {
            accepted,
            stores,
            now_ms,
            source,
            stage: Stage::Start,
            lines: Vec::new(),
        }
    }

    /// `/{channel}/{account}`, the prefix of the shards' object names ([`dedup::object_name`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The log lines decided since the last call, to emit in this order.
    pub fn take_lines(&mut self) -> Vec<Line> {
        std::mem::take(&mut self.lines)
    }

    /// The next step, given the outcome of the last one ([`Outcome::Start`] the first time). An outcome that
    /// does not answer the step asked for counts as that step's failure.
    pub fn next(&mut self, outcome: Outcome) -> Step {
        let stage = std::mem::replace(&mut self.stage, Stage::Start);
        match stage {
            Stage::Start => self.start(),
            Stage::CheckingGuard(plan) => match plan.merge(replies(outcome)) {
                Ok(_) => self.best_effort(),
                Err(failure) => self.refuse(failure.rejection),
            },
            Stage::Claiming(plan) => self.claimed(&plan, replies(outcome)),
            Stage::Sending(sending) => self.sent(sending, sent(outcome)),
            Stage::Spilling {
                fresh,
                duplicates,
                calls,
                error,
            } => self.spilled(&fresh, duplicates, &calls, &error, replies(outcome)),
            Stage::Releasing(rejection) => {
                for error in replies(outcome).iter().filter_map(|r| r.as_ref().err()) {
                    self.lines
                        .push(log::operation_failed("claim release failed", error));
                }
                self.refuse(rejection)
            }
            Stage::Finished(finish) => self.finish(finish),
        }
    }

    fn start(&mut self) -> Step {
        let accepted = self.accepted;
        let guard = accepted.replay_guard.as_ref();
        if accepted.deliveries.is_empty() && guard.is_none() {
            return self.finish(Finish::Accepted(Acceptance {
                duplicate_events: 0,
                after: After::Nothing,
            }));
        }
        match (self.stores.queue, self.stores.dedup, guard) {
            (false, true, Some(guard)) => {
                let plan = ClaimPlan::new(&[], Some(guard), self.now_ms);
                let calls = claim_calls(&plan);
                self.stage = Stage::CheckingGuard(plan);
                Step::Call(calls)
            }
            (false, false, Some(guard)) => match dedup::without_store(Some(guard)) {
                Ok(()) => self.best_effort(),
                Err(rejection) => self.refuse(rejection),
            },
            (false, _, None) => self.best_effort(),
            (true, false, guard) => {
                self.lines.push(log::no_dedup_store(&self.source));
                if let Err(rejection) = dedup::without_store(guard) {
                    return self.refuse(rejection);
                }
                let fresh = (0..accepted.deliveries.len()).collect();
                self.send_first(None, fresh)
            }
            (true, true, guard) => {
                let plan = ClaimPlan::new(&self.ids(), guard, self.now_ms);
                let calls = claim_calls(&plan);
                self.stage = Stage::Claiming(plan);
                Step::Call(calls)
            }
        }
    }

    fn best_effort(&mut self) -> Step {
        self.lines
            .push(log::request_accepted(self.accepted, None, Kept::BestEffort));
        self.finish(Finish::Accepted(Acceptance {
            duplicate_events: 0,
            after: After::ForwardBestEffort,
        }))
    }

    fn claimed(&mut self, plan: &ClaimPlan, replies: Vec<Result<DedupReply, String>>) -> Step {
        for error in replies.iter().filter_map(|reply| reply.as_ref().err()) {
            self.lines
                .push(log::enqueue_failed(&self.source, error, false));
        }
        let answers = match plan.merge(replies) {
            Ok(answers) => answers,
            Err(failure) => return self.release(&failure.release, failure.rejection),
        };
        match dedup::decide(&answers) {
            ClaimDecision::Busy { fresh } => self.release(&fresh, Rejection::ClaimInProgress),
            ClaimDecision::Enqueue { fresh, duplicates } => {
                self.send_first(Some(Claimed { duplicates }), fresh)
            }
        }
    }

    fn send_first(&mut self, claimed: Option<Claimed>, fresh: Vec<usize>) -> Step {
        let messages = fresh
            .iter()
            .filter_map(|&i| self.accepted.deliveries.get(i))
            .map(|delivery| QueuedDelivery::first(delivery.clone()).to_message())
            .collect();
        let sending = Sending {
            claimed,
            fresh,
            batches: batches(messages).into_iter(),
            current: Vec::new(),
        };
        self.send_next(sending)
    }

    fn send_next(&mut self, mut sending: Sending) -> Step {
        match sending.batches.next() {
            Some(batch) => {
                sending.current = batch.clone();
                self.stage = Stage::Sending(sending);
                Step::Send {
                    messages: batch,
                    delay_s: self.delay_s(),
                }
            }
            None => self.queued(sending),
        }
    }

    fn sent(&mut self, sending: Sending, result: Result<(), String>) -> Step {
        let error = match result {
            Ok(()) => return self.send_next(sending),
            Err(error) => error,
        };
        let Some(Claimed { duplicates }) = sending.claimed else {
            self.lines
                .push(log::enqueue_failed(&self.source, &error, false));
            return self.refuse(Rejection::EnqueueFailed);
        };
        // The failed batch and every later one.
        let unsent: Vec<String> = std::iter::once(sending.current)
            .chain(sending.batches)
            .flatten()
            .collect();
        let calls: Vec<ShardCall> = dedup::spill_calls(
            &self.pick(&sending.fresh),
            unsent,
            self.now_ms,
            &self.source,
        )
        .into_iter()
        .map(|(shard, call)| ShardCall { shard, call })
        .collect();
        self.stage = Stage::Spilling {
            fresh: sending.fresh,
            duplicates,
            calls: calls.clone(),
            error,
        };
        Step::Call(calls)
    }

    fn queued(&mut self, sending: Sending) -> Step {
        let duplicates = sending.claimed.map(|claimed| claimed.duplicates);
        self.lines.push(log::request_accepted(
            self.accepted,
            duplicates,
            Kept::Queued,
        ));
        let ids = self.pick(&sending.fresh);
        let after = match sending.claimed {
            Some(_) if !ids.is_empty() => After::Commit(
                dedup::group_ids(&ids)
                    .into_iter()
                    .map(|(shard, ids)| ShardCall {
                        shard,
                        call: DedupCall::Commit {
                            ids,
                            now_ms: self.now_ms,
                        },
                    })
                    .collect(),
            ),
            _ => After::Nothing,
        };
        let duplicate_events = match sending.claimed {
            Some(_) => self.duplicate_events(&sending.fresh),
            None => 0,
        };
        self.finish(Finish::Accepted(Acceptance {
            duplicate_events,
            after,
        }))
    }

    fn spilled(
        &mut self,
        fresh: &[usize],
        duplicates: usize,
        calls: &[ShardCall],
        error: &str,
        replies: Vec<Result<DedupReply, String>>,
    ) -> Step {
        // A shard that kept its events has committed their claims: the provider's retry finds them duplicates.
        // A shard that did not (or gave no reply) is released, so the retry takes them again.
        let mut replies = replies.into_iter();
        let mut failed = Vec::new();
        let mut errors = Vec::new();
        for call in calls {
            let kept = match replies.next() {
                Some(Ok(DedupReply::Done)) => Ok(()),
                Some(Ok(other)) => Err(format!("unexpected reply {other:?}")),
                Some(Err(error)) => Err(error),
                None => Err("no reply".to_owned()),
            };
            if let (Err(spill_error), DedupCall::Spill { ids, .. }) = (kept, &call.call) {
                failed.extend(ids.iter().cloned());
                errors.push(spill_error);
            }
        }
        if errors.is_empty() {
            self.lines
                .push(log::enqueue_failed(&self.source, error, true));
            self.lines.push(log::request_accepted(
                self.accepted,
                Some(duplicates),
                Kept::Spilled,
            ));
            let duplicate_events = self.duplicate_events(fresh);
            return self.finish(Finish::Accepted(Acceptance {
                duplicate_events,
                after: After::Nothing,
            }));
        }
        self.lines.push(log::enqueue_failed(
            &self.source,
            &format!("{error}; spill: {}", errors.join("; ")),
            false,
        ));
        self.release_ids(&failed, Rejection::EnqueueFailed)
    }

    /// Frees the pending claims this request took (by index), so the provider's retry is not taken for a
    /// duplicate, then refuses. A failed release is harmless: the claims expire after the lease.
    fn release(&mut self, indices: &[usize], rejection: Rejection) -> Step {
        let ids = self.pick(indices);
        self.release_ids(&ids, rejection)
    }

    fn release_ids(&mut self, ids: &[String], rejection: Rejection) -> Step {
        if ids.is_empty() {
            return self.refuse(rejection);
        }
        let calls = dedup::group_ids(ids)
            .into_iter()
            .map(|(shard, ids)| ShardCall {
                shard,
                call: DedupCall::Release { ids },
            })
            .collect();
        self.stage = Stage::Releasing(rejection);
        Step::Call(calls)
    }

    fn refuse(&mut self, rejection: Rejection) -> Step {
        self.finish(Finish::Refused(rejection))
    }

    fn finish(&mut self, finish: Finish) -> Step {
        self.stage = Stage::Finished(finish.clone());
        Step::Finish(finish)
    }

    /// The refusal of a [`Finish::Refused`], with the request's channel and account.
    pub fn refusal(&self, rejection: Rejection) -> Refusal {
        Refusal {
            rejection,
            channel: self.accepted.channel,
            account: self.accepted.account.clone(),
        }
    }

    fn ids(&self) -> Vec<String> {
        self.accepted
            .deliveries
            .iter()
            .map(|delivery| delivery.webhook_id.clone())
            .collect()
    }

    fn pick(&self, indices: &[usize]) -> Vec<String> {
        indices
            .iter()
            .filter_map(|&i| self.accepted.deliveries.get(i))
            .map(|delivery: &Delivery| delivery.webhook_id.clone())
            .collect()
    }

    fn duplicate_events(&self, fresh: &[usize]) -> usize {
        crate::metrics::observe::duplicate_events(&self.accepted.deliveries, fresh)
    }

    /// With a reply call the event's first delivery waits until the call has ended (see
    /// [`crate::reply::ReplyCall::delivery_delay_s`]).
    fn delay_s(&self) -> Option<u32> {
        self.accepted
            .reply
            .as_ref()
            .map(crate::reply::ReplyCall::delivery_delay_s)
    }
}

fn claim_calls(plan: &ClaimPlan) -> Vec<ShardCall> {
    plan.calls
        .iter()
        .map(|call| ShardCall {
            shard: call.shard,
            call: call.call.clone(),
        })
        .collect()
}

fn replies(outcome: Outcome) -> Vec<Result<DedupReply, String>> {
    match outcome {
        Outcome::Replies(replies) => replies,
        // No replies: every call counts as failed.
        Outcome::Start | Outcome::Sent(_) => Vec::new(),
    }
}

fn sent(outcome: Outcome) -> Result<(), String> {
    match outcome {
        Outcome::Sent(result) => result,
        Outcome::Start | Outcome::Replies(_) => Err("the queue's answer is missing".to_owned()),
    }
}

#[cfg(test)]
mod tests;
