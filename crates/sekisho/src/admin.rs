//! The admin API over the dead-letter store, free of IO: routing and authorization.
//!
//! `GET /admin` is the console page (it holds no data; every call it makes is authorized);
//! `GET /admin/api/accounts?window=` the accounts table with rotation status, `GET /admin/api/metrics?channel=
//! &account=&window=` an account's time series, `GET /admin/api/rejections` the latest rejections.
//! `GET /admin/dead-letters` lists; `POST /admin/dead-letters/replay` replays all;
//! `POST /admin/dead-letters/{webhook_id}/replay` replays one. Authorized by `Authorization: Bearer
//! <ADMIN_TOKEN>`; without an `ADMIN_TOKEN` binding the whole API answers 404, as if it did not exist.

use http::Method;

use crate::config::{split_values, Bindings};
use crate::crypto;
use crate::delivery::dead_letter::{is_delivery_id, PageRequest};
use crate::metrics::window::Window;
use crate::query::Query;
use crate::registry::api::{self as registry_api, RegistryAction, RegistryError};
use crate::registry::audit::AdminIdentity;
use crate::route::AdminPath;
use crate::Rejection;

pub const ADMIN_TOKEN_BINDING: &str = "ADMIN_TOKEN";
/// The shortest admin token accepted: 32 characters (e.g. `openssl rand -hex 16`). A shorter value makes the
/// whole API answer `misconfigured`, so a guessable token never guards the dead letters.
pub const ADMIN_TOKEN_MIN_CHARS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    ListDeadLetters(PageRequest),
    ReplayAll,
    ReplayOne(String),
    DeleteOne(String),
    /// The console page itself.
    Console,
    Accounts(Window),
    Metrics {
        channel: &'static str,
        account: String,
        window: Window,
    },
    Rejections,
    /// The account registry ([`crate::registry::api`]).
    Registry(RegistryAction),
    /// `GET /admin/openapi.json`: the API's OpenAPI document.
    OpenApi,
}

fn window(query: &Query) -> Result<Window, Rejection> {
    match query.get("window") {
        None => Ok(Window::default()),
        Some(raw) => Window::parse(raw).ok_or(Rejection::InvalidParameter("window")),
    }
}

fn metrics_action(query: &Query) -> Result<AdminAction, Rejection> {
    let channel = query
        .get("channel")
        .ok_or(Rejection::MissingParameter("channel"))?;
    let channel = crate::channels::CHANNELS
        .iter()
        .map(|c| c.name())
        .chain([crate::mail::CHANNEL])
        .find(|name| *name == channel)
        .ok_or(Rejection::InvalidParameter("channel"))?;
    let account = query
        .get("account")
        .ok_or(Rejection::MissingParameter("account"))?;
    if !crate::config::is_valid_account(account) {
        return Err(Rejection::InvalidParameter("account"));
    }
    Ok(AdminAction::Metrics {
        channel,
        account: account.to_owned(),
        window: window(query)?,
    })
}

fn get_only(
    method: &Method,
    action: impl FnOnce() -> Result<AdminAction, Rejection>,
) -> Result<AdminAction, Rejection> {
    match *method {
        Method::GET => action(),
        _ => Err(Rejection::MethodNotAllowed),
    }
}

