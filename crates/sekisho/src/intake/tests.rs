//! The intake against in-memory fakes of the queue and the de-duplication shards — each fake shard runs the
//! same step machine the Durable Object performs ([`dedup::ShardAccept`], [`dedup::check_replay`]) — with
//! faults in the Worker (calls failing, answers lost, the isolate dying) and in the objects (the queue refusing,
//! the spill write failing, the object dying between the send and the write). Two promises are checked on every
//! run: a 2xx only when every event is queued or spilled, and a provider that keeps retrying always gets its
//! events through. A third is counted: an event is queued twice only when an object died between its send and
//! its write.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::channels::{EdgeResponse, ReplayGuard};
use crate::dedup::{
    Claim, InFlight, KeptReply, Known, ReplayCheck, ShardAccept, ShardOutcome, ShardStep,
    StoredGuard, CLAIM_LEASE_MS,
};
use crate::delivery::QueueSet;
use crate::envelope::event_id;
use crate::forward::{Delivery, Target};

// ---------------------------------------------------------------------------------------------------------
// The fakes.

/// What goes wrong while one request is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every call of the Worker fails before reaching its object.
    Fails,
    /// The first shard of the request is down; the others answer.
    OneShardDown,
    /// The objects do everything, but their answers are lost (the connection broke).
    AnswerLost,
    /// The isolate dies before it makes its calls.
    DiesBefore,
    /// The isolate dies after its calls were made, before it reads the answers.
    DiesAfter,
    /// Inside the objects: the queue refuses every batch.
    QueueRefuses,
    /// Inside the objects: the queue refuses and the spill write fails too.
    QueueAndSpillFail,
    /// Inside the objects: the queue takes the batch, then the object dies before its write.
    ObjectDiesAfterSend,
    /// Inside the first object only: the queue refuses (the others send).
    OneQueueRefuses,
}

const FAULTS: [Fault; 9] = [
    Fault::Fails,
    Fault::OneShardDown,
    Fault::AnswerLost,
    Fault::DiesBefore,
    Fault::DiesAfter,
    Fault::QueueRefuses,
    Fault::QueueAndSpillFail,
    Fault::ObjectDiesAfterSend,
    Fault::OneQueueRefuses,
];

#[derive(Debug, Default, Clone)]
struct Shard {
    claims: HashMap<String, Claim>,
    guards: HashMap<String, StoredGuard>,
    spill: Vec<String>,
    /// Replies kept in their claim's row.
    replies: HashMap<String, KeptReply>,
    /// The object's memory: ids another call is sending right now, or holds for its commit.
    in_flight: InFlight,
}

/// How an object's call ended, as the Worker sees it.
type CallResult = Result<DedupReply, String>;

impl Shard {
    /// What `Deduper::fetch` does with one call; `queue` is the deployment's queue.
    fn perform(
        &mut self,
        call: &DedupCall,
        queue: &mut Vec<(String, String)>,
        fault: Option<Fault>,
        now_ms: u64,
    ) -> CallResult {
        match call {
            DedupCall::Accept {
                events,
                delay_s,
                hold,
                edge_sends,
                ..
            } => {
                let known: Vec<Known> = events
                    .iter()
                    .map(|event| Known {
                        stored: self.claims.get(&event.id).copied(),
                        in_flight: self.in_flight.is_taken(&event.id, now_ms),
                    })
                    .collect();
                let set = QueueSet::from_bindings(&HashMap::from([(
                    "EVENT_QUEUES".to_owned(),
                    "EVENTS,EVENTS_2".to_owned(),
                )]));
                let mut accept = ShardAccept::new(events.clone(), &known, &set, *delay_s, now_ms);
                if let Some(hold) = hold {
                    let kept = self.replies.get(&hold.id).cloned();
                    accept = accept.with_reply(hold.clone(), kept);
                }
                if *edge_sends {
                    accept = accept.edge_sends();
                }
                let fresh = accept.fresh().to_vec();
                self.in_flight.sending(&fresh, now_ms);
                let mut outcome = ShardOutcome::Start;
                loop {
                    match accept.next(outcome) {
                        ShardStep::Send {
                            queue: name,
                            messages,
                            ..
                        } => {
                            outcome = match fault {
                                Some(
                                    Fault::QueueRefuses
                                    | Fault::QueueAndSpillFail
                                    | Fault::OneQueueRefuses,
                                ) => ShardOutcome::Sent(Err("queue refused".into())),
                                Some(Fault::ObjectDiesAfterSend) => {
                                    queue.extend(messages.into_iter().map(|m| (name.clone(), m)));
                                    self.in_flight = InFlight::default();
                                    return Err("the object was reset".into());
                                }
                                _ => {
                                    queue.extend(messages.into_iter().map(|m| (name.clone(), m)));
                                    ShardOutcome::Sent(Ok(()))
                                }
                            }
                        }
                        ShardStep::Keep { commit, spill } => {
                            if fault == Some(Fault::QueueAndSpillFail) {
                                outcome = ShardOutcome::Kept(Err("disk full".into()));
                                continue;
                            }
                            self.spill.extend(spill);
                            for id in commit {
                                self.claims.insert(id, Claim::Committed { at_ms: now_ms });
                            }
                            outcome = ShardOutcome::Kept(Ok(()));
                        }
                        ShardStep::Reply(reply) => {
                            self.in_flight.finished(&fresh, accept.held());
                            return Ok(reply);
                        }
                        ShardStep::Fail(error) => {
                            self.in_flight.finished(&fresh, None);
                            return Err(error);
                        }
                    }
                }
            }
            DedupCall::CheckGuard { guard, now_ms } => Ok(if self.check_guard(guard, *now_ms) {
                DedupReply::Done
            } else {
                DedupReply::ReplayRefused
            }),
            DedupCall::Commit {
                id,
                reply,
                now_ms,
                spill,
                ..
            } => {
                if !spill.is_empty() {
                    if fault == Some(Fault::QueueAndSpillFail) {
                        return Err("disk full".into());
                    }
                    self.spill.extend(spill.iter().cloned());
                }
                self.claims
                    .insert(id.clone(), Claim::Committed { at_ms: *now_ms });
                if let Some(reply) = reply {
                    self.replies.insert(id.clone(), reply.clone());
                }
                self.in_flight.committed(id);
                Ok(DedupReply::Done)
            }
        }
    }

