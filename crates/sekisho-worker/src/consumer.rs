//! The queue consumers: `EVENTS` (one attempt per message, all of a batch concurrently, each bounded by the
//! attempt timeout, then the step [`record_attempt`] decides) and its dead-letter queue (whatever the queue
//! gave up on goes into the dead-letter store). Redirects are never followed.

use futures_util::future::join_all;
use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;
use worker::{Context, Env, Headers, Message, MessageBatch, MessageExt, Request};

use super::durable::{DeadLetterCall, Deleted};
use super::{call_object, emit, now_ms, queue_message, EnvBindings, DEAD_LETTER_BINDING};
use sekisho::config::Bindings;
use sekisho::delivery::attempt::ResponseHeaders;
use sekisho::delivery::dead_letter;
use sekisho::delivery::policy::{classify, StatusClass};
use sekisho::delivery::queue::is_dead_letter_queue;
use sekisho::delivery::QueueSet;
use sekisho::delivery::{
    record_attempt, AttemptOutcome, DeadLetter, QueuedDelivery, RetryPolicy, Step,
};
use sekisho::forward::{self, Delivery};
use sekisho::log;
use sekisho::metrics::{observe, DeliveryOutcome, Observation};

#[worker::event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let bindings = EnvBindings::of(&env);
    let messages = batch.messages()?;
    if is_dead_letter_queue(&batch.queue(), &bindings) {
        let mut observations = Vec::new();
        for message in &messages {
            observations.extend(keep_from_dead_letter_queue(message, &env).await);
        }
        super::metrics::observe_batch(&env, observations).await;
        return Ok(());
    }
    let policy = RetryPolicy::from_bindings(&bindings);
    let queues = QueueSet::from_bindings(&bindings);
    let observations = join_all(
        messages
            .iter()
            .map(|message| deliver_one(message, &env, &queues, &policy)),
    )
    .await;
    super::metrics::observe_batch(&env, observations.into_iter().flatten().collect()).await;
    Ok(())
}

/// One attempt and its next step; returns what the metrics record of it.
async fn deliver_one(
    message: &Message<String>,
    env: &Env,
    queues: &QueueSet,
    policy: &RetryPolicy,
) -> Option<Observation> {
    let Ok(queued) = serde_json::from_str::<QueuedDelivery>(message.body()) else {
        emit(&log::unreadable_queue_message(&message.id()));
        message.ack();
        return None;
    };
    // A retry goes back to the event's own queue (`EVENT_QUEUES`).
    let queue = match env.queue(queues.for_event(&queued.delivery.webhook_id)) {
        Ok(queue) => queue,
        Err(error) => {
            emit(&log::step_not_recorded(
                &queued.delivery.webhook_id,
                &error.to_string(),
            ));
            message.retry();
            return None;
        }
    };
    let queue = &queue;
    if matches!(queued.delivery.target, sekisho::forward::Target::Send(_)) {
        super::outbound::deliver(message, queued, env, queue, policy).await;
        return None;
    }
    let bindings = EnvBindings::of(env);
    let started_ms = now_ms();
    let outcome = attempt(env, &queued.delivery, &bindings, policy.attempt_timeout_s).await;
    let latency_ms = (!matches!(outcome, AttemptOutcome::NotSent { .. }))
        .then(|| now_ms().saturating_sub(started_ms));
    let event_id = queued.delivery.webhook_id.clone();
    let delivery = queued.delivery.clone();
    let step = record_attempt(queued, &outcome, policy, now_ms(), js_sys::Math::random());
    let observed = DeliveryOutcome::of(&step);
    let recorded = match step {
        Step::Delivered => Ok(()),
        Step::Retry { message, delay_s } => {
            emit(&log::attempt_failed(
                &message,
                &format!("retry in {delay_s} s"),
            ));
            queue
                .send(queue_message(message.to_message(), Some(delay_s)))
                .await
        }
        Step::DeadLetter(letter) => {
            emit(&log::dead_lettered(&letter));
            put_dead_letter(env, letter).await
        }
    };
    match recorded {
        Ok(()) => message.ack(),
        Err(error) => {
            // The next step could not be recorded: the queue hands this message back as it is, and after its
            // own retries moves it to the dead-letter queue, whose consumer keeps it.
            emit(&log::step_not_recorded(&event_id, &error.to_string()));
            message.retry();
            return None;
        }
    }
    observe::delivery(&delivery, observed, latency_ms, now_ms())
}

async fn keep_from_dead_letter_queue(message: &Message<String>, env: &Env) -> Option<Observation> {
    let Ok(queued) = serde_json::from_str::<QueuedDelivery>(message.body()) else {
        emit(&log::unreadable_queue_message(&message.id()));
        message.ack();
        return None;
    };
    let letter = DeadLetter::from_dead_letter_queue(queued, now_ms());
    emit(&log::dead_lettered(&letter));
    let observation = observe::delivery(
        &letter.delivery,
        DeliveryOutcome::DeadLettered,
        None,
        now_ms(),
    );
    match put_dead_letter(env, letter).await {
        Ok(()) => {
            message.ack();
            observation
        }
        Err(error) => {
            emit(&log::step_not_recorded(&message.id(), &error.to_string()));
            message.retry();
            None
        }
    }
}