/// `None` when the path is not under `/admin/`. Authorize first ([`authorize`]): without a token binding every
/// admin path answers 404, whatever the method.
pub fn route(method: &Method, path: &str, query: &Query) -> Option<Result<AdminAction, Rejection>> {
    let rest = path.strip_prefix("/admin/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    if let ["api", api_path @ ..] = segments.as_slice() {
        if let Some(action) = registry_api::route(method, api_path, query) {
            return Some(action.map(AdminAction::Registry).map_err(routing_rejection));
        }
    }
    let action = match segments.as_slice() {
        ["openapi.json"] => get_only(method, || Ok(AdminAction::OpenApi)),
        ["api", "accounts"] => get_only(method, || window(query).map(AdminAction::Accounts)),
        ["api", "metrics"] => get_only(method, || metrics_action(query)),
        ["api", "rejections"] => get_only(method, || Ok(AdminAction::Rejections)),
        ["dead-letters"] => match *method {
            Method::GET => PageRequest::from_query(query).map(AdminAction::ListDeadLetters),
            _ => Err(Rejection::MethodNotAllowed),
        },
        ["dead-letters", "replay"] => match *method {
            Method::POST => Ok(AdminAction::ReplayAll),
            _ => Err(Rejection::MethodNotAllowed),
        },
        ["dead-letters", id] if is_delivery_id(id) => match *method {
            Method::DELETE => Ok(AdminAction::DeleteOne((*id).to_owned())),
            _ => Err(Rejection::MethodNotAllowed),
        },
        ["dead-letters", id, "replay"] if is_delivery_id(id) => match *method {
            Method::POST => Ok(AdminAction::ReplayOne((*id).to_owned())),
            _ => Err(Rejection::MethodNotAllowed),
        },
        _ => Err(Rejection::RouteNotFound),
    };
    Some(action)
}

/// A registry routing error as the rest of the admin API answers it.
fn routing_rejection(error: RegistryError) -> Rejection {
    match error {
        RegistryError::MethodNotAllowed => Rejection::MethodNotAllowed,
        RegistryError::InvalidParameter(name) => Rejection::InvalidParameter(name),
        _ => Rejection::RouteNotFound,
    }
}

/// Which configured admin token the request presents (its index, newest first, and its fingerprint, for the
/// audit trail). No binding → 404 (the API does not exist); a value shorter than [`ADMIN_TOKEN_MIN_CHARS`] →
/// `misconfigured`; a missing or wrong token → `unauthorized`.
pub fn identify(
    authorization: Option<&str>,
    bindings: &dyn Bindings,
) -> Result<AdminIdentity, Rejection> {
    let tokens = bindings
        .get(ADMIN_TOKEN_BINDING)
        .map(|raw| split_values(&raw))
        .unwrap_or_default();
    if tokens.is_empty() {
        return Err(Rejection::RouteNotFound);
    }
    if tokens
        .iter()
        .any(|t| t.chars().count() < ADMIN_TOKEN_MIN_CHARS)
    {
        return Err(Rejection::misconfigured(ADMIN_TOKEN_BINDING));
    }
    let presented = authorization
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or(Rejection::Unauthorized)?;
    // Compare digests so neither the content nor the length of the token leaks through timing.
    let digests: Vec<[u8; 32]> = tokens
        .iter()
        .map(|t| crypto::sha256(&[t.as_bytes()]))
        .collect();
    let index = crypto::matching_secret(&digests, &crypto::sha256(&[presented.as_bytes()]))
        .ok_or(Rejection::Unauthorized)?;
    Ok(AdminIdentity {
        index,
        fingerprint: crate::crypto::seal::fingerprint(presented.as_bytes()),
    })
}

/// Checks `Authorization: Bearer <token>` against every value of `ADMIN_TOKEN` in constant time. No binding →
/// 404 (the API does not exist); a value shorter than [`ADMIN_TOKEN_MIN_CHARS`] → `misconfigured`.
pub fn authorize(authorization: Option<&str>, bindings: &dyn Bindings) -> Result<(), Rejection> {
    identify(authorization, bindings).map(|_| ())
}

