//! Recording for the admin console, off the provider's hot path: a request or queue batch folds its
//! observations into the isolate's pending batch ([`sekisho::metrics::flush::Pending`]); a request that finds
//! no flush scheduled runs the next one in its background (`wait_until`), a queue batch flushes at once
//! (never waiting) unless a request's flush is on its way, at most once per flush interval, one call per `Metrics` shard with something to write. No request makes a call of its own. Without a `METRICS` binding
//! nothing is recorded (and the console shows no traffic). Also the admin API's metrics views, read across
//! the shards, and the alerts a flushed batch raises.

mod counters;
mod rejections;
mod store;

use std::cell::RefCell;

use futures_util::future::join_all;
use worker::{Context, Env, Headers, Response};

use super::{call_object, emit, now_ms, respond_refused, to_response, EnvBindings};
use sekisho::admin::AdminAction;
use sekisho::channels::EdgeResponse;
use sekisho::config::Bindings;
use sekisho::delivery::policy::{classify, StatusClass};
use sekisho::gateway::{Accepted, Refusal};
use sekisho::log;
use sekisho::metrics::alert::{self, Alert};
use sekisho::metrics::flush::{self, Pending};
use sekisho::metrics::observe::{self, AcceptedRequest};
use sekisho::metrics::store::{Loaded, MetricsCall, RecentRejections, Recorded};
use sekisho::metrics::{view, Observation, Writes, METRICS_BINDING, REJECTION_RING};
use sekisho::registry::overlay::RegistryOverlay;

thread_local! {
    /// What this isolate observed and has not flushed yet.
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// One request's recording: the time it started, and where to record when it is answered.
pub(super) struct RequestMetrics<'a> {
    env: &'a Env,
    ctx: &'a Context,
    started_ms: u64,
}

impl<'a> RequestMetrics<'a> {
    pub(super) fn start(env: &'a Env, ctx: &'a Context) -> Self {
        RequestMetrics {
            env,
            ctx,
            started_ms: now_ms(),
        }
    }

    /// Answers the refusal, then records it (for a configured account only).
    pub(super) fn refused(&self, refusal: &Refusal) -> worker::Result<Response> {
        let response = respond_refused(refusal);
        self.observe_refusal(refusal);
        response
    }

    /// Records a refusal answered elsewhere (an e-mail's bounce or temporary failure).
    pub(super) fn observe_refusal(&self, refusal: &Refusal) {
        if refusal.channel.is_none() || refusal.account.is_none() {
            return;
        }
        let now = now_ms();
        let ack_ms = now.saturating_sub(self.started_ms);
        let refusal = Refusal {
            rejection: refusal.rejection.clone(),
            channel: refusal.channel,
            account: refusal.account.clone(),
        };
        let account = refusal.channel.zip(refusal.account.clone());
        // Whether the account is configured is looked up after the answer, too.
        self.schedule(account, move |bindings| {
            observe::rejected(&refusal, ack_ms, now, bindings)
                .into_iter()
                .collect()
        });
    }

    /// Records an accepted request: `duplicate_events` of its events were already seen.
    pub(super) fn accepted(&self, accepted: &Accepted, duplicate_events: usize) {
        let now = now_ms();
        let ack_ms = now.saturating_sub(self.started_ms);
        let Some(request) = AcceptedRequest::new(
            accepted.channel,
            accepted.account.as_deref(),
            &accepted.deliveries,
            duplicate_events,
        ) else {
            return;
        };
        let account = accepted.channel.zip(accepted.account.clone());
        self.schedule(account, move |bindings| {
            vec![request.observation(ack_ms, now, bindings)]
        });
    }

    fn schedule(
        &self,
        account: Option<(&'static str, String)>,
        observations: impl FnOnce(&dyn Bindings) -> Vec<Observation> + 'static,
    ) {
        // Without the binding nothing would be stored: no timer, no observation, no work after the answer.
        if super::binding::<worker::ObjectNamespace>(self.env, METRICS_BINDING).is_none() {
            return;
        }
        let env = self.env.clone();
        self.ctx.wait_until(async move {
            // A spawned future starts in the same turn as the answer's promise; yielding to a timer first lets
            // the runtime send the answer before any of this work runs.
            worker::Delay::from(std::time::Duration::ZERO).await;
            let bindings = EnvBindings::of(&env);
            // A registry account's secret values (for the rotation status) come through the seam; the look-up
            // is the isolate's cache in the usual case (the request just read it).
            let found = match &account {
                Some((channel, name)) => {
                    crate::registry::lookup(&env, &bindings, channel, name, false)
                        .await
                        .ok()
                        .flatten()
                }
                None => None,
            };
            let overlay = found
                .as_ref()
                .map(|found| RegistryOverlay::new(&bindings, &found.account));
            let bindings: &dyn Bindings = match &overlay {
                Some(overlay) => overlay,
                None => &bindings,
            };
            let observations = observations(bindings);
            observe_and_flush(&env, observations).await;
        });
    }
}

/// Folds the observations into the isolate's pending batch; runs the next flush when none is scheduled yet.
/// Called inside a `wait_until`.
pub(super) async fn observe_and_flush(env: &Env, observations: Vec<Observation>) {
    if observations.is_empty()
        || super::binding::<worker::ObjectNamespace>(env, METRICS_BINDING).is_none()
    {
        return;
    }
    let interval = flush::interval_ms(&EnvBindings::of(env));
    let wait = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.add(&observations);
        pending.schedule(now_ms(), interval)
    });
    if let Some(wait_ms) = wait {
        worker::Delay::from(std::time::Duration::from_millis(wait_ms)).await;
        flush_pending(env).await;
    }
}

