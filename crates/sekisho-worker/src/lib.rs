//! The Cloudflare Workers layer: converts requests and responses, reads bindings, and performs the IO the
//! core decides on (queue, Durable Objects, fetch). Every decision — routing, body limit, verification,
//! claims, retry schedule, admin authorization, log lines — is made by the pure core.

mod admin;
mod attachments;
mod charsets;
mod consumer;
mod durable;
mod email_handler;
mod intake;
mod metrics;
mod registry;
mod reply;

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use wasm_bindgen::JsCast;
use worker::worker_sys::web_sys;
use worker::{
    console_error, console_log, console_warn, event, Context, Env, Headers, MessageBuilder,
    QueueContentType, Request, Response, SendMessage,
};

use sekisho::channels::EdgeResponse;
use sekisho::config::Bindings;
use sekisho::gateway::{self, Admitted, BodyBuffer, ChannelTarget, Inbound, Refusal};
use sekisho::log::{self, Level, Line};
use sekisho::registry::overlay::RegistryOverlay;
use sekisho::request_url::RequestUrl;
use sekisho::Rejection;

pub(crate) const QUEUE_BINDING: &str = "EVENTS";
pub(crate) const DEDUP_BINDING: &str = sekisho::dedup::STORE_BINDING;
pub(crate) const DEAD_LETTER_BINDING: &str = "DEAD_LETTERS";

/// The Worker's string bindings (`[vars]` and secrets), read from the runtime's `env` once per `env` object
/// and kept for the isolate's life: a request's dozen or more look-ups (most of them settings left unset) are
/// then map look-ups instead of three calls across the JS boundary each.
///
/// Trade, and why it keeps rotation working: the runtime hands every request of an isolate the same `env`
/// object, and a changed secret or variable is a new deployment version whose isolates get a new one (locally:
/// a Worker restarted by `wrangler dev` or Miniflare's `setOptions`). The snapshot is taken per object identity,
/// so a new `env` is read afresh on its first request; `tests/e2e/bindings.test.mjs` rotates a secret after
/// warm requests and checks that the next request sees it. A value changed inside the same object would not be seen;
/// the runtime does not do that.
pub(crate) struct EnvBindings(Rc<StringBindings>);

/// Sorted by name for a binary search: as fast as hashing for the few dozen to few hundred bindings of a
/// deployment, for 1.4 KB less gzipped Wasm than a `HashMap`.
type StringBindings = Vec<(String, String)>;

/// A few `env` objects at once: the fetch handler's and each Durable Object class's may differ in one isolate.
const SNAPSHOTS: usize = 4;

thread_local! {
    static SNAPSHOT: RefCell<Vec<(wasm_bindgen::JsValue, Rc<StringBindings>)>> =
        const { RefCell::new(Vec::new()) };
}

impl EnvBindings {
    pub(crate) fn of(env: &Env) -> Self {
        let env: &wasm_bindgen::JsValue = env.as_ref();
        SNAPSHOT.with(|cell| {
            let mut snapshots = cell.borrow_mut();
            if let Some((_, values)) = snapshots
                .iter()
                .find(|(seen, _)| js_sys::Object::is(seen, env))
            {
                return EnvBindings(values.clone());
            }
            let values = Rc::new(string_bindings(env));
            if snapshots.len() == SNAPSHOTS {
                snapshots.remove(0);
            }
            snapshots.push((env.clone(), values.clone()));
            EnvBindings(values)
        })
    }
}

/// Every own property of `env` whose value is a string; queues, Durable Object namespaces and buckets are
/// objects and read with [`binding`].
fn string_bindings(env: &wasm_bindgen::JsValue) -> StringBindings {
    let mut bindings: StringBindings =
        js_sys::Object::entries(env.unchecked_ref::<js_sys::Object>())
            .iter()
            .filter_map(|entry| {
                let pair = entry.unchecked_into::<js_sys::Array>();
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect();
    // Property names are unique, so the order is total.
    bindings.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    bindings
}

impl Bindings for EnvBindings {
    fn get(&self, name: &str) -> Option<String> {
        let index = self
            .0
            .binary_search_by(|(binding, _)| binding.as_str().cmp(name))
            .ok()?;
        self.0.get(index).map(|(_, value)| value.clone())
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(binding, _)| binding.clone()).collect()
    }
}

/// The binding `name` of type `T`, or `None` when there is none (or it has another type): what
/// `Env::get_binding` decides, without formatting an error message for the binding that is not configured —
/// the usual case on the request path (no queue in best-effort mode, no metrics object).
pub(crate) fn binding<T: worker::EnvBinding>(env: &Env, name: &str) -> Option<T> {
    let value = js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name)).ok()?;
    if value.is_undefined() {
        return None;
    }
    T::get(value).ok()
}

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