/// The whole admin decision for one request under `/admin` ([`crate::route::Route::Admin`]): authorization
/// before routing, so nothing about the API shows without a valid token.
pub fn admit(
    method: &Method,
    path: AdminPath<'_>,
    query: Option<&str>,
    authorization: Option<&str>,
    bindings: &dyn Bindings,
) -> Result<AdminAction, Rejection> {
    if path.is_console() {
        // The page holds no data, so it needs no token; without an `ADMIN_TOKEN` binding it does not exist.
        let configured = bindings
            .get(ADMIN_TOKEN_BINDING)
            .is_some_and(|raw| !split_values(&raw).is_empty());
        return match (configured, method) {
            (false, _) => Err(Rejection::RouteNotFound),
            (true, &Method::GET) => Ok(AdminAction::Console),
            (true, _) => Err(Rejection::MethodNotAllowed),
        };
    }
    authorize(authorization, bindings)?;
    route(method, path.path, &Query::parse(query)).unwrap_or(Err(Rejection::RouteNotFound))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const OLD: &str = "fedcba9876543210fedcba9876543210";

    /// [`admit`] as the Worker reaches it: `None` when the router does not send the path to the admin.
    fn admitted(
        method: &Method,
        path: &str,
        authorization: Option<&str>,
        bindings: &dyn Bindings,
    ) -> Option<Result<AdminAction, Rejection>> {
        match crate::route::route(method, path) {
            crate::route::Route::Admin(path) => {
                Some(admit(method, path, None, authorization, bindings))
            }
            _ => None,
        }
    }

    fn r(method: Method, path: &str) -> Option<Result<AdminAction, Rejection>> {
        route(&method, path, &Query::parse(None))
    }

    #[test]
    fn routes() {
        assert_eq!(r(Method::GET, "/line/x"), None);
        assert_eq!(
            r(Method::GET, "/admin/dead-letters"),
            Some(Ok(AdminAction::ListDeadLetters(PageRequest {
                limit: 100,
                after: None
            })))
        );
        assert_eq!(
            route(
                &Method::GET,
                "/admin/dead-letters",
                &Query::parse(Some("limit=0"))
            ),
            Some(Err(Rejection::InvalidParameter("limit")))
        );
        assert_eq!(
            r(Method::POST, "/admin/dead-letters/replay"),
            Some(Ok(AdminAction::ReplayAll))
        );
        assert_eq!(
            r(Method::POST, "/admin/dead-letters/evt_0123/replay"),
            Some(Ok(AdminAction::ReplayOne("evt_0123".into())))
        );
        assert_eq!(
            r(Method::DELETE, "/admin/dead-letters/evt_0123.chatwork"),
            Some(Ok(AdminAction::DeleteOne("evt_0123.chatwork".into())))
        );
        assert_eq!(
            r(Method::DELETE, "/admin/dead-letters"),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            r(Method::GET, "/admin/dead-letters/evt_0123/replay"),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            r(Method::POST, "/admin/dead-letters/a%2Fb/replay"),
            Some(Err(Rejection::RouteNotFound))
        );
        assert_eq!(
            r(Method::POST, "/admin/dead-letters//replay"),
            Some(Err(Rejection::RouteNotFound))
        );
        assert_eq!(
            r(Method::GET, "/admin/other"),
            Some(Err(Rejection::RouteNotFound))
        );
    }

    #[test]
    fn api_routes_and_their_parameters() {
        let q = |raw: &str| Query::parse(Some(raw));
        assert_eq!(
            r(Method::GET, "/admin/api/accounts"),
            Some(Ok(AdminAction::Accounts(Window::Day)))
        );
        assert_eq!(
            route(&Method::GET, "/admin/api/accounts", &q("window=7d")),
            Some(Ok(AdminAction::Accounts(Window::Week)))
        );
        assert_eq!(
            route(&Method::GET, "/admin/api/accounts", &q("window=2d")),
            Some(Err(Rejection::InvalidParameter("window")))
        );
        assert_eq!(
            route(
                &Method::GET,
                "/admin/api/metrics",
                &q("channel=line&account=acme-jp&window=1h")
            ),
            Some(Ok(AdminAction::Metrics {
                channel: "line",
                account: "acme-jp".into(),
                window: Window::Hour
            }))
        );
        assert_eq!(
            route(
                &Method::GET,
                "/admin/api/metrics",
                &q("channel=email&account=support")
            ),
            Some(Ok(AdminAction::Metrics {
                channel: "email",
                account: "support".into(),
                window: Window::Day
            }))
        );
        assert_eq!(
            route(
                &Method::GET,
                "/admin/api/metrics",
                &q("channel=nope&account=a")
            ),
            Some(Err(Rejection::InvalidParameter("channel")))
        );
        assert_eq!(
            route(
                &Method::GET,
                "/admin/api/metrics",
                &q("channel=line&account=A_B")
            ),
            Some(Err(Rejection::InvalidParameter("account")))
        );
        assert_eq!(
            route(&Method::GET, "/admin/api/metrics", &q("account=a")),
            Some(Err(Rejection::MissingParameter("channel")))
        );
        assert_eq!(
            r(Method::POST, "/admin/api/rejections"),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            r(Method::GET, "/admin/api/rejections"),
            Some(Ok(AdminAction::Rejections))
        );
    }

    #[test]
    fn the_console_page_needs_no_token_but_an_admin_token_binding() {
        let none: HashMap<String, String> = HashMap::new();
        assert_eq!(
            admitted(&Method::GET, "/admin", None, &none),
            Some(Err(Rejection::RouteNotFound))
        );
        let set = HashMap::from([("ADMIN_TOKEN".to_owned(), TOKEN.to_owned())]);
        assert_eq!(
            admitted(&Method::GET, "/admin", None, &set),
            Some(Ok(AdminAction::Console))
        );
        assert_eq!(
            admitted(&Method::POST, "/admin", None, &set),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            admitted(&Method::GET, "/admin/api/accounts", None, &set),
            Some(Err(Rejection::Unauthorized))
        );
        assert_eq!(admitted(&Method::GET, "/administrator", None, &set), None);
    }

    #[test]
    fn authorization() {
        let none: HashMap<String, String> = HashMap::new();
        assert_eq!(
            authorize(Some("Bearer x"), &none),
            Err(Rejection::RouteNotFound)
        );
        let set = HashMap::from([("ADMIN_TOKEN".to_owned(), format!("{TOKEN},{OLD}"))]);
        assert_eq!(authorize(Some(&format!("Bearer {TOKEN}")), &set), Ok(()));
        assert_eq!(authorize(Some(&format!("Bearer {OLD}")), &set), Ok(()));
        assert_eq!(
            authorize(Some("Bearer wrong"), &set),
            Err(Rejection::Unauthorized)
        );
        assert_eq!(authorize(Some(TOKEN), &set), Err(Rejection::Unauthorized));
        assert_eq!(authorize(None, &set), Err(Rejection::Unauthorized));
    }

    #[test]
    fn a_short_admin_token_is_a_misconfiguration_even_for_the_right_bearer() {
        for short in ["x", "short-token", &TOKEN[..31]] {
            let set = HashMap::from([("ADMIN_TOKEN".to_owned(), format!("{TOKEN},{short}"))]);
            assert_eq!(
                authorize(Some(&format!("Bearer {short}")), &set),
                Err(Rejection::misconfigured("ADMIN_TOKEN")),
                "{short}"
            );
        }
    }

    #[test]
    fn without_a_token_every_admin_path_and_method_is_not_found() {
        let none: HashMap<String, String> = HashMap::new();
        for method in [Method::GET, Method::POST, Method::DELETE, Method::PUT] {
            for path in [
                "/admin/dead-letters",
                "/admin/dead-letters/replay",
                "/admin/dead-letters/evt_1",
                "/admin/dead-letters/evt_1/replay",
                "/admin/anything",
            ] {
                assert_eq!(
                    admitted(&method, path, Some("Bearer x"), &none),
                    Some(Err(Rejection::RouteNotFound)),
                    "{method} {path}"
                );
            }
        }
        assert_eq!(admitted(&Method::GET, "/line/x", None, &none), None);
    }
}
