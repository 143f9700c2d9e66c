//! The reply call's IO: sent once the event is durably accepted, without following redirects, and cut off —
//! answer and body alike — when the budget ends. Every decision is [`sekisho::reply`]'s.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::JsCast;
use worker::{AbortController, Context, Delay, Env, Fetch};

use super::{emit, now_ms, EnvBindings};
use sekisho::channels::EdgeResponse;
use sekisho::dedup::ReplyTurn;
use sekisho::gateway::Accepted;
use sekisho::gateway::BodyBuffer;
use sekisho::reply::{CallOutcome, NoReply, RenderContext, ReplyCall, MAX_ANSWER_BYTES};

/// The provider's response: the backend's reply rendered by the channel, or `default` (today's answer), as the
/// intake decided ([`ReplyTurn`]). A duplicate was answered by its accept call from the reply kept with its
/// claim; a fresh event's call is made here, and its held claim committed with what was rendered once the
/// provider has its answer (a copy arriving before the commit waits for it in the object).
pub(super) async fn answer(
    call: &ReplyCall,
    accepted: &Accepted,
    turn: ReplyTurn,
    env: &Env,
    ctx: &Context,
    received_ms: u64,
) -> EdgeResponse {
    let default = &accepted.response;
    let held = match turn {
        ReplyTurn::NoCall => return default.clone(),
        ReplyTurn::Answer(response) => return response,
        ReplyTurn::Call { held } => held,
    };
    let result = reply(call, env, received_ms).await;
    let elapsed_ms = now_ms().saturating_sub(received_ms);
    emit(&sekisho::log::reply_outcome(
        &call.delivery.webhook_id,
        result.as_ref().map(|_| ()),
        elapsed_ms,
    ));
    let rendered = result.ok();
    if let Some(held) = held {
        let env = env.clone();
        let kept = rendered.clone();
        ctx.wait_until(async move {
            if let Err(error) = super::intake::commit_held(&env, &held, kept.as_ref()).await {
                // The event is queued; without its claim a provider retry after the hold is queued again (a
                // duplicate with the same webhook-id, never a loss).
                emit(&sekisho::log::operation_failed(
                    "held claim not committed",
                    &error,
                ));
            }
        });
    }
    rendered.unwrap_or_else(|| default.clone())
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
