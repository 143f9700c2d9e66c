//! Moving accepted events into durable hands before the provider gets its 2xx: claim (two-phase, with the
//! replay guard) → enqueue → commit; when the queue refuses, spill into the de-duplication object; answer 503
//! only when nothing durable took them. The decisions are [`sekisho::dedup`]'s; this module performs the calls.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;
use worker::{Context, Env, ObjectNamespace, Queue};

use super::consumer::forward_best_effort;
use super::{binding, call_object, emit, now_ms, queue_message, DEDUP_BINDING, QUEUE_BINDING};
use sekisho::dedup::{self, ClaimDecision, ClaimPlan, DedupCall, DedupReply};
use sekisho::delivery::{batches, QueuedDelivery};
use sekisho::gateway::{Accepted, Refusal};
use sekisho::log::{self, Kept};
use sekisho::Rejection;

static BEST_EFFORT_LOGGED: AtomicBool = AtomicBool::new(false);

/// Returns how many of the request's events were duplicates (for the metrics).
pub(super) async fn dispatch(
    env: &Env,
    ctx: &Context,
    accepted: &Accepted,
) -> Result<usize, Refusal> {
    if accepted.deliveries.is_empty() && accepted.replay_guard.is_none() {
        return Ok(0);
    }
    let refuse = |rejection| Refusal {
        rejection,
        channel: accepted.channel,
        account: accepted.account.clone(),
    };
    let source = format!(
        "/{}/{}",
        accepted.channel.unwrap_or_default(),
        accepted.account.as_deref().unwrap_or_default()
    );
    let Some(queue) = binding::<Queue>(env, QUEUE_BINDING) else {
        if let Some(guard) = &accepted.replay_guard {
            check_guard_only(env, &source, guard)
                .await
                .map_err(refuse)?;
        }
        if !BEST_EFFORT_LOGGED.swap(true, Ordering::Relaxed) {
            emit(&log::best_effort_mode());
        }
        emit(&log::request_accepted(accepted, None, Kept::BestEffort));
        ctx.wait_until(forward_best_effort(
            accepted.deliveries.clone(),
            env.clone(),
        ));
        return Ok(0);
    };
    let ids: Vec<String> = accepted
        .deliveries
        .iter()
        .map(|d| d.webhook_id.clone())
        .collect();
    let Some(store) = binding::<ObjectNamespace>(env, DEDUP_BINDING) else {
        emit(&log::no_dedup_store(&source));
        dedup::without_store(accepted.replay_guard.as_ref()).map_err(refuse)?;
        let messages = first_messages(accepted, &(0..ids.len()).collect::<Vec<_>>());
        return match send_all(&queue, messages, first_delay_s(accepted)).await {
            Ok(()) => {
                emit(&log::request_accepted(accepted, None, Kept::Queued));
                Ok(0)
            }
            Err((_, error)) => {
                emit(&log::enqueue_failed(&source, &error, false));
                Err(refuse(Rejection::EnqueueFailed))
            }
        };
    };
    let shards = Shards {
        store: &store,
        source: &source,
    };
    let plan = ClaimPlan::new(&ids, accepted.replay_guard.as_ref(), now_ms());
    let replies = join_all(
        plan.calls
            .iter()
            .map(|call| shards.call(call.shard, &call.call)),
    )
    .await;
    for error in replies.iter().filter_map(|reply| reply.as_ref().err()) {
        emit(&log::enqueue_failed(&source, &error.to_string(), false));
    }
    let answers = match plan.merge(replies) {
        Ok(answers) => answers,
        Err(failure) => {
            shards.release(pick(&ids, &failure.release)).await;
            return Err(refuse(failure.rejection));
        }
    };
    let (fresh, duplicates) = match dedup::decide(&answers) {
        ClaimDecision::Busy { fresh } => {
            shards.release(pick(&ids, &fresh)).await;
            return Err(refuse(Rejection::ClaimInProgress));
        }
        ClaimDecision::Enqueue { fresh, duplicates } => (fresh, duplicates),
    };
    let duplicate_events =
        sekisho::metrics::observe::duplicate_events(&accepted.deliveries, &fresh);
    let fresh_ids = pick(&ids, &fresh);
    let messages = first_messages(accepted, &fresh);
    match send_all(&queue, messages, first_delay_s(accepted)).await {
        Ok(()) => {
            if !fresh_ids.is_empty() {
                // Committed after the answer: the events are already queued, so the provider need not wait
                // for it. Until then (a few ms) a retry of the same event is told to come back; a commit that
                // fails leaves the claims pending, and after the lease a retry is queued again (a duplicate the
                // backend drops by webhook-id), never a loss.
                let env = env.clone();
                let source = source.clone();
                let now = now_ms();
                ctx.wait_until(async move {
                    let Some(store) = binding::<ObjectNamespace>(&env, DEDUP_BINDING) else {
                        return;
                    };
                    let shards = Shards {
                        store: &store,
                        source: &source,
                    };
                    let commits = dedup::group_ids(&fresh_ids)
                        .into_iter()
                        .map(|(shard, ids)| {
                            let call = DedupCall::Commit { ids, now_ms: now };
                            let shards = &shards;
                            async move { shards.call(shard, &call).await }
                        });
                    for result in join_all(commits).await {
                        if let Err(error) = result {
                            emit(&log::operation_failed(
                                "claim commit failed",
                                &error.to_string(),
                            ));
                        }
                    }
                });
            }
            emit(&log::request_accepted(
                accepted,
                Some(duplicates),
                Kept::Queued,
            ));
            Ok(duplicate_events)
        }
        Err((unsent, error)) => {
            let spills = dedup::spill_calls(&fresh_ids, unsent, now_ms(), &source);
            let results =
                join_all(spills.iter().map(|(shard, call)| shards.call(*shard, call))).await;
            // A shard that kept its events has committed their claims: the provider's retry finds them
            // duplicates. A shard that did not is released, so the retry takes them again.
            let mut failed = Vec::new();
            let mut errors = Vec::new();
            for ((_, call), result) in spills.iter().zip(results) {
                if let (Err(spill_error), DedupCall::Spill { ids, .. }) = (result, call) {
                    failed.extend(ids.iter().cloned());
                    errors.push(spill_error.to_string());
                }
            }
            if errors.is_empty() {
                emit(&log::enqueue_failed(&source, &error, true));
                emit(&log::request_accepted(
                    accepted,
                    Some(duplicates),
                    Kept::Spilled,
                ));
                Ok(duplicate_events)
            } else {
                emit(&log::enqueue_failed(
                    &source,
                    &format!("{error}; spill: {}", errors.join("; ")),
                    false,
                ));
                shards.release(failed).await;
                Err(refuse(Rejection::EnqueueFailed))
            }
        }
    }
}

