//! What every part of the Worker uses to talk to the runtime: log lines, the clock, queue messages, requests to
//! Durable Objects, and responses.

use http::{HeaderMap, HeaderName, HeaderValue};
use worker::worker_sys::web_sys;
use worker::{
    console_error, console_log, console_warn, Headers, MessageBuilder, QueueContentType, Request,
    Response, SendMessage,
};

use sekisho::channels::EdgeResponse;
use sekisho::gateway::Refusal;
use sekisho::log::{self, Level, Line};

pub(crate) fn emit(line: &Line) {
    match line.level {
        Level::Info => console_log!("{line}"),
        Level::Warn => console_warn!("{line}"),
        Level::Error => console_error!("{line}"),
    }
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

pub(crate) fn header_map(headers: &Headers) -> HeaderMap {
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