pub(super) async fn put_dead_letter(env: &Env, letter: DeadLetter) -> worker::Result<()> {
    let object = dead_letter::object_for(&letter.webhook_id);
    call_object::<_, Deleted>(
        &dead_letter_stub(env, &object)?,
        &DeadLetterCall::Put { letter },
    )
    .await
    .map(|_| ())
}

/// One dead-letter store, by name (see [`sekisho::delivery::dead_letter::all_objects`]).
pub(super) fn dead_letter_stub(env: &Env, object: &str) -> worker::Result<worker::Stub> {
    env.durable_object(DEAD_LETTER_BINDING)?
        .id_from_name(object)?
        .get_stub()
}

/// One attempt: prepared by the core, sent without following redirects, aborted after `timeout_s`.
pub(super) async fn attempt(
    env: &Env,
    delivery: &Delivery,
    bindings: &dyn Bindings,
    timeout_s: u32,
) -> AttemptOutcome {
    // A registry account's backend, signing and notification settings, as configured now.
    let found = match &delivery.origin {
        Some(origin) => {
            crate::registry::lookup(env, bindings, &origin.channel, &origin.account, false).await
        }
        None => Ok(None),
    };
    let found = match found {
        Ok(found) => found,
        Err(rejection) => {
            return AttemptOutcome::NotSent {
                error: rejection.to_string(),
                permanent: false,
            }
        }
    };
    let overlay = found
        .as_ref()
        .map(|found| sekisho::registry::overlay::RegistryOverlay::new(bindings, &found.account));
    let bindings: &dyn Bindings = match &overlay {
        Some(overlay) => overlay,
        None => bindings,
    };
    let outgoing = match forward::outgoing(delivery, bindings, now_ms() / 1000) {
        Ok(outgoing) => outgoing,
        Err(error) => {
            return AttemptOutcome::NotSent {
                error: error.to_string(),
                permanent: error.is_permanent(),
            }
        }
    };
    let headers = match outgoing_headers(&outgoing) {
        Ok(headers) => headers,
        Err(error) => return AttemptOutcome::NetworkError(error.to_string()),
    };
    // `fetch(url, init)` as a plain Worker would call it: no `Request` object built first (fetch would copy
    // it into a second one). `AbortSignal.timeout` is the runtime's own timer: no `AbortController`, no
    // `setTimeout` with a Rust closure to race against. The answer stays the runtime's `Response` (worker's
    // would also wrap its body stream), and its headers are read only when the schedule uses them.
    let init = super::post_init(&headers, &outgoing.body, web_sys::RequestRedirect::Manual);
    init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(
        timeout_s.saturating_mul(1000),
    )));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let sent =
        wasm_bindgen_futures::JsFuture::from(global.fetch_with_str_and_init(&outgoing.url, &init))
            .await;
    match sent {
        Ok(response) => {
            let response: web_sys::Response = response.unchecked_into();
            let status = response.status();
            let headers = ResponseHeaders::needed_for(status).then(|| response.headers());
            let read = |name: &str| headers.as_ref().and_then(|h| h.get(name).ok().flatten());
            let (retry_after, ratelimit_reset, location) = (
                read("retry-after"),
                read("x-ratelimit-reset"),
                read("location"),
            );
            AttemptOutcome::answered(
                status,
                ResponseHeaders {
                    retry_after: retry_after.as_deref(),
                    ratelimit_reset: ratelimit_reset.as_deref(),
                    location: location.as_deref(),
                },
                now_ms() / 1000,
            )
        }
        Err(error) if is_timeout(&error) => AttemptOutcome::TimedOut { after_s: timeout_s },
        Err(error) => AttemptOutcome::NetworkError(worker::Error::from(error).to_string()),
    }
}

/// The rejection of a fetch whose `AbortSignal.timeout` fired: a `DOMException` named `TimeoutError`.
fn is_timeout(error: &wasm_bindgen::JsValue) -> bool {
    js_sys::Reflect::get(error, &wasm_bindgen::JsValue::from_str("name"))
        .ok()
        .and_then(|name| name.as_string())
        .is_some_and(|name| name == "TimeoutError")
}

fn outgoing_headers(outgoing: &forward::Outgoing) -> worker::Result<Headers> {
    let headers = Headers::new();
    for (name, value) in &outgoing.headers {
        headers.set(name, value)?;
    }
    Ok(headers)
}

pub(super) fn build_request(outgoing: &forward::Outgoing) -> worker::Result<Request> {
    super::post_request(
        &outgoing.url,
        &outgoing_headers(outgoing)?,
        &outgoing.body,
        web_sys::RequestRedirect::Manual,
    )
}

/// Without a queue: one attempt per event after the response; failures are logged with the event id.
pub(super) async fn forward_best_effort(deliveries: Vec<Delivery>, env: Env) {
    let bindings = EnvBindings::of(&env);
    let timeout_s = RetryPolicy::from_bindings(&bindings).attempt_timeout_s;
    for delivery in deliveries {
        let outcome = attempt(&env, &delivery, &bindings, timeout_s).await;
        let failure = match &outcome {
            AttemptOutcome::Status { status, .. }
                if classify(*status) == StatusClass::Delivered =>
            {
                continue
            }
            AttemptOutcome::Status { status, .. } => outcome
                .error()
                .unwrap_or_else(|| format!("destination answered {status}")),
            _ => outcome.error().unwrap_or_default(),
        };
        emit(&log::forward_failed(
            &delivery.webhook_id,
            &delivery.event_type,
            &failure,
        ));
    }
}
