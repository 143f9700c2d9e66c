//! The reply call's IO: sent once the event is durably accepted, without following redirects, and cut off —
//! answer and body alike — when the budget ends. Every decision is [`sekisho::reply`]'s.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::JsCast;
use worker::{AbortController, Context, Delay, Env, Fetch};

use super::{call_object, emit, now_ms, EnvBindings};
use sekisho::channels::EdgeResponse;
use sekisho::dedup::{self, is_duplicate, reply_step, DedupCall, DedupReply, KeptReply, ReplyStep};
use sekisho::gateway::Accepted;
use sekisho::gateway::BodyBuffer;
use sekisho::reply::{CallOutcome, NoReply, RenderContext, ReplyCall, MAX_ANSWER_BYTES};

/// The provider's response: the backend's reply rendered by the channel, or `default` (today's answer). A
/// duplicate of an event already accepted is answered from the reply kept for it, never by a new call
/// ([`sekisho::dedup::reply_step`]); a fresh event's rendered reply is kept for its duplicates.
pub(super) async fn answer(
    call: &ReplyCall,
    accepted: &Accepted,
    duplicate_events: usize,
    env: &Env,
    ctx: &Context,
    received_ms: u64,
) -> EdgeResponse {
    let event_id = &call.delivery.webhook_id;
    let default = &accepted.response;
    let store = kept_store(env, accepted);
    let kept = match &store {
        Some(stub) if is_duplicate(duplicate_events) => kept_reply(stub, event_id).await,
        _ => None,
    };
    if let ReplyStep::Answer(response) =
        reply_step(duplicate_events, kept.as_ref(), now_ms(), default)
    {
        return response;
    }
    let result = reply(call, env, received_ms).await;
    let elapsed_ms = now_ms().saturating_sub(received_ms);
    emit(&sekisho::log::reply_outcome(
        event_id,
        result.as_ref().map(|_| ()),
        elapsed_ms,
    ));
    match result {
        Ok(response) => {
            if let Some(stub) = store {
                let keep = DedupCall::KeepReply {
                    id: event_id.clone(),
                    reply: KeptReply::of(&response, now_ms()),
                };
                ctx.wait_until(async move {
                    if let Err(error) = call_object::<_, DedupReply>(&stub, &keep).await {
                        emit(&sekisho::log::operation_failed(
                            "reply not kept",
                            &error.to_string(),
                        ));
                    }
                });
            }
            response
        }
        Err(_) => default.clone(),
    }
}

/// The de-duplication object holding the event's claim, when there is one.
fn kept_store(env: &Env, accepted: &Accepted) -> Option<worker::Stub> {
    let store = super::binding::<worker::ObjectNamespace>(env, dedup::STORE_BINDING)?;
    let delivery = accepted.deliveries.first()?;
    let source = format!(
        "/{}/{}",
        accepted.channel.unwrap_or_default(),
        accepted.account.as_deref().unwrap_or_default()
    );
    let name = dedup::object_name(&source, dedup::shard_of(&delivery.webhook_id));
    store.id_from_name(&name).ok()?.get_stub().ok()
}

/// The reply kept for `event_id`; a failed lookup is no reply (the usual answer, still no call).
async fn kept_reply(stub: &worker::Stub, event_id: &str) -> Option<KeptReply> {
    let call = DedupCall::KeptReply {
        id: event_id.to_owned(),
    };
    match call_object::<_, DedupReply>(stub, &call).await {
        Ok(DedupReply::Kept { reply }) => reply,
        _ => None,
    }
}

async fn reply(call: &ReplyCall, env: &Env, received_ms: u64) -> Result<EdgeResponse, NoReply> {
    let remaining_ms = call
        .remaining_ms(received_ms, now_ms())
        .ok_or(NoReply::BudgetSpent)?;
    let outgoing = call
        .outgoing(&EnvBindings::of(env), now_ms() / 1000, remaining_ms)
        .map_err(NoReply::NotPrepared)?;
    let outcome = perform(&outgoing, remaining_ms).await;
    let context = RenderContext {
        now_ms: now_ms(),
        entropy: entropy().map_err(|_| NoReply::Unrenderable("no random bytes"))?,
    };
    call.answer(outcome, &context)
}

async fn perform(outgoing: &sekisho::forward::Outgoing, budget_ms: u64) -> CallOutcome {
    let request = match super::consumer::build_request(outgoing) {
        Ok(request) => request,
        Err(error) => return CallOutcome::Failed(error.to_string()),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = exchange(request, &signal);
    let timeout = Delay::from(Duration::from_millis(budget_ms));
    futures_util::pin_mut!(exchange);
    futures_util::pin_mut!(timeout);
    match select(exchange, timeout).await {
        Either::Left((Ok(outcome), _)) => outcome,
        Either::Left((Err(error), _)) => CallOutcome::Failed(error.to_string()),
        Either::Right(_) => {
            controller.abort();
            CallOutcome::TimedOut {
                after_ms: budget_ms,
            }
        }
    }
}

/// The answer, its body read until [`MAX_ANSWER_BYTES`].
async fn exchange(
    request: worker::Request,
    signal: &worker::AbortSignal,
) -> worker::Result<CallOutcome> {
    let mut response = Fetch::Request(request).send_with_signal(signal).await?;
    let status = response.status_code();
    let mut body = BodyBuffer::new(MAX_ANSWER_BYTES);
    if let Ok(mut stream) = response.stream() {
        while let Some(chunk) = stream.next().await {
            if body.push(&chunk?).is_err() {
                return Ok(CallOutcome::TooLarge);
            }
        }
    }
    Ok(CallOutcome::Answered {
        status,
        body: body.into_bytes(),
    })
}

/// 32 bytes from the runtime's `crypto.getRandomValues`.
fn entropy() -> Result<[u8; 32], wasm_bindgen::JsValue> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())?;
    let get_random_values: js_sys::Function =
        js_sys::Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
    let array = js_sys::Uint8Array::new_with_length(32);
    get_random_values.call1(&crypto, &array)?;
    let mut bytes = [0u8; 32];
    array.copy_to(&mut bytes);
    Ok(bytes)
}
