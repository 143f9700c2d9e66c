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
//! failure in any of them is the request's: the claims it took in the others are released ([`ClaimPlan::merge`]).

use crate::channels::ReplayGuard;
use crate::crypto;
use crate::Rejection;

use super::{read_claim_reply, ClaimAnswer, DedupCall, DedupReply};

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

/// One call to one shard: which of the request's ids it carries (their indices), and the call itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCall {
    pub shard: u16,
    pub indices: Vec<usize>,
    pub call: DedupCall,
}

/// The claim calls of one request, one per shard touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPlan {
    pub calls: Vec<ShardCall>,
    ids: usize,
}

/// A claim that did not go through: the refusal for the provider, and the claims taken in other shards that
/// must be released (by index into the request's ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFailure {
    pub rejection: Rejection,
    pub release: Vec<usize>,
}

impl ClaimPlan {
    /// Groups the ids by shard; the guard goes with the call to its own shard (alone if no id is there).
    pub fn new(ids: &[String], guard: Option<&ReplayGuard>, now_ms: u64) -> ClaimPlan {
        let mut by_shard: Vec<(u16, Vec<usize>)> = Vec::new();
        let mut add = |shard: u16, index: Option<usize>| {
            let slot = match by_shard.iter().position(|(s, _)| *s == shard) {
                Some(slot) => slot,
                None => {
                    by_shard.push((shard, Vec::new()));
                    by_shard.len() - 1
                }
            };
            if let (Some(index), Some((_, indices))) = (index, by_shard.get_mut(slot)) {
                indices.push(index);
            }
        };
        for (index, id) in ids.iter().enumerate() {
            add(shard_of(id), Some(index));
        }
        let guard_shard = guard.map(|guard| shard_of(&guard.key));
        if let Some(shard) = guard_shard {
            add(shard, None);
        }
        let calls = by_shard
            .into_iter()
            .map(|(shard, indices)| ShardCall {
                shard,
                call: DedupCall::Claim {
                    ids: pick(ids, &indices),
                    guard: guard.filter(|_| guard_shard == Some(shard)).cloned(),
                    now_ms,
                },
                indices,
            })
            .collect();
        ClaimPlan {
            calls,
            ids: ids.len(),
        }
    }

    /// The answers in the order of the request's ids, from one reply (or call error) per call, in the order of
    /// [`ClaimPlan::calls`].
    pub fn merge<E>(
        &self,
        replies: Vec<Result<DedupReply, E>>,
    ) -> Result<Vec<ClaimAnswer>, ClaimFailure> {
        let mut answers: Vec<Option<ClaimAnswer>> = vec![None; self.ids];
        let mut refusal = None;
        if replies.len() != self.calls.len() {
            refusal = Some(Rejection::EnqueueFailed);
        }
        for (call, reply) in self.calls.iter().zip(replies) {
            let read = reply
                .map_err(|_| Rejection::EnqueueFailed)
                .and_then(|reply| read_claim_reply(reply, call.indices.len()));
            match read {
                Ok(shard_answers) => {
                    for (&index, answer) in call.indices.iter().zip(shard_answers) {
                        if let Some(slot) = answers.get_mut(index) {
                            *slot = Some(answer);
                        }
                    }
                }
                // A replayed signature outranks a failed call: it is the answer the provider must see.
                Err(rejection) => {
                    if refusal != Some(Rejection::ReplayedSignature) {
                        refusal = Some(rejection);
                    }
                }
            }
        }
        match refusal {
            Some(rejection) => Err(ClaimFailure {
                rejection,
                release: fresh_indices(&answers),
            }),
            None => answers
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or(ClaimFailure {
                    rejection: Rejection::EnqueueFailed,
                    release: Vec::new(),
                }),
        }
    }
}

fn fresh_indices(answers: &[Option<ClaimAnswer>]) -> Vec<usize> {
    answers
        .iter()
        .enumerate()
        .filter(|(_, answer)| **answer == Some(ClaimAnswer::Fresh))
        .map(|(index, _)| index)
        .collect()
}

fn pick(ids: &[String], indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .filter_map(|&i| ids.get(i).cloned())
        .collect()
}

/// Ids grouped by shard, for the calls that follow a claim (commit, release).
pub fn group_ids(ids: &[String]) -> Vec<(u16, Vec<String>)> {
    let mut groups: Vec<(u16, Vec<String>)> = Vec::new();
    for id in ids {
        let shard = shard_of(id);
        match groups.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, group)) => group.push(id.clone()),
            None => groups.push((shard, vec![id.clone()])),
        }
    }
    groups
}

/// The spill calls when the queue refused: every fresh id is committed in its own shard, and each message not
/// sent is kept in the shard of its event. `fresh_ids` are in the order their messages were sent; `unsent` are
/// the last messages of that order (the batch that failed and every later one).
pub fn spill_calls(
    fresh_ids: &[String],
    unsent: Vec<String>,
    now_ms: u64,
    source: &str,
) -> Vec<(u16, DedupCall)> {
    let first_unsent = fresh_ids.len().saturating_sub(unsent.len());
    let mut calls: Vec<(u16, Vec<String>, Vec<String>)> = Vec::new();
    let mut messages = unsent.into_iter();
    for (position, id) in fresh_ids.iter().enumerate() {
        let shard = shard_of(id);
        let message = if position >= first_unsent {
            messages.next()
        } else {
            None
        };
        let slot = match calls.iter().position(|(s, _, _)| *s == shard) {
            Some(slot) => slot,
            None => {
                calls.push((shard, Vec::new(), Vec::new()));
                calls.len() - 1
            }
        };
        if let Some((_, ids, kept)) = calls.get_mut(slot) {
            ids.push(id.clone());
            kept.extend(message);
        }
    }
    calls
        .into_iter()
        .map(|(shard, ids, messages)| {
            (
                shard,
                DedupCall::Spill {
                    ids,
                    messages,
                    now_ms,
                    source: source.to_owned(),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
