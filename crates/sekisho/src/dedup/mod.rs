//! De-duplication claims, replay guards and the spill store, as decisions over explicit state. The Durable
//! Object `Deduper` (one per channel/account and shard, see [`shards`]) keeps the rows and performs these decisions; the request path
//! talks to it with [`DedupCall`].
//!
//! A claim is two-phase: a request first claims its event ids as *pending*, enqueues them, then *commits*.
//! A pending claim older than [`CLAIM_LEASE_MS`] counts as free, so a request that died between claim and
//! enqueue (isolate crash, failed calls) never turns the provider's retry into a loss. While a claim is
//! pending and young, another request with the same event is answered 503 (`claim_in_progress`) so its
//! provider retries, rather than 2xx for an event that may not be queued yet.
//!
//! When the queue refuses, the accepted events are *spilled* into the object's own SQLite (and their claims
//! committed in the same write); the object's alarm drains the spill into the queue later.

mod replies;
mod shards;

use serde::{Deserialize, Serialize};

pub use replies::{is_duplicate, reply_step, KeptReply, ReplyStep, REPLY_KEPT_MS};
pub use shards::{
    group_ids, object_name, shard_of, spill_calls, ClaimFailure, ClaimPlan, ShardCall, SHARDS,
};

use crate::channels::ReplayGuard;
use crate::config::Bindings;
use crate::Rejection;

/// How long a pending claim holds. Longer than a request takes from claim to commit (a few queue calls),
/// shorter than providers' retry intervals (WeChat retries after 5 s, three times).
pub const CLAIM_LEASE_MS: u64 = 10_000;

/// A stored claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Pending { since_ms: u64 },
    Committed { at_ms: u64 },
}

/// The answer for one event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimAnswer {
    /// This request holds the claim now and must enqueue the event.
    Fresh,
    /// Already accepted: answer 2xx, enqueue nothing.
    Duplicate,
    /// Another request holds a young pending claim.
    InFlight,
}

/// Decides one id's claim at `now_ms`; the second value is the row to write, if any.
pub fn claim(existing: Option<Claim>, now_ms: u64) -> (ClaimAnswer, Option<Claim>) {
    let take = (
        ClaimAnswer::Fresh,
        Some(Claim::Pending { since_ms: now_ms }),
    );
    match existing {
        None => take,
        Some(Claim::Committed { .. }) => (ClaimAnswer::Duplicate, None),
        Some(Claim::Pending { since_ms }) if now_ms.saturating_sub(since_ms) >= CLAIM_LEASE_MS => {
            take
        }
        Some(Claim::Pending { .. }) => (ClaimAnswer::InFlight, None),
    }
}

/// What a request does with its claim answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Enqueue the deliveries at these indices; the others are duplicates.
    Enqueue {
        fresh: Vec<usize>,
        duplicates: usize,
    },
    /// Some event is being accepted by another request right now: release what this request claimed (`fresh`)
    /// and answer [`crate::Rejection::ClaimInProgress`] so the provider retries.
    Busy { fresh: Vec<usize> },
}

pub fn decide(answers: &[ClaimAnswer]) -> ClaimDecision {
    let fresh: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| **a == ClaimAnswer::Fresh)
        .map(|(i, _)| i)
        .collect();
    if answers.contains(&ClaimAnswer::InFlight) {
        return ClaimDecision::Busy { fresh };
    }
    let duplicates = answers.len() - fresh.len();
    ClaimDecision::Enqueue { fresh, duplicates }
}

/// A remembered replay guard: the body digest a signed query first came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGuard {
    pub body_digest: String,
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// First use (or the remembered one expired): remember it.
    First,
    /// The same query with the same body: a provider retry, judged by the event claims as usual.
    SameBody,
    /// The same signed query with another body: refused with [`crate::Rejection::ReplayedSignature`].
    OtherBody,
}

pub fn check_replay(stored: Option<&StoredGuard>, guard: &ReplayGuard, now_ms: u64) -> ReplayCheck {
    match stored {
        Some(stored) if stored.expires_at_ms >= now_ms => {
            // Digests of public data: no secret is compared here.
            if stored.body_digest == guard.body_digest {
                ReplayCheck::SameBody
            } else {
                ReplayCheck::OtherBody
            }
        }
        _ => ReplayCheck::First,
    }
}

