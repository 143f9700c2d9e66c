//! The intake against in-memory fakes of the queue and the de-duplication shards (the same decisions the
//! Durable Object makes: [`dedup::claim`], [`dedup::check_replay`]), with every step failed in turn and the
//! isolate dying between any two steps. Two promises are checked on every run: a 2xx only when every event
//! is queued or spilled, and a provider that keeps retrying always gets its events through.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;
use crate::channels::{EdgeResponse, ReplayGuard};
use crate::dedup::{Claim, ClaimAnswer, KeptReply, ReplayCheck, StoredGuard, CLAIM_LEASE_MS};
use crate::envelope::event_id;
use crate::forward::Target;

// ---------------------------------------------------------------------------------------------------------
// The fakes.

#[derive(Debug, Default, Clone)]
struct Shard {
    claims: HashMap<String, Claim>,
    guards: HashMap<String, StoredGuard>,
    spill: Vec<String>,
    replies: HashMap<String, KeptReply>,
}

impl Shard {
    /// What `Deduper::fetch` does with one call.
    fn perform(&mut self, call: &DedupCall) -> DedupReply {
        match call {
            DedupCall::Claim { ids, guard, now_ms } => {
                if let Some(guard) = guard {
                    match dedup::check_replay(self.guards.get(&guard.key), guard, *now_ms) {
                        ReplayCheck::OtherBody => return DedupReply::ReplayRefused,
                        ReplayCheck::SameBody => {}
                        ReplayCheck::First => {
                            self.guards.insert(
                                guard.key.clone(),
                                StoredGuard {
                                    body_digest: guard.body_digest.clone(),
                                    expires_at_ms: guard.expires_at_ms,
                                },
                            );
                        }
                    }
                }
                let answers = ids
                    .iter()
                    .map(|id| {
                        let (answer, write) = dedup::claim(self.claims.get(id).copied(), *now_ms);
                        if let Some(row) = write {
                            self.claims.insert(id.clone(), row);
                        }
                        answer
                    })
                    .collect();
                DedupReply::Claimed { answers }
            }
            DedupCall::Commit { ids, now_ms } => {
                for id in ids {
                    self.claims
                        .insert(id.clone(), Claim::Committed { at_ms: *now_ms });
                }
                DedupReply::Done
            }
            DedupCall::Release { ids } => {
                for id in ids {
                    if matches!(self.claims.get(id), Some(Claim::Pending { .. })) {
                        self.claims.remove(id);
                    }
                }
                DedupReply::Done
            }
            DedupCall::Spill {
                ids,
                messages,
                now_ms,
                ..
            } => {
                self.spill.extend(messages.iter().cloned());
                for id in ids {
                    self.claims
                        .insert(id.clone(), Claim::Committed { at_ms: *now_ms });
                }
                DedupReply::Done
            }
            DedupCall::KeepReply { id, reply } => {
                self.replies.insert(id.clone(), reply.clone());
                DedupReply::Done
            }
            DedupCall::KeptReply { id } => DedupReply::Kept {
                reply: self.replies.get(id).cloned(),
            },
        }
    }
}

/// The durable state every request of one channel/account shares, across isolates.
#[derive(Debug, Default, Clone)]
struct World {
    shards: BTreeMap<u16, Shard>,
    queue: Vec<String>,
    now_ms: u64,
}

/// What goes wrong at one step (counted from 0 over the steps the machine asks for, the background commit
/// included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Every call of the step fails (the shards are unreachable, the queue refuses), doing nothing.
    Fails,
    /// The first shard of the step is down; the others answer.
    OneShardDown,
    /// The step is done, but its answer is lost (the object wrote, then the connection broke).
    AnswerLost,
    /// The isolate dies before it performs the step.
    DiesBefore,
    /// The isolate dies after performing the step, before feeding the result back.
    DiesAfter,
}

