//! One attempt of a queued send, in the `EVENTS` consumer: the account's credentials as configured now (the
//! registry through the same seam), its provider token from the account's [`ProviderTokens`] object, the
//! provider call (no redirects, aborted after the attempt timeout), and the step the delivery policy takes.
//! Once the send is decided its outcome event is queued for the backend like any event.
//!
//! [`ProviderTokens`]: super::tokens::ProviderTokens

use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;
use worker::{Env, Message, MessageExt, Queue};

use super::consumer::put_dead_letter;
use super::{call_object, emit, now_ms, queue_message, registry, EnvBindings};
use sekisho::config::{Account, Bindings};
use sekisho::delivery::{record_attempt, DeadLetter, QueuedDelivery, RetryPolicy, Step};
use sekisho::forward::Target;
use sekisho::log;
use sekisho::registry::overlay::RegistryOverlay;
use sekisho::send::outcome::{self, SendResult};
use sekisho::send::tokens::{self, TokenCall, TokenKind, TokenReply};
use sekisho::send::{sender, Failure, ProviderAnswer, ProviderRequest, SendJob, SendOutcome};

pub(crate) const TOKENS_BINDING: &str = "PROVIDER_TOKENS";

/// A provider's answer as read from the runtime.
#[derive(Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    retry_after: Option<String>,
    ratelimit_reset: Option<String>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    fn view(&self) -> ProviderAnswer<'_> {
        ProviderAnswer {
            status: self.status,
            retry_after: self.retry_after.as_deref(),
            ratelimit_reset: self.ratelimit_reset.as_deref(),
            body: &self.body,
            now_s: now_ms() / 1000,
        }
    }
}