    fn check_guard(&mut self, guard: &ReplayGuard, now_ms: u64) -> bool {
        match dedup::check_replay(self.guards.get(&guard.key), guard, now_ms) {
            ReplayCheck::OtherBody => false,
            ReplayCheck::SameBody => true,
            ReplayCheck::First => {
                self.guards.insert(
                    guard.key.clone(),
                    StoredGuard {
                        body_digest: guard.body_digest.clone(),
                        expires_at_ms: guard.expires_at_ms,
                    },
                );
                true
            }
        }
    }
}

/// The durable state every request of one channel/account shares, across isolates.
#[derive(Debug, Default, Clone)]
struct World {
    shards: BTreeMap<u16, Shard>,
    /// (queue binding, message), in the order sent.
    queue: Vec<(String, String)>,
    now_ms: u64,
}

/// How one request ended: its answer, or `None` when the isolate died first (the provider sees a failure).
#[derive(Debug)]
struct Run {
    finish: Option<Finish>,
    steps: Vec<&'static str>,
}

impl World {
    fn shard(&mut self, shard: u16) -> &mut Shard {
        self.shards.entry(shard).or_default()
    }

    fn call(&mut self, calls: &[ShardCall], fault: Option<Fault>) -> Vec<CallResult> {
        let now_ms = self.now_ms;
        calls
            .iter()
            .enumerate()
            .map(|(n, call)| {
                let inside = match fault {
                    Some(Fault::OneQueueRefuses) if n > 0 => None,
                    other => other,
                };
                let mut queue = std::mem::take(&mut self.queue);
                let result = match fault {
                    Some(Fault::Fails) => Err("unreachable".to_owned()),
                    Some(Fault::OneShardDown) if n == 0 => Err("shard down".to_owned()),
                    Some(Fault::AnswerLost) => self
                        .shard(call.shard)
                        .perform(&call.call, &mut queue, None, now_ms)
                        .and(Err("connection reset".to_owned())),
                    _ => self
                        .shard(call.shard)
                        .perform(&call.call, &mut queue, inside, now_ms),
                };
                self.queue = queue;
                result
            })
            .collect()
    }

    fn send(&mut self, messages: &[String], fault: Option<Fault>) -> Result<(), String> {
        match fault {
            Some(Fault::Fails | Fault::QueueRefuses | Fault::QueueAndSpillFail) => {
                Err("queue refused".to_owned())
            }
            _ => {
                self.queue
                    .extend(messages.iter().map(|m| ("EVENTS".to_owned(), m.clone())));
                Ok(())
            }
        }
    }

