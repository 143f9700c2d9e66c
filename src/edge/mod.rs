//! The Cloudflare Workers layer: converts requests and responses, reads bindings, and moves events through
//! the queue. Every decision (routing, verification, retry schedule, admin authorization) is made by the pure
//! core; this module only does the IO.

mod durable;

use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};
use wasm_bindgen::JsCast;
use worker::{
    console_error, console_log, console_warn, event, Context, Date, Env, Fetch,
    ForwardableEmailMessage, Headers, MessageBatch, MessageBuilder, MessageExt, Method,
    ObjectNamespace, Queue, QueueContentType, Request, RequestInit, Response, SendMessage,
};

use crate::admin::{self, AdminAction};
use crate::channels::email;
use crate::channels::EdgeResponse;
use crate::config::Bindings;
use crate::delivery::{
    batches, decide, requested_wait, AttemptOutcome, DeadLetter, Next, QueuedDelivery, RetryPolicy,
};
use crate::forward::{self, Delivery};
use crate::gateway::{self, Accepted, Inbound, Refusal};
use crate::Rejection;
use durable::{DeadLetterRequest, DedupAnswer, DedupRequest};

const QUEUE_BINDING: &str = "EVENTS";
const DEDUP_BINDING: &str = "DEDUP";
const DEAD_LETTER_BINDING: &str = "DEAD_LETTERS";

pub(crate) struct EnvBindings<'a>(pub(crate) &'a Env);

impl Bindings for EnvBindings<'_> {
    fn get(&self, name: &str) -> Option<String> {
        // `var` reads both [vars] and secrets (both are plain strings to the Worker).
        self.0.var(name).ok().map(|value| value.to_string())
    }

    fn names(&self) -> Vec<String> {
        js_sys::Object::keys(self.0.unchecked_ref::<js_sys::Object>())
            .iter()
            .filter_map(|key| key.as_string())
            .collect()
    }
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

static MODE_LOGGED: AtomicBool = AtomicBool::new(false);

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let bindings = EnvBindings(&env);
    let declared_length = req.headers().get("content-length").ok().flatten();
    if let Err(rejection) = gateway::check_declared_length(declared_length.as_deref(), &bindings) {
        return respond_refused(&Refusal {
            rejection,
            channel: None,
            account: None,
        });
    }
    let url = req.url()?;
    let method =
        http::Method::from_bytes(req.method().to_string().as_bytes()).unwrap_or(http::Method::GET);
    let headers = header_map(req.headers());
    if let Some(action) = admin::route(&method, url.path()) {
        let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
        return match action
            .and_then(|action| admin::authorize(authorization, &bindings).map(|()| action))
        {
            Ok(action) => run_admin(action, &env).await,
            Err(rejection) => respond_refused(&Refusal {
                rejection,
                channel: None,
                account: None,
            }),
        };
    }
    let body = match req.method() {
        Method::Get | Method::Head => Vec::new(),
        _ => req.bytes().await.unwrap_or_default(),
    };
    let inbound = Inbound {
        method: &method,
        path: url.path(),
        query: url.query(),
        headers: &headers,
        body: &body,
    };
    let accepted = match gateway::handle(&inbound, &bindings, now_ms()) {
        Ok(accepted) => accepted,
        Err(refusal) => return respond_refused(&refusal),
    };
    match dispatch(&env, &ctx, &accepted).await {
        Ok(()) => to_response(&accepted.response),
        Err(refusal) => respond_refused(&refusal),
    }
}

/// Moves accepted events onward: through the queue (claiming their ids for de-duplication first), or, with
/// no queue bound, best-effort after the response. Refuses when the queue would not take them, so the
/// sender retries.
async fn dispatch(env: &Env, ctx: &Context, accepted: &Accepted) -> Result<(), Refusal> {
    if accepted.deliveries.is_empty() {
        return Ok(());
    }
    let source = format!(
        "/{}/{}",
        accepted.channel.unwrap_or_default(),
        accepted.account.as_deref().unwrap_or_default()
    );
    match env.queue(QUEUE_BINDING) {
        Ok(queue) => match enqueue(env, &queue, &source, &accepted.deliveries).await {
            Ok(duplicates) => {
                log_accepted(accepted, Some(duplicates));
                Ok(())
            }
            Err(error) => {
                console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "msg": "enqueue failed", "source": source, "error": error.to_string()})
                );
                Err(Refusal {
                    rejection: Rejection::EnqueueFailed,
                    channel: accepted.channel,
                    account: accepted.account.clone(),
                })
            }
        },
        Err(_) => {
            if !MODE_LOGGED.swap(true, Ordering::Relaxed) {
                console_warn!(
                    "{}",
                    serde_json::json!({"level": "warn", "msg": "no EVENTS queue binding: best-effort mode, events are forwarded once after the response and lost if the backend is down"})
                );
            }
            log_accepted(accepted, None);
            ctx.wait_until(forward_best_effort(
                accepted.deliveries.clone(),
                env.clone(),
            ));
            Ok(())
        }
    }
}