/// One call to the de-duplication object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum DedupCall {
    /// Checks the replay guard (if any) first — refused without claiming anything — then claims every id.
    Claim {
        ids: Vec<String>,
        guard: Option<ReplayGuard>,
        now_ms: u64,
    },
    /// The events are in the queue.
    Commit { ids: Vec<String>, now_ms: u64 },
    /// Enqueueing failed and nothing durable took the events: free the pending claims.
    Release { ids: Vec<String> },
    /// Keeps the reply rendered for this (fresh) event, for its duplicates ([`replies`]).
    KeepReply { id: String, reply: KeptReply },
    /// The reply kept for this event, if any: asked only for a duplicate.
    KeptReply { id: String },
    /// The queue refused: keep these queue messages and commit these ids, in one write; drain by alarm.
    Spill {
        ids: Vec<String>,
        messages: Vec<String>,
        now_ms: u64,
        /// `/{channel}/{account}`, for the drain's log lines.
        source: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DedupReply {
    Claimed { answers: Vec<ClaimAnswer> },
    ReplayRefused,
    Done,
    Kept { reply: Option<KeptReply> },
}

/// What a claim reply means for the request: the answers (one per id asked), or the refusal.
pub fn read_claim_reply(
    reply: DedupReply,
    ids_asked: usize,
) -> Result<Vec<ClaimAnswer>, Rejection> {
    match reply {
        DedupReply::Claimed { answers } if answers.len() == ids_asked => Ok(answers),
        DedupReply::ReplayRefused => Err(Rejection::ReplayedSignature),
        // A reply that does not fit the call: nothing can be trusted, the provider retries.
        DedupReply::Claimed { .. } | DedupReply::Done | DedupReply::Kept { .. } => {
            Err(Rejection::EnqueueFailed)
        }
    }
}

/// Without a de-duplication object nothing can check a replay guard: a guarded request is refused (security
/// first); any other is queued as is, and the backend de-duplicates on webhook-id.
pub fn without_store(guard: Option<&ReplayGuard>) -> Result<(), Rejection> {
    match guard {
        Some(_) => Err(Rejection::misconfigured(STORE_BINDING)),
        None => Ok(()),
    }
}

/// The binding of the de-duplication Durable Object namespace.
pub const STORE_BINDING: &str = "DEDUP";

/// When the first drain of a fresh spill runs.
pub const SPILL_FIRST_DRAIN_MS: u64 = 1_000;
/// The longest wait between drain attempts while the queue keeps refusing.
pub const SPILL_MAX_DRAIN_DELAY_MS: u64 = 5 * 60 * 1_000;
/// How often old claims and guards are purged while any exist.
pub const PURGE_EVERY_MS: u64 = 60 * 60 * 1_000;
/// Spilled messages sent per `sendBatch` are also split by [`crate::delivery::batches`]; this bounds one
/// drain's work.
pub const SPILL_DRAIN_MAX_MESSAGES: usize = 500;

/// The wait before the next drain after `failures` failed drains in a row: 1 s doubling to 5 minutes.
pub fn drain_delay_ms(failures: u32) -> u64 {
    SPILL_FIRST_DRAIN_MS
        .saturating_mul(1u64 << failures.min(20))
        .min(SPILL_MAX_DRAIN_DELAY_MS)
}

/// The object's single alarm serves both the drain and the purge: the earlier of the two that is needed.
pub fn next_alarm_ms(
    now_ms: u64,
    spill_waiting: bool,
    drain_failures: u32,
    rows_to_purge: bool,
) -> Option<u64> {
    let drain = spill_waiting.then(|| now_ms + drain_delay_ms(drain_failures));
    let purge = rows_to_purge.then(|| now_ms + PURGE_EVERY_MS);
    match (drain, purge) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Retention of de-duplication keys: `DEDUP_RETENTION_HOURS`, default 72.
pub fn retention_ms(bindings: &dyn Bindings) -> u64 {
    let hours: u64 = bindings
        .get("DEDUP_RETENTION_HOURS")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(72);
    hours.saturating_mul(3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_fresh_once_and_then_a_duplicate() {
        let (answer, write) = claim(None, 1_000);
        assert_eq!(answer, ClaimAnswer::Fresh);
        assert_eq!(write, Some(Claim::Pending { since_ms: 1_000 }));
        assert_eq!(
            claim(Some(Claim::Committed { at_ms: 1_000 }), 999_999_999),
            (ClaimAnswer::Duplicate, None)
        );
    }

    #[test]
    fn a_young_pending_claim_is_in_flight_and_an_old_one_is_free() {
        let pending = Some(Claim::Pending { since_ms: 1_000 });
        assert_eq!(claim(pending, 1_000), (ClaimAnswer::InFlight, None));
        assert_eq!(
            claim(pending, 1_000 + CLAIM_LEASE_MS - 1),
            (ClaimAnswer::InFlight, None)
        );
        assert_eq!(
            claim(pending, 1_000 + CLAIM_LEASE_MS),
            (
                ClaimAnswer::Fresh,
                Some(Claim::Pending {
                    since_ms: 1_000 + CLAIM_LEASE_MS
                })
            )
        );
        // A clock that went backwards never frees a claim early.
        assert_eq!(claim(pending, 10), (ClaimAnswer::InFlight, None));
    }

    /// The crash window: a request claims, then dies before enqueueing (or its release fails). The provider's
    /// retry within the lease is told to retry again; after the lease it takes the claim over. At no point is
    /// the event answered as a duplicate without having been queued.
    #[test]
    fn a_crash_between_claim_and_enqueue_is_never_a_loss() {
        let (_, row) = claim(None, 0);
        let retry_soon = claim(row, 5_000).0;
        assert_eq!(retry_soon, ClaimAnswer::InFlight);
        assert_eq!(decide(&[retry_soon]), ClaimDecision::Busy { fresh: vec![] });
        assert_eq!(claim(row, 15_000).0, ClaimAnswer::Fresh);
    }

    #[test]
    fn request_level_decisions() {
        use ClaimAnswer::*;
        assert_eq!(
            decide(&[Fresh, Duplicate, Fresh]),
            ClaimDecision::Enqueue {
                fresh: vec![0, 2],
                duplicates: 1
            }
        );
        assert_eq!(
            decide(&[Duplicate, Duplicate]),
            ClaimDecision::Enqueue {
                fresh: vec![],
                duplicates: 2
            }
        );
        assert_eq!(
            decide(&[Fresh, InFlight, Duplicate]),
            ClaimDecision::Busy { fresh: vec![0] }
        );
        assert_eq!(
            decide(&[]),
            ClaimDecision::Enqueue {
                fresh: vec![],
                duplicates: 0
            }
        );
    }

    fn guard(digest: &str) -> ReplayGuard {
        ReplayGuard {
            key: "k".into(),
            body_digest: digest.into(),
            expires_at_ms: 2_000,
        }
    }

    #[test]
    fn a_signed_query_is_bound_to_its_first_body_until_it_expires() {
        assert_eq!(check_replay(None, &guard("a"), 0), ReplayCheck::First);
        let stored = StoredGuard {
            body_digest: "a".into(),
            expires_at_ms: 2_000,
        };
        assert_eq!(
            check_replay(Some(&stored), &guard("a"), 1_000),
            ReplayCheck::SameBody
        );
        assert_eq!(
            check_replay(Some(&stored), &guard("b"), 1_000),
            ReplayCheck::OtherBody
        );
        assert_eq!(
            check_replay(Some(&stored), &guard("b"), 2_000),
            ReplayCheck::OtherBody
        );
        assert_eq!(
            check_replay(Some(&stored), &guard("b"), 2_001),
            ReplayCheck::First
        );
    }

    #[test]
    fn drains_back_off_and_share_the_alarm_with_the_purge() {
        assert_eq!(drain_delay_ms(0), 1_000);
        assert_eq!(drain_delay_ms(3), 8_000);
        assert_eq!(drain_delay_ms(30), SPILL_MAX_DRAIN_DELAY_MS);
        assert_eq!(next_alarm_ms(100, false, 0, false), None);
        assert_eq!(next_alarm_ms(100, true, 0, true), Some(1_100));
        assert_eq!(
            next_alarm_ms(100, false, 0, true),
            Some(100 + PURGE_EVERY_MS)
        );
        assert_eq!(
            next_alarm_ms(100, true, 40, false),
            Some(100 + SPILL_MAX_DRAIN_DELAY_MS)
        );
    }

    #[test]
    fn calls_and_replies_round_trip_as_json() {
        let call = DedupCall::Spill {
            ids: vec!["evt_1".into()],
            messages: vec!["{}".into()],
            now_ms: 5,
            source: "/line/acme".into(),
        };
        let text = serde_json::to_string(&call).unwrap();
        assert!(text.contains("\"op\":\"spill\""));
        assert_eq!(serde_json::from_str::<DedupCall>(&text).unwrap(), call);
        let reply = DedupReply::Claimed {
            answers: vec![ClaimAnswer::Fresh, ClaimAnswer::InFlight],
        };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            text,
            "{\"result\":\"claimed\",\"answers\":[\"fresh\",\"in_flight\"]}"
        );
    }

    #[test]
    fn claim_replies_are_read_into_answers_or_refusals() {
        use ClaimAnswer::*;
        let claimed = |answers: Vec<ClaimAnswer>| DedupReply::Claimed { answers };
        assert_eq!(
            read_claim_reply(claimed(vec![Fresh, Duplicate]), 2),
            Ok(vec![Fresh, Duplicate])
        );
        assert_eq!(read_claim_reply(claimed(vec![]), 0), Ok(vec![]));
        assert_eq!(
            read_claim_reply(claimed(vec![Fresh]), 2),
            Err(Rejection::EnqueueFailed)
        );
        assert_eq!(
            read_claim_reply(DedupReply::Done, 1),
            Err(Rejection::EnqueueFailed)
        );
        assert_eq!(
            read_claim_reply(DedupReply::ReplayRefused, 1),
            Err(Rejection::ReplayedSignature)
        );
    }

    #[test]
    fn without_a_store_only_guarded_requests_are_refused() {
        assert_eq!(without_store(None), Ok(()));
        assert_eq!(
            without_store(Some(&guard("a"))),
            Err(Rejection::misconfigured("DEDUP"))
        );
    }

    #[test]
    fn retention_defaults_to_72_hours() {
        let none = std::collections::HashMap::<String, String>::new();
        assert_eq!(retention_ms(&none), 72 * 3_600_000);
    }
}