    /// One request through the machine, performing each step as the Worker does, with `fault`.
    fn request(&mut self, accepted: &Accepted, stores: Stores, fault: Option<Fault>) -> Run {
        let mut intake = Intake::new(accepted, stores, self.now_ms);
        let mut outcome = Outcome::Start;
        let mut steps = Vec::new();
        loop {
            let step = intake.next(outcome);
            if let (Step::Call(_) | Step::Send { .. }, Some(Fault::DiesBefore)) = (&step, fault) {
                return Run {
                    finish: None,
                    steps,
                };
            }
            outcome = match step {
                Step::Call(calls) => {
                    steps.push(call_name(&calls));
                    Outcome::Replies(self.call(&calls, fault))
                }
                Step::Send { messages, .. } => {
                    steps.push("send");
                    Outcome::Sent(self.send(&messages, fault))
                }
                Step::Finish(finish) => {
                    self.check_promise(accepted, &finish);
                    // The Worker's commit after the answer (`waitUntil`).
                    if let Finish::Accepted(Acceptance {
                        after: After::Commit(held),
                        ..
                    }) = &finish
                    {
                        steps.push("commit");
                        let commit = ShardCall {
                            shard: held.shard,
                            call: held.commit(None, self.now_ms),
                        };
                        let fails = fault.filter(|fault| *fault == Fault::Fails);
                        let _ = self.call(&[commit], fails);
                    }
                    return Run {
                        finish: Some(finish),
                        steps,
                    };
                }
            };
            if fault == Some(Fault::DiesAfter) {
                return Run {
                    finish: None,
                    steps,
                };
            }
        }
    }

    /// The event ids kept durably: in a queue message or a spilled one.
    fn kept(&self) -> BTreeSet<String> {
        self.queue
            .iter()
            .map(|(_, message)| message)
            .chain(self.shards.values().flat_map(|shard| &shard.spill))
            .map(|message| webhook_id(message).to_owned())
            .collect()
    }

    /// How many times the most-queued event was queued (or spilled).
    fn most_copies(&self) -> usize {
        let mut copies: HashMap<&str, usize> = HashMap::new();
        for message in self
            .queue
            .iter()
            .map(|(_, message)| message)
            .chain(self.shards.values().flat_map(|shard| &shard.spill))
        {
            *copies.entry(webhook_id(message)).or_default() += 1;
        }
        copies.values().copied().max().unwrap_or(0)
    }

    /// Promise one: a 2xx only when every event of the request is kept (best-effort mode, without a queue,
    /// promises nothing durable).
    fn check_promise(&self, accepted: &Accepted, finish: &Finish) {
        if let Finish::Accepted(acceptance) = finish {
            if acceptance.after == After::ForwardBestEffort {
                return;
            }
            let kept = self.kept();
            for delivery in &accepted.deliveries {
                assert!(
                    kept.contains(&delivery.webhook_id),
                    "answered 2xx for {} which is neither queued nor spilled",
                    delivery.webhook_id
                );
            }
        }
    }

    /// Promise two: the provider retries (every 5 s, as WeChat does, then further apart) and its events get
    /// through. Returns how many retries it took.
    fn retry_until_accepted(&mut self, accepted: &Accepted) -> usize {
        for retry in 1..=10 {
            self.now_ms += 5_000 * retry as u64;
            let run = self.request(accepted, BOTH, None);
            if let Some(Finish::Accepted(_)) = run.finish {
                return retry;
            }
            assert!(
                matches!(
                    run.finish,
                    Some(Finish::Refused(
                        Rejection::ClaimInProgress | Rejection::EnqueueFailed
                    ))
                ),
                "a retry is refused only with a 5xx the provider retries: {:?}",
                run.finish
            );
        }
        panic!("the retries never got the events through");
    }
}

/// The event id of a queue message (read without parsing the whole message: the fault tests read thousands).
fn webhook_id(message: &str) -> &str {
    let (_, rest) = message.split_once("\"webhook_id\":\"").unwrap();
    rest.split_once('"').unwrap().0
}

#[test]
fn the_fakes_read_the_event_id_of_a_queue_message() {
    let request = accepted(1, 10, None);
    let message = QueuedDelivery::first(request.deliveries[0].clone()).to_message();
    assert_eq!(webhook_id(&message), request.deliveries[0].webhook_id);
}

fn call_name(calls: &[ShardCall]) -> &'static str {
    match calls.first().map(|call| &call.call) {
        Some(DedupCall::Accept { .. }) => "accept",
        Some(DedupCall::CheckGuard { .. }) => "check_guard",
        Some(DedupCall::Commit { .. }) => "commit",
        None => "nothing",
    }
}

const BOTH: Stores = Stores {
    queue: true,
    dedup: true,
};

/// Events enough for several queue batches (at most 100 messages each) spread over every shard.
const MANY: usize = 250;

