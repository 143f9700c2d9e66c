//! The admin API over the dead-letter store, free of IO: routing and authorization.
//!
//! `GET /admin/dead-letters` lists; `POST /admin/dead-letters/replay` replays all;
//! `POST /admin/dead-letters/{webhook_id}/replay` replays one. Authorized by `Authorization: Bearer
//! <ADMIN_TOKEN>`; without an `ADMIN_TOKEN` binding the whole API answers 404, as if it did not exist.

use http::Method;

use crate::config::{split_values, Bindings};
use crate::crypto;
use crate::Rejection;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    ListDeadLetters,
    ReplayAll,
    ReplayOne(String),
}

/// `None` when the path is not under `/admin/`.
pub fn route(method: &Method, path: &str) -> Option<Result<AdminAction, Rejection>> {
    let rest = path.strip_prefix("/admin/")?;
    let segments: Vec<&str> = rest.split('/').collect();
    let action = match (segments.as_slice(), method) {
        (["dead-letters"], &Method::GET) => Ok(AdminAction::ListDeadLetters),
        (["dead-letters", "replay"], &Method::POST) => Ok(AdminAction::ReplayAll),
        (["dead-letters", id, "replay"], method) => {
            if !is_delivery_id(id) {
                Err(Rejection::RouteNotFound)
            } else if method == Method::POST {
                Ok(AdminAction::ReplayOne((*id).to_owned()))
            } else {
                Err(Rejection::MethodNotAllowed)
            }
        }
        (["dead-letters"], _) | (["dead-letters", "replay"], _) => Err(Rejection::MethodNotAllowed),
        _ => Err(Rejection::RouteNotFound),
    };
    Some(action)
}

/// `evt_…` for a backend delivery, `evt_….chatwork` for a notification.
fn is_delivery_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Checks `Authorization: Bearer <token>` against every value of `ADMIN_TOKEN` in constant time.
pub fn authorize(authorization: Option<&str>, bindings: &dyn Bindings) -> Result<(), Rejection> {
    let tokens = bindings
        .get("ADMIN_TOKEN")
        .map(|raw| split_values(&raw))
        .unwrap_or_default();
    if tokens.is_empty() {
        return Err(Rejection::RouteNotFound);
    }
    let presented = authorization
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or(Rejection::Unauthorized)?;
    // Compare digests so neither the content nor the length of the token leaks through timing.
    let presented = crypto::sha256(&[presented.trim().as_bytes()]);
    let digests: Vec<[u8; 32]> = tokens
        .iter()
        .map(|t| crypto::sha256(&[t.as_bytes()]))
        .collect();
    crypto::matching_secret(&digests, &presented)
        .map(|_| ())
        .ok_or(Rejection::Unauthorized)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, "/line/x"), None);
        assert_eq!(
            route(&Method::GET, "/admin/dead-letters"),
            Some(Ok(AdminAction::ListDeadLetters))
        );
        assert_eq!(
            route(&Method::POST, "/admin/dead-letters/replay"),
            Some(Ok(AdminAction::ReplayAll))
        );
        assert_eq!(
            route(&Method::POST, "/admin/dead-letters/evt_0123/replay"),
            Some(Ok(AdminAction::ReplayOne("evt_0123".into())))
        );
        assert_eq!(
            route(&Method::DELETE, "/admin/dead-letters"),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            route(
                &Method::POST,
                "/admin/dead-letters/evt_0123.chatwork/replay"
            ),
            Some(Ok(AdminAction::ReplayOne("evt_0123.chatwork".into())))
        );
        assert_eq!(
            route(&Method::GET, "/admin/dead-letters/evt_0123/replay"),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            route(&Method::POST, "/admin/dead-letters/a%2Fb/replay"),
            Some(Err(Rejection::RouteNotFound))
        );
        assert_eq!(
            route(&Method::POST, "/admin/dead-letters//replay"),
            Some(Err(Rejection::RouteNotFound))
        );
        assert_eq!(
            route(&Method::GET, "/admin/other"),
            Some(Err(Rejection::RouteNotFound))
        );
    }

    #[test]
    fn authorization() {
        let none: HashMap<String, String> = HashMap::new();
        assert_eq!(
            authorize(Some("Bearer x"), &none),
            Err(Rejection::RouteNotFound)
        );
        let set = HashMap::from([("ADMIN_TOKEN".to_owned(), "new-token,old-token".to_owned())]);
        assert_eq!(authorize(Some("Bearer new-token"), &set), Ok(()));
        assert_eq!(authorize(Some("Bearer old-token"), &set), Ok(()));
        assert_eq!(
            authorize(Some("Bearer wrong"), &set),
            Err(Rejection::Unauthorized)
        );
        assert_eq!(
            authorize(Some("new-token"), &set),
            Err(Rejection::Unauthorized)
        );
        assert_eq!(authorize(None, &set), Err(Rejection::Unauthorized));
    }
}
