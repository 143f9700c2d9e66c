//! The gateway → backend leg: one normalized event per request, signed with Standard Webhooks; plus the
//! optional Chatwork room notification per event (see [`crate::notify`]). Both travel the same durable path.
//!
//! The signing itself (Standard Webhooks) is [`crate::crypto::standard_webhooks`].

use serde::{Deserialize, Serialize};

use crate::config::{split_values, Account, Bindings};
pub use crate::crypto::standard_webhooks::{ReceiveError, SigningKeyError, SigningKeys};
use crate::envelope::Event;
use crate::notify::{self, ChatworkNotice, NotifyError};
use crate::Rejection;

pub const SIGNING_SECRET_BINDING: &str = "BACKEND_SIGNING_SECRET";
pub const BACKEND_URL_FIELD: &str = "BACKEND_URL";

/// One event on its way to one destination. The body (the event JSON) is fixed when the event is accepted;
/// what is sent is prepared per attempt by [`outgoing`], because the Standard Webhooks timestamp is the attempt
/// time and a notification template is read as currently configured (an admin may have fixed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event id for the backend; `{event id}.chatwork` for a notification.
    pub webhook_id: String,
    pub url: String,
    pub event_type: String,
    pub body: String,
    /// Absent in queue messages written before notifications existed: those are backend deliveries.
    #[serde(default, skip_serializing_if = "Target::is_backend")]
    pub target: Target,
    /// The event's channel and account, so every attempt (and every replay) of a backend delivery goes to the
    /// backend configured *now*: an admin who fixes `BACKEND_URL` after a redirect or an outage does not have
    /// to wait for the queued events to die first. `url` is the fallback when no binding is set any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub channel: String,
    pub account: String,
}

impl Delivery {
    /// The URL an attempt at this moment goes to.
    pub fn current_url(&self, bindings: &dyn Bindings) -> String {
        let read = |name: &str| {
            bindings
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let configured = self.origin.as_ref().and_then(|origin| {
            let own =
                crate::config::binding_name(&origin.channel, &origin.account, BACKEND_URL_FIELD);
            read(&own).or_else(|| read(BACKEND_URL_FIELD))
        });
        configured.unwrap_or_else(|| self.url.clone())
    }
}

/// Where a delivery goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// The configured backend, signed with Standard Webhooks.
    #[default]
    Backend,
    /// A Chatwork room message rendered from the event.
    ChatworkRoom(ChatworkNotice),
    /// A message the backend sends through the channel ([`crate::send`]); `body` is the provider payload.
    Send(crate::send::SendJob),
}

impl Target {
    pub fn is_backend(&self) -> bool {
        matches!(self, Target::Backend)
    }
}

impl Delivery {
    pub fn for_event(event: &Event, url: &str) -> Delivery {
        Delivery {
            webhook_id: event.id.clone(),
            url: url.to_owned(),
            event_type: event.event_type.clone(),
            // Serializing our own struct of strings, numbers and JSON values cannot fail.
            body: serde_json::to_string(event).unwrap_or_default(),
            target: Target::Backend,
            origin: Some(Origin {
                channel: event.channel.clone(),
                account: event.account.clone(),
            }),
        }
    }

    fn notification(backend: &Delivery, notice: ChatworkNotice, url: String) -> Delivery {
        Delivery {
            webhook_id: format!("{}.chatwork", backend.webhook_id),
            url,
            event_type: backend.event_type.clone(),
            body: backend.body.clone(),
            target: Target::ChatworkRoom(notice),
            origin: None,
        }
    }
}

/// The deliveries of a request's events, and the configuration problems met on the way that do not stop the
/// events (a broken notification setting must not hold back the backend).
#[derive(Debug, Default)]
pub struct Plan {
    pub deliveries: Vec<Delivery>,
    pub warnings: Vec<NotifyError>,
}

/// Plans the deliveries of a request's events: each to the account's backend
/// (`{CHANNEL}_{ACCOUNT}_BACKEND_URL`, else `BACKEND_URL`), and to a Chatwork room when one is configured for
/// the event's type. Refuses, so the provider retries, when the events could not be forwarded to the backend.
pub fn plan(events: &[Event], account: &Account<'_>) -> Result<Plan, Rejection> {
    if events.is_empty() {
        return Ok(Plan::default());
    }
    let url = account
        .field_or_global(BACKEND_URL_FIELD)
        .ok_or_else(|| Rejection::misconfigured(BACKEND_URL_FIELD))?;
    SigningKeys::from_bindings(account.bindings())?;
    let mut plan = Plan::default();
    let notices = notify::settings(account).unwrap_or_else(|problem| {
        plan.warnings.push(problem);
        None
    });
    for event in events {
        let backend = Delivery::for_event(event, &url);
        let notification = notices
            .as_ref()
            .and_then(|settings| settings.notice_for(&event.event_type))
            .map(|notice| {
                let url = notify::message_url(&notice, account.bindings());
                Delivery::notification(&backend, notice, url)
            });
        crate::delivery::check_fits_queue(&backend)?;
        if let Some(notification) = &notification {
            crate::delivery::check_fits_queue(notification)?;
        }
        plan.deliveries.push(backend);
        plan.deliveries.extend(notification);
    }
    // Reported only when a notice was queued with it, i.e. when the broken template will actually be used.
    let queued_notice = plan.deliveries.iter().any(|d| !d.target.is_backend());
    if let Some(problem) = notices.and_then(|settings| settings.template_problem) {
        if queued_notice {
            plan.warnings.push(problem);
        }
    }
    Ok(plan)
}

