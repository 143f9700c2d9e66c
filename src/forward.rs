//! The gateway → backend leg: one normalized event per request, signed with Standard Webhooks.
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the base64-decoded part after
//! `whsec_`; `webhook-signature` lists one `v1,<base64>` per configured secret (rotation), space-separated.

use serde::{Deserialize, Serialize};

use crate::config::{split_values, Account, Bindings};
use crate::crypto;
use crate::envelope::Event;
use crate::Rejection;

pub const SIGNING_SECRET_BINDING: &str = "BACKEND_SIGNING_SECRET";
pub const BACKEND_URL_FIELD: &str = "BACKEND_URL";
/// Receivers reject timestamps further than this from their clock (the Standard Webhooks default).
pub const DEFAULT_TOLERANCE_S: u64 = 5 * 60;

/// One event on its way to the backend. The body is fixed when the event is accepted; the signature is
/// computed per attempt, because `webhook-timestamp` is the attempt time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub webhook_id: String,
    pub url: String,
    pub event_type: String,
    pub body: String,
}

impl Delivery {
    pub fn for_event(event: &Event, url: &str) -> Delivery {
        Delivery {
            webhook_id: event.id.clone(),
            url: url.to_owned(),
            event_type: event.event_type.clone(),
            // Serializing our own struct of strings, numbers and JSON values cannot fail.
            body: serde_json::to_string(event).unwrap_or_default(),
        }
    }
}

/// Plans the deliveries of a request's events to the account's backend (`{CHANNEL}_{ACCOUNT}_BACKEND_URL`,
/// else `BACKEND_URL`). Refuses, so the provider retries, when the events could not be forwarded.
pub fn plan(events: &[Event], account: &Account<'_>) -> Result<Vec<Delivery>, Rejection> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let url =
        account
            .field_or_global(BACKEND_URL_FIELD)
            .ok_or_else(|| Rejection::Misconfigured {
                binding: BACKEND_URL_FIELD.to_owned(),
            })?;
    SigningKeys::from_bindings(account.bindings())?;
    Ok(events
        .iter()
        .map(|event| Delivery::for_event(event, &url))
        .collect())
}

/// The backend signing secrets, decoded once.
#[derive(Clone)]
pub struct SigningKeys {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} keys, redacted)", self.keys.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no signing secret given")]
    Empty,
    #[error("a signing secret is not base64 after the whsec_ prefix")]
    NotBase64,
}

impl SigningKeys {
    /// Parses `whsec_<base64>` values (the prefix is optional), newest first.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<SigningKeys, KeyError> {
        let keys = values
            .iter()
            .map(|value| {
                let value = value.as_ref();
                let encoded = value.strip_prefix("whsec_").unwrap_or(value);
                crypto::base64_decode(encoded)
                    .filter(|key| !key.is_empty())
                    .ok_or(KeyError::NotBase64)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(SigningKeys { keys })
    }

    pub fn from_bindings(bindings: &dyn Bindings) -> Result<SigningKeys, Rejection> {
        let values = bindings
            .get(SIGNING_SECRET_BINDING)
            .map(|raw| split_values(&raw))
            .unwrap_or_default();
        SigningKeys::parse(&values).map_err(|_| Rejection::Misconfigured {
            binding: SIGNING_SECRET_BINDING.to_owned(),
        })
    }

    /// The `webhook-signature` value: `v1,<base64>` for every key, space-separated.
    pub fn signature(&self, webhook_id: &str, timestamp_s: u64, body: &[u8]) -> String {
        let timestamp = timestamp_s.to_string();
        self.keys
            .iter()
            .map(|key| {
                let tag = crypto::hmac_sha256(
                    key,
                    &[
                        webhook_id.as_bytes(),
                        b".",
                        timestamp.as_bytes(),
                        b".",
                        body,
                    ],
                );
                format!("v1,{}", crypto::base64_encode(&tag))
            })
            .collect::<Vec<_>>()
            .join(" ")
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

    /// Verifies a received Standard Webhooks request, as a backend would (used by `sekisho receive`).
    pub fn verify(
        &self,
        webhook_id: &str,
        timestamp: &str,
        signature_header: &str,
        body: &[u8],
        now_s: u64,
    ) -> Result<(), ReceiveError> {
        let sent_s: u64 = timestamp
            .trim()
            .parse()
            .map_err(|_| ReceiveError::BadTimestamp)?;
        if sent_s.abs_diff(now_s) > DEFAULT_TOLERANCE_S {
            return Err(ReceiveError::BadTimestamp);
        }
        let timestamp = sent_s.to_string();
        let signed: [&[u8]; 5] = [
            webhook_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body,
        ];
        let matched = signature_header
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(crypto::base64_decode)
            .any(|tag| crypto::hmac_sha256_matches(&self.keys, &signed, &tag).is_some());
        if matched {
            Ok(())
        } else {
            Err(ReceiveError::BadSignature)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    #[error("webhook-timestamp is missing, malformed or too far from now")]
    BadTimestamp,
    #[error("no webhook-signature entry matches")]
    BadSignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_without_prefix_or_not_base64() {
        assert!(SigningKeys::parse(&["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).is_ok());
        assert_eq!(
            SigningKeys::parse(&["whsec_not base64!"]).unwrap_err(),
            KeyError::NotBase64
        );
        assert_eq!(
            SigningKeys::parse::<&str>(&[]).unwrap_err(),
            KeyError::Empty
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