const FAULTS: [Fault; 5] = [
    Fault::Fails,
    Fault::OneShardDown,
    Fault::AnswerLost,
    Fault::DiesBefore,
    Fault::DiesAfter,
];

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

    fn call(
        &mut self,
        calls: &[ShardCall],
        fault: Option<Fault>,
    ) -> Vec<Result<DedupReply, String>> {
        calls
            .iter()
            .enumerate()
            .map(|(n, call)| match fault {
                Some(Fault::Fails) => Err("unreachable".to_owned()),
                Some(Fault::OneShardDown) if n == 0 => Err("shard down".to_owned()),
                Some(Fault::AnswerLost) => {
                    self.shard(call.shard).perform(&call.call);
                    Err("connection reset".to_owned())
                }
                _ => Ok(self.shard(call.shard).perform(&call.call)),
            })
            .collect()
    }

    fn send(&mut self, messages: &[String], fault: Option<Fault>) -> Result<(), String> {
        match fault {
            Some(Fault::Fails | Fault::OneShardDown) => Err("queue refused".to_owned()),
            Some(Fault::AnswerLost) => {
                self.queue.extend(messages.iter().cloned());
                Err("connection reset".to_owned())
            }
            _ => {
                self.queue.extend(messages.iter().cloned());
                Ok(())
            }
        }
    }

    /// One request through the machine, performing each step as the Worker does, with `faults` (by step).
    fn request(
        &mut self,
        accepted: &Accepted,
        stores: Stores,
        faults: &BTreeMap<usize, Fault>,
    ) -> Run {
        let mut intake = Intake::new(accepted, stores, self.now_ms);
        let mut outcome = Outcome::Start;
        let mut steps = Vec::new();
        for index in 0.. {
            let step = intake.next(outcome);
            let fault = faults.get(&index).copied();
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
                    // The answer is out; the background commit is the next step.
                    if let Finish::Accepted(Acceptance {
                        after: After::Commit(calls),
                        ..
                    }) = &finish
                    {
                        steps.push("commit");
                        if !matches!(fault, Some(Fault::DiesBefore)) {
                            self.call(calls, fault);
                        }
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
        unreachable!("the loop only ends by returning")
    }

    /// The event ids kept durably: in a queue message or a spilled one.
    fn kept(&self) -> BTreeSet<String> {
        self.queue
            .iter()
            .chain(self.shards.values().flat_map(|shard| &shard.spill))
            .map(|message| webhook_id(message).to_owned())
            .collect()
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
            let run = self.request(accepted, BOTH, &BTreeMap::new());
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
        Some(DedupCall::Claim { .. }) => "claim",
        Some(DedupCall::Commit { .. }) => "commit",
        Some(DedupCall::Release { .. }) => "release",
        Some(DedupCall::Spill { .. }) => "spill",
        Some(DedupCall::KeepReply { .. }) => "keep_reply",
        Some(DedupCall::KeptReply { .. }) => "kept_reply",
        None => "nothing",
    }
}

const BOTH: Stores = Stores {
    queue: true,
    dedup: true,
};

/// Events enough for three queue batches (at most 100 messages each) spread over every shard.
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

// ---------------------------------------------------------------------------------------------------------
// The order, without faults.

#[test]
fn claim_then_send_every_batch_then_answer_then_commit() {
    // 250 events: 100 per batch, three batches, in every shard.
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    let run = world.request(&request, BOTH, &BTreeMap::new());
    assert_eq!(
        run.steps,
        ["claim", "send", "send", "send", "commit"],
        "the order of the steps"
    );
    let Some(Finish::Accepted(acceptance)) = run.finish else {
        panic!("accepted: {run:?}");
    };
    assert_eq!(acceptance.duplicate_events, 0);
    assert_eq!(world.kept(), ids(&request));
    assert_eq!(world.queue.len(), MANY);
    let committed = world
        .shards
        .values()
        .flat_map(|shard| shard.claims.values())
        .filter(|claim| matches!(claim, Claim::Committed { .. }))
        .count();
    assert_eq!(committed, MANY);

    // The provider's retry is a duplicate: nothing more is queued, and the metrics count them.
    world.now_ms += 5_000;
    let again = world.request(&request, BOTH, &BTreeMap::new());
    assert_eq!(again.steps, ["claim"]);
    assert_eq!(
        again.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: MANY,
            after: After::Nothing
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
            after: After::Nothing
        }))
    );
    assert!(intake.take_lines().is_empty());
}

#[test]
fn the_log_says_how_the_events_were_kept() {
    let request = accepted(2, 10, None);
    let mut intake = Intake::new(&request, BOTH, 0);
    let Step::Call(calls) = intake.next(Outcome::Start) else {
        panic!("claims first");
    };
    let fresh = |call: &ShardCall| match &call.call {
        DedupCall::Claim { ids, .. } => Ok(DedupReply::Claimed {
            answers: vec![ClaimAnswer::Fresh; ids.len()],
        }),
        _ => panic!("claims"),
    };
    let step = intake.next(Outcome::Replies(calls.iter().map(fresh).collect()));
    assert!(matches!(step, Step::Send { .. }));
    let step = intake.next(Outcome::Sent(Err("queue refused".into())));
    let Step::Call(spills) = step else {
        panic!("spill after a refusal");
    };
    assert!(spills
        .iter()
        .all(|c| matches!(c.call, DedupCall::Spill { .. })));
    let done = vec![Ok(DedupReply::Done); spills.len()];
    assert!(matches!(
        intake.next(Outcome::Replies(done)),
        Step::Finish(Finish::Accepted(_))
    ));
    let lines: Vec<String> = intake.take_lines().iter().map(Line::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains("kept in the spill store"), "{lines:?}");
    assert!(lines[1].contains("\"spilled\":true"), "{lines:?}");
    // Asked again, a finished machine repeats its answer.
    assert!(matches!(
        intake.next(Outcome::Start),
        Step::Finish(Finish::Accepted(_))
    ));
}