/// One HTTP request, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values include the Chatwork token: never print them.
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Outgoing")
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why an attempt could not even be made: configuration that is missing or broken now. The delivery is kept
/// and retried on the usual schedule, so fixing the binding is enough.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Signing(Rejection),
    #[error(transparent)]
    Notify(NotifyError),
    #[error("a send is performed by the send path, not as a delivery")]
    NotADelivery,
}

impl PrepareError {
    /// True when retrying cannot help (see [`NotifyError::is_permanent`]).
    pub fn is_permanent(&self) -> bool {
        match self {
            PrepareError::Signing(_) => false,
            PrepareError::NotADelivery => true,
            PrepareError::Notify(error) => error.is_permanent(),
        }
    }
}

/// The request for one attempt of `delivery` at `now_s`.
pub fn outgoing(
    delivery: &Delivery,
    bindings: &dyn Bindings,
    now_s: u64,
) -> Result<Outgoing, PrepareError> {
    match &delivery.target {
        Target::Backend => {
            let keys = SigningKeys::from_bindings(bindings).map_err(PrepareError::Signing)?;
            Ok(Outgoing {
                url: delivery.current_url(bindings),
                headers: keys.headers(delivery, now_s).into_iter().collect(),
                body: delivery.body.clone(),
            })
        }
        Target::Send(_) => Err(PrepareError::NotADelivery),
        Target::ChatworkRoom(notice) => {
            let request =
                notify::request(notice, &delivery.body, bindings).map_err(PrepareError::Notify)?;
            Ok(Outgoing {
                url: request.url,
                headers: request.headers,
                body: request.body,
            })
        }
    }
}

/// What the backend leg adds to the Standard Webhooks keys ([`crate::crypto::standard_webhooks`]).
impl SigningKeys {
    pub fn from_bindings(bindings: &dyn Bindings) -> Result<SigningKeys, Rejection> {
        let values = bindings
            .get(SIGNING_SECRET_BINDING)
            .map(|raw| split_values(&raw))
            .unwrap_or_default();
        SigningKeys::parse(&values).map_err(|_| Rejection::misconfigured(SIGNING_SECRET_BINDING))
    }

    /// The headers of one delivery attempt at `now_s`.
    pub fn headers(&self, delivery: &Delivery, now_s: u64) -> [(&'static str, String); 4] {
        [
            ("content-type", "application/json".to_owned()),
            ("webhook-id", delivery.webhook_id.clone()),
            ("webhook-timestamp", now_s.to_string()),
            (
                "webhook-signature",
                self.signature(&delivery.webhook_id, now_s, delivery.body.as_bytes()),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_go_to_the_backend_configured_now() {
        let delivery = Delivery {
            webhook_id: "evt_1".into(),
            url: "https://old.example/events".into(),
            event_type: "message.received".into(),
            body: "{}".into(),
            target: Target::Backend,
            origin: Some(Origin {
                channel: "line".into(),
                account: "acme-jp".into(),
            }),
        };
        let none = std::collections::HashMap::<String, String>::new();
        assert_eq!(delivery.current_url(&none), "https://old.example/events");
        let global = std::collections::HashMap::from([(
            "BACKEND_URL".to_owned(),
            "https://new.example/events".to_owned(),
        )]);
        assert_eq!(delivery.current_url(&global), "https://new.example/events");
        let mut own = global.clone();
        own.insert(
            "LINE_ACME_JP_BACKEND_URL".to_owned(),
            "https://acme.example/events".to_owned(),
        );
        assert_eq!(delivery.current_url(&own), "https://acme.example/events");
        let legacy = Delivery {
            origin: None,
            ..delivery
        };
        assert_eq!(legacy.current_url(&own), "https://old.example/events");
    }

    #[test]
    fn secrets_without_prefix_or_not_base64() {
        assert!(SigningKeys::parse(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).is_ok());
        assert_eq!(
            SigningKeys::parse(&["whsec_not base64!"]).unwrap_err(),
            SigningKeyError::NotBase64
        );
        assert_eq!(
            SigningKeys::parse::<&str>(&[]).unwrap_err(),
            SigningKeyError::Empty
        );
    }

    #[test]
    fn one_signature_per_key_and_any_verifies() {
        let keys =
            SigningKeys::parse(&["whsec_bmV3LXNlY3JldA==", "whsec_b2xkLXNlY3JldA=="]).unwrap();
        let header = keys.signature("evt_1", 1_700_000_000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        let old_only = SigningKeys::parse(&["whsec_b2xkLXNlY3JldA=="]).unwrap();
        assert_eq!(
            old_only.verify("evt_1", "1700000000", &header, b"{}", 1_700_000_100),
            Ok(())
        );
        assert_eq!(
            old_only.verify("evt_1", "1700000000", &header, b"{}", 1_700_000_000 + 301),
            Err(ReceiveError::BadTimestamp)
        );
        assert_eq!(
            old_only.verify("evt_2", "1700000000", &header, b"{}", 1_700_000_000),
            Err(ReceiveError::BadSignature)
        );
    }
}
