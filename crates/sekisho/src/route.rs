//! The one router: which part of the gateway answers a request, from its method and path alone. What each
//! part then decides (a link's signature, the admin token, the account and the body size) is its own:
//! [`crate::attachments::admit`], [`crate::admin::admit`], [`crate::gateway::admit`].

use http::Method;

use crate::attachments::ROUTE_PREFIX as ATTACHMENTS_PREFIX;
use crate::channels::{self, Channel, EdgeResponse};

/// The path of the health check.
pub const HEALTH_PATH: &str = "/healthz";
/// The admin console's path; the admin API lives under it.
pub const ADMIN_PATH: &str = "/admin";

#[derive(Debug, Clone, PartialEq)]
pub enum Route<'a> {
    /// `/healthz`, whatever the method: answered with [`health`].
    Health,
    /// `/attachments/{key}`: a signed link to a stored e-mail attachment.
    Attachment { key: &'a str },
    /// `/admin` and everything under `/admin/`; [`AdminPath`] says which.
    Admin(AdminPath<'a>),
    /// `/{channel}/{account}[/…]`: a provider's webhook.
    Channel(ChannelRoute<'a>),
    /// `/send/{channel}/{account}`: the backend sends a message through the channel ([`crate::send`]).
    Send(crate::send::admit::SendRoute<'a>),
    /// Nothing answers here.
    NotFound,
}

/// A path of the admin console and API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPath<'a> {
    /// The whole path: `/admin` (the console page) or `/admin/…` (the API), matched by [`crate::admin`].
    pub path: &'a str,
}

impl AdminPath<'_> {
    /// The console page itself, which holds no data.
    pub fn is_console(&self) -> bool {
        self.path == ADMIN_PATH
    }

    /// The segments after `/admin/` (empty for the console page): `["api", "accounts"]`.
    pub fn segments(&self) -> Vec<&str> {
        match self.path.strip_prefix(ADMIN_PATH) {
            Some(rest) if !rest.is_empty() => rest.trim_start_matches('/').split('/').collect(),
            _ => Vec::new(),
        }
    }
}

/// A webhook path: the channel exists; the account segment is not checked yet.
#[derive(Clone)]
pub struct ChannelRoute<'a> {
    pub channel: &'static dyn Channel,
    pub account: &'a str,
    /// Segments after the account (`/slack/acme/interactivity` → `["interactivity"]`).
    pub extra_path: Vec<&'a str>,
}

impl std::fmt::Debug for ChannelRoute<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelRoute")
            .field("channel", &self.channel.name())
            .field("account", &self.account)
            .field("extra_path", &self.extra_path)
            .finish()
    }
}

impl PartialEq for ChannelRoute<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.channel.name() == other.channel.name()
            && self.account == other.account
            && self.extra_path == other.extra_path
    }
}

/// Routes a request. The method only matters to the parts themselves (each answers 405 for its own routes),
/// so it is taken here for the routes to come that differ by method alone.
pub fn route<'a>(_method: &Method, path: &'a str) -> Route<'a> {
    if let Some(key) = path.strip_prefix(ATTACHMENTS_PREFIX) {
        return Route::Attachment { key };
    }
    if path == ADMIN_PATH
        || path
            .strip_prefix(ADMIN_PATH)
            .is_some_and(|rest| rest.starts_with('/'))
    {
        return Route::Admin(AdminPath { path });
    }
    if path == HEALTH_PATH {
        return Route::Health;
    }
    if let Some(send) = crate::send::route(path) {
        return send.map_or(Route::NotFound, Route::Send);
    }
    let mut segments = path.trim_start_matches('/').split('/');
    let Some(channel) = segments.next().and_then(channels::find) else {
        return Route::NotFound;
    };
    let account = segments.next().unwrap_or_default();
    Route::Channel(ChannelRoute {
        channel,
        account,
        extra_path: segments.collect(),
    })
}

/// The health check's answer.
pub fn health() -> EdgeResponse {
    EdgeResponse::text("ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(path: &str) -> Route<'_> {
        route(&Method::POST, path)
    }

    #[test]
    fn every_part_has_its_prefix() {
        assert_eq!(r("/healthz"), Route::Health);
        assert_eq!(route(&Method::GET, "/healthz"), Route::Health);
        assert_eq!(r("/healthz/x"), Route::NotFound);
        assert_eq!(
            r("/attachments/evt_1/0"),
            Route::Attachment { key: "evt_1/0" }
        );
        assert_eq!(r("/admin"), Route::Admin(AdminPath { path: "/admin" }));
        assert_eq!(
            r("/admin/api/accounts"),
            Route::Admin(AdminPath {
                path: "/admin/api/accounts"
            })
        );
        assert_eq!(r("/adminx"), Route::NotFound);
        assert_eq!(r("/"), Route::NotFound);
        assert_eq!(r(""), Route::NotFound);
        assert_eq!(r("/nope/acme"), Route::NotFound);
        assert_eq!(
            r("/send/line/acme"),
            Route::Send(crate::send::admit::SendRoute {
                channel: "line",
                account: "acme"
            })
        );
        assert_eq!(r("/send/nope/acme"), Route::NotFound);
        assert_eq!(r("/send/line/acme/x"), Route::NotFound);
    }

    #[test]
    fn a_channel_route_carries_the_account_and_the_rest_of_the_path() {
        let Route::Channel(line) = r("/line/acme") else {
            panic!("a channel");
        };
        assert_eq!(
            (line.channel.name(), line.account, line.extra_path.len()),
            ("line", "acme", 0)
        );
        let Route::Channel(slack) = r("/slack/acme/interactivity") else {
            panic!("a channel");
        };
        assert_eq!(slack.extra_path, ["interactivity"]);
        // The account is the gateway's to judge: an empty or odd one still routes to the channel.
        let Route::Channel(empty) = r("/line") else {
            panic!("a channel");
        };
        assert_eq!(empty.account, "");
    }

    #[test]
    fn admin_paths_split_into_segments() {
        let console = AdminPath { path: "/admin" };
        assert!(console.is_console());
        assert!(console.segments().is_empty());
        let api = AdminPath {
            path: "/admin/dead-letters/abc/replay",
        };
        assert!(!api.is_console());
        assert_eq!(api.segments(), ["dead-letters", "abc", "replay"]);
    }

    #[test]
    fn health_is_a_plain_ok() {
        let health = health();
        assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));
    }
}