// ---------------------------------------------------------------------------------------------------------
// Every step failed in turn, and the isolate dying between any two steps.

/// Runs `request` with `faults`, checks promise one on the way, then lets the provider retry until its events
/// are through (promise two). Returns how the faulty request ended.
fn survive(request: &Accepted, faults: &BTreeMap<usize, Fault>) -> Run {
    let mut world = World::default();
    let run = world.request(request, BOTH, faults);
    if !matches!(run.finish, Some(Finish::Accepted(_))) {
        assert!(
            world.queue.len() <= request.deliveries.len() * 2,
            "nothing runs away"
        );
    }
    world.retry_until_accepted(request);
    assert_eq!(world.kept(), ids(request), "{faults:?}: {run:?}");
    run
}

#[test]
fn one_fault_at_any_step_never_loses_an_event() {
    let request = accepted(MANY, 10, None);
    let mut scenarios = 0;
    let mut refused = 0;
    for step in 0..6 {
        for fault in FAULTS {
            let run = survive(&request, &BTreeMap::from([(step, fault)]));
            scenarios += 1;
            if matches!(run.finish, Some(Finish::Refused(_)) | None) {
                refused += 1;
            }
        }
    }
    assert_eq!(scenarios, 30);
    // Faults at the claim (step 0) and at the sends (1–3) make the request fail or die, or spill; the commit
    // (step 4) is after the answer.
    assert!(refused >= 10, "{refused}");
}

#[test]
fn two_faults_at_any_two_steps_never_lose_an_event() {
    // Two batches: claim, send, send, commit, or a spill and a release after a refused batch.
    let request = accepted(150, 10, None);
    let mut scenarios = 0;
    for first in 0..6 {
        for second in first + 1..7 {
            for a in FAULTS {
                for b in FAULTS {
                    survive(&request, &BTreeMap::from([(first, a), (second, b)]));
                    scenarios += 1;
                }
            }
        }
    }
    assert_eq!(scenarios, 21 * 25);
}

#[test]
fn when_the_queue_refuses_the_rest_is_spilled_and_the_answer_is_2xx() {
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    // The second batch is refused: the first is queued, the other 150 events are spilled.
    let run = world.request(&request, BOTH, &BTreeMap::from([(2, Fault::Fails)]));
    assert_eq!(run.steps, ["claim", "send", "send", "spill"]);
    assert!(matches!(run.finish, Some(Finish::Accepted(_))));
    let spilled: usize = world.shards.values().map(|s| s.spill.len()).sum();
    assert_eq!((world.queue.len(), spilled), (100, 150));
    assert_eq!(world.kept(), ids(&request));
    // Every claim is committed by the spill: the retry is a duplicate at once.
    world.now_ms += 1;
    let retry = world.request(&request, BOTH, &BTreeMap::new());
    assert_eq!(retry.steps, ["claim"]);
    assert!(matches!(retry.finish, Some(Finish::Accepted(_))));
}

#[test]
fn when_the_queue_and_the_spill_refuse_the_claims_are_released_and_the_answer_is_503() {
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    let run = world.request(
        &request,
        BOTH,
        &BTreeMap::from([(1, Fault::Fails), (2, Fault::Fails)]),
    );
    assert_eq!(run.steps, ["claim", "send", "spill", "release"]);
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    assert!(world.shards.values().all(|shard| shard.claims.is_empty()));
    // Released, the retry takes the events at once, without waiting for the lease.
    world.now_ms += 1;
    let retry = world.request(&request, BOTH, &BTreeMap::new());
    assert!(matches!(retry.finish, Some(Finish::Accepted(_))));
    assert_eq!(world.kept(), ids(&request));
}

#[test]
fn one_spill_shard_down_releases_only_its_events() {
    let request = accepted(MANY, 10, None);
    let mut world = World::default();
    let run = world.request(
        &request,
        BOTH,
        &BTreeMap::from([(1, Fault::Fails), (2, Fault::OneShardDown)]),
    );
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    let committed = world
        .shards
        .values()
        .flat_map(|shard| shard.claims.values())
        .filter(|claim| matches!(claim, Claim::Committed { .. }))
        .count();
    let pending = world
        .shards
        .values()
        .flat_map(|shard| shard.claims.values())
        .filter(|claim| matches!(claim, Claim::Pending { .. }))
        .count();
    assert!(committed > 0 && committed < MANY, "{committed}");
    assert_eq!(pending, 0, "the down shard's events are released");
    world.now_ms += 1;
    let retry = world.request(&request, BOTH, &BTreeMap::new());
    assert!(matches!(retry.finish, Some(Finish::Accepted(_))));
    assert_eq!(world.kept(), ids(&request));
}