pub(crate) fn emit(line: &Line) {
    match line.level {
        Level::Info => console_log!("{line}"),
        Level::Warn => console_warn!("{line}"),
        Level::Error => console_error!("{line}"),
    }
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let received_ms = now_ms();
    let bindings = EnvBindings::of(&env);
    // Split, not parsed again: the runtime hands over a WHATWG-serialized URL (see `request_url`).
    let raw_url = req.inner().url();
    let Some(url) = RequestUrl::parse(&raw_url) else {
        return Err(worker::Error::RustError(format!(
            "failed to parse Url: {raw_url}"
        )));
    };
    let method =
        http::Method::from_bytes(req.method().to_string().as_bytes()).unwrap_or(http::Method::GET);
    let headers = header_map(req.headers());
    let recording = metrics::RequestMetrics::start(&env, &ctx, &url.origin);
    if let Some(admitted) =
        sekisho::attachments::admit(&method, url.path, url.query, &bindings, now_ms() / 1000)
    {
        return match admitted {
            Ok(fetch) => attachments::serve(&env, &fetch).await,
            Err(rejection) => respond_refused(&Refusal {
                rejection,
                channel: None,
                account: None,
            }),
        };
    }
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    if let Some(admitted) =
        sekisho::admin::admit(&method, url.path, url.query, authorization, &bindings)
    {
        return match admitted {
            Ok(sekisho::admin::AdminAction::Registry(action)) => {
                registry::admin::run(action, &mut req, &env, &url.origin).await
            }
            Ok(sekisho::admin::AdminAction::OpenApi) => to_response(&EdgeResponse {
                status: 200,
                content_type: "application/json",
                body: sekisho::registry::openapi::DOCUMENT.as_bytes().to_vec(),
            }),
            Ok(action) => admin::run(action, &env).await,
            Err(rejection) => respond_refused(&Refusal {
                rejection,
                channel: None,
                account: None,
            }),
        };
    }
    // A registry account is read through the same seam as the environment (the registry wins).
    let registry_account = sekisho::registry::account_of_path(url.path);
    let mut found = match registry_account {
        Some((channel, account)) => {
            match registry::lookup(&env, &bindings, channel, account, false).await {
                Ok(found) => found,
                Err(rejection) => {
                    return recording.refused(&Refusal {
                        rejection,
                        channel: Some(channel),
                        account: Some(account.to_owned()),
                    })
                }
            }
        }
        None => None,
    };
    let overlay = found
        .as_ref()
        .map(|found| RegistryOverlay::new(&bindings, &found.account));
    let account_bindings: &dyn Bindings = match &overlay {
        Some(overlay) => overlay,
        None => &bindings,
    };
    // Route, account and declared size first: nothing is read for a request that is refused anyway.
    let target = match gateway::admit(&method, url.path, url.query, &headers, account_bindings) {
        Ok(Admitted::Health) => return to_response(&EdgeResponse::text("ok")),
        Ok(Admitted::Channel(target)) => target,
        Err(refusal) => return recording.refused(&refusal),
    };
    let body = if ChannelTarget::reads_body(&method) {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        match read_body(&mut req, target.body_limit, declared).await {
            Ok(body) => body,
            Err(rejection) => return recording.refused(&target.refusal(rejection)),
        }
    } else {
        Vec::new()
    };
    let inbound = Inbound {
        method: &method,
        origin: &url.origin,
        path: url.path,
        query: url.query,
        headers: &headers,
        body: &body,
    };
    let mut handled = gateway::handle_admitted(&target, &inbound, account_bindings, now_ms());
    // A secret added in the registry since this isolate read the account: read it again (at most every 2 s
    // per account) and check the request once more.
    if let (Err(refusal), Some((channel, account))) = (&handled, registry_account) {
        let cached = found.as_ref().is_some_and(|found| found.cached);
        if cached
            && sekisho::registry::may_be_stale_secret(&refusal.rejection)
            && registry::may_refresh(channel, account)
        {
            if let Ok(Some(fresh)) = registry::lookup(&env, &bindings, channel, account, true).await
            {
                let overlay = RegistryOverlay::new(&bindings, &fresh.account);
                handled = gateway::handle_admitted(&target, &inbound, &overlay, now_ms());
                found = Some(fresh);
            }
        }
    }
    let _ = &found;
    let accepted = match handled {
        Ok(accepted) => accepted,
        Err(refusal) => return recording.refused(&refusal),
    };
    let duplicate_events = match intake::dispatch(&env, &ctx, &accepted).await {
        Ok(duplicate_events) => duplicate_events,
        Err(refusal) => return recording.refused(&refusal),
    };
    // The event is durably accepted: only now may the backend's reply be waited for.
    let replied = match &accepted.reply {
        Some(call) => Some(reply::answer(call, &env, received_ms, &accepted.response).await),
        None => None,
    };
    recording.accepted(&accepted, duplicate_events);
    to_response(replied.as_ref().unwrap_or(&accepted.response))
}

