//! A guarded request with one event (WeChat plaintext mode, one message per request): its replay guard is
//! checked while the event's object holds the event without sending it, both in one parallel step; the Worker
//! sends the event once both answered, and commits the held claim after the answer (or has the object keep it in
//! its spill with the claim, when the queue refuses). The provider waits for two sequential calls, as for any
//! other request, and a replayed query with another body takes nothing: its event is never sent, and its hold
//! ends unused.

use super::{Acceptance, After, Finish, Intake, ShardCall, Stage, Step};
use crate::channels::ReplayGuard;
use crate::dedup::{
    self, AcceptEvent, AcceptPlan, DedupCall, DedupReply, HeldClaim, Hold, ReplyTurn,
};
use crate::log::{self, Kept};
use crate::Rejection;

/// A guarded request's event, held by its object while the Worker sends it.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) claim: HeldClaim,
    pub(super) message: String,
}

impl Intake<'_> {
    /// A guarded request with one event (a WeChat plaintext message): its guard is checked while its object
    /// looks the event up and holds it, without sending it — in parallel, so the provider waits for two calls
    /// (these, then the Worker's send), not three. The Worker sends the event only when the guard passed, then
    /// commits the held claim after the answer; a replay with another body holds an id for a moment and takes
    /// nothing.
    pub(super) fn guard_and_hold(&mut self, guard: &ReplayGuard) -> Step {
        let Some((delivery, message)) = self.accepted.deliveries.iter().zip(self.messages()).next()
        else {
            return self.refuse(Rejection::EnqueueFailed);
        };
        let id = delivery.webhook_id.clone();
        let hold = match &self.accepted.reply {
            Some(call) => Hold::for_reply(&id, call.settings.timeout_ms, self.now_ms),
            None => Hold {
                id: id.clone(),
                until_ms: self.now_ms.saturating_add(dedup::CLAIM_LEASE_MS),
            },
        };
        let event = AcceptEvent { id, message };
        let mut plan = AcceptPlan::new(
            vec![event],
            self.now_ms,
            self.delay_s(),
            &self.source,
            Some(hold),
        );
        let mut calls = vec![ShardCall {
            shard: dedup::shard_of(&guard.key),
            call: DedupCall::CheckGuard {
                guard: guard.clone(),
                now_ms: self.now_ms,
            },
        }];
        for call in &mut plan.calls {
            if let DedupCall::Accept { edge_sends, .. } = &mut call.call {
                *edge_sends = true;
            }
            calls.push(ShardCall {
                shard: call.shard,
                call: call.call.clone(),
            });
        }
        self.stage = Stage::GuardingHeld(plan);
        Step::Call(calls)
    }

    pub(super) fn guarded_held(
        &mut self,
        plan: AcceptPlan,
        replies: Vec<Result<DedupReply, String>>,
    ) -> Step {
        let mut replies = replies.into_iter();
        match replies.next() {
            Some(Ok(DedupReply::Done)) => {}
            Some(Ok(DedupReply::ReplayRefused)) => {
                return self.refuse(Rejection::ReplayedSignature)
            }
            Some(Err(error)) => {
                self.lines
                    .push(log::operation_failed("replay guard check failed", &error));
                return self.refuse(Rejection::EnqueueFailed);
            }
            Some(Ok(_)) | None => return self.refuse(Rejection::EnqueueFailed),
        }
        let merged = match plan.merge(replies.collect()) {
            Ok(merged) => merged,
            Err(rejection) => return self.refuse(rejection),
        };
        let (Some(shard), Some(call)) = (merged.held_by, plan.calls.first()) else {
            // A duplicate: nothing held, nothing to send.
            return self.accepted_merged(&merged);
        };
        let DedupCall::Accept { events, .. } = &call.call else {
            return self.refuse(Rejection::EnqueueFailed);
        };
        let Some(event) = events.first() else {
            return self.refuse(Rejection::EnqueueFailed);
        };
        let held = Held {
            claim: HeldClaim {
                shard,
                object: dedup::object_name(&self.source, shard),
                id: event.id.clone(),
            },
            message: event.message.clone(),
        };
        let messages = vec![held.message.clone()];
        self.stage = Stage::SendingHeld(held);
        Step::Send {
            messages,
            delay_s: self.delay_s(),
        }
    }

    /// The held event is queued (or `spilled` with its claim): a reply call commits the claim with its reply,
    /// else the Worker commits it after the answer.
    pub(super) fn accepted_held(&mut self, held: &Held, spilled: bool) -> Step {
        let kept = if spilled { Kept::Spilled } else { Kept::Queued };
        self.lines
            .push(log::request_accepted(self.accepted, Some(0), kept));
        let held_claim = (!spilled).then(|| held.claim.clone());
        let (reply, after) = match (&self.accepted.reply, held_claim) {
            (Some(_), held) => (ReplyTurn::Call { held }, After::Nothing),
            (None, Some(held)) => (ReplyTurn::NoCall, After::Commit(held)),
            (None, None) => (ReplyTurn::NoCall, After::Nothing),
        };
        self.finish(Finish::Accepted(Acceptance {
            duplicate_events: 0,
            after,
            reply,
        }))
    }
}