/// The de-duplication objects of one channel/account, one per shard (see [`sekisho::dedup::SHARDS`]).
struct Shards<'a> {
    store: &'a ObjectNamespace,
    source: &'a str,
}

impl Shards<'_> {
    async fn call(&self, shard: u16, call: &DedupCall) -> worker::Result<DedupReply> {
        let stub = self
            .store
            .id_from_name(&dedup::object_name(self.source, shard))?
            .get_stub()?;
        call_object::<_, DedupReply>(&stub, call).await
    }

    /// Frees pending claims so the provider's retry is not taken for a duplicate. A failed release is
    /// harmless: the claims expire after the lease.
    async fn release(&self, ids: Vec<String>) {
        let releases = dedup::group_ids(&ids).into_iter().map(|(shard, ids)| {
            let call = DedupCall::Release { ids };
            async move { self.call(shard, &call).await }
        });
        for result in join_all(releases).await {
            if let Err(error) = result {
                emit(&log::operation_failed(
                    "claim release failed",
                    &error.to_string(),
                ));
            }
        }
    }
}

fn pick(ids: &[String], indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .filter_map(|&i| ids.get(i).cloned())
        .collect()
}

fn first_messages(accepted: &Accepted, indices: &[usize]) -> Vec<String> {
    indices
        .iter()
        .filter_map(|&i| accepted.deliveries.get(i))
        .map(|delivery| QueuedDelivery::first(delivery.clone()).to_message())
        .collect()
}

/// With a reply call the event's first delivery waits until the call has ended (see
/// [`sekisho::reply::ReplyCall::delivery_delay_s`]).
fn first_delay_s(accepted: &Accepted) -> Option<u32> {
    accepted
        .reply
        .as_ref()
        .map(sekisho::reply::ReplyCall::delivery_delay_s)
}

/// Sends every message in as many batches as the limits need, each held back `delay_s` when given. On failure
/// returns the messages not sent yet (the failed batch and every later one) with the error.
async fn send_all(
    queue: &Queue,
    messages: Vec<String>,
    delay_s: Option<u32>,
) -> Result<(), (Vec<String>, String)> {
    let mut pending = batches(messages).into_iter();
    while let Some(batch) = pending.next() {
        let sendable: Vec<_> = batch
            .iter()
            .cloned()
            .map(|m| queue_message(m, delay_s))
            .collect();
        if let Err(error) = queue.send_batch(sendable).await {
            let unsent = batch.into_iter().chain(pending.flatten()).collect();
            return Err((unsent, error.to_string()));
        }
    }
    Ok(())
}

/// Best-effort mode still honours a replay guard: checked (and remembered) in the de-duplication object, or
/// refused when there is none.
async fn check_guard_only(
    env: &Env,
    source: &str,
    guard: &sekisho::channels::ReplayGuard,
) -> Result<(), Rejection> {
    let Some(store) = binding::<ObjectNamespace>(env, DEDUP_BINDING) else {
        return dedup::without_store(Some(guard));
    };
    let shards = Shards {
        store: &store,
        source,
    };
    let plan = ClaimPlan::new(&[], Some(guard), now_ms());
    let replies = join_all(
        plan.calls
            .iter()
            .map(|call| shards.call(call.shard, &call.call)),
    )
    .await;
    plan.merge(replies)
        .map(|_| ())
        .map_err(|failure| failure.rejection)
}
