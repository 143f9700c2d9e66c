//! Moving an accepted request's events into durable hands before the provider gets its 2xx, as a step
//! machine: the Worker asks [`Intake::next`] what to do, performs that one step (calls to the de-duplication
//! shards, or one queue batch) and feeds the result back, until the machine says how to answer.
//!
//! With a queue and a de-duplication store, that is one step: one call per shard the events fall into, each of
//! which takes its new events — sends them to the queue and claims them, or spills what the queue refused —
//! in that one call ([`crate::dedup::accept`]). Any shard that failed or was busy makes the answer a 5xx, and
//! the provider retries; what the other shards took is a duplicate then. A request with a replay guard (WeChat
//! plaintext mode, whose signature does not cover the body) must not have anything taken before its guard is
//! checked: with one event (WeChat sends one per request) the guard is checked while the event's object holds
//! the event without sending it, and the Worker sends it once both answered; with several, the guard is checked
//! in a call before the accept calls. Either way a replayed query with another body takes nothing anywhere.
//!
//! The two promises, proven against in-memory fakes in `tests.rs`: never a 2xx unless every accepted event is
//! queued or spilled; never a provider retry turned into a loss (a request or an object that dies at any
//! point has either kept an event and claimed it, or claimed nothing).

use crate::dedup::{
    self, AcceptEvent, AcceptPlan, ClaimAnswer, DedupCall, DedupReply, HeldClaim, Hold, ReplyTurn,
};
use crate::delivery::{batches, QueuedDelivery};
use crate::gateway::{Accepted, Refusal};
use crate::log::{self, Kept, Line};
use crate::Rejection;
use guarded::Held;

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
    /// Without a de-duplication store only: send these messages to the queue in one `sendBatch`, each held
    /// back `delay_s` when given, and feed back [`Outcome::Sent`].
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
    /// With a reply call: whether to make it (and commit the held claim after it), or the duplicate's answer.
    pub reply: ReplyTurn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    Nothing,
    /// A guarded event the Worker sent itself: write its held claim ([`HeldClaim::commit`], no reply).
    Commit(HeldClaim),
    /// No queue: forward every delivery once.
    ForwardBestEffort,
}