/// What a queue batch's attempts observed, folded in; flushed by this batch, without waiting, unless a
/// request's flush is on its way: a consumer invocation (and its acknowledgements) lasts until its background
/// work ends, so it never sleeps for a flush.
pub(super) async fn observe_batch(env: &Env, observations: Vec<Observation>) {
    if observations.is_empty()
        || super::binding::<worker::ObjectNamespace>(env, METRICS_BINDING).is_none()
    {
        return;
    }
    let now = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.add(&observations);
        pending.flush_now(now_ms())
    });
    if now {
        flush_pending(env).await;
    }
}

/// A send attempt's counts, folded in from inside the batch (one call per message): flushed only when the
/// interval since the last flush has passed, so a batch of sends makes at most one call per shard; the rest goes
/// with the next flush (the outcome event's delivery, a request, the next batch).
pub(super) async fn observe_send(env: &Env, observations: Vec<Observation>) {
    if observations.is_empty()
        || super::binding::<worker::ObjectNamespace>(env, METRICS_BINDING).is_none()
    {
        return;
    }
    let interval = flush::interval_ms(&EnvBindings::of(env));
    let due = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.add(&observations);
        pending.flush_due(now_ms(), interval)
    });
    if due {
        flush_pending(env).await;
    }
}

fn stub(env: &Env, shard: u16) -> worker::Result<worker::Stub> {
    env.durable_object(METRICS_BINDING)?
        .id_from_name(&flush::object_name(shard))?
        .get_stub()
}

/// Writes everything pending, one call per shard (in parallel), and sends the alerts the shards raise. A batch
/// a shard did not take is put back for the next flush; failures are logged, never passed on.
async fn flush_pending(env: &Env) {
    let batches = PENDING.with(|pending| pending.borrow_mut().take(now_ms()));
    let alerts = alert::configured(&EnvBindings::of(env));
    let calls = batches.into_iter().map(|(shard, writes)| async move {
        let result = record(env, shard, &writes, alerts).await;
        (shard, writes, result)
    });
    for (shard, writes, result) in join_all(calls).await {
        match result {
            Ok(recorded) => send_alerts(env, &recorded.alerts).await,
            Err(error) => {
                emit(&log::operation_failed(
                    "metrics not recorded",
                    &error.to_string(),
                ));
                PENDING.with(|pending| pending.borrow_mut().put_back(shard, writes));
            }
        }
    }
}

async fn record(env: &Env, shard: u16, writes: &Writes, alerts: bool) -> worker::Result<Recorded> {
    let call = MetricsCall::Record {
        writes: writes.clone(),
        now_ms: now_ms(),
        alerts,
    };
    call_object::<_, Recorded>(&stub(env, shard)?, &call).await
}

/// Once per isolate: alerts go out without a console link because `PUBLIC_URL` is not set.
static LINKLESS_LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn send_alerts(env: &Env, alerts: &[Alert]) {
    let bindings = EnvBindings::of(env);
    if !alerts.is_empty()
        && alert::console_origin(&bindings).is_none()
        && !LINKLESS_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        emit(&log::alerts_without_links());
    }
    for request in alert::requests(alerts, &bindings) {
        let sent = async {
            let headers = Headers::new();
            for (name, value) in &request.headers {
                headers.set(name, value)?;
            }
            let outgoing = super::post_request(
                &request.url,
                &headers,
                &request.body,
                worker::worker_sys::web_sys::RequestRedirect::Manual,
            )?;
            let response = worker::Fetch::Request(outgoing).send().await?;
            match classify(response.status_code()) {
                StatusClass::Delivered => Ok(()),
                _ => Err(worker::Error::RustError(format!(
                    "answered {}",
                    response.status_code()
                ))),
            }
        };
        if let Err(error) = sent.await {
            emit(&log::operation_failed(
                "alert not sent",
                &format!("{}: {error}", request.destination),
            ));
        }
    }
}