/// Cloudflare Email Routing → `email` handler. Written by hand rather than with `#[event(email)]`, whose glue
/// panics when the handler returns an error: a panic would reset the Wasm instance and fail other requests in
/// flight. Here a temporary failure (queue down, configuration missing) throws a JavaScript error, which Email
/// Routing answers with a temporary SMTP failure so the sending server retries; a permanent one (unknown
/// recipient, too large) is refused with `setReject`, which bounces with the reason.
#[wasm_bindgen::prelude::wasm_bindgen]
pub async fn email(
    message: ForwardableEmailMessage,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    let ctx = Context::new(ctx);
    let bindings = EnvBindings(&env);
    let envelope_to = message.to();
    let envelope_from = message.from();
    // Refuse on the announced size and the recipient before reading the stream.
    let account = match email::admit(&envelope_to, message.raw_size() as u64, &bindings) {
        Ok(account) => account,
        Err(rejection) => {
            return answer_email(
                &message,
                &Refusal {
                    rejection,
                    channel: Some(email::CHANNEL),
                    account: None,
                },
            )
            .await
        }
    };
    let raw = match message.raw_bytes().await {
        Ok(raw) => raw,
        Err(error) => {
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "could not read the e-mail stream", "channel": email::CHANNEL, "error": error.to_string()})
            );
            return Err(js_sys::Error::new("temporary failure: could not read the message").into());
        }
    };
    let inbound = email::InboundEmail {
        envelope_from: &envelope_from,
        envelope_to: &envelope_to,
        raw: &raw,
    };
    let accepted = match email::accept(&inbound, &account, &bindings, now_ms()) {
        Ok(accepted) => accepted,
        Err(refusal) => return answer_email(&message, &refusal).await,
    };
    match dispatch(&env, &ctx, &accepted).await {
        Ok(()) => Ok(wasm_bindgen::JsValue::UNDEFINED),
        Err(refusal) => answer_email(&message, &refusal).await,
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The message as seen for `setReject`, keeping what it returns: nothing in production, but a promise when
    /// workerd's local e-mail endpoint (`wrangler dev`) hands the message over RPC, where the rejection only
    /// counts once it settles.
    type RejectableEmail;
    #[wasm_bindgen(method, js_name = "setReject")]
    fn set_reject(this: &RejectableEmail, reason: &str) -> wasm_bindgen::JsValue;
}

async fn answer_email(
    message: &ForwardableEmailMessage,
    refusal: &Refusal,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    if refusal.rejection.status().is_server_error() {
        console_error!("{}", refusal.log_line());
        let reason = format!("temporary failure: {}", refusal.rejection.reason());
        return Err(js_sys::Error::new(&reason).into());
    }
    console_warn!("{}", refusal.log_line());
    let returned = message
        .unchecked_ref::<RejectableEmail>()
        .set_reject(&format!(
            "{}: {}",
            refusal.rejection.reason(),
            refusal.rejection
        ));
    wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&returned))
        .await
        .map(|_| wasm_bindgen::JsValue::UNDEFINED)
}

fn log_accepted(accepted: &Accepted, duplicates: Option<usize>) {
    if accepted.warnings.is_empty() {
        console_log!("{}", accepted.log_line(duplicates));
    } else {
        console_warn!("{}", accepted.log_line(duplicates));
    }
}

