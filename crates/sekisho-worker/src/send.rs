//! `POST /send/{channel}/{account}`: the backend's signed send, admitted by [`sekisho::send::admit`] and
//! queued through the same intake as events (claimed by send id, so a repeated `webhook-id` is queued once and
//! answered the same). The provider call happens in the queue consumer ([`super::outbound`]).

use http::{HeaderMap, Method};
use worker::{Context, Env, Queue, Request, Response};

use super::{binding, emit, intake, now_ms, registry, to_response, EnvBindings, QUEUE_BINDING};
use sekisho::config::Bindings;
use sekisho::registry::overlay::RegistryOverlay;
use sekisho::send::admit::{admit_head, SendRoute};
use sekisho::send::{SendError, SendRefusal};
use sekisho::{log, Rejection};

pub(crate) async fn serve(
    req: &mut Request,
    env: &Env,
    ctx: &Context,
    route: SendRoute<'_>,
    method: &Method,
    headers: &HeaderMap,
) -> worker::Result<Response> {
    let refuse = |error: SendError| {
        let refusal = SendRefusal {
            error,
            channel: route.channel,
            account: route.account.to_owned(),
        };
        emit(&log::send_refused(&refusal));
        to_response(&refusal.response())
    };
    let bindings = EnvBindings::of(env);
    // A registry account's credentials are read through the same seam as the environment's.
    let found = match registry::lookup(env, &bindings, route.channel, route.account, false).await {
        Ok(found) => found,
        Err(rejection) => return refuse(rejection.into()),
    };
    let overlay = found
        .as_ref()
        .map(|found| RegistryOverlay::new(&bindings, &found.account));
    let account_bindings: &dyn Bindings = match &overlay {
        Some(overlay) => overlay,
        None => &bindings,
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let limit = match admit_head(&route, method, declared, account_bindings) {
        Ok(limit) => limit,
        Err(error) => return refuse(error),
    };
    let body = match super::webhook::read_body(req, limit, declared).await {
        Ok(body) => body,
        Err(rejection) => return refuse(rejection.into()),
    };
    let accepted =
        match sekisho::send::admit(&route, method, headers, &body, account_bindings, now_ms()) {
            Ok(accepted) => accepted,
            Err(refusal) => {
                emit(&log::send_refused(&refusal));
                return to_response(&refusal.response());
            }
        };
    // A send is only ever answered 202 once it is durably queued: without a queue there is nothing to promise.
    if binding::<Queue>(env, QUEUE_BINDING).is_none() {
        return refuse(Rejection::EnqueueFailed.into());
    }
    let accepted = accepted.into_accepted(&route);
    match intake::dispatch(env, ctx, &accepted).await {
        Ok(_) => to_response(&accepted.response),
        Err(refusal) => refuse(refusal.rejection.into()),
    }
}