/// One request to a provider, without following redirects, aborted after `timeout_s`. The error is a
/// [`Failure`] (`timeout` or `network`) that names no credential.
pub(crate) async fn provider_fetch(
    request: &ProviderRequest,
    timeout_s: u32,
) -> Result<Answer, Failure> {
    let headers = web_sys::Headers::new().map_err(|_| Failure::new("network", "no Headers"))?;
    for (name, value) in &request.headers {
        headers
            .set(name, value)
            .map_err(|_| Failure::new("network", format!("header `{name}` cannot be sent")))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(&request.method);
    init.set_headers(headers.as_ref());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(body) = &request.body {
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(
        timeout_s.saturating_mul(1000),
    )));
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let sent =
        wasm_bindgen_futures::JsFuture::from(global.fetch_with_str_and_init(&request.url, &init))
            .await;
    let response: web_sys::Response = match sent {
        Ok(response) => response.unchecked_into(),
        Err(error) => {
            let name = js_sys::Reflect::get(&error, &"name".into())
                .ok()
                .and_then(|name| name.as_string());
            return Err(if name.as_deref() == Some("TimeoutError") {
                Failure::new(
                    "timeout",
                    format!(
                        "no answer from {} within {timeout_s} s",
                        request.redacted_url()
                    ),
                )
            } else {
                Failure::new(
                    "network",
                    format!("{} could not be reached", request.redacted_url()),
                )
            });
        }
    };
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let (retry_after, ratelimit_reset) = (header("retry-after"), header("x-ratelimit-reset"));
    let body = match response.array_buffer() {
        Ok(promise) => wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .map(|buffer| js_sys::Uint8Array::new(&buffer).to_vec())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    Ok(Answer {
        status: response.status(),
        retry_after,
        ratelimit_reset,
        body,
    })
}

/// The token of `kind` for the account, from its object (`rejected`: the token the provider just refused).
async fn token(
    env: &Env,
    kind: TokenKind,
    account: &Account<'_>,
    rejected: Option<String>,
) -> Result<String, Failure> {
    let grant = tokens::grant(kind, account)
        .map_err(|error| Failure::new(error.reason(), error.to_string()))?;
    let no_store = |_| Failure::new("no_token_store", format!("no {TOKENS_BINDING} binding"));
    let namespace = env.durable_object(TOKENS_BINDING).map_err(no_store)?;
    let stub = namespace
        .id_from_name(&tokens::object_name(account.channel, account.name))
        .and_then(|id| id.get_stub())
        .map_err(no_store)?;
    let call = TokenCall {
        kind,
        grant,
        rejected,
        now_ms: now_ms(),
    };
    match call_object::<_, TokenReply>(&stub, &call).await {
        Ok(TokenReply::Token { token }) => Ok(token),
        Ok(TokenReply::Failed { failure }) => Err(failure),
        Err(error) => Err(Failure::new("token_store", error.to_string())),
    }
}

/// One attempt: what the provider said (or why nothing was sent), and its answer.
async fn attempt(
    env: &Env,
    job: &SendJob,
    payload: &str,
    account: &Account<'_>,
    timeout_s: u32,
) -> (SendOutcome, u16, Option<Answer>) {
    let Some(sender) = sender(account.channel) else {
        return (
            SendOutcome::Permanent(Failure::new("no_send_api", "")),
            0,
            None,
        );
    };
    let mut rejected = None;
    let mut job = job.clone();
    let mut readdressed = false;
    loop {
        let token = match sender.token() {
            Some(kind) => match token(env, kind, account, rejected.clone()).await {
                Ok(token) => Some(token),
                Err(failure) => return (SendOutcome::Temporary(failure), 0, None),
            },
            None => None,
        };
        // Credentials removed since the send was accepted: retried, so restoring them is enough.
        let request = match sender.request(&job, payload, account, token.as_deref()) {
            Ok(request) => request,
            Err(error) => {
                return (
                    SendOutcome::Temporary(Failure::new(error.reason(), error.to_string())),
                    0,
                    None,
                )
            }
        };
        let answer = match provider_fetch(&request, timeout_s).await {
            Ok(answer) => answer,
            Err(failure) => return (SendOutcome::Temporary(failure), 0, None),
        };
        let outcome = sender.classify(&answer.view());
        // Addressed through another endpoint (a LINE WORKS 1:1 talk): sent there, once.
        if let Some(to) = sender
            .readdress(&job, answer.status)
            .filter(|_| !readdressed)
        {
            job.to = to;
            readdressed = true;
            continue;
        }
        // The provider refused the token: dropped and fetched again, once.
        if matches!(outcome, SendOutcome::TokenRejected(_)) && rejected.is_none() && token.is_some()
        {
            rejected = token;
            continue;
        }
        return (outcome, answer.status, Some(answer));
    }
}

/// One attempt with the account as the registry (`found`) or the environment configures it.
#[allow(clippy::too_many_arguments)]
async fn attempt_with(
    env: &Env,
    bindings: &EnvBindings,
    found: Option<&registry::Found>,
    channel: &'static str,
    name: &str,
    job: &SendJob,
    payload: &str,
    timeout_s: u32,
) -> (SendOutcome, u16, Option<Answer>) {
    let overlay = found.map(|found| RegistryOverlay::new(bindings, &found.account));
    let account_bindings: &dyn Bindings = match &overlay {
        Some(overlay) => overlay,
        None => bindings,
    };
    let account = Account::new(channel, name, account_bindings);
    attempt(env, job, payload, &account, timeout_s).await
}

/// A queued send: attempt, next step, and the outcome event once decided. Acks or retries the message.
pub(crate) async fn deliver(
    message: &Message<String>,
    queued: QueuedDelivery,
    env: &Env,
    queue: &Queue,
    policy: &RetryPolicy,
) {
    let (Target::Send(job), Some(origin)) = (&queued.delivery.target, &queued.delivery.origin)
    else {
        message.ack();
        return;
    };
    let (job, origin) = (job.clone(), origin.clone());
    let bindings = EnvBindings::of(env);
    let mut found = registry::lookup(env, &bindings, &origin.channel, &origin.account, false)
        .await
        .ok()
        .flatten();
    let channel = sekisho::channels::find(&origin.channel).map_or("", |c| c.name());
    let attempt_as = |found| {
        attempt_with(
            env,
            &bindings,
            found,
            channel,
            &origin.account,
            &job,
            &queued.delivery.body,
            policy.attempt_timeout_s,
        )
    };
    let (mut outcome, mut status, mut answer) = attempt_as(found.as_ref()).await;
    // The credential was refused and the account came from this isolate's cache: read it again (its value may
    // have been replaced in the registry since) and try once more with it.
    if found.as_ref().is_some_and(|found| found.cached)
        && outcome.credential_refused(status)
        && registry::may_refresh(&origin.channel, &origin.account)
    {
        if let Ok(Some(fresh)) =
            registry::lookup(env, &bindings, &origin.channel, &origin.account, true).await
        {
            (outcome, status, answer) = attempt_as(Some(&fresh)).await;
            found = Some(fresh);
        }
    }
    let overlay = found
        .as_ref()
        .map(|found| RegistryOverlay::new(&bindings, &found.account));
    let account_bindings: &dyn Bindings = match &overlay {
        Some(overlay) => overlay,
        None => &bindings,
    };
    let attempt_outcome = outcome::attempt_outcome(&outcome, status);
    let message_id = match &outcome {
        SendOutcome::Sent { message_id } => message_id.clone(),
        _ => None,
    };
    let failure = outcome::failure_of(&outcome, &attempt_outcome);
    let (first_attempt, sent) = (queued.attempts == 0, queued.delivery.clone());
    let step = record_attempt(
        queued,
        &attempt_outcome,
        policy,
        now_ms(),
        js_sys::Math::random(),
    );
    let result = SendResult::of_step(&step, message_id, failure);
    let observed = sekisho::metrics::observe::send(&sent, &step, first_attempt, now_ms());
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
    if let Some(result) = &result {
        emit(&log::send_decided(
            &job.send_id,
            &origin.channel,
            &origin.account,
            result,
        ));
        let event = outcome::event(
            &job,
            &origin.channel,
            &origin.account,
            result,
            answer.as_ref().map(|a| a.body.as_slice()),
            now_ms(),
        );
        let delivery = outcome::delivery(&event, account_bindings);
        let first = QueuedDelivery::first(delivery);
        // The send is done: its outcome must not be lost, nor the send repeated for it. Queued, else kept as a
        // dead letter (replayable from the console).
        if let Err(error) = queue.send(queue_message(first.to_message(), None)).await {
            emit(&log::step_not_recorded(&event.id, &error.to_string()));
            let _ = put_dead_letter(env, DeadLetter::from_queued(first, now_ms())).await;
        }
    }
    match recorded {
        Ok(()) => message.ack(),
        Err(error) => {
            emit(&log::step_not_recorded(&job.send_id, &error.to_string()));
            message.retry();
            return;
        }
    }
    super::metrics::observe_send(env, observed).await;
}
