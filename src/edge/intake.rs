//! Moving accepted events into durable hands before the provider gets its 2xx: claim (two-phase, with the
//! replay guard) → enqueue → commit; when the queue refuses, spill into the de-duplication object; answer 503
//! only when nothing durable took them. The decisions are [`crate::dedup`]'s; this module performs the calls.

use std::sync::atomic::{AtomicBool, Ordering};

use worker::{Context, Env, Queue, Stub};

use super::consumer::forward_best_effort;
use super::{call_object, emit, now_ms, queue_message, DEDUP_BINDING, QUEUE_BINDING};
use crate::dedup::{self, ClaimDecision, DedupCall, DedupReply};
use crate::delivery::{batches, QueuedDelivery};
use crate::gateway::{Accepted, Refusal};
use crate::log::{self, Kept};
use crate::Rejection;

static BEST_EFFORT_LOGGED: AtomicBool = AtomicBool::new(false);

pub(super) async fn dispatch(env: &Env, ctx: &Context, accepted: &Accepted) -> Result<(), Refusal> {
    if accepted.deliveries.is_empty() && accepted.replay_guard.is_none() {
        return Ok(());
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
    let Ok(queue) = env.queue(QUEUE_BINDING) else {
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
        return Ok(());
    };
    let ids: Vec<String> = accepted
        .deliveries
        .iter()
        .map(|d| d.webhook_id.clone())
        .collect();
    let stub = env
        .durable_object(DEDUP_BINDING)
        .and_then(|namespace| namespace.id_from_name(&source)?.get_stub());
    let Ok(stub) = stub else {
        emit(&log::no_dedup_store(&source));
        dedup::without_store(accepted.replay_guard.as_ref()).map_err(refuse)?;
        let messages = first_messages(accepted, &(0..ids.len()).collect::<Vec<_>>());
        return match send_all(&queue, messages).await {
            Ok(()) => {
                emit(&log::request_accepted(accepted, None, Kept::Queued));
                Ok(())
            }
            Err((_, error)) => {
                emit(&log::enqueue_failed(&source, &error, false));
                Err(refuse(Rejection::EnqueueFailed))
            }
        };
    };
    let claim = DedupCall::Claim {
        ids: ids.clone(),
        guard: accepted.replay_guard.clone(),
        now_ms: now_ms(),
    };
    let answers = match call_object::<_, DedupReply>(&stub, &claim).await {
        Ok(reply) => dedup::read_claim_reply(reply, ids.len()).map_err(refuse)?,
        Err(error) => {
            emit(&log::enqueue_failed(&source, &error.to_string(), false));
            return Err(refuse(Rejection::EnqueueFailed));
        }
    };
    let (fresh, duplicates) = match dedup::decide(&answers) {
        ClaimDecision::Busy { fresh } => {
            release(&stub, pick(&ids, &fresh)).await;
            return Err(refuse(Rejection::ClaimInProgress));
        }
        ClaimDecision::Enqueue { fresh, duplicates } => (fresh, duplicates),
    };
    let fresh_ids = pick(&ids, &fresh);
    let messages = first_messages(accepted, &fresh);
    match send_all(&queue, messages).await {
        Ok(()) => {
            if !fresh_ids.is_empty() {
                let commit = DedupCall::Commit {
                    ids: fresh_ids,
                    now_ms: now_ms(),
                };
                // Committed after the answer: the events are already queued, so the provider need not wait
                // for it. Until then (a few ms) a retry of the same event is told to come back; a commit that
                // fails leaves the claims pending, and after the lease a retry is queued again (a duplicate the
                // backend drops by webhook-id), never a loss.
                let env = env.clone();
                let source = source.clone();
                ctx.wait_until(async move {
                    let committed = match env
                        .durable_object(DEDUP_BINDING)
                        .and_then(|namespace| namespace.id_from_name(&source)?.get_stub())
                    {
                        Ok(stub) => call_object::<_, DedupReply>(&stub, &commit)
                            .await
                            .map(|_| ()),
                        Err(error) => Err(error),
                    };
                    if let Err(error) = committed {
                        emit(&log::operation_failed(
                            "claim commit failed",
                            &error.to_string(),
                        ));
                    }
                });
            }
            emit(&log::request_accepted(
                accepted,
                Some(duplicates),
                Kept::Queued,
            ));
            Ok(())
        }
        Err((unsent, error)) => {
            let spill = DedupCall::Spill {
                ids: fresh_ids.clone(),
                messages: unsent,
                now_ms: now_ms(),
                source: source.clone(),
            };
            match call_object::<_, DedupReply>(&stub, &spill).await {
                Ok(_) => {
                    emit(&log::enqueue_failed(&source, &error, true));
                    emit(&log::request_accepted(
                        accepted,
                        Some(duplicates),
                        Kept::Spilled,
                    ));
                    Ok(())
                }
                Err(spill_error) => {
                    emit(&log::enqueue_failed(
                        &source,
                        &format!("{error}; spill: {spill_error}"),
                        false,
                    ));
                    release(&stub, fresh_ids).await;
                    Err(refuse(Rejection::EnqueueFailed))
                }
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

/// Sends every message in as many batches as the limits need. On failure returns the messages not sent yet
/// (the failed batch and every later one) with the error.
async fn send_all(queue: &Queue, messages: Vec<String>) -> Result<(), (Vec<String>, String)> {
    let mut pending = batches(messages).into_iter();
    while let Some(batch) = pending.next() {
        let sendable: Vec<_> = batch
            .iter()
            .cloned()
            .map(|m| queue_message(m, None))
            .collect();
        if let Err(error) = queue.send_batch(sendable).await {
            let unsent = batch.into_iter().chain(pending.flatten()).collect();
            return Err((unsent, error.to_string()));
        }
    }
    Ok(())
}

/// Frees pending claims so the provider's retry is not taken for a duplicate. A failed release is harmless:
/// the claims expire after the lease.
async fn release(stub: &Stub, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    if let Err(error) = call_object::<_, DedupReply>(stub, &DedupCall::Release { ids }).await {
        emit(&log::operation_failed(
            "claim release failed",
            &error.to_string(),
        ));
    }
}

/// Best-effort mode still honours a replay guard: checked (and remembered) in the de-duplication object, or
/// refused when there is none.
async fn check_guard_only(
    env: &Env,
    source: &str,
    guard: &crate::channels::ReplayGuard,
) -> Result<(), Rejection> {
    let Ok(stub) = env
        .durable_object(DEDUP_BINDING)
        .and_then(|namespace| namespace.id_from_name(source)?.get_stub())
    else {
        return dedup::without_store(Some(guard));
    };
    let claim = DedupCall::Claim {
        ids: Vec::new(),
        guard: Some(guard.clone()),
        now_ms: now_ms(),
    };
    match call_object::<_, DedupReply>(&stub, &claim).await {
        Ok(reply) => dedup::read_claim_reply(reply, 0).map(|_| ()),
        Err(_) => Err(Rejection::EnqueueFailed),
    }
}