#[test]
fn one_claim_shard_down_releases_the_others_and_answers_503() {
    let request = accepted(12, 10, None);
    let mut world = World::default();
    let run = world.request(&request, BOTH, &BTreeMap::from([(0, Fault::OneShardDown)]));
    assert_eq!(run.steps, ["claim", "release"]);
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    assert!(world.queue.is_empty());
    assert!(world.shards.values().all(|shard| shard.claims.is_empty()));
}

#[test]
fn an_event_claimed_by_another_request_is_busy_and_this_requests_claims_are_released() {
    let request = accepted(6, 10, None);
    let mut world = World::default();
    // Another request claimed the first event and has not committed yet.
    let first = &request.deliveries[0].webhook_id;
    world
        .shard(dedup::shard_of(first))
        .claims
        .insert(first.clone(), Claim::Pending { since_ms: 0 });
    let run = world.request(&request, BOTH, &BTreeMap::new());
    assert_eq!(run.steps, ["claim", "release"]);
    assert_eq!(
        run.finish,
        Some(Finish::Refused(Rejection::ClaimInProgress))
    );
    assert!(world.queue.is_empty());
    let pending = world
        .shards
        .values()
        .flat_map(|shard| shard.claims.keys())
        .collect::<Vec<_>>();
    assert_eq!(pending, [first], "only the other request's claim is left");
    // The other request died: after the lease, the retry goes through.
    world.now_ms += CLAIM_LEASE_MS;
    assert!(matches!(
        world.request(&request, BOTH, &BTreeMap::new()).finish,
        Some(Finish::Accepted(_))
    ));
    assert_eq!(world.kept(), ids(&request));
}

#[test]
fn a_replayed_signature_is_refused_and_nothing_is_claimed() {
    let mut world = World::default();
    let first = accepted(3, 10, Some(guard("body-a")));
    assert!(matches!(
        world.request(&first, BOTH, &BTreeMap::new()).finish,
        Some(Finish::Accepted(_))
    ));
    // The same signed query with another body.
    let mut replayed = accepted(3, 10, Some(guard("body-b")));
    for (n, delivery) in replayed.deliveries.iter_mut().enumerate() {
        delivery.webhook_id = event_id("line", "acme", &format!("other{n}"));
    }
    let run = world.request(&replayed, BOTH, &BTreeMap::new());
    assert_eq!(
        run.finish,
        Some(Finish::Refused(Rejection::ReplayedSignature))
    );
    assert_eq!(world.queue.len(), 3);
    let claimed: usize = world.shards.values().map(|s| s.claims.len()).sum();
    assert_eq!(claimed, 3, "the replay claimed nothing that stays");
}

#[test]
fn a_guarded_request_survives_faults_too() {
    let request = accepted(5, 10, Some(guard("body-a")));
    for step in 0..4 {
        for fault in FAULTS {
            survive(&request, &BTreeMap::from([(step, fault)]));
        }
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
    let run = world.request(&request, stores, &BTreeMap::new());
    assert_eq!(run.steps, ["send"]);
    assert!(matches!(run.finish, Some(Finish::Accepted(_))));
    assert_eq!(world.kept(), ids(&request));
    // Nothing to spill into: a refusing queue is a 503.
    let run = World::default().request(&request, stores, &BTreeMap::from([(0, Fault::Fails)]));
    assert_eq!(run.finish, Some(Finish::Refused(Rejection::EnqueueFailed)));
    // A replay guard cannot be checked without the store: refused, misconfigured.
    let guarded = accepted(1, 10, Some(guard("a")));
    let run = World::default().request(&guarded, stores, &BTreeMap::new());
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
    let run = World::default().request(&request, no_queue, &BTreeMap::new());
    assert!(run.steps.is_empty());
    assert_eq!(
        run.finish,
        Some(Finish::Accepted(Acceptance {
            duplicate_events: 0,
            after: After::ForwardBestEffort
        }))
    );
    let guarded = accepted(2, 10, Some(guard("a")));
    let mut world = World::default();
    let run = world.request(&guarded, no_queue, &BTreeMap::new());
    assert_eq!(run.steps, ["claim"]);
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
        world.request(&replay, no_queue, &BTreeMap::new()).finish,
        Some(Finish::Refused(Rejection::ReplayedSignature))
    );
    let neither = Stores {
        queue: false,
        dedup: false,
    };
    assert_eq!(
        World::default()
            .request(&guarded, neither, &BTreeMap::new())
            .finish,
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
    // A queue result where shard replies were expected: nothing was claimed that is known, refuse.
    assert_eq!(
        intake.next(Outcome::Sent(Ok(()))),
        Step::Finish(Finish::Refused(Rejection::EnqueueFailed))
    );
}