/// A request of `events` LINE events, each body `body_bytes` long (big bodies make several queue batches).
fn accepted(events: usize, body_bytes: usize, guard: Option<ReplayGuard>) -> Accepted {
    let deliveries = (0..events)
        .map(|i| Delivery {
            webhook_id: event_id("line", "acme", &format!("01HZ{i:022}")),
            url: "https://backend.example/hook".to_owned(),
            event_type: "message.received".to_owned(),
            body: "x".repeat(body_bytes),
            target: Target::Backend,
            origin: None,
        })
        .collect();
    Accepted {
        channel: Some("line"),
        account: Some("acme".to_owned()),
        response: EdgeResponse::text("ok"),
        deliveries,
        warnings: vec![],
        replay_guard: guard,
        reply: None,
    }
}

fn guard(body_digest: &str) -> ReplayGuard {
    ReplayGuard {
        key: "signed-query".to_owned(),
        body_digest: body_digest.to_owned(),
        expires_at_ms: 1_000_000,
    }
}

fn ids(accepted: &Accepted) -> BTreeSet<String> {
    accepted
        .deliveries
        .iter()
        .map(|d| d.webhook_id.clone())
        .collect()
}

fn committed(world: &World) -> usize {
    world
        .shards
        .values()
        .flat_map(|shard| shard.claims.values())
        .filter(|claim| matches!(claim, Claim::Committed { .. }))
        .count()
}

// ---------------------------------------------------------------------------------------------------------
// The order, without faults.

#[test]
fn one_call_per_shard_queues_and_claims_every_event() {
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    let run = world.request(&request, BOTH, None);
    assert_eq!(run.steps, ["accept"], "one step: the accept calls");
    let Some(Finish::Accepted(acceptance)) = run.finish else {
        panic!("accepted: {run:?}");
    };
    assert_eq!(acceptance.duplicate_events, 0);
    assert_eq!(world.kept(), ids(&request));
    assert_eq!(world.queue.len(), MANY);
    assert_eq!(committed(&world), MANY);
    // Both configured queues took their share.
    let second = world.queue.iter().filter(|(q, _)| q == "EVENTS_2").count();
    assert!((75..=175).contains(&second), "{second}");

    // The provider's retry is a duplicate: nothing more is queued, and the metrics count them.
    world.now_ms += 5_000;
    let again = world.request(&request, BOTH, None);
    assert_eq!(again.steps, ["accept"]);
    assert_eq!(
        again.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: MANY,
            after: After::Nothing,
            reply: ReplyTurn::NoCall,
        }))
    );
    assert_eq!(world.queue.len(), MANY);
}

#[test]
fn a_request_without_events_or_guard_needs_no_step() {
    let request = accepted(0, 0, None);
    let mut intake = Intake::new(&request, BOTH, 0);
    assert_eq!(
        intake.next(Outcome::Start),
        Step::Finish(Finish::Accepted(Acceptance {
            duplicate_events: 0,
            after: After::Nothing,
            reply: ReplyTurn::NoCall,
        }))
    );
    assert!(intake.take_lines().is_empty());
}

#[test]
fn the_log_says_how_the_events_were_kept() {
    let request = accepted(2, 10, None);
    let mut intake = Intake::new(&request, BOTH, 0);
    let Step::Call(calls) = intake.next(Outcome::Start) else {
        panic!("accept calls first");
    };
    let spilled = |call: &ShardCall| match &call.call {
        DedupCall::Accept { events, .. } => Ok(DedupReply::Accepted {
            answers: vec![ClaimAnswer::Fresh; events.len()],
            spilled: true,
            held: false,
            kept: None,
        }),
        _ => panic!("accept calls"),
    };
    assert!(matches!(
        intake.next(Outcome::Replies(calls.iter().map(spilled).collect())),
        Step::Finish(Finish::Accepted(_))
    ));
    let lines: Vec<String> = intake.take_lines().iter().map(Line::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("\"spilled\":true"), "{lines:?}");
    // Asked again, a finished machine repeats its answer.
    assert!(matches!(
        intake.next(Outcome::Start),
        Step::Finish(Finish::Accepted(_))
    ));
}

// ---------------------------------------------------------------------------------------------------------
// Faults, one and two requests in a row, then the provider's retries.

/// Runs `request` with each of `faults` in turn (the provider retrying after each), checks promise one on the
/// way, then lets the provider retry until its events are through (promise two). Returns the first run.
fn survive(request: &Accepted, faults: &[Fault]) -> Run {
    let mut world = World::default();
    let mut first = None;
    for &fault in faults {
        let run = world.request(request, BOTH, Some(fault));
        world.now_ms += 1_000;
        first.get_or_insert(run);
    }
    world.retry_until_accepted(request);
    assert_eq!(world.kept(), ids(request), "{faults:?}");
    // Promise three: a second copy only when an object died between its send and its write.
    let copies = world.most_copies();
    if faults.contains(&Fault::ObjectDiesAfterSend) {
        assert!(copies <= 1 + faults.len(), "{faults:?}: {copies}");
    } else {
        assert_eq!(copies, 1, "{faults:?}: an event was queued twice");
    }
    first.unwrap()
}