/// Reads the body from the stream, refusing it as soon as it passes `limit`.
async fn read_body(
    req: &mut Request,
    limit: usize,
    declared: Option<u64>,
) -> Result<Vec<u8>, Rejection> {
    // With a declared length (already checked against the limit) HTTP framing bounds the body to it: read it
    // in one call. Only a body of unknown length (chunked) is streamed and counted.
    if declared.is_some() {
        let body = req.bytes().await.map_err(|_| Rejection::MalformedBody {
            expected: "a complete request body",
        })?;
        return BodyBuffer::whole(limit, body);
    }
    let mut buffer = BodyBuffer::new(limit, declared);
    // A request without a body has no stream.
    let Ok(mut stream) = req.stream() else {
        return Ok(Vec::new());
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Rejection::MalformedBody {
            expected: "a complete request body",
        })?;
        buffer.push(&chunk)?;
    }
    Ok(buffer.into_bytes())
}

/// Queue messages go as text: with the default JSON content type the already-JSON body would be escaped a
/// second time and outgrow the size the planner measured.
pub(crate) fn queue_message(body: String, delay_s: Option<u32>) -> SendMessage<String> {
    let builder = MessageBuilder::new(body).content_type(QueueContentType::Text);
    match delay_s {
        Some(delay_s) => builder.delay_seconds(delay_s).build(),
        None => builder.build(),
    }
}

/// A JSON POST to a Durable Object stub.
pub(crate) async fn call_object<T: serde::Serialize, R: serde::de::DeserializeOwned>(
    stub: &worker::Stub,
    body: &T,
) -> worker::Result<R> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let request = post_request(
        "https://sekisho.internal/",
        &headers,
        &serde_json::to_string(body)?,
        web_sys::RequestRedirect::Follow,
    )?;
    let mut response = stub.fetch_with_request(request).await?;
    if response.status_code() != 200 {
        return Err(worker::Error::RustError(format!(
            "durable object answered {}",
            response.status_code()
        )));
    }
    response.json().await
}

/// A POST request with these headers and body: what `Request::new_with_init` builds from a `RequestInit` with
/// the default `cf` properties, without carrying worker's conversion of every `cf` property (which a default
/// `cf` never reaches), for about 4 KB less in the gzipped Worker.
pub(crate) fn post_request(
    url: &str,
    headers: &Headers,
    body: &str,
    redirect: web_sys::RequestRedirect,
) -> worker::Result<Request> {
    web_sys::Request::new_with_str_and_init(url, &post_init(headers, body, redirect))
        .map(Request::from)
        .map_err(|error| {
            // The same error as `Request::new_with_init`.
            worker::Error::JsError(
                error
                    .as_string()
                    .unwrap_or_else(|| "invalid URL or options for Request".to_string()),
            )
        })
}

/// The options of a POST with these headers and body, for `new Request(url, init)` or `fetch(url, init)`.
pub(crate) fn post_init(
    headers: &Headers,
    body: &str,
    redirect: web_sys::RequestRedirect,
) -> web_sys::RequestInit {
    let init = web_sys::RequestInit::new();
    init.set_headers(headers.as_ref());
    init.set_method("POST");
    init.set_redirect(redirect);
    init.set_body(&wasm_bindgen::JsValue::from_str(body));
    init
}

pub(crate) fn respond_refused(refusal: &Refusal) -> worker::Result<Response> {
    emit(&log::request_rejected(refusal));
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

pub(crate) fn to_response(edge: &EdgeResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", edge.content_type)?;
    Ok(Response::from_bytes(edge.body.clone())?
        .with_status(edge.status)
        .with_headers(headers))
}

/// Milliseconds since the epoch from the runtime's clock: `Date.now()`, one call (worker's `Date::now` builds
/// a `Date` object and asks it for its time: two calls and an allocation, several times per request).
pub(crate) fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}
