//! One shard's part of an accepted request, in one call ([`super::DedupCall::Accept`]): the object decides
//! which events are new, sends them to the queue itself, and only then writes their claims — one Durable
//! Object request and one row per event, where a claim, an enqueue and a commit took two requests and two rows.
//!
//! The order is what keeps it exact. The claim row is written only after the queue took the event, so an
//! object that dies in between has written nothing and the provider's retry sends the event again (a duplicate
//! the backend drops by webhook-id, never a loss). While the send is under way the id is marked *in flight* in
//! the object's memory: a Durable Object is one instance, and it takes other requests while it waits for the
//! queue (its input gate only closes for storage), so a concurrent copy of the event is answered busy and
//! retried by its provider rather than sent twice. The object's answer leaves only once the write is durable
//! (the output gate), so a 2xx never stands on a claim that could still be lost.
//!
//! When the queue refuses, the messages not sent are spilled into the object's own SQLite in the same write as
//! the claims; its alarm drains them later ([`super::drain_delay_ms`]).
//!
//! An event with a reply call is *held* ([`Hold`]): sent like the others, but its claim is written by the
//! commit that follows the reply call, with the reply in the same row. A copy of it stays busy until then, and
//! a duplicate of it is answered with the reply kept for it, in this same call.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{claim, Claim, ClaimAnswer, DedupReply, Hold, KeptReply};
use crate::delivery::{batches, QueueSet};

/// One event of an accept call: its id and its first queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptEvent {
    pub id: String,
    pub message: String,
}

/// What the object knows of one id when the call comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Known {
    /// Its row, if any (pending rows only exist in objects of earlier versions).
    pub stored: Option<Claim>,
    /// Another call of this object is sending it right now.
    pub in_flight: bool,
}