#[test]
fn one_fault_never_loses_an_event() {
    for events in [1, 20, MANY] {
        let request = accepted(events, 10, None);
        let mut refused = 0;
        for fault in FAULTS {
            let run = survive(&request, &[fault]);
            if !matches!(run.finish, Some(Finish::Accepted(_))) {
                refused += 1;
            }
        }
        // Only a refusing queue (spilled) leaves the first request accepted.
        assert_eq!(refused, FAULTS.len() - 2, "{events} events");
    }
}

#[test]
fn two_faults_in_a_row_never_lose_an_event() {
    let request = accepted(150, 10, None);
    let mut scenarios = 0;
    for a in FAULTS {
        for b in FAULTS {
            survive(&request, &[a, b]);
            scenarios += 1;
        }
    }
    assert_eq!(scenarios, 81);
}

#[test]
fn when_the_queue_refuses_the_events_are_spilled_and_the_answer_is_2xx() {
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    let run = world.request(&request, BOTH, Some(Fault::QueueRefuses));
    assert!(matches!(run.finish, Some(Finish::Accepted(_))));
    let spilled: usize = world.shards.values().map(|s| s.spill.len()).sum();
    assert_eq!((world.queue.len(), spilled), (0, MANY));
    assert_eq!(committed(&world), MANY);
    // Every claim is committed with the spill: the retry is a duplicate at once.
    world.now_ms += 1;
    let retry = world.request(&request, BOTH, None);
    assert!(matches!(
        retry.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: MANY,
            ..
        }))
    ));
}

#[test]
fn when_the_queue_and_the_spill_refuse_nothing_is_claimed_and_the_answer_is_503() {
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    let run = world.request(&request, BOTH, Some(Fault::QueueAndSpillFail));
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    assert_eq!(committed(&world), 0);
    assert!(world.queue.is_empty());
    assert!(world.shards.values().all(|s| s.in_flight.is_empty()));
    // Nothing to wait for: the retry takes the events at once.
    world.now_ms += 1;
    assert!(matches!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Accepted(_))
    ));
    assert_eq!(world.kept(), ids(&request));
}

#[test]
fn one_shard_down_answers_503_and_the_retry_finds_the_others_events_taken() {
    let request = accepted(12, 10, None);
    let mut world = World::default();
    let run = world.request(&request, BOTH, Some(Fault::OneShardDown));
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    let taken = world.queue.len();
    assert!(taken > 0 && taken < 12, "{taken}");
    world.now_ms += 5_000;
    let Some(Finish::Accepted(retry)) = world.request(&request, BOTH, None).finish else {
        panic!("the retry is accepted");
    };
    assert_eq!(retry.duplicate_events, taken);
    assert_eq!(world.queue.len(), 12, "each event queued once");
}

#[test]
fn a_copy_of_an_event_being_sent_is_busy_and_takes_nothing() {
    let request = accepted(6, 10, None);
    let mut world = World::default();
    // Another call of the first event's object is sending it right now.
    let first = request.deliveries[0].webhook_id.clone();
    world
        .shard(dedup::shard_of(&first))
        .in_flight
        .sending(std::slice::from_ref(&first), 0);
    let run = world.request(&request, BOTH, None);
    assert_eq!(
        run.finish,
        Some(Finish::Refused(Rejection::ClaimInProgress))
    );
    let busy_shard = dedup::shard_of(&first);
    let others_of_busy_shard = request
        .deliveries
        .iter()
        .filter(|d| dedup::shard_of(&d.webhook_id) == busy_shard)
        .count();
    assert_eq!(world.queue.len(), 6 - others_of_busy_shard);
    // The other call finishes (its event queued and claimed); the provider's retry then goes through.
    world.queue.push((
        "EVENTS".into(),
        QueuedDelivery::first(request.deliveries[0].clone()).to_message(),
    ));
    let shard = world.shard(busy_shard);
    shard.in_flight.finished(std::slice::from_ref(&first), None);
    shard.claims.insert(first, Claim::Committed { at_ms: 0 });
    world.now_ms += 5_000;
    assert!(matches!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Accepted(_))
    ));
    assert_eq!(world.kept(), ids(&request));
    assert_eq!(world.most_copies(), 1);
}