/// Claims the event ids in the account's de-duplication object, then enqueues the fresh ones. Returns how
/// many were duplicates. If enqueueing fails the claims are released, so the provider's retry is not taken
/// for a duplicate.
async fn enqueue(
    env: &Env,
    queue: &Queue,
    source: &str,
    deliveries: &[Delivery],
) -> worker::Result<usize> {
    let dedup = env.durable_object(DEDUP_BINDING).ok();
    let ids: Vec<String> = deliveries.iter().map(|d| d.webhook_id.clone()).collect();
    let fresh = match &dedup {
        Some(namespace) => dedup_call(namespace, source, ids.clone(), false).await?,
        None => vec![true; ids.len()],
    };
    let mut messages = Vec::new();
    let mut claimed = Vec::new();
    for (delivery, is_fresh) in deliveries
        .iter()
        .zip(fresh.iter().chain(std::iter::repeat(&true)))
    {
        if *is_fresh {
            messages.push(QueuedDelivery::first(delivery.clone()).to_message());
            claimed.push(delivery.webhook_id.clone());
        }
    }
    let duplicates = deliveries.len() - messages.len();
    for batch in batches(messages) {
        let batch = batch
            .into_iter()
            .map(|body| queue_message(body, None))
            .collect::<Vec<_>>();
        if let Err(error) = queue.send_batch(batch).await {
            // Release every claim: the provider's retry must not be taken for a duplicate. Batches already
            // sent are then sent again; the backend de-duplicates on webhook-id.
            if let Some(namespace) = &dedup {
                let _ = dedup_call(namespace, source, claimed, true).await;
            }
            return Err(error);
        }
    }
    Ok(duplicates)
}

/// Queue messages go as text: with the default JSON content type the already-JSON body would be escaped a
/// second time and outgrow the size the planner measured.
fn queue_message(body: String, delay_s: Option<u32>) -> SendMessage<String> {
    let builder = MessageBuilder::new(body).content_type(QueueContentType::Text);
    match delay_s {
        Some(delay_s) => builder.delay_seconds(delay_s).build(),
        None => builder.build(),
    }
}

async fn dedup_call(
    namespace: &ObjectNamespace,
    source: &str,
    ids: Vec<String>,
    release: bool,
) -> worker::Result<Vec<bool>> {
    let stub = namespace.id_from_name(source)?.get_stub()?;
    let request = json_request(&DedupRequest {
        release,
        ids,
        now_ms: now_ms(),
    })?;
    let answer: DedupAnswer = stub.fetch_with_request(request).await?.json().await?;
    Ok(answer.fresh)
}

fn json_request<T: serde::Serialize>(body: &T) -> worker::Result<Request> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(serde_json::to_string(body)?.into()));
    Request::new_with_init("https://sekisho.internal/", &init)
}

async fn dead_letters(env: &Env, request: &DeadLetterRequest) -> worker::Result<Vec<DeadLetter>> {
    let stub = env
        .durable_object(DEAD_LETTER_BINDING)?
        .id_from_name("dead-letters")?
        .get_stub()?;
    stub.fetch_with_request(json_request(request)?)
        .await?
        .json()
        .await
}

#[event(queue)]
async fn consume(batch: MessageBatch<String>, env: Env, _ctx: Context) -> worker::Result<()> {
    let bindings = EnvBindings(&env);
    let policy = RetryPolicy::from_bindings(&bindings);
    let queue = env.queue(QUEUE_BINDING)?;
    for message in batch.messages()? {
        let Ok(mut queued) = serde_json::from_str::<QueuedDelivery>(message.body()) else {
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "unreadable queue message dropped", "queue_message_id": message.id()})
            );
            message.ack();
            continue;
        };
        let outcome = attempt(&queued.delivery, &bindings).await;
        queued.attempts += 1;
        match &outcome {
            AttemptOutcome::Status { status, .. } => {
                queued.last_status = Some(*status);
                queued.last_error = None;
            }
            AttemptOutcome::NetworkError(error) | AttemptOutcome::NotSent { error, .. } => {
                queued.set_last_error(error)
            }
        }
        let next = decide(&policy, queued.attempts, &outcome, js_sys::Math::random());
        let kept = match next {
            Next::Delivered => Ok(()),
            Next::Retry { delay_s } => {
                log_attempt(&queued, &format!("retry in {delay_s} s"));
                queue
                    .send(queue_message(queued.to_message(), Some(delay_s)))
                    .await
            }
            Next::DeadLetter => {
                log_attempt(&queued, "dead-lettered");
                let letter = DeadLetter {
                    webhook_id: queued.delivery.webhook_id.clone(),
                    delivery: queued.delivery.clone(),
                    attempts: queued.attempts,
                    last_status: queued.last_status,
                    last_error: queued.last_error.clone(),
                    dead_at_ms: now_ms(),
                };
                dead_letters(&env, &DeadLetterRequest::Put(letter))
                    .await
                    .map(|_| ())
            }
        };
        match kept {
            Ok(()) => message.ack(),
            Err(error) => {
                // The next step could not be recorded: let the queue hand this message back as it is.
                console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "msg": "could not requeue or dead-letter; the queue will retry", "event_id": queued.delivery.webhook_id, "error": error.to_string()})
                );
                message.retry();
            }
        }
    }
    Ok(())
}