#[derive(Debug)]
enum Stage {
    Start,
    /// The replay guard's check, before anything is taken; then the accept calls (with a queue) or the
    /// best-effort forward.
    CheckingGuard,
    Accepting(AcceptPlan),
    /// A guarded one-event request: the guard checked and the event held, in parallel.
    GuardingHeld(AcceptPlan),
    /// The held event sent by the Worker (its guard passed, it was new).
    SendingHeld(Held),
    /// The queue refused the held event: its claim and message kept by its object.
    SpillingHeld(Held),
    /// Without a de-duplication store: the batches not sent yet.
    Sending(std::vec::IntoIter<Vec<String>>),
    Finished(Finish),
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
            Stage::CheckingGuard => match replies(outcome).into_iter().next() {
                Some(Ok(DedupReply::Done)) if self.stores.queue => self.accept(),
                Some(Ok(DedupReply::Done)) => self.best_effort(),
                Some(Ok(DedupReply::ReplayRefused)) => self.refuse(Rejection::ReplayedSignature),
                Some(Err(error)) => {
                    self.lines
                        .push(log::operation_failed("replay guard check failed", &error));
                    self.refuse(Rejection::EnqueueFailed)
                }
                Some(Ok(_)) | None => self.refuse(Rejection::EnqueueFailed),
            },
            Stage::Accepting(plan) => self.accepted(&plan, replies(outcome)),
            Stage::GuardingHeld(plan) => self.guarded_held(plan, replies(outcome)),
            Stage::SendingHeld(held) => match sent(outcome) {
                Ok(()) => self.accepted_held(&held, false),
                Err(error) => {
                    self.lines
                        .push(log::enqueue_failed(&self.source, &error, true));
                    let call =
                        held.claim
                            .commit_spilling(held.message.clone(), &self.source, self.now_ms);
                    let shard = held.claim.shard;
                    self.stage = Stage::SpillingHeld(held);
                    Step::Call(vec![ShardCall { shard, call }])
                }
            },
            Stage::SpillingHeld(held) => match replies(outcome).into_iter().next() {
                Some(Ok(DedupReply::Done)) => self.accepted_held(&held, true),
                Some(Err(error)) => {
                    self.lines
                        .push(log::enqueue_failed(&self.source, &error, false));
                    self.refuse(Rejection::EnqueueFailed)
                }
                Some(Ok(_)) | None => self.refuse(Rejection::EnqueueFailed),
            },
            Stage::Sending(batches) => match sent(outcome) {
                Ok(()) => self.send_next(batches),
                Err(error) => {
                    self.lines
                        .push(log::enqueue_failed(&self.source, &error, false));
                    self.refuse(Rejection::EnqueueFailed)
                }
            },
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
                reply: self.reply_unheld(),
            }));
        }
        match (self.stores.queue, self.stores.dedup, guard) {
            (true, true, Some(guard)) if accepted.deliveries.len() == 1 => {
                self.guard_and_hold(guard)
            }
            (_, true, Some(guard)) => {
                self.stage = Stage::CheckingGuard;
                Step::Call(vec![ShardCall {
                    shard: dedup::shard_of(&guard.key),
                    call: DedupCall::CheckGuard {
                        guard: guard.clone(),
                        now_ms: self.now_ms,
                    },
                }])
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
                self.send_next(batches(self.messages()).into_iter())
            }
            (true, true, None) => self.accept(),
        }
    }

    fn accept(&mut self) -> Step {
        let events = self
            .accepted
            .deliveries
            .iter()
            .zip(self.messages())
            .map(|(delivery, message)| AcceptEvent {
                id: delivery.webhook_id.clone(),
                message,
            })
            .collect();
        let hold = self.accepted.reply.as_ref().map(|call| {
            Hold::for_reply(
                &call.delivery.webhook_id,
                call.settings.timeout_ms,
                self.now_ms,
            )
        });
        let plan = AcceptPlan::new(events, self.now_ms, self.delay_s(), &self.source, hold);
        if plan.calls.is_empty() {
            return self.accepted(&plan, Vec::new());
        }
        let calls = plan
            .calls
            .iter()
            .map(|call| ShardCall {
                shard: call.shard,
                call: call.call.clone(),
            })
            .collect();
        self.stage = Stage::Accepting(plan);
        Step::Call(calls)
    }

    fn best_effort(&mut self) -> Step {
        self.lines
            .push(log::request_accepted(self.accepted, None, Kept::BestEffort));
        self.finish(Finish::Accepted(Acceptance {
            duplicate_events: 0,
            after: After::ForwardBestEffort,
            reply: self.reply_unheld(),
        }))
    }

    fn accepted(&mut self, plan: &AcceptPlan, replies: Vec<Result<DedupReply, String>>) -> Step {
        for error in replies.iter().filter_map(|reply| reply.as_ref().err()) {
            self.lines
                .push(log::enqueue_failed(&self.source, error, false));
        }
        match plan.merge(replies) {
            Ok(merged) => self.accepted_merged(&merged),
            Err(rejection) => self.refuse(rejection),
        }
    }

    /// Every shard took its events: the answer, with the duplicates counted and the reply call's turn.
    fn accepted_merged(&mut self, merged: &dedup::Merged) -> Step {
        let fresh: Vec<usize> = merged
            .answers
            .iter()
            .enumerate()
            .filter(|(_, answer)| **answer == ClaimAnswer::Fresh)
            .map(|(index, _)| index)
            .collect();
        let duplicates = merged.answers.len() - fresh.len();
        let kept = if merged.spilled {
            Kept::Spilled
        } else {
            Kept::Queued
        };
        self.lines
            .push(log::request_accepted(self.accepted, Some(duplicates), kept));
        let duplicate_events =
            crate::metrics::observe::duplicate_events(&self.accepted.deliveries, &fresh);
        let reply = self.reply_turn(merged);
        self.finish(Finish::Accepted(Acceptance {
            duplicate_events,
            after: After::Nothing,
            reply,
        }))
    }

    /// The reply call's turn once the shards answered: a duplicate is answered from what was kept with its
    /// claim; a fresh event is called for, and its held claim committed after.
    fn reply_turn(&self, merged: &dedup::Merged) -> ReplyTurn {
        let Some(call) = &self.accepted.reply else {
            return ReplyTurn::NoCall;
        };
        let id = &call.delivery.webhook_id;
        let index = self
            .accepted
            .deliveries
            .iter()
            .position(|delivery| delivery.webhook_id == *id);
        match index.and_then(|index| merged.answers.get(index)) {
            Some(ClaimAnswer::Duplicate) => ReplyTurn::Answer(dedup::reply_step(
                merged.kept.as_ref(),
                self.now_ms,
                &self.accepted.response,
            )),
            _ => ReplyTurn::Call {
                held: merged.held_by.map(|shard| HeldClaim {
                    shard,
                    object: dedup::object_name(&self.source, shard),
                    id: id.clone(),
                }),
            },
        }
    }

    /// Without a de-duplication store nothing is held or kept: a reply call is made as it comes.
    fn reply_unheld(&self) -> ReplyTurn {
        match self.accepted.reply {
            Some(_) => ReplyTurn::Call { held: None },
            None => ReplyTurn::NoCall,
        }
    }

    fn send_next(&mut self, mut batches: std::vec::IntoIter<Vec<String>>) -> Step {
        match batches.next() {
            Some(batch) => {
                self.stage = Stage::Sending(batches);
                Step::Send {
                    messages: batch,
                    delay_s: self.delay_s(),
                }
            }
            None => {
                self.lines
                    .push(log::request_accepted(self.accepted, None, Kept::Queued));
                self.finish(Finish::Accepted(Acceptance {
                    duplicate_events: 0,
                    after: After::Nothing,
                    reply: self.reply_unheld(),
                }))
            }
        }
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

    /// The first queue message of every delivery, in order.
    fn messages(&self) -> Vec<String> {
        self.accepted
            .deliveries
            .iter()
            .map(|delivery| QueuedDelivery::first(delivery.clone()).to_message())
            .collect()
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

mod guarded;

#[cfg(test)]
mod tests;