/// One step for the object to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardStep {
    /// Send these messages to the queue bound as `queue`, in one `sendBatch`, each held back `delay_s` when
    /// given; feed back [`ShardOutcome::Sent`].
    Send {
        queue: String,
        messages: Vec<String>,
        delay_s: Option<u32>,
    },
    /// In one write (one implicit transaction: no `await` between the statements): commit the claims of
    /// `commit` and keep the `spill` messages for the drain; feed back [`ShardOutcome::Kept`].
    Keep {
        commit: Vec<String>,
        spill: Vec<String>,
    },
    /// Answer the call with this.
    Reply(DedupReply),
    /// Nothing durable took the events and nothing was written: answer with an error, so the request is
    /// refused and its provider retries.
    Fail(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardOutcome {
    Start,
    Sent(Result<(), String>),
    Kept(Result<(), String>),
}

#[derive(Debug)]
struct Batch {
    queue: String,
    messages: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Start,
    Sending,
    Keeping,
    Done,
}

/// The accept call of one shard, as a step machine the object performs.
#[derive(Debug)]
pub struct ShardAccept {
    answers: Vec<ClaimAnswer>,
    fresh: Vec<String>,
    batches: VecDeque<Batch>,
    /// The messages of the batch being sent.
    current: Vec<String>,
    spill: Vec<String>,
    delay_s: Option<u32>,
    stage: Stage,
    /// The event whose claim waits for its reply, when it is one of `fresh`.
    hold: Option<Hold>,
    /// The reply kept for the held event's id, when it is a duplicate.
    kept: Option<KeptReply>,
    /// The edge sends the held event itself (a guarded request, see [`ShardAccept::edge_sends`]).
    edge_sends: bool,
}

impl ShardAccept {
    /// `known` has one entry per event, in their order.
    pub fn new(
        events: Vec<AcceptEvent>,
        known: &[Known],
        queues: &QueueSet,
        delay_s: Option<u32>,
        now_ms: u64,
    ) -> ShardAccept {
        // An id twice in one call (a provider batch that repeats an event) is taken once: the later copy is a
        // duplicate of the earlier one.
        let mut seen = std::collections::HashSet::new();
        let answers: Vec<ClaimAnswer> = events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let known = known.get(i).copied().unwrap_or_default();
                if known.in_flight {
                    ClaimAnswer::InFlight
                } else if !seen.insert(event.id.as_str()) {
                    ClaimAnswer::Duplicate
                } else {
                    claim(known.stored, now_ms)
                }
            })
            .collect();
        let busy = answers.contains(&ClaimAnswer::InFlight);
        let mut fresh = Vec::new();
        let mut by_queue: Vec<(String, Vec<String>)> = Vec::new();
        if !busy {
            for (event, answer) in events.into_iter().zip(&answers) {
                if *answer != ClaimAnswer::Fresh {
                    continue;
                }
                let queue = queues.for_event(&event.id);
                match by_queue.iter_mut().find(|(name, _)| name == queue) {
                    Some((_, messages)) => messages.push(event.message),
                    None => by_queue.push((queue.to_owned(), vec![event.message])),
                }
                fresh.push(event.id);
            }
        }
        let batches = by_queue
            .into_iter()
            .flat_map(|(queue, messages)| {
                batches(messages).into_iter().map(move |messages| Batch {
                    queue: queue.clone(),
                    messages,
                })
            })
            .collect();
        ShardAccept {
            answers,
            fresh,
            batches,
            current: Vec::new(),
            spill: Vec::new(),
            delay_s,
            stage: Stage::Start,
            hold: None,
            kept: None,
            edge_sends: false,
        }
    }

    /// Nothing is sent or written by this call: the held event is looked up and held, and the edge sends it
    /// once its replay guard was checked in parallel, then commits it (or spills it with the commit). Only a
    /// call whose one new event is the held one can be answered so; any other new event fails the call.
    pub fn edge_sends(mut self) -> ShardAccept {
        self.edge_sends = true;
        self
    }

    /// The call's event with a reply call: held when it is new (its claim is left to the commit), answered with
    /// `kept` — the reply kept with its claim — when it is a duplicate.
    pub fn with_reply(mut self, hold: Hold, kept: Option<KeptReply>) -> ShardAccept {
        if self.fresh.contains(&hold.id) {
            self.hold = Some(hold);
        } else {
            self.kept = kept;
        }
        self
    }

    /// The hold left after the call (when its event was sent and nothing was spilled): the id stays in flight
    /// until the commit or the hold's end.
    pub fn held(&self) -> Option<&Hold> {
        self.hold.as_ref().filter(|_| self.spill.is_empty())
    }

    /// The ids this call takes: mark them in flight before the first step, unmark them when it is done.
    pub fn fresh(&self) -> &[String] {
        &self.fresh
    }

    pub fn next(&mut self, outcome: ShardOutcome) -> ShardStep {
        let stage = std::mem::replace(&mut self.stage, Stage::Done);
        match (stage, outcome) {
            (Stage::Start, _) if self.answers.contains(&ClaimAnswer::InFlight) => {
                ShardStep::Reply(DedupReply::Busy)
            }
            (Stage::Start, _) if self.edge_sends => {
                let held = self.hold.as_ref().map(|hold| hold.id.as_str());
                if self.fresh.iter().any(|id| Some(id.as_str()) != held) {
                    return ShardStep::Fail(
                        "only the held event can be left to the edge".to_owned(),
                    );
                }
                self.reply()
            }
            (Stage::Start, _) => self.send_next(),
            (Stage::Sending, ShardOutcome::Sent(Ok(()))) => self.send_next(),
            (Stage::Sending, ShardOutcome::Sent(Err(_)) | ShardOutcome::Start)
            | (Stage::Sending, ShardOutcome::Kept(_)) => {
                // The failed batch and every later one are spilled; the claims of all are committed with them.
                self.spill = std::mem::take(&mut self.current);
                self.spill
                    .extend(self.batches.drain(..).flat_map(|batch| batch.messages));
                self.keep()
            }
            (Stage::Keeping, ShardOutcome::Kept(Ok(()))) => self.reply(),
            (Stage::Keeping, ShardOutcome::Kept(Err(error))) => ShardStep::Fail(error),
            (Stage::Keeping, _) => ShardStep::Fail("the write's result is missing".to_owned()),
            (Stage::Done, _) => ShardStep::Fail("the call is over".to_owned()),
        }
    }

    fn send_next(&mut self) -> ShardStep {
        match self.batches.pop_front() {
            Some(batch) => {
                self.current = batch.messages.clone();
                self.stage = Stage::Sending;
                ShardStep::Send {
                    queue: batch.queue,
                    messages: batch.messages,
                    delay_s: self.delay_s,
                }
            }
            None => self.keep(),
        }
    }

    /// The write, unless there is nothing to write: a spill takes every claim with it (the held one too, so
    /// the events are kept even if no commit comes); otherwise the held claim is left to the commit.
    fn keep(&mut self) -> ShardStep {
        let held = self.held().map(|hold| hold.id.clone());
        let commit: Vec<String> = self
            .fresh
            .iter()
            .filter(|id| Some(*id) != held.as_ref())
            .cloned()
            .collect();
        if commit.is_empty() && self.spill.is_empty() {
            return self.reply();
        }
        self.stage = Stage::Keeping;
        ShardStep::Keep {
            commit,
            spill: self.spill.clone(),
        }
    }

    fn reply(&mut self) -> ShardStep {
        ShardStep::Reply(DedupReply::Accepted {
            answers: self.answers.clone(),
            spilled: !self.spill.is_empty(),
            held: self.held().is_some(),
            kept: self.kept.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<AcceptEvent> {
        (0..n)
            .map(|i| AcceptEvent {
                id: format!("evt_{i}"),
                message: format!("{{\"n\":{i}}}"),
            })
            .collect()
    }

    fn queues(names: &str) -> QueueSet {
        QueueSet::from_bindings(&std::collections::HashMap::from([(
            "EVENT_QUEUES".to_owned(),
            names.to_owned(),
        )]))
    }

    #[test]
    fn new_events_are_sent_then_committed_and_duplicates_are_not_sent() {
        let known = [
            Known::default(),
            Known {
                stored: Some(Claim::Committed { at_ms: 1 }),
                in_flight: false,
            },
            Known::default(),
        ];
        let mut accept = ShardAccept::new(events(3), &known, &queues("EVENTS"), Some(7), 100);
        assert_eq!(accept.fresh(), ["evt_0", "evt_2"]);
        assert_eq!(
            accept.next(ShardOutcome::Start),
            ShardStep::Send {
                queue: "EVENTS".into(),
                messages: vec!["{\"n\":0}".into(), "{\"n\":2}".into()],
                delay_s: Some(7),
            }
        );
        assert_eq!(
            accept.next(ShardOutcome::Sent(Ok(()))),
            ShardStep::Keep {
                commit: vec!["evt_0".into(), "evt_2".into()],
                spill: vec![],
            }
        );
        assert_eq!(
            accept.next(ShardOutcome::Kept(Ok(()))),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![
                    ClaimAnswer::Fresh,
                    ClaimAnswer::Duplicate,
                    ClaimAnswer::Fresh
                ],
                spilled: false,
                held: false,
                kept: None,
            })
        );
    }

    #[test]
    fn an_id_twice_in_one_call_is_sent_and_claimed_once() {
        let mut twice = events(2);
        twice[1].id = twice[0].id.clone();
        let mut accept =
            ShardAccept::new(twice, &[Known::default(); 2], &queues("EVENTS"), None, 0);
        assert_eq!(accept.fresh(), ["evt_0"]);
        assert!(matches!(
            accept.next(ShardOutcome::Start),
            ShardStep::Send { messages, .. } if messages.len() == 1
        ));
        assert_eq!(
            accept.next(ShardOutcome::Sent(Ok(()))),
            ShardStep::Keep {
                commit: vec!["evt_0".into()],
                spill: vec![]
            }
        );
        assert_eq!(
            accept.next(ShardOutcome::Kept(Ok(()))),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Fresh, ClaimAnswer::Duplicate],
                spilled: false,
                held: false,
                kept: None,
            })
        );
    }

    #[test]
    fn only_duplicates_write_nothing_and_send_nothing() {
        let known = [Known {
            stored: Some(Claim::Committed { at_ms: 1 }),
            in_flight: false,
        }];
        let mut accept = ShardAccept::new(events(1), &known, &queues("EVENTS"), None, 100);
        assert!(accept.fresh().is_empty());
        assert_eq!(
            accept.next(ShardOutcome::Start),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Duplicate],
                spilled: false,
                held: false,
                kept: None,
            })
        );
    }

    #[test]
    fn an_event_in_flight_makes_the_call_busy_and_takes_nothing() {
        let known = [
            Known::default(),
            Known {
                stored: None,
                in_flight: true,
            },
        ];
        let mut accept = ShardAccept::new(events(2), &known, &queues("EVENTS"), None, 100);
        assert!(accept.fresh().is_empty(), "nothing is marked in flight");
        assert_eq!(
            accept.next(ShardOutcome::Start),
            ShardStep::Reply(DedupReply::Busy)
        );
        // A young pending row of an earlier version counts as in flight; an old one is free.
        let pending = [Known {
            stored: Some(Claim::Pending { since_ms: 0 }),
            in_flight: false,
        }];
        let mut young = ShardAccept::new(events(1), &pending, &queues("EVENTS"), None, 5);
        assert_eq!(
            young.next(ShardOutcome::Start),
            ShardStep::Reply(DedupReply::Busy)
        );
        let old = ShardAccept::new(
            events(1),
            &pending,
            &queues("EVENTS"),
            None,
            super::super::CLAIM_LEASE_MS,
        );
        assert_eq!(old.fresh(), ["evt_0"]);
    }

    #[test]
    fn a_refused_batch_and_the_later_ones_are_spilled_with_every_claim_committed() {
        // 250 events make three batches of at most 100.
        let mut accept = ShardAccept::new(
            events(250),
            &[Known::default(); 250],
            &queues("EVENTS"),
            None,
            0,
        );
        assert!(matches!(
            accept.next(ShardOutcome::Start),
            ShardStep::Send { messages, .. } if messages.len() == 100
        ));
        assert!(matches!(
            accept.next(ShardOutcome::Sent(Ok(()))),
            ShardStep::Send { .. }
        ));
        let ShardStep::Keep { commit, spill } =
            accept.next(ShardOutcome::Sent(Err("queue refused".into())))
        else {
            panic!("keep after a refusal");
        };
        assert_eq!((commit.len(), spill.len()), (250, 150));
        assert_eq!(spill[0], "{\"n\":100}");
        assert_eq!(
            accept.next(ShardOutcome::Kept(Ok(()))),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Fresh; 250],
                spilled: true,
                held: false,
                kept: None,
            })
        );
    }

    #[test]
    fn a_failed_write_fails_the_call() {
        let mut accept =
            ShardAccept::new(events(1), &[Known::default()], &queues("EVENTS"), None, 0);
        accept.next(ShardOutcome::Start);
        accept.next(ShardOutcome::Sent(Err("refused".into())));
        assert_eq!(
            accept.next(ShardOutcome::Kept(Err("disk".into()))),
            ShardStep::Fail("disk".into())
        );
        assert!(matches!(
            accept.next(ShardOutcome::Start),
            ShardStep::Fail(_)
        ));
    }

    #[test]
    fn events_are_spread_over_the_configured_queues() {
        let set = queues("EVENTS, EVENTS_2");
        let mut accept = ShardAccept::new(events(40), &[Known::default(); 40], &set, None, 0);
        let mut seen = Vec::new();
        let mut outcome = ShardOutcome::Start;
        loop {
            match accept.next(outcome) {
                ShardStep::Send {
                    queue, messages, ..
                } => {
                    for message in &messages {
                        let n: usize = message[5..message.len() - 1].parse().unwrap();
                        assert_eq!(set.for_event(&format!("evt_{n}")), queue);
                    }
                    seen.push((queue, messages.len()));
                    outcome = ShardOutcome::Sent(Ok(()));
                }
                ShardStep::Keep { .. } => outcome = ShardOutcome::Kept(Ok(())),
                ShardStep::Reply(_) => break,
                ShardStep::Fail(error) => panic!("{error}"),
            }
        }
        assert_eq!(seen.len(), 2, "one batch per queue: {seen:?}");
        assert_eq!(seen.iter().map(|(_, n)| n).sum::<usize>(), 40);
        assert!(seen.iter().all(|(_, n)| *n >= 10), "{seen:?}");
    }

    #[test]
    fn a_held_event_is_sent_but_its_claim_is_left_to_the_commit() {
        let hold = Hold::for_reply("evt_1", 3_000, 0);
        let mut accept = ShardAccept::new(
            events(2),
            &[Known::default(); 2],
            &queues("EVENTS"),
            None,
            0,
        )
        .with_reply(hold.clone(), None);
        assert!(matches!(
            accept.next(ShardOutcome::Start),
            ShardStep::Send { messages, .. } if messages.len() == 2
        ));
        assert_eq!(
            accept.next(ShardOutcome::Sent(Ok(()))),
            ShardStep::Keep {
                commit: vec!["evt_0".into()],
                spill: vec![]
            }
        );
        assert_eq!(
            accept.next(ShardOutcome::Kept(Ok(()))),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Fresh; 2],
                spilled: false,
                held: true,
                kept: None,
            })
        );
        assert_eq!(accept.held(), Some(&hold));

        // Alone, the held event needs no write at all.
        let mut alone =
            ShardAccept::new(events(1), &[Known::default()], &queues("EVENTS"), None, 0)
                .with_reply(Hold::for_reply("evt_0", 3_000, 0), None);
        alone.next(ShardOutcome::Start);
        assert!(matches!(
            alone.next(ShardOutcome::Sent(Ok(()))),
            ShardStep::Reply(DedupReply::Accepted { held: true, .. })
        ));
    }

    #[test]
    fn a_spill_claims_the_held_event_too_and_holds_nothing() {
        let mut accept =
            ShardAccept::new(events(1), &[Known::default()], &queues("EVENTS"), None, 0)
                .with_reply(Hold::for_reply("evt_0", 3_000, 0), None);
        accept.next(ShardOutcome::Start);
        assert_eq!(
            accept.next(ShardOutcome::Sent(Err("refused".into()))),
            ShardStep::Keep {
                commit: vec!["evt_0".into()],
                spill: vec!["{\"n\":0}".into()]
            }
        );
        assert!(matches!(
            accept.next(ShardOutcome::Kept(Ok(()))),
            ShardStep::Reply(DedupReply::Accepted {
                held: false,
                spilled: true,
                ..
            })
        ));
        assert_eq!(accept.held(), None);
    }

    #[test]
    fn a_duplicate_of_the_reply_event_is_answered_with_its_kept_reply() {
        let kept = KeptReply::of(&crate::channels::EdgeResponse::text("done"), 5);
        let known = [Known {
            stored: Some(Claim::Committed { at_ms: 1 }),
            in_flight: false,
        }];
        let mut accept = ShardAccept::new(events(1), &known, &queues("EVENTS"), None, 100)
            .with_reply(Hold::for_reply("evt_0", 3_000, 100), Some(kept.clone()));
        assert_eq!(accept.held(), None);
        assert_eq!(
            accept.next(ShardOutcome::Start),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Duplicate],
                spilled: false,
                held: false,
                kept: Some(kept),
            })
        );
    }

    #[test]
    fn an_event_left_to_the_edge_is_held_and_nothing_is_sent_or_written() {
        let hold = Hold::for_reply("evt_0", 3_000, 0);
        let mut accept =
            ShardAccept::new(events(1), &[Known::default()], &queues("EVENTS"), None, 0)
                .with_reply(hold.clone(), None)
                .edge_sends();
        assert_eq!(accept.fresh(), ["evt_0"]);
        assert_eq!(
            accept.next(ShardOutcome::Start),
            ShardStep::Reply(DedupReply::Accepted {
                answers: vec![ClaimAnswer::Fresh],
                spilled: false,
                held: true,
                kept: None,
            })
        );
        assert_eq!(accept.held(), Some(&hold));
        // Another new event could not be sent by anyone: the call fails and takes nothing.
        let mut two = ShardAccept::new(
            events(2),
            &[Known::default(); 2],
            &queues("EVENTS"),
            None,
            0,
        )
        .with_reply(hold, None)
        .edge_sends();
        assert!(matches!(two.next(ShardOutcome::Start), ShardStep::Fail(_)));
    }
}
