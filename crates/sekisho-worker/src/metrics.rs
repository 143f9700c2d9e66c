//! Recording for the admin console, off the provider's hot path: each request leaves at most one call to the
//! `Metrics` object, made in `wait_until` after the answer; each queue batch one call after its attempts.
//! Without a `METRICS` binding nothing is recorded (and the console shows no traffic). Also the admin API's
//! metrics views and the alerts a recorded batch raises.

mod store;

use worker::{Context, Env, Headers, Response};

use super::{call_object, emit, now_ms, respond_refused, to_response, EnvBindings};
use sekisho::admin::AdminAction;
use sekisho::channels::EdgeResponse;
use sekisho::config::Bindings;
use sekisho::delivery::policy::{classify, StatusClass};
use sekisho::gateway::{Accepted, Refusal};
use sekisho::log;
use sekisho::metrics::alert::{self, Alert};
use sekisho::metrics::observe::{self, AcceptedRequest};
use sekisho::metrics::store::{Loaded, MetricsCall, RecentRejections, Recorded};
use sekisho::metrics::{view, Observation, METRICS_BINDING, METRICS_OBJECT, REJECTION_RING};

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
        // Whether the account is configured is looked up after the answer, too.
        self.schedule(move |bindings| {
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
        self.schedule(move |bindings| vec![request.observation(ack_ms, now, bindings)]);
    }

    fn schedule(&self, observations: impl FnOnce(&dyn Bindings) -> Vec<Observation> + 'static) {
        // Without the binding nothing would be stored: no timer, no observation, no work after the answer.
        if super::binding::<worker::ObjectNamespace>(self.env, METRICS_BINDING).is_none() {
            return;
        }
        let env = self.env.clone();
        self.ctx.wait_until(async move {
            // A spawned future starts in the same turn as the answer's promise; yielding to a timer first lets
            // the runtime send the answer before any of this work runs.
            worker::Delay::from(std::time::Duration::ZERO).await;
            let observations = observations(&EnvBindings::of(&env));
            record(&env, observations).await;
        });
    }
}

fn stub(env: &Env) -> worker::Result<worker::Stub> {
    env.durable_object(METRICS_BINDING)?
        .id_from_name(METRICS_OBJECT)?
        .get_stub()
}

/// Stores a batch (one call) and sends the alerts it raises. Failures are logged, never passed on.
pub(super) async fn record(env: &Env, observations: Vec<Observation>) {
    if observations.is_empty() {
        return;
    }
    let Ok(stub) = stub(env) else {
        return;
    };
    let bindings = EnvBindings::of(env);
    let call = MetricsCall::Record {
        observations,
        now_ms: now_ms(),
        alerts: alert::configured(&bindings),
    };
    match call_object::<_, Recorded>(&stub, &call).await {
        Ok(recorded) => send_alerts(env, &recorded.alerts).await,
        Err(error) => emit(&log::operation_failed(
            "metrics not recorded",
            &error.to_string(),
        )),
    }
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

/// The admin API's console page and metrics views: computed by the `Metrics` object, passed on as they are.
pub(super) async fn answer(action: AdminAction, env: &Env) -> worker::Result<Response> {
    let now_ms = now_ms();
    let call = match action {
        AdminAction::Console => return console(),
        AdminAction::Accounts(window) => MetricsCall::Accounts { window, now_ms },
        AdminAction::Metrics {
            channel,
            account,
            window,
        } => MetricsCall::Series {
            channel: channel.to_owned(),
            account,
            window,
            now_ms,
        },
        AdminAction::Rejections => MetricsCall::Rejections {
            limit: REJECTION_RING,
        },
        _ => return to_response(&EdgeResponse::json(404, "{\"error\":\"not_found\"}".into())),
    };
    let body = match stub(env) {
        Ok(stub) => match text_call(&stub, &call).await {
            Ok(body) => body,
            Err(error) => {
                emit(&log::operation_failed(
                    "admin metrics unavailable",
                    &error.to_string(),
                ));
                return to_response(&EdgeResponse::json(
                    503,
                    "{\"error\":\"unavailable\"}".to_owned(),
                ));
            }
        },
        // No store: the same answers, empty.
        Err(_) => match call {
            MetricsCall::Accounts { window, now_ms } => view::accounts_answer(
                &Loaded::default(),
                &EnvBindings::of(env),
                window,
                now_ms,
                false,
            ),
            MetricsCall::Series {
                channel,
                account,
                window,
                now_ms,
            } => serde_json::to_string(&view::series(&[], &channel, &account, window, now_ms))
                .unwrap_or_default(),
            _ => serde_json::to_string(&RecentRejections::default()).unwrap_or_default(),
        },
    };
    to_response(&EdgeResponse::json(200, body))
}

/// A call whose JSON answer is passed on without being parsed.
async fn text_call(stub: &worker::Stub, call: &MetricsCall) -> worker::Result<String> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let request = super::post_request(
        "https://sekisho.internal/",
        &headers,
        &serde_json::to_string(call)?,
        worker::worker_sys::web_sys::RequestRedirect::Manual,
    )?;
    let mut response = stub.fetch_with_request(request).await?;
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