#[test]
fn a_pending_claim_of_an_earlier_version_holds_for_its_lease() {
    let request = accepted(1, 10, None);
    let mut world = World::default();
    let id = request.deliveries[0].webhook_id.clone();
    world
        .shard(dedup::shard_of(&id))
        .claims
        .insert(id, Claim::Pending { since_ms: 0 });
    assert_eq!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Refused(Rejection::ClaimInProgress))
    );
    world.now_ms = CLAIM_LEASE_MS;
    assert!(matches!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Accepted(_))
    ));
    assert_eq!(world.kept(), ids(&request));
}

#[test]
fn a_replayed_signature_is_refused_and_nothing_is_taken() {
    let mut world = World::default();
    let first = accepted(3, 10, Some(guard("body-a")));
    let run = world.request(&first, BOTH, None);
    assert_eq!(run.steps, ["check_guard", "accept"]);
    assert!(matches!(run.finish, Some(Finish::Accepted(_))));
    // The same signed query with another body (and so other events, in other shards).
    let mut replayed = accepted(3, 10, Some(guard("body-b")));
    for (n, delivery) in replayed.deliveries.iter_mut().enumerate() {
        delivery.webhook_id = event_id("line", "acme", &format!("other{n}"));
    }
    let run = world.request(&replayed, BOTH, None);
    assert_eq!(run.steps, ["check_guard"]);
    assert_eq!(
        run.finish,
        Some(Finish::Refused(Rejection::ReplayedSignature))
    );
    assert_eq!(world.queue.len(), 3, "nothing of the replay is queued");
    assert_eq!(committed(&world), 3, "nor claimed");
    // The provider's own retry (same query, same body) is a duplicate.
    assert!(matches!(
        world.request(&first, BOTH, None).finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: 3,
            ..
        }))
    ));
}

#[test]
fn a_guarded_event_is_held_while_its_guard_is_checked_then_sent_by_the_worker() {
    let first = accepted(1, 10, Some(guard("body-a")));
    let mut intake = Intake::new(&first, BOTH, 0);
    let Step::Call(calls) = intake.next(Outcome::Start) else {
        panic!("calls first");
    };
    assert!(
        matches!(
            calls.as_slice(),
            [
                ShardCall {
                    call: DedupCall::CheckGuard { .. },
                    ..
                },
                ShardCall {
                    call: DedupCall::Accept {
                        edge_sends: true,
                        hold: Some(_),
                        ..
                    },
                    ..
                },
            ]
        ),
        "the guard and the hold in one parallel step: {calls:?}"
    );
    let mut world = World::default();
    let run = world.request(&first, BOTH, None);
    // Two sequential steps before the answer: the guard and the hold in parallel, then the send.
    assert_eq!(run.steps, ["check_guard", "send", "commit"]);
    let Some(Finish::Accepted(acceptance)) = &run.finish else {
        panic!("accepted: {run:?}");
    };
    assert!(matches!(acceptance.after, After::Commit(_)));
    assert_eq!(world.queue.len(), 1);
    assert_eq!(committed(&world), 1);
    // The same signed query with another body (another event): refused, nothing queued or claimed.
    let mut replayed = accepted(1, 10, Some(guard("body-b")));
    replayed.deliveries[0].webhook_id = event_id("line", "acme", "other");
    let run = world.request(&replayed, BOTH, None);
    assert_eq!(run.steps, ["check_guard"]);
    assert_eq!(
        run.finish,
        Some(Finish::Refused(Rejection::ReplayedSignature))
    );
    assert_eq!(world.queue.len(), 1, "nothing of the replay is queued");
    assert_eq!(committed(&world), 1, "nor claimed");
    // The provider's own retry (same query, same body) is a duplicate, answered without a send.
    let run = world.request(&first, BOTH, None);
    assert_eq!(run.steps, ["check_guard"]);
    assert!(matches!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: 1,
            after: After::Nothing,
            ..
        }))
    ));
    assert_eq!(world.most_copies(), 1);
}

#[test]
fn a_guarded_event_the_queue_refuses_is_spilled_with_its_claim_by_its_object() {
    let request = accepted(1, 10, Some(guard("body-a")));
    let mut world = World::default();
    let run = world.request(&request, BOTH, Some(Fault::QueueRefuses));
    assert_eq!(run.steps, ["check_guard", "send", "commit"]);
    assert!(matches!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            after: After::Nothing,
            ..
        }))
    ));
    assert_eq!(committed(&world), 1);
    assert_eq!(world.kept(), ids(&request));
    assert!(world.queue.is_empty());
}

#[test]
fn a_guarded_event_survives_one_or_two_faults() {
    let request = accepted(1, 10, Some(guard("body-a")));
    for a in FAULTS {
        survive(&request, &[a]);
        for b in FAULTS {
            survive(&request, &[a, b]);
        }
    }
}