/// The registry accounts among those with recorded traffic (at most 1,000, each from the isolate's cache or one
/// read), so that the accounts table shows them as it shows environment accounts.
async fn seen_registry_accounts(
    env: &Env,
    bindings: &EnvBindings,
    loaded: &Loaded,
) -> Vec<std::rc::Rc<sekisho::registry::record::OpenedAccount>> {
    let configured = sekisho::metrics::accounts::configured(bindings);
    let mut found = Vec::new();
    let mut asked = std::collections::BTreeSet::new();
    for row in &loaded.seen {
        let key = (row.channel.clone(), row.account.clone());
        if asked.len() >= 1_000 || !asked.insert(key) {
            continue;
        }
        if configured
            .iter()
            .any(|c| c.channel == row.channel && c.account == row.account)
        {
            continue;
        }
        if let Ok(Some(account)) =
            crate::registry::lookup(env, bindings, &row.channel, &row.account, false).await
        {
            found.push(account.account);
        }
    }
    found
}

/// The admin API's console page and metrics views: the accounts table and the latest rejections read across
/// every shard and merged by the core; an account's series from its own shard, passed on as it is.
pub(super) async fn answer(action: AdminAction, env: &Env) -> worker::Result<Response> {
    let now_ms = now_ms();
    let recording = super::binding::<worker::ObjectNamespace>(env, METRICS_BINDING).is_some();
    let body = match action {
        AdminAction::Console => return console(),
        AdminAction::Accounts(window) => {
            let loaded = if recording {
                match across_shards::<Loaded>(env, &MetricsCall::Load { window, now_ms }).await {
                    Ok(shards) => Loaded::merge(shards),
                    Err(error) => return unavailable(&error),
                }
            } else {
                Loaded::default()
            };
            let bindings = EnvBindings::of(env);
            // Registry accounts with recorded traffic join the table, read through the seam like any account.
            let registry = seen_registry_accounts(env, &bindings, &loaded).await;
            let overlay = RegistryOverlay::of_accounts(&bindings, registry.iter().map(|a| &**a));
            view::accounts_answer(&loaded, &overlay, window, now_ms, recording)
        }
        AdminAction::Metrics {
            channel,
            account,
            window,
        } => {
            let shard = flush::shard_of(channel, &account);
            let call = MetricsCall::Series {
                channel: channel.to_owned(),
                account: account.clone(),
                window,
                now_ms,
            };
            if recording {
                match text_call(env, shard, &call).await {
                    Ok(body) => body,
                    Err(error) => return unavailable(&error),
                }
            } else {
                serde_json::to_string(&view::series(&[], channel, &account, window, now_ms))
                    .unwrap_or_default()
            }
        }
        AdminAction::Rejections => {
            let call = MetricsCall::Rejections {
                limit: REJECTION_RING,
            };
            let recent = if recording {
                match across_shards::<RecentRejections>(env, &call).await {
                    Ok(shards) => RecentRejections::merge(shards, REJECTION_RING),
                    Err(error) => return unavailable(&error),
                }
            } else {
                RecentRejections::default()
            };
            serde_json::to_string(&recent).unwrap_or_default()
        }
        _ => return to_response(&EdgeResponse::json(404, "{\"error\":\"not_found\"}".into())),
    };
    to_response(&EdgeResponse::json(200, body))
}

fn unavailable(error: &worker::Error) -> worker::Result<Response> {
    emit(&log::operation_failed(
        "admin metrics unavailable",
        &error.to_string(),
    ));
    to_response(&EdgeResponse::json(
        503,
        "{\"error\":\"unavailable\"}".to_owned(),
    ))
}

/// The same call to every shard, in parallel.
async fn across_shards<R: serde::de::DeserializeOwned>(
    env: &Env,
    call: &MetricsCall,
) -> worker::Result<Vec<R>> {
    let replies = join_all(
        flush::all_shards()
            .map(|shard| async move { call_object::<_, R>(&stub(env, shard)?, call).await }),
    )
    .await;
    replies.into_iter().collect()
}

/// A call whose JSON answer is passed on without being parsed.
async fn text_call(env: &Env, shard: u16, call: &MetricsCall) -> worker::Result<String> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let request = super::post_request(
        "https://sekisho.internal/",
        &headers,
        &serde_json::to_string(call)?,
        worker::worker_sys::web_sys::RequestRedirect::Manual,
    )?;
    let mut response = stub(env, shard)?.fetch_with_request(request).await?;
    if response.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "metrics object answered {}",
            response.status_code()
        )));
    }
    response.text().await
}

fn console() -> worker::Result<Response> {
    let headers = Headers::new();
    for (name, value) in sekisho::console::headers() {
        headers.set(name, &value)?;
    }
    Ok(Response::from_bytes(sekisho::console::PAGE.as_bytes().to_vec())?.with_headers(headers))
}