fn log_attempt(queued: &QueuedDelivery, next: &str) {
    console_warn!(
        "{}",
        serde_json::json!({
            "level": "warn",
            "msg": "delivery attempt failed",
            "event_id": queued.delivery.webhook_id,
            "event_type": queued.delivery.event_type,
            "attempts": queued.attempts,
            "status": queued.last_status,
            "error": queued.last_error,
            "next": next,
        })
    );
}

async fn attempt(delivery: &Delivery, bindings: &dyn Bindings) -> AttemptOutcome {
    let outgoing = match forward::outgoing(delivery, bindings, now_ms() / 1000) {
        Ok(outgoing) => outgoing,
        Err(error) => {
            return AttemptOutcome::NotSent {
                error: error.to_string(),
                permanent: error.is_permanent(),
            }
        }
    };
    match send(&outgoing).await {
        Ok(response) => AttemptOutcome::Status {
            status: response.status_code(),
            retry_after: requested_wait(
                response
                    .headers()
                    .get("retry-after")
                    .ok()
                    .flatten()
                    .as_deref(),
                response
                    .headers()
                    .get("x-ratelimit-reset")
                    .ok()
                    .flatten()
                    .as_deref(),
                now_ms() / 1000,
            ),
        },
        Err(error) => AttemptOutcome::NetworkError(error.to_string()),
    }
}

async fn run_admin(action: AdminAction, env: &Env) -> worker::Result<Response> {
    let result = match action {
        AdminAction::ListDeadLetters => dead_letters(env, &DeadLetterRequest::List)
            .await
            .map(|letters| serde_json::json!({ "dead_letters": letters })),
        AdminAction::ReplayAll => replay(env, None).await,
        AdminAction::ReplayOne(id) => replay(env, Some(id)).await,
    };
    match result {
        Ok(body) => to_response(&EdgeResponse::json(200, body.to_string())),
        Err(error) => {
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "admin action failed", "error": error.to_string()})
            );
            to_response(&EdgeResponse::json(
                503,
                "{\"error\":\"unavailable\"}".to_owned(),
            ))
        }
    }
}

/// Moves dead letters back into the queue as fresh deliveries; any that cannot be enqueued are put back.
async fn replay(env: &Env, id: Option<String>) -> worker::Result<serde_json::Value> {
    let queue = env.queue(QUEUE_BINDING)?;
    let letters = dead_letters(env, &DeadLetterRequest::Take(id)).await?;
    let mut replayed = 0usize;
    for letter in letters {
        let body = QueuedDelivery::first(letter.delivery.clone()).to_message();
        if queue.send(queue_message(body, None)).await.is_ok() {
            replayed += 1;
        } else {
            dead_letters(env, &DeadLetterRequest::Put(letter)).await?;
        }
    }
    Ok(serde_json::json!({ "replayed": replayed }))
}

fn respond_refused(refusal: &Refusal) -> worker::Result<Response> {
    if refusal.rejection.status().is_server_error() {
        console_error!("{}", refusal.log_line());
    } else {
        console_warn!("{}", refusal.log_line());
    }
    to_response(&refusal.response())
}

fn header_map(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.entries() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}

fn to_response(edge: &EdgeResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", edge.content_type)?;
    Ok(Response::from_bytes(edge.body.clone())?
        .with_status(edge.status)
        .with_headers(headers))
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

async fn forward_best_effort(deliveries: Vec<Delivery>, env: Env) {
    let bindings = EnvBindings(&env);
    for delivery in deliveries {
        let failure = match attempt(&delivery, &bindings).await {
            AttemptOutcome::Status { status, .. } if (200..300).contains(&status) => continue,
            AttemptOutcome::Status { status, .. } => format!("destination answered {status}"),
            AttemptOutcome::NetworkError(error) | AttemptOutcome::NotSent { error, .. } => error,
        };
        console_error!(
            "{}",
            serde_json::json!({"level": "error", "msg": "forward failed", "event_id": delivery.webhook_id, "event_type": delivery.event_type, "error": failure})
        );
    }
}

async fn send(outgoing: &forward::Outgoing) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in &outgoing.headers {
        headers.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(outgoing.body.clone().into()));
    Fetch::Request(Request::new_with_init(&outgoing.url, &init)?)
        .send()
        .await
}