#[test]
fn a_guarded_request_survives_faults_too() {
    let request = accepted(5, 10, Some(guard("body-a")));
    for fault in FAULTS {
        survive(&request, &[fault]);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Deployments without a queue or without a de-duplication store.

#[test]
fn without_a_store_the_events_are_queued_as_they_are() {
    let request = accepted(3, 10, None);
    let stores = Stores {
        queue: true,
        dedup: false,
    };
    let mut world = World::default();
    let run = world.request(&request, stores, None);
    assert_eq!(run.steps, ["send"]);
    assert!(matches!(run.finish, Some(Finish::Accepted(_))));
    assert_eq!(world.kept(), ids(&request));
    // Nothing to spill into: a refusing queue is a 503.
    let run = World::default().request(&request, stores, Some(Fault::Fails));
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    // A replay guard cannot be checked without the store: refused, misconfigured.
    let guarded = accepted(1, 10, Some(guard("a")));
    let run = World::default().request(&guarded, stores, None);
    assert_eq!(
        run.finish,
        Some(Finish::Refused(Rejection::misconfigured(
            dedup::STORE_BINDING
        )))
    );
}

#[test]
fn without_a_queue_events_are_forwarded_best_effort_after_the_guard_check() {
    let request = accepted(2, 10, None);
    let no_queue = Stores {
        queue: false,
        dedup: true,
    };
    let run = World::default().request(&request, no_queue, None);
    assert!(run.steps.is_empty());
    assert_eq!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: 0,
            after: After::ForwardBestEffort,
            reply: ReplyTurn::NoCall,
        }))
    );
    let guarded = accepted(2, 10, Some(guard("a")));
    let mut world = World::default();
    let run = world.request(&guarded, no_queue, None);
    assert_eq!(run.steps, ["check_guard"]);
    assert!(matches!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            after: After::ForwardBestEffort,
            ..
        }))
    ));
    let mut replay = accepted(2, 10, Some(guard("b")));
    replay.deliveries.clear();
    assert_eq!(
        world.request(&replay, no_queue, None).finish,
        Some(Finish::Refused(Rejection::ReplayedSignature))
    );
    assert_eq!(
        World::default()
            .request(&guarded, no_queue, Some(Fault::Fails))
            .finish,
        Some(Finish::Refused(Rejection::EnqueueFailed))
    );
    let neither = Stores {
        queue: false,
        dedup: false,
    };
    assert_eq!(
        World::default().request(&guarded, neither, None).finish,
        Some(Finish::Refused(Rejection::misconfigured(
            dedup::STORE_BINDING
        )))
    );
}

#[test]
fn an_answer_that_does_not_fit_the_step_counts_as_its_failure() {
    let request = accepted(2, 10, None);
    let mut intake = Intake::new(&request, BOTH, 0);
    assert!(matches!(intake.next(Outcome::Start), Step::Call(_)));
    // A queue result where shard replies were expected: nothing is known to be taken, refuse.
    assert_eq!(
        intake.next(Outcome::Sent(Ok(()))),
        Step::Finish(Finish::Refused(Rejection::EnqueueFailed))
    );
}

// ---------------------------------------------------------------------------------------------------------
// A request with a reply call: its event's claim is held by the accept call and written, with the rendered
// reply, by the commit after the reply call (one row for both).

#[derive(Debug)]
struct AnyReply;

impl crate::reply::RenderReply for AnyReply {
    fn budget(&self) -> crate::reply::Budget {
        crate::reply::Budget {
            default_ms: 3_000,
            max_ms: 4_500,
        }
    }

    fn render(
        &self,
        _: &crate::reply::BackendReply,
        _: &crate::reply::RenderContext,
    ) -> Result<EdgeResponse, crate::reply::NoReply> {
        Ok(EdgeResponse::text("rendered"))
    }
}

/// One event, with a reply call of 3 s.
fn replying() -> Accepted {
    let mut request = accepted(1, 10, None);
    request.reply = Some(crate::reply::ReplyCall {
        settings: crate::reply::ReplySettings {
            url: "https://backend.example/reply".to_owned(),
            timeout_ms: 3_000,
        },
        delivery: request.deliveries[0].clone(),
        renderer: Box::new(AnyReply),
    });
    request
}

fn held_claim(run: &Run) -> dedup::HeldClaim {
    match &run.finish {
        Some(Finish::Accepted(Acceptance {
            reply: ReplyTurn::Call { held: Some(held) },
            ..
        })) => held.clone(),
        other => panic!("a held claim to commit: {other:?}"),
    }
}

