//! Secrets sealed at rest: AES-256-GCM under a sealing key from `ACCOUNTS_SEALING_KEY`, which may hold several
//! keys (newest seals, any opens). The additional data binds a sealed value to its channel, account and field,
//! so a sealed value copied into another account's record does not open there.
//!
//! The nonce (96 random bits) is passed in: the core has no random source; the Worker draws it from
//! `crypto.getRandomValues`. With random nonces one key may seal about 2^32 values before the birthday bound
//! matters; a registry of 100,000 accounts re-sealed weekly stays far below it.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

use crate::config::{split_values, Bindings};
use crate::crypto;

pub const SEALING_KEY_BINDING: &str = "ACCOUNTS_SEALING_KEY";
pub const NONCE_BYTES: usize = 12;

/// The first 8 hex digits of SHA-256 of a value: how a secret (or a sealing key) is named in answers, logs and
/// the audit trail. It identifies a value among a few; it does not reveal it.
pub fn fingerprint(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    crypto::hex_encode(digest.get(..4).unwrap_or_default())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingKeyError {
    #[error("ACCOUNTS_SEALING_KEY is not set")]
    Missing,
    #[error("value {index} of ACCOUNTS_SEALING_KEY is not standard base64 of 32 bytes")]
    Malformed { index: usize },
}

/// The configured sealing keys, newest first.
#[derive(Clone)]
pub struct SealingKeys {
    keys: Vec<([u8; 32], String)>,
}

impl std::fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(_, id)| id.as_str()).collect();
        write!(f, "SealingKeys({ids:?}, redacted)")
    }
}

/// A value sealed under one key: `key` names the key by its fingerprint, `sealed` is base64 of nonce ‖ ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sealed {
    pub key: String,
    pub sealed: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("no configured sealing key opens the value")]
    NoKeyOpens,
}

impl SealingKeys {
    /// Each value: standard base64 of 32 random bytes (`openssl rand -base64 32`); values separated by commas or
    /// whitespace, newest first.
    pub fn parse(raw: &str) -> Result<SealingKeys, SealingKeyError> {
        let values = split_values(raw);
        if values.is_empty() {
            return Err(SealingKeyError::Missing);
        }
        let keys = values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let bytes = crypto::base64_decode(value)
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .ok_or(SealingKeyError::Malformed { index })?;
                let id = fingerprint(&bytes);
                Ok((bytes, id))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SealingKeys { keys })
    }

    pub fn from_bindings(bindings: &dyn Bindings) -> Result<SealingKeys, SealingKeyError> {
        SealingKeys::parse(&bindings.get(SEALING_KEY_BINDING).unwrap_or_default())
    }

    /// The fingerprint of the key that seals (the newest).
    pub fn newest_id(&self) -> &str {
        self.keys.first().map_or("", |(_, id)| id.as_str())
    }

    pub fn seal(&self, plaintext: &[u8], context: &[u8], nonce: [u8; NONCE_BYTES]) -> Sealed {
        let Some((key, id)) = self.keys.first() else {
            // `parse` never builds an empty set.
            return Sealed {
                key: String::new(),
                sealed: String::new(),
            };
        };
        let cipher = Aes256Gcm::new(key.into());
        let ciphertext = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Sealed {
            key: id.clone(),
            sealed: crypto::base64_encode(&out),
        }
    }

    /// Opens with the key the value names, or failing that any configured key (authenticated decryption: a
    /// wrong key or a tampered value never opens).
    pub fn open(&self, sealed: &Sealed, context: &[u8]) -> Result<Vec<u8>, OpenError> {
        let bytes = crypto::base64_decode(&sealed.sealed).ok_or(OpenError::NoKeyOpens)?;
        if bytes.len() < NONCE_BYTES + 16 {
            return Err(OpenError::NoKeyOpens);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let named = self.keys.iter().filter(|(_, id)| *id == sealed.key);
        let others = self.keys.iter().filter(|(_, id)| *id != sealed.key);
        named
            .chain(others)
            .find_map(|(key, _)| {
                Aes256Gcm::new(key.into())
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: context,
                        },
                    )
                    .ok()
            })
            .ok_or(OpenError::NoKeyOpens)
    }

    /// Whether a value sealed under `key_id` should be re-sealed (it is not under the newest key).
    pub fn is_stale(&self, key_id: &str) -> bool {
        key_id != self.newest_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // "0123456789abcdef0123456789abcdef"
    const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    #[test]
    fn round_trip_under_the_newest_key() {
        let keys = SealingKeys::parse(&format!("{KEY_A}, {KEY_B}")).unwrap();
        let sealed = keys.seal(b"channel-secret", b"line/acme/CHANNEL_SECRET", [7; 12]);
        assert_eq!(sealed.key, keys.newest_id());
        assert!(!sealed.sealed.contains("channel-secret"));
        assert_eq!(
            keys.open(&sealed, b"line/acme/CHANNEL_SECRET").unwrap(),
            b"channel-secret"
        );
    }

    #[test]
    fn an_old_key_still_opens_after_rotation_and_the_value_is_stale() {
        let old = SealingKeys::parse(KEY_B).unwrap();
        let sealed = old.seal(b"s3cret", b"ctx", [1; 12]);
        let rotated = SealingKeys::parse(&format!("{KEY_A},{KEY_B}")).unwrap();
        assert_eq!(rotated.open(&sealed, b"ctx").unwrap(), b"s3cret");
        assert!(rotated.is_stale(&sealed.key));
        assert!(!old.is_stale(&sealed.key));
    }

    #[test]
    fn a_wrong_key_a_tampered_value_or_another_context_never_opens() {
        let keys = SealingKeys::parse(KEY_A).unwrap();
        let sealed = keys.seal(b"s3cret", b"line/acme/CHANNEL_SECRET", [2; 12]);
        let other = SealingKeys::parse(KEY_B).unwrap();
        assert_eq!(
            other.open(&sealed, b"line/acme/CHANNEL_SECRET"),
            Err(OpenError::NoKeyOpens)
        );
        assert_eq!(
            keys.open(&sealed, b"line/evil/CHANNEL_SECRET"),
            Err(OpenError::NoKeyOpens)
        );
        let mut bytes = crypto::base64_decode(&sealed.sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = Sealed {
            key: sealed.key.clone(),
            sealed: crypto::base64_encode(&bytes),
        };
        assert_eq!(
            keys.open(&tampered, b"line/acme/CHANNEL_SECRET"),
            Err(OpenError::NoKeyOpens)
        );
        let short = Sealed {
            key: sealed.key,
            sealed: "AAAA".into(),
        };
        assert_eq!(keys.open(&short, b"x"), Err(OpenError::NoKeyOpens));
    }

    #[test]
    fn keys_must_be_base64_of_32_bytes() {
        assert_eq!(
            SealingKeys::parse("").unwrap_err(),
            SealingKeyError::Missing
        );
        assert_eq!(
            SealingKeys::parse(&format!("{KEY_A} c2hvcnQ=")).unwrap_err(),
            SealingKeyError::Malformed { index: 1 }
        );
        assert_eq!(
            SealingKeys::parse("not base64!").unwrap_err(),
            SealingKeyError::Malformed { index: 0 }
        );
    }

    #[test]
    fn fingerprints_are_8_hex_digits_of_sha256() {
        // SHA-256("abc") = ba7816bf…
        assert_eq!(fingerprint(b"abc"), "ba7816bf");
    }
}
