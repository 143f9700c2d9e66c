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
mod tests {
    use super::*;
    use crate::envelope::event_id;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| event_id("line", "acme", &format!("01HZ{i:022}")))
            .collect()
    }

    fn guard(key: &str) -> ReplayGuard {
        ReplayGuard {
            key: key.to_owned(),
            body_digest: "d".repeat(64),
            expires_at_ms: 9,
        }
    }

    #[test]
    fn an_id_always_maps_to_the_same_shard() {
        for id in ids(50) {
            assert_eq!(shard_of(&id), shard_of(&id.clone()));
            assert!(shard_of(&id) < SHARDS);
        }
        // Pinned (computed with Python's hashlib): a change here would move every stored claim to another object.
        assert_eq!(shard_of("evt_00000000000000000000000000000000"), 4);
    }

    /// 32,000 event ids over 16 shards: each shard within 10% of the 2,000 it would get if perfectly even,
    /// and a chi-square statistic far below the 0.1% critical value for 15 degrees of freedom (37.7).
    #[test]
    fn shards_spread_evenly() {
        let mut counts = [0u32; SHARDS as usize];
        for id in ids(32_000) {
            counts[usize::from(shard_of(&id))] += 1;
        }
        let expected = 32_000.0 / f64::from(SHARDS);
        let chi_square: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - expected).powi(2) / expected)
            .sum();
        assert!(chi_square < 37.7, "{counts:?}: χ² = {chi_square}");
        for count in counts {
            assert!(
                (f64::from(count) - expected).abs() < expected * 0.1,
                "{counts:?}"
            );
        }
    }

    #[test]
    fn a_plan_carries_every_id_once_in_its_shard_and_the_guard_in_the_guards_shard() {
        let ids = ids(40);
        let guard = guard("wechat-query-digest");
        let plan = ClaimPlan::new(&ids, Some(&guard), 7);
        let mut seen: Vec<usize> = plan.calls.iter().flat_map(|c| c.indices.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        let mut guards = 0;
        for call in &plan.calls {
            let DedupCall::Claim {
                ids: carried,
                guard: g,
                now_ms,
            } = &call.call
            else {
                panic!("a claim plan holds claims");
            };
            assert_eq!(*now_ms, 7);
            assert_eq!(carried.len(), call.indices.len());
            for (id, &index) in carried.iter().zip(&call.indices) {
                assert_eq!(id, &ids[index]);
                assert_eq!(shard_of(id), call.shard);
            }
            if let Some(g) = g {
                guards += 1;
                assert_eq!(call.shard, shard_of(&g.key));
            }
        }
        assert_eq!(guards, 1);
        let shards: std::collections::HashSet<u16> = plan.calls.iter().map(|c| c.shard).collect();
        assert_eq!(shards.len(), plan.calls.len(), "one call per shard");
    }

    #[test]
    fn a_guard_without_ids_in_its_shard_gets_a_call_of_its_own() {
        let plan = ClaimPlan::new(&[], Some(&guard("k")), 1);
        assert_eq!(plan.calls.len(), 1);
        assert_eq!(plan.calls[0].shard, shard_of("k"));
        assert!(plan.calls[0].indices.is_empty());
    }

    fn claimed(answers: &[ClaimAnswer]) -> Result<DedupReply, ()> {
        Ok(DedupReply::Claimed {
            answers: answers.to_vec(),
        })
    }

    #[test]
    fn answers_come_back_in_the_order_of_the_ids() {
        let ids = ids(20);
        let plan = ClaimPlan::new(&ids, None, 1);
        // Every id whose index is even is a duplicate.
        let replies = plan
            .calls
            .iter()
            .map(|call| {
                let answers: Vec<ClaimAnswer> = call
                    .indices
                    .iter()
                    .map(|i| {
                        if i % 2 == 0 {
                            ClaimAnswer::Duplicate
                        } else {
                            ClaimAnswer::Fresh
                        }
                    })
                    .collect();
                claimed(&answers)
            })
            .collect();
        let answers = plan.merge(replies).unwrap();
        for (i, answer) in answers.iter().enumerate() {
            let expected = if i % 2 == 0 {
                ClaimAnswer::Duplicate
            } else {
                ClaimAnswer::Fresh
            };
            assert_eq!(*answer, expected, "{i}");
        }
    }

    #[test]
    fn a_failed_or_refused_shard_releases_what_the_others_claimed() {
        let ids = ids(20);
        let plan = ClaimPlan::new(&ids, Some(&guard("g")), 1);
        assert!(plan.calls.len() > 2);
        let guard_call = plan
            .calls
            .iter()
            .position(|c| matches!(&c.call, DedupCall::Claim { guard: Some(_), .. }))
            .unwrap();
        let fresh_elsewhere: Vec<usize> = {
            let mut v: Vec<usize> = plan
                .calls
                .iter()
                .enumerate()
                .filter(|(n, _)| *n != guard_call && *n != 0)
                .flat_map(|(_, c)| c.indices.clone())
                .collect();
            v.sort_unstable();
            v
        };
        let replies: Vec<Result<DedupReply, ()>> = plan
            .calls
            .iter()
            .enumerate()
            .map(|(n, call)| {
                if n == guard_call {
                    Ok(DedupReply::ReplayRefused)
                } else if n == 0 {
                    Err(())
                } else {
                    claimed(&vec![ClaimAnswer::Fresh; call.indices.len()])
                }
            })
            .collect();
        let failure = plan.merge(replies).unwrap_err();
        let mut release = failure.release.clone();
        release.sort_unstable();
        if guard_call == 0 {
            // The same call cannot both fail and refuse; the refusal wins.
            assert_eq!(failure.rejection, Rejection::ReplayedSignature);
        } else {
            assert_eq!(
                failure.rejection,
                Rejection::ReplayedSignature,
                "the refusal outranks a failed call"
            );
            assert_eq!(release, fresh_elsewhere);
        }

        // A reply of the wrong length is a failure, never a guess.
        let short = plan
            .calls
            .iter()
            .map(|_| claimed(&[ClaimAnswer::Fresh]))
            .collect();
        assert!(plan.merge(short).is_err());
        assert_eq!(
            plan.merge::<()>(vec![]).unwrap_err().rejection,
            Rejection::EnqueueFailed
        );
    }

    #[test]
    fn commits_and_releases_go_to_each_ids_shard() {
        let ids = ids(30);
        let groups = group_ids(&ids);
        let total: usize = groups.iter().map(|(_, g)| g.len()).sum();
        assert_eq!(total, 30);
        for (shard, group) in groups {
            assert!(group.iter().all(|id| shard_of(id) == shard));
        }
    }

    #[test]
    fn a_spill_keeps_each_unsent_message_with_its_events_shard_and_commits_every_fresh_id() {
        let ids = ids(12);
        // The first 5 messages were sent, the last 7 were refused.
        let unsent: Vec<String> = ids[5..]
            .iter()
            .map(|id| format!("message of {id}"))
            .collect();
        let calls = spill_calls(&ids, unsent, 3, "/line/acme");
        let mut committed = 0;
        let mut kept = 0;
        for (shard, call) in calls {
            let DedupCall::Spill {
                ids: carried,
                messages,
                now_ms,
                source,
            } = call
            else {
                panic!("spill calls");
            };
            assert_eq!((now_ms, source.as_str()), (3, "/line/acme"));
            assert!(carried.iter().all(|id| shard_of(id) == shard));
            for message in &messages {
                let id = message.trim_start_matches("message of ");
                assert_eq!(
                    shard_of(id),
                    shard,
                    "a message stays with its event's shard"
                );
                assert!(ids[5..].iter().any(|unsent| unsent == id));
            }
            committed += carried.len();
            kept += messages.len();
        }
        assert_eq!((committed, kept), (12, 7));
    }
}
