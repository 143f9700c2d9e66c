//! Standard Webhooks (<https://www.standardwebhooks.com>): the signature the gateway puts on every delivery,
//! and its verification (the generic channel's inbound scheme, `sekisho receive`).
//!
//! Signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the key is the base64-decoded part after
//! `whsec_`; `webhook-signature` lists one `v1,<base64>` per configured secret (rotation), space-separated.

use crate::crypto;

/// Receivers reject timestamps further than this from their clock (the Standard Webhooks default).
pub const DEFAULT_TOLERANCE_S: u64 = 5 * 60;

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
pub enum SigningKeyError {
    #[error("no signing secret given")]
    Empty,
    #[error("a signing secret is not base64 after the whsec_ prefix")]
    NotBase64,
}

impl SigningKeys {
    /// Parses `whsec_<base64>` values (the prefix is optional), newest first.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<SigningKeys, SigningKeyError> {
        let keys = values
            .iter()
            .map(|value| {
                let value = value.as_ref();
                let encoded = value.strip_prefix("whsec_").unwrap_or(value);
                crypto::base64_decode(encoded)
                    .filter(|key| !key.is_empty())
                    .ok_or(SigningKeyError::NotBase64)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SigningKeyError::Empty);
        }
        Ok(SigningKeys { keys })
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
