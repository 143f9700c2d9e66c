//! A provider's webhook, once the router found its channel: admission (account, declared size), the body read
//! within the limit, the channel's verdict, the intake, and the backend's reply when the channel waits for one.

use futures_util::StreamExt;
use http::{HeaderMap, Method};
use worker::{Context, Env, Request, Response};

use super::metrics::RequestMetrics;
use super::{intake, now_ms, registry, reply, to_response, EnvBindings};
use sekisho::config::Bindings;
use sekisho::gateway::{self, BodyBuffer, ChannelTarget, Inbound, Refusal};
use sekisho::registry::overlay::RegistryOverlay;
use sekisho::request_url::RequestUrl;
use sekisho::route::ChannelRoute;
use sekisho::Rejection;

/// The request line and headers of a webhook, as the router saw them.
pub(crate) struct Webhook<'a> {
    pub(crate) route: ChannelRoute<'a>,
    pub(crate) method: &'a Method,
    pub(crate) url: &'a RequestUrl<'a>,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) received_ms: u64,
}

pub(crate) async fn serve(
    req: &mut Request,
    env: &Env,
    ctx: &Context,
    webhook: Webhook<'_>,
    recording: RequestMetrics<'_>,
) -> worker::Result<Response> {
    let Webhook {
        route,
        method,
        url,
        headers,
        received_ms,
    } = webhook;
    let bindings = EnvBindings::of(env);
    // A registry account is read through the same seam as the environment (the registry wins).
    let registry_account = sekisho::registry::account_of_path(url.path);
    let found = match registry_account {
        Some((channel, account)) => {
            match registry::lookup(env, &bindings, channel, account, false).await {
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
    // Account and declared size first: nothing is read for a request that is refused anyway.
    let target = match gateway::admit(
        route,
        method,
        url.path,
        url.query,
        headers,
        account_bindings,
    ) {
        Ok(target) => target,
        Err(refusal) => return recording.refused(&refusal),
    };
    let body = if ChannelTarget::reads_body(method) {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        match read_body(req, target.body_limit, declared).await {
            Ok(body) => body,
            Err(rejection) => return recording.refused(&target.refusal(rejection)),
        }
    } else {
        Vec::new()
    };
    let inbound = Inbound {
        method,
        origin: &url.origin,
        path: url.path,
        query: url.query,
        headers,
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
            if let Ok(Some(fresh)) = registry::lookup(env, &bindings, channel, account, true).await
            {
                let overlay = RegistryOverlay::new(&bindings, &fresh.account);
                handled = gateway::handle_admitted(&target, &inbound, &overlay, now_ms());
            }
        }
    }
    let accepted = match handled {
        Ok(accepted) => accepted,
        Err(refusal) => return recording.refused(&refusal),
    };
    let acceptance = match intake::dispatch(env, ctx, &accepted).await {
        Ok(acceptance) => acceptance,
        Err(refusal) => return recording.refused(&refusal),
    };
    // The event is durably accepted: only now may the backend's reply be waited for.
    let replied = match &accepted.reply {
        Some(call) => {
            Some(reply::answer(call, &accepted, acceptance.reply, env, ctx, received_ms).await)
        }
        None => None,
    };
    recording.accepted(&accepted, acceptance.duplicate_events);
    to_response(replied.as_ref().unwrap_or(&accepted.response))
}

/// Reads the body from the stream, refusing it as soon as it passes `limit`.
pub(crate) async fn read_body(
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
    let mut buffer = BodyBuffer::new(limit);
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
