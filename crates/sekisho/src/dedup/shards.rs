//! Claims spread over [`SHARDS`] de-duplication objects per channel/account, chosen by event id, so one busy
//! account is not capped by one single-threaded Durable Object (one object serves on the order of a thousand
//! requests per second).
//!
//! De-duplication stays exact because an id always maps to the same object: [`shard_of`] depends on nothing
//! but the id, and [`SHARDS`] is a constant of the protocol, not a setting (changing it would move ids to
//! other objects, where an earlier claim is not seen). A replay guard lives in the shard of its own key, so
//! the same signed query always meets its remembered body digest whatever body it comes with.
//!
//! A request whose events fall into several shards makes one call per shard (in parallel). A refusal or a
//! failure in any of them is the request's ([`AcceptPlan::merge`]); the events the other shards took are
//! queued and claimed, so the provider's retry finds them duplicates. The replay guard is checked in a call of its
//! own before any event is taken.

use crate::crypto;
use crate::Rejection;

use super::{read_accept_reply, AcceptEvent, ClaimAnswer, DedupCall, DedupReply, Hold, KeptReply};

/// De-duplication objects per channel/account.
pub const SHARDS: u16 = 16;

/// The shard of an event id or a guard key: the first two bytes of its SHA-256, modulo [`SHARDS`] (event ids
/// are digests already; hashing again keeps the spread even for any key).
pub fn shard_of(key: &str) -> u16 {
    let digest = crypto::sha256(&[key.as_bytes()]);
    u16::from_be_bytes([digest[0], digest[1]]) % SHARDS
}

/// The Durable Object name of a shard of `/{channel}/{account}`.
pub fn object_name(source: &str, shard: u16) -> String {
    format!("{source}#{shard}")
}

/// One call to one shard: which of the request's events it carries (their indices), and the call itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCall {
    pub shard: u16,
    pub indices: Vec<usize>,
    pub call: DedupCall,
}

/// The accept calls of one request, one per shard touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptPlan {
    pub calls: Vec<ShardCall>,
    events: usize,
}

/// How the request's events were taken, merged from every shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// One per event, in the request's order.
    pub answers: Vec<ClaimAnswer>,
    /// Some shard spilled what the queue refused.
    pub spilled: bool,
    /// The shard holding the claim of the plan's [`Hold`], when it was taken.
    pub held_by: Option<u16>,
    /// The reply kept for the held event, when it was a duplicate.
    pub kept: Option<KeptReply>,
}

impl AcceptPlan {
    /// Groups the events by the shard of their id.
    pub fn new(
        events: Vec<AcceptEvent>,
        now_ms: u64,
        delay_s: Option<u32>,
        source: &str,
        hold: Option<Hold>,
    ) -> AcceptPlan {
        let count = events.len();
        let mut by_shard: Vec<(u16, Vec<usize>, Vec<AcceptEvent>)> = Vec::new();
        let mut slot_of = |shard: u16| match by_shard.iter().position(|(s, _, _)| *s == shard) {
            Some(slot) => slot,
            None => {
                by_shard.push((shard, Vec::new(), Vec::new()));
                by_shard.len() - 1
            }
        };
        let mut placed = Vec::with_capacity(count);
        for (index, event) in events.into_iter().enumerate() {
            placed.push((slot_of(shard_of(&event.id)), index, event));
        }
        for (slot, index, event) in placed {
            if let Some((_, indices, events)) = by_shard.get_mut(slot) {
                indices.push(index);
                events.push(event);
            }
        }
        let calls = by_shard
            .into_iter()
            .map(|(shard, indices, events)| {
                let hold = hold
                    .as_ref()
                    .filter(|hold| events.iter().any(|event| event.id == hold.id))
                    .cloned();
                ShardCall {
                    shard,
                    call: DedupCall::Accept {
                        events,
                        now_ms,
                        delay_s,
                        source: source.to_owned(),
                        hold,
                        edge_sends: false,
                    },
                    indices,
                }
            })
            .collect();
        AcceptPlan {
            calls,
            events: count,
        }
    }

    /// The answers in the order of the request's events, from one reply (or call error) per call, in the
    /// order of [`AcceptPlan::calls`]. Any refusal is the request's: the provider retries the whole request,
    /// and what other shards took is a duplicate then — nothing to undo.
    pub fn merge<E>(&self, replies: Vec<Result<DedupReply, E>>) -> Result<Merged, Rejection> {
        let mut answers: Vec<Option<ClaimAnswer>> = vec![None; self.events];
        let mut spilled = false;
        let mut held_by = None;
        let mut kept = None;
        let mut refusal = None;
        if replies.len() != self.calls.len() {
            refusal = Some(Rejection::EnqueueFailed);
        }
        for (call, reply) in self.calls.iter().zip(replies) {
            let read = reply
                .map_err(|_| Rejection::EnqueueFailed)
                .and_then(|reply| read_accept_reply(reply, call.indices.len()));
            match read {
                Ok(shard) => {
                    spilled |= shard.spilled;
                    if shard.held {
                        held_by = Some(call.shard);
                    }
                    kept = kept.or(shard.kept);
                    for (&index, answer) in call.indices.iter().zip(shard.answers) {
                        if let Some(slot) = answers.get_mut(index) {
                            *slot = Some(answer);
                        }
                    }
                }
                Err(rejection) => refusal = Some(rejection),
            }
        }
        if let Some(rejection) = refusal {
            return Err(rejection);
        }
        let answers = answers
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or(Rejection::EnqueueFailed)?;
        Ok(Merged {
            answers,
            spilled,
            held_by,
            kept,
        })
    }
}

#[cfg(test)]
mod tests;
