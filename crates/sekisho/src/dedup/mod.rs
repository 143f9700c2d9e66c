//! De-duplication claims, replay guards and the spill store, as decisions over explicit state. The Durable
//! Object `Deduper` (one per channel/account and shard, see [`shards`]) keeps the rows and performs these
//! decisions; the request path talks to it with [`DedupCall`].
//!
//! An accepted request makes one call per shard its events fall into ([`DedupCall::Accept`]): the object
//! answers which events are new, sends those to the queue itself and writes their claims once the queue took
//! them ([`accept`]). A copy of an event that another call is sending right now is answered busy (`503
//! claim_in_progress`, so its provider retries) rather than 2xx for an event that may not be queued yet.
//! Committed claims live in tables by span of time ([`buckets`]), dropped whole after the retention.
//!
//! When the queue refuses, the accepted events are *spilled* into the object's own SQLite (with their claims,
//! in the same write); the object's alarm drains the spill into the queue later.
//!
//! An event with a reply call has its claim *held* by the accept call ([`Hold`], [`InFlight`]) and written with
//! the rendered reply by [`DedupCall::Commit`] after the reply call: the claim and the reply its duplicates get
//! are one row ([`replies`]).

pub mod accept;
pub mod buckets;
mod in_flight;
mod replies;
mod shards;

use serde::{Deserialize, Serialize};

pub use accept::{AcceptEvent, Known, ShardAccept, ShardOutcome, ShardStep};
pub use in_flight::{Hold, InFlight, COMMIT_WAIT_MAX_MS};
pub use replies::{reply_step, HeldClaim, KeptReply, ReplyTurn, REPLY_KEPT_MS};
pub use shards::{object_name, shard_of, AcceptPlan, Merged, ShardCall, SHARDS};

use crate::channels::ReplayGuard;
use crate::config::Bindings;
use crate::Rejection;

/// How long a pending claim of an earlier version holds (objects of earlier versions wrote a pending row, then
/// enqueued, then committed): a young one is still in flight, an older one is free.
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
    /// New: taken (queued or spilled) by this call.
    Fresh,
    /// Already accepted: answer 2xx, enqueue nothing.
    Duplicate,
    /// Another call is taking it right now (or, in an object of an earlier version, holds a young pending
    /// claim).
    InFlight,
}

/// Decides one id's claim at `now_ms`, from its stored row.
pub fn claim(existing: Option<Claim>, now_ms: u64) -> ClaimAnswer {
    match existing {
        None => ClaimAnswer::Fresh,
        Some(Claim::Committed { .. }) => ClaimAnswer::Duplicate,
        Some(Claim::Pending { since_ms }) if now_ms.saturating_sub(since_ms) >= CLAIM_LEASE_MS => {
            ClaimAnswer::Fresh
        }
        Some(Claim::Pending { .. }) => ClaimAnswer::InFlight,
    }
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
    /// Takes the new events: sends them to the queue and commits their claims ([`accept`]).
    Accept {
        events: Vec<AcceptEvent>,
        now_ms: u64,
        /// Each first queue message held back this long (a reply call's event, see
        /// [`crate::reply::ReplyCall::delivery_delay_s`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delay_s: Option<u32>,
        /// `/{channel}/{account}`, for the spill drain's log lines.
        source: String,
        /// The event of a reply call, when it is in this call ([`Hold`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold: Option<Hold>,
        /// The held event is sent by the edge, not by this call ([`accept::ShardAccept::edge_sends`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        edge_sends: bool,
    },
    /// The replay guard, before anything of its request is taken (a guard lives in the shard of its own key,
    /// and the request's events in theirs: checked first, a replayed signature takes nothing anywhere).
    CheckGuard { guard: ReplayGuard, now_ms: u64 },
    /// Writes the claim an accept call held, with the reply rendered for its event (none when the provider got
    /// the default answer), and ends the hold.
    Commit {
        id: String,
        reply: Option<KeptReply>,
        now_ms: u64,
        /// The held event's message when the edge's send was refused: kept in the spill, in the same write.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        spill: Vec<String>,
        /// `/{channel}/{account}`, for the spill drain's log lines (with a spill only).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        source: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DedupReply {
    /// One answer per event of the call: `fresh` ones are queued (or spilled, then `spilled` is set) and
    /// claimed by this call, `duplicate` ones were before.
    Accepted {
        answers: Vec<ClaimAnswer>,
        spilled: bool,
        /// The call's [`Hold`] was taken: its claim waits for the commit.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        held: bool,
        /// The reply kept for the held event, when it was a duplicate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<KeptReply>,
    },
    /// Another call is sending one of the events right now: nothing was taken.
    Busy,
    ReplayRefused,
    Done,
}

/// How one shard's accept went, for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardAccepted {
    /// One per event asked, in order.
    pub answers: Vec<ClaimAnswer>,
    pub spilled: bool,
    pub held: bool,
    pub kept: Option<KeptReply>,
}

