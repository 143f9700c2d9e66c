//! The Cloudflare Workers layer: converts requests and responses, reads bindings, logs, and forwards after
//! the response. Every decision is made by the pure core in [`crate::gateway`].

use http::{HeaderMap, HeaderName, HeaderValue};
use worker::{console_error, console_log, console_warn, event, Context, Date, Env, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::channels::EdgeResponse;
use crate::config::Bindings;
use crate::forward::{Delivery, SigningKeys};
use crate::gateway::{self, Inbound, Refusal};

struct EnvBindings<'a>(&'a Env);

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

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let bindings = EnvBindings(&env);
    let declared_length = req.headers().get("content-length").ok().flatten();
    if let Err(rejection) = gateway::check_declared_length(declared_length.as_deref(), &bindings) {
        return respond_refused(&Refusal { rejection, channel: None, account: None });
    }
    let url = req.url()?;
    let method = http::Method::from_bytes(req.method().to_string().as_bytes()).unwrap_or(http::Method::GET);
    let headers = header_map(req.headers());
    let body = match req.method() {
        Method::Get | Method::Head => Vec::new(),
        _ => req.bytes().await.unwrap_or_default(),
    };
    let inbound = Inbound { method: &method, path: url.path(), query: url.query(), headers: &headers, body: &body };
    match gateway::handle(&inbound, &bindings, now_ms()) {
        Ok(accepted) => {
            if !accepted.deliveries.is_empty() {
                console_log!("{}", accepted.log_line());
                // `plan` already refused the request if the signing secret were missing or invalid.
                if let Ok(keys) = SigningKeys::from_bindings(&bindings) {
                    ctx.wait_until(forward_all(accepted.deliveries, keys));
                }
            }
            to_response(&accepted.response)
        }
        Err(refusal) => respond_refused(&refusal),
    }
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
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            map.append(name, value);
        }
    }
    map
}

fn to_response(edge: &EdgeResponse) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", edge.content_type)?;
    Ok(Response::from_bytes(edge.body.clone())?.with_status(edge.status).with_headers(headers))
}

fn now_ms() -> u64 {
    Date::now().as_millis()
}

async fn forward_all(deliveries: Vec<Delivery>, keys: SigningKeys) {
    for delivery in deliveries {
        match forward_once(&delivery, &keys).await {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(status) => console_error!("{}", forward_failure_line(&delivery, &format!("backend answered {status}"))),
            Err(error) => console_error!("{}", forward_failure_line(&delivery, &error.to_string())),
        }
    }
}

async fn forward_once(delivery: &Delivery, keys: &SigningKeys) -> worker::Result<u16> {
    let headers = Headers::new();
    for (name, value) in keys.headers(delivery, now_ms() / 1000) {
        headers.set(name, &value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(delivery.body.clone().into()));
    let request = Request::new_with_init(&delivery.url, &init)?;
    let response = Fetch::Request(request).send().await?;
    Ok(response.status_code())
}

fn forward_failure_line(delivery: &Delivery, error: &str) -> String {
    serde_json::json!({
        "level": "error",
        "msg": "forward failed",
        "event_id": delivery.webhook_id,
        "event_type": delivery.event_type,
        "error": error,
    })
    .to_string()
}
