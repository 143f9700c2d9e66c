//! The Cloudflare Workers layer: converts requests and responses, reads bindings, and moves events through
//! the queue. Every decision (routing, verification, retry schedule, admin authorization) is made by the pure
//! core; this module only does the IO.

mod durable;

use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue};
use worker::{
    console_error, console_log, console_warn, event, Context, Date, Env, Fetch, Headers,
    MessageBatch, MessageBuilder, MessageExt, Method, ObjectNamespace, Queue, Request, RequestInit,
    Response,
};

use crate::admin::{self, AdminAction};
use crate::channels::EdgeResponse;
use crate::config::Bindings;
use crate::delivery::{decide, AttemptOutcome, DeadLetter, Next, QueuedDelivery, RetryPolicy};
use crate::forward::{Delivery, SigningKeys};
use crate::gateway::{self, Inbound, Refusal};
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
    if accepted.deliveries.is_empty() {
        return to_response(&accepted.response);
    }
    let source = format!(
        "/{}/{}",
        accepted.channel.unwrap_or_default(),
        accepted.account.as_deref().unwrap_or_default()
    );
    match env.queue(QUEUE_BINDING) {
        Ok(queue) => match enqueue(&env, &queue, &source, &accepted.deliveries).await {
            Ok(duplicates) => {
                console_log!(
                    "{}",
                    with_field(accepted.log_line(), "duplicates", duplicates.into())
                );
                to_response(&accepted.response)
            }
            Err(error) => {
                console_error!(
                    "{}",
                    serde_json::json!({"level": "error", "msg": "enqueue failed", "source": source, "error": error.to_string()})
                );
                respond_refused(&Refusal {
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
            console_log!("{}", accepted.log_line());
            // `plan` already refused the request if the signing secret were missing or invalid.
            if let Ok(keys) = SigningKeys::from_bindings(&bindings) {
                ctx.wait_until(forward_best_effort(accepted.deliveries, keys));
            }
            to_response(&accepted.response)
        }
    }
}

fn with_field(line: String, name: &str, value: serde_json::Value) -> String {
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert(name.to_owned(), value);
            serde_json::Value::Object(map).to_string()
        }
        _ => line,
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
            messages.push(
                MessageBuilder::new(serde_json::to_string(&QueuedDelivery::first(
                    delivery.clone(),
                ))?)
                .build(),
            );
            claimed.push(delivery.webhook_id.clone());
        }
    }
    let duplicates = deliveries.len() - messages.len();
    if messages.is_empty() {
        return Ok(duplicates);
    }
    if let Err(error) = queue.send_batch(messages).await {
        if let Some(namespace) = &dedup {
            let _ = dedup_call(namespace, source, claimed, true).await;
        }
        return Err(error);
    }
    Ok(duplicates)
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
    let keys = match SigningKeys::from_bindings(&bindings) {
        Ok(keys) => keys,
        Err(rejection) => {
            // Nothing can be signed until an admin fixes the binding: keep every message, try again later.
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "cannot sign deliveries", "detail": rejection.to_string()})
            );
            batch.retry_all();
            return Ok(());
        }
    };
    for message in batch.messages()? {
        let Ok(mut queued) = serde_json::from_str::<QueuedDelivery>(message.body()) else {
            console_error!(
                "{}",
                serde_json::json!({"level": "error", "msg": "unreadable queue message dropped", "queue_message_id": message.id()})
            );
            message.ack();
            continue;
        };
        let outcome = attempt(&queued.delivery, &keys).await;
        queued.attempts += 1;
        match &outcome {
            AttemptOutcome::Status { status, .. } => {
                queued.last_status = Some(*status);
                queued.last_error = None;
            }
            AttemptOutcome::NetworkError(error) => queued.last_error = Some(error.clone()),
        }
        let next = decide(&policy, queued.attempts, &outcome, js_sys::Math::random());
        let kept = match next {
            Next::Delivered => Ok(()),
            Next::Retry { delay_s } => {
                log_attempt(&queued, &format!("retry in {delay_s} s"));
                match serde_json::to_string(&queued) {
                    Ok(body) => {
                        queue
                            .send(MessageBuilder::new(body).delay_seconds(delay_s).build())
                            .await
                    }
                    Err(error) => Err(error.into()),
                }
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

async fn attempt(delivery: &Delivery, keys: &SigningKeys) -> AttemptOutcome {
    match send_signed(delivery, keys).await {
        Ok(response) => AttemptOutcome::Status {
            status: response.status_code(),
            retry_after: response.headers().get("retry-after").ok().flatten(),
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
        let body = serde_json::to_string(&QueuedDelivery::first(letter.delivery.clone()))?;
        if queue.send(MessageBuilder::new(body).build()).await.is_ok() {
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

async fn forward_best_effort(deliveries: Vec<Delivery>, keys: SigningKeys) {
    for delivery in deliveries {
        let failure = match send_signed(&delivery, &keys).await {
            Ok(response) if (200..300).contains(&response.status_code()) => continue,
            Ok(response) => format!("backend answered {}", response.status_code()),
            Err(error) => error.to_string(),
        };
        console_error!(
            "{}",
            serde_json::json!({"level": "error", "msg": "forward failed", "event_id": delivery.webhook_id, "event_type": delivery.event_type, "error": failure})
        );
    }
}

async fn send_signed(delivery: &Delivery, keys: &SigningKeys) -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in keys.headers(delivery, now_ms() / 1000) {
        headers.set(name, &value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(delivery.body.clone().into()));
    Fetch::Request(Request::new_with_init(&delivery.url, &init)?)
        .send()
        .await
}