/// What an accept reply means for the request: the answers (one per id asked), or the refusal.
pub fn read_accept_reply(reply: DedupReply, ids_asked: usize) -> Result<ShardAccepted, Rejection> {
    match reply {
        DedupReply::Accepted {
            answers,
            spilled,
            held,
            kept,
        } if answers.len() == ids_asked && !answers.contains(&ClaimAnswer::InFlight) => {
            Ok(ShardAccepted {
                answers,
                spilled,
                held,
                kept,
            })
        }
        DedupReply::Busy => Err(Rejection::ClaimInProgress),
        DedupReply::ReplayRefused => Err(Rejection::ReplayedSignature),
        // A reply that does not fit the call: nothing can be trusted, the provider retries.
        DedupReply::Accepted { .. } | DedupReply::Done => Err(Rejection::EnqueueFailed),
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
/// How often rows that expire one by one (replay guards, kept replies, claims of earlier versions) are purged
/// while any exist. Claims tables need no such round: the alarm is set for the moment the oldest one expires.
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

/// What the object's alarm still has to purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purge {
    /// Rows that expire one by one are stored (purged every [`PURGE_EVERY_MS`]).
    pub rows: bool,
    /// When the oldest claims table expires ([`buckets::Span::expires_at_ms`]), if there is one.
    pub oldest_table_expires_ms: Option<u64>,
}

/// The object's single alarm serves the drain and the purge: the earliest moment one of them is due. An object
/// holding only claims tables wakes once per table (every 36 hours by default), not every hour.
pub fn next_alarm_ms(
    now_ms: u64,
    spill_waiting: bool,
    drain_failures: u32,
    purge: Purge,
) -> Option<u64> {
    [
        spill_waiting.then(|| now_ms + drain_delay_ms(drain_failures)),
        purge.rows.then(|| now_ms + PURGE_EVERY_MS),
        purge.oldest_table_expires_ms.map(|at| at.max(now_ms)),
    ]
    .into_iter()
    .flatten()
    .min()
}

/// The alarm an accept call's write needs: a drain soon when it spilled, else the expiry of the claims table it
/// made (when it made one); nothing otherwise (an alarm is already set for the tables that exist).
pub fn alarm_after_keep(
    spilled: bool,
    new_table: Option<buckets::Span>,
    now_ms: u64,
    retention_ms: u64,
) -> Option<u64> {
    if spilled {
        return Some(now_ms + SPILL_FIRST_DRAIN_MS);
    }
    new_table.map(|span| span.expires_at_ms(retention_ms))
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
    fn a_committed_claim_is_a_duplicate_forever() {
        assert_eq!(claim(None, 1_000), ClaimAnswer::Fresh);
        assert_eq!(
            claim(Some(Claim::Committed { at_ms: 1_000 }), 999_999_999),
            ClaimAnswer::Duplicate
        );
    }

    #[test]
    fn a_young_pending_claim_of_an_earlier_version_is_in_flight_and_an_old_one_is_free() {
        let pending = Some(Claim::Pending { since_ms: 1_000 });
        assert_eq!(claim(pending, 1_000), ClaimAnswer::InFlight);
        assert_eq!(
            claim(pending, 1_000 + CLAIM_LEASE_MS - 1),
            ClaimAnswer::InFlight
        );
        assert_eq!(claim(pending, 1_000 + CLAIM_LEASE_MS), ClaimAnswer::Fresh);
        // A clock that went backwards never frees a claim early.
        assert_eq!(claim(pending, 10), ClaimAnswer::InFlight);
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
        let rows = Purge {
            rows: true,
            oldest_table_expires_ms: None,
        };
        assert_eq!(next_alarm_ms(100, false, 0, Purge::default()), None);
        assert_eq!(next_alarm_ms(100, true, 0, rows), Some(1_100));
        assert_eq!(
            next_alarm_ms(100, false, 0, rows),
            Some(100 + PURGE_EVERY_MS)
        );
        assert_eq!(
            next_alarm_ms(100, true, 40, Purge::default()),
            Some(100 + SPILL_MAX_DRAIN_DELAY_MS)
        );
    }

    #[test]
    fn an_object_with_only_claims_tables_wakes_when_the_oldest_expires() {
        let day = 24 * 3_600_000;
        let tables = Purge {
            rows: false,
            oldest_table_expires_ms: Some(5 * day),
        };
        assert_eq!(next_alarm_ms(day, false, 0, tables), Some(5 * day));
        // Rows to purge hourly come first; a drain comes first of all.
        let both = Purge {
            rows: true,
            ..tables
        };
        assert_eq!(
            next_alarm_ms(day, false, 0, both),
            Some(day + PURGE_EVERY_MS)
        );
        assert_eq!(next_alarm_ms(day, true, 0, both), Some(day + 1_000));
        // A table already past its expiry is purged now, never in the past.
        assert_eq!(next_alarm_ms(6 * day, false, 0, tables), Some(6 * day));
    }

    #[test]
    fn a_write_sets_the_drain_or_the_new_tables_expiry() {
        let retention = 72 * 3_600_000;
        let span = buckets::Span::at(0, retention);
        assert_eq!(
            alarm_after_keep(true, Some(span), 50, retention),
            Some(50 + SPILL_FIRST_DRAIN_MS)
        );
        assert_eq!(
            alarm_after_keep(false, Some(span), 50, retention),
            Some(108 * 3_600_000)
        );
        assert_eq!(alarm_after_keep(false, None, 50, retention), None);
    }

    #[test]
    fn calls_and_replies_round_trip_as_json() {
        let call = DedupCall::Accept {
            events: vec![AcceptEvent {
                id: "evt_1".into(),
                message: "{}".into(),
            }],
            now_ms: 5,
            delay_s: None,
            source: "/line/acme".into(),
            hold: None,
            edge_sends: false,
        };
        let text = serde_json::to_string(&call).unwrap();
        assert!(text.contains("\"op\":\"accept\""), "{text}");
        assert!(!text.contains("delay_s"), "{text}");
        assert_eq!(serde_json::from_str::<DedupCall>(&text).unwrap(), call);
        let reply = DedupReply::Accepted {
            answers: vec![ClaimAnswer::Fresh, ClaimAnswer::Duplicate],
            spilled: false,
            held: false,
            kept: None,
        };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            text,
            "{\"result\":\"accepted\",\"answers\":[\"fresh\",\"duplicate\"],\"spilled\":false}"
        );
        assert_eq!(serde_json::from_str::<DedupReply>(&text).unwrap(), reply);
    }

    #[test]
    fn accept_replies_are_read_into_answers_or_refusals() {
        use ClaimAnswer::*;
        let accepted = |answers: Vec<ClaimAnswer>| DedupReply::Accepted {
            answers,
            spilled: true,
            held: false,
            kept: None,
        };
        assert_eq!(
            read_accept_reply(accepted(vec![Fresh, Duplicate]), 2),
            Ok(ShardAccepted {
                answers: vec![Fresh, Duplicate],
                spilled: true,
                held: false,
                kept: None,
            })
        );
        assert_eq!(
            read_accept_reply(accepted(vec![Fresh]), 2),
            Err(Rejection::EnqueueFailed)
        );
        assert_eq!(
            read_accept_reply(accepted(vec![InFlight]), 1),
            Err(Rejection::EnqueueFailed),
            "an object never answers in_flight inside an accepted reply"
        );
        assert_eq!(
            read_accept_reply(DedupReply::Busy, 1),
            Err(Rejection::ClaimInProgress)
        );
        assert_eq!(
            read_accept_reply(DedupReply::Done, 1),
            Err(Rejection::EnqueueFailed)
        );
        assert_eq!(
            read_accept_reply(DedupReply::ReplayRefused, 1),
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