#[test]
fn a_reply_event_is_held_then_committed_with_its_reply_and_a_duplicate_gets_that_reply() {
    let request = replying();
    let id = request.deliveries[0].webhook_id.clone();
    let mut world = World::default();
    let run = world.request(&request, BOTH, None);
    assert_eq!(run.steps, ["accept"]);
    let held = held_claim(&run);
    assert_eq!(held.shard, dedup::shard_of(&id));
    assert_eq!(held.object, dedup::object_name("/line/acme", held.shard));
    assert_eq!(held.id, id);
    assert_eq!(world.queue.len(), 1, "sent at once");
    assert_eq!(committed(&world), 0, "the claim waits for the commit");

    // A copy while the reply call runs is busy and sends nothing.
    world.now_ms += 100;
    assert_eq!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Refused(Rejection::ClaimInProgress))
    );
    assert_eq!(world.queue.len(), 1);

    let rendered = EdgeResponse::json(200, r#"{"text":"受け付けました"}"#.to_owned());
    let commit = ShardCall {
        shard: held.shard,
        call: held.commit(Some(&rendered), world.now_ms),
    };
    assert_eq!(world.call(&[commit], None), vec![Ok(DedupReply::Done)]);
    assert_eq!(committed(&world), 1);

    // A duplicate is answered with the kept reply by its accept call alone: no reply call, nothing queued.
    world.now_ms += 60_000;
    let again = world.request(&request, BOTH, None);
    assert_eq!(again.steps, ["accept"]);
    assert_eq!(
        again.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: 1,
            after: After::Nothing,
            reply: ReplyTurn::Answer(rendered),
        }))
    );
    assert_eq!(world.most_copies(), 1);

    // Once the kept reply is old, a duplicate gets the usual answer (still no call).
    world.now_ms += dedup::REPLY_KEPT_MS;
    let late = world.request(&request, BOTH, None);
    assert!(matches!(
        late.finish,
        Some(Finish::Accepted(Acceptance { reply: ReplyTurn::Answer(answer), .. })) if answer == request.response
    ));
}

#[test]
fn a_hold_never_committed_ends_by_itself_and_the_retry_is_queued_again_never_lost() {
    let request = replying();
    let mut world = World::default();
    // The Worker dies during the reply call: no commit comes.
    let held = held_claim(&world.request(&request, BOTH, None));
    let until = dedup::Hold::for_reply(&held.id, 3_000, 0).until_ms;
    world.now_ms = until - 1;
    assert_eq!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Refused(Rejection::ClaimInProgress))
    );
    world.now_ms = until;
    let retry = world.request(&request, BOTH, None);
    held_claim(&retry);
    assert_eq!(world.kept(), ids(&request));
    assert_eq!(
        world.most_copies(),
        2,
        "a second copy only because the first request died before its commit"
    );
}

#[test]
fn a_commit_that_fails_leaves_the_hold_to_end_and_a_default_answer_commits_without_a_reply() {
    let request = replying();
    let mut world = World::default();
    let held = held_claim(&world.request(&request, BOTH, None));
    let commit = |now_ms| ShardCall {
        shard: held.shard,
        call: held.commit(None, now_ms),
    };
    assert!(world.call(&[commit(1)], Some(Fault::Fails))[0].is_err());
    assert_eq!(committed(&world), 0);
    assert_eq!(world.call(&[commit(2)], None), vec![Ok(DedupReply::Done)]);
    assert_eq!(committed(&world), 1);
    world.now_ms += 1_000;
    let again = world.request(&request, BOTH, None);
    assert!(matches!(
        again.finish,
        Some(Finish::Accepted(Acceptance { reply: ReplyTurn::Answer(answer), .. })) if answer == request.response
    ));
}

#[test]
fn a_spilled_reply_event_is_claimed_in_the_spill_write_and_held_by_nobody() {
    let request = replying();
    let mut world = World::default();
    let run = world.request(&request, BOTH, Some(Fault::QueueRefuses));
    assert!(matches!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            reply: ReplyTurn::Call { held: None },
            ..
        }))
    ));
    assert_eq!(
        committed(&world),
        1,
        "claimed with the spill, so it is kept even if no commit comes"
    );
    assert_eq!(world.kept(), ids(&request));
    world.now_ms += 1;
    assert!(matches!(
        world.request(&request, BOTH, None).finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: 1,
            reply: ReplyTurn::Answer(_),
            ..
        }))
    ));
}

#[test]
fn without_a_store_the_reply_is_called_for_and_nothing_is_held() {
    let request = replying();
    let queue_only = Stores {
        queue: true,
        dedup: false,
    };
    let run = World::default().request(&request, queue_only, None);
    assert_eq!(run.steps, ["send"]);
    assert!(matches!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            reply: ReplyTurn::Call { held: None },
            ..
        }))
    ));
}
