//! Performs the steps of [`sekisho::intake::Intake`]: calls to the de-duplication shards (which queue the new
//! events themselves), queue batches without a de-duplication store, and the best-effort forward without a
//! queue. Every decision is the core's.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::join_all;
use worker::{Context, Env, ObjectNamespace, Queue};

use super::consumer::forward_best_effort;
use super::{binding, call_object, emit, now_ms, queue_message, DEDUP_BINDING, QUEUE_BINDING};
use sekisho::channels::EdgeResponse;
use sekisho::dedup::{self, DedupReply, HeldClaim};
use sekisho::gateway::{Accepted, Refusal};
use sekisho::intake::{Acceptance, After, Finish, Intake, Outcome, ShardCall, Step, Stores};
use sekisho::log;

static BEST_EFFORT_LOGGED: AtomicBool = AtomicBool::new(false);

/// Returns how the events were accepted: how many were duplicates (for the metrics), and the reply call's turn.
pub(super) async fn dispatch(
    env: &Env,
    ctx: &Context,
    accepted: &Accepted,
) -> Result<Acceptance, Refusal> {
    let queue = binding::<Queue>(env, QUEUE_BINDING);
    let store = binding::<ObjectNamespace>(env, DEDUP_BINDING);
    let stores = Stores {
        queue: queue.is_some(),
        dedup: store.is_some(),
    };
    let mut intake = Intake::new(accepted, stores, now_ms());
    let mut outcome = Outcome::Start;
    loop {
        let step = intake.next(outcome);
        for line in intake.take_lines() {
            emit(&line);
        }
        outcome = match step {
            Step::Call(calls) => {
                Outcome::Replies(call_shards(store.as_ref(), intake.source(), &calls).await)
            }
            Step::Send { messages, delay_s } => {
                Outcome::Sent(send_batch(queue.as_ref(), messages, delay_s).await)
            }
            Step::Finish(Finish::Refused(rejection)) => return Err(intake.refusal(rejection)),
            Step::Finish(Finish::Accepted(acceptance)) => {
                match &acceptance.after {
                    After::Nothing => {}
                    After::Commit(held) => {
                        let env = env.clone();
                        let held = held.clone();
                        ctx.wait_until(async move {
                            if let Err(error) = commit_held(&env, &held, None).await {
                                // The event is queued; without its claim a provider retry after the hold is
                                // queued again (a duplicate with the same webhook-id, never a loss).
                                emit(&log::operation_failed("held claim not committed", &error));
                            }
                        });
                    }
                    After::ForwardBestEffort => {
                        if !BEST_EFFORT_LOGGED.swap(true, Ordering::Relaxed) {
                            emit(&log::best_effort_mode());
                        }
                        ctx.wait_until(forward_best_effort(
                            accepted.deliveries.clone(),
                            env.clone(),
                        ));
                    }
                }
                return Ok(acceptance);
            }
        };
    }
}

/// The calls, in parallel, one reply (or error) per call in their order. The de-duplication objects of one
/// channel/account are one per shard (see [`sekisho::dedup::SHARDS`]).
async fn call_shards(
    store: Option<&ObjectNamespace>,
    source: &str,
    calls: &[ShardCall],
) -> Vec<Result<DedupReply, String>> {
    join_all(calls.iter().map(|call| async move {
        let store = store.ok_or_else(|| format!("no {DEDUP_BINDING} binding"))?;
        let stub = store
            .id_from_name(&dedup::object_name(source, call.shard))
            .and_then(|id| id.get_stub())
            .map_err(|error| error.to_string())?;
        call_object::<_, DedupReply>(&stub, &call.call)
            .await
            .map_err(|error| error.to_string())
    }))
    .await
}

async fn send_batch(
    queue: Option<&Queue>,
    messages: Vec<String>,
    delay_s: Option<u32>,
) -> Result<(), String> {
    let queue = queue.ok_or_else(|| format!("no {QUEUE_BINDING} binding"))?;
    let batch: Vec<_> = messages
        .into_iter()
        .map(|message| queue_message(message, delay_s))
        .collect();
    queue
        .send_batch(batch)
        .await
        .map_err(|error| error.to_string())
}

/// Writes a claim an accept call held ([`sekisho::dedup::HeldClaim`]), with the reply the provider got.
pub(super) async fn commit_held(
    env: &Env,
    held: &HeldClaim,
    rendered: Option<&EdgeResponse>,
) -> Result<(), String> {
    let store = super::binding::<worker::ObjectNamespace>(env, dedup::STORE_BINDING)
        .ok_or_else(|| format!("no {} binding", dedup::STORE_BINDING))?;
    let stub = store
        .id_from_name(&held.object)
        .and_then(|id| id.get_stub())
        .map_err(|error| error.to_string())?;
    match call_object::<_, DedupReply>(&stub, &held.commit(rendered, now_ms())).await {
        Ok(DedupReply::Done) => Ok(()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(error) => Err(error.to_string()),
    }
}
