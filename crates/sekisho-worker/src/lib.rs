//! The Cloudflare Workers layer: converts requests and responses, reads bindings, and performs the IO the
//! core decides on (queue, Durable Objects, fetch). Every decision — routing, body limit, verification,
//! claims, retry schedule, admin authorization, log lines — is made by the pure core.

mod admin;
mod attachments;
mod bindings;
mod charsets;
mod consumer;
mod deduper;
mod durable;
mod email_handler;
mod intake;
mod metrics;
mod outbound;
mod registry;
mod reply;
mod runtime;
mod send;
mod tokens;
mod webhook;

use worker::{event, Context, Env, Request, Response};

use sekisho::admin::AdminAction;
use sekisho::channels::EdgeResponse;
use sekisho::gateway::Refusal;
use sekisho::request_url::RequestUrl;
use sekisho::route::{self, Route};
use sekisho::Rejection;

pub(crate) use bindings::{binding, EnvBindings};
pub(crate) use runtime::{
    call_object, emit, header_map, now_ms, post_init, post_request, queue_message, respond_refused,
    to_response,
};

pub(crate) const QUEUE_BINDING: &str = "EVENTS";
pub(crate) const DEDUP_BINDING: &str = sekisho::dedup::STORE_BINDING;
pub(crate) const DEAD_LETTER_BINDING: &str = "DEAD_LETTERS";

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
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
    let recording = metrics::RequestMetrics::start(&env, &ctx);
    match route::route(&method, url.path) {
        Route::Health => to_response(&route::health()),
        Route::Attachment { key } => {
            match sekisho::attachments::admit(&method, key, url.query, &bindings, now_ms() / 1000) {
                Ok(fetch) => attachments::serve(&env, &fetch).await,
                Err(rejection) => respond_refused(&Refusal::unrouted(rejection)),
            }
        }
        Route::Admin(path) => {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
            match sekisho::admin::admit(&method, path, url.query, authorization, &bindings) {
                Ok(AdminAction::Registry(action)) => {
                    registry::admin::run(action, &mut req, &env, &url.origin).await
                }
                Ok(AdminAction::OpenApi) => to_response(&EdgeResponse {
                    status: 200,
                    content_type: "application/json",
                    body: sekisho::registry::openapi::DOCUMENT.as_bytes().to_vec(),
                }),
                Ok(action) => admin::run(action, &env).await,
                Err(rejection) => respond_refused(&Refusal::unrouted(rejection)),
            }
        }
        Route::Channel(route) => {
            let webhook = webhook::Webhook {
                route,
                method: &method,
                url: &url,
                headers: &headers,
                received_ms,
            };
            webhook::serve(&mut req, &env, &ctx, webhook, recording).await
        }
        Route::Send(route) => send::serve(&mut req, &env, &ctx, route, &method, &headers).await,
        Route::NotFound => recording.refused(&Refusal::unrouted(Rejection::RouteNotFound)),
    }
}
