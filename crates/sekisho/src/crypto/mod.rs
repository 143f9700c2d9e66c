//! Shared cryptography: HMAC verification in constant time, secret comparison, encodings.
//! Every channel verifies through here, so there is one place that compares secrets.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

pub mod seal;
pub mod standard_webhooks;
pub mod wxbiz;

/// A WeChat/WeCom payload that could not be decrypted; each cause has its own reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("ciphertext is not base64")]
    CiphertextNotBase64,
    #[error("ciphertext length is not a positive multiple of the AES block size")]
    CiphertextLength,
    #[error("PKCS#7 padding is invalid")]
    BadPadding,
    #[error("the length field points past the end of the plaintext")]
    LengthOutOfRange,
    #[error("the receive id does not match the configured one")]
    ReceiveIdMismatch,
    #[error("the decrypted message is not UTF-8")]
    NotUtf8,
}

impl DecryptError {
    pub fn reason(&self) -> &'static str {
        match self {
            DecryptError::CiphertextNotBase64 => "ciphertext_not_base64",
            DecryptError::CiphertextLength => "bad_ciphertext_length",
            DecryptError::BadPadding => "bad_padding",
            DecryptError::LengthOutOfRange => "length_out_of_range",
            DecryptError::ReceiveIdMismatch => "receive_id_mismatch",
            DecryptError::NotUtf8 => "invalid_utf8",
        }
    }
}

/// HMAC-SHA256 over the concatenation of `parts` (so `v0:{ts}:{body}` needs no copy of the body).
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = new_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length (longer ones are hashed), so this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts any key length"),
    }
}

/// Returns the index of the first key whose HMAC over `parts` equals `expected`, comparing in constant time.
/// `expected` is the already-decoded tag: a header that does not decode never reaches this function.
pub fn hmac_sha256_matches<K: AsRef<[u8]>>(
    keys: &[K],
    parts: &[&[u8]],
    expected: &[u8],
) -> Option<usize> {
    keys.iter().position(|key| {
        let mut mac = new_mac(key.as_ref());
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(expected).is_ok()
    })
}

/// HMAC-SHA1 over the concatenation of `parts` (Twilio signs the URL followed by its parameters this way).
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = new_sha1_mac(key);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn new_sha1_mac(key: &[u8]) -> HmacSha1 {
    match HmacSha1::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA1 accepts any key length"),
    }
}

/// Like [`hmac_sha256_matches`], with HMAC-SHA1: the index of the first key whose tag over `parts` equals
/// `expected` (already decoded; a tag of another length matches nothing), compared in constant time.
pub fn hmac_sha1_matches<K: AsRef<[u8]>>(
    keys: &[K],
    parts: &[&[u8]],
    expected: &[u8],
) -> Option<usize> {
    keys.iter().position(|key| {
        let mut mac = new_sha1_mac(key.as_ref());
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(expected).is_ok()
    })
}

/// Constant-time equality of two secrets (length may leak, content may not).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Index of the first configured secret equal to `presented`, compared in constant time against every value.
pub fn matching_secret<S: AsRef<[u8]>>(secrets: &[S], presented: &[u8]) -> Option<usize> {
    let mut found = None;
    for (index, secret) in secrets.iter().enumerate() {
        if secrets_equal(secret.as_ref(), presented) && found.is_none() {
            found = Some(index);
        }
    }
    found
}

/// Strict standard base64 (padded), as LINE, LINE WORKS and Chatwork send their signatures.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim()).ok()
}

pub fn hex_encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_reports_the_matching_key_index() {
        let tag = hmac_sha256(b"old", &[b"body"]);
        assert_eq!(
            hmac_sha256_matches(&["new", "old"], &[b"body"], &tag),
            Some(1)
        );
        assert_eq!(hmac_sha256_matches(&["new"], &[b"body"], &tag), None);
        assert_eq!(hmac_sha256_matches(&["old"], &[b"body"], &tag[..31]), None);
    }

    #[test]
    fn hmac_sha1_matches_rfc2202_and_reports_the_key_index() {
        // RFC 2202 section 3, test case 2.
        let tag = hmac_sha1(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(hex_encode(&tag), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
        let parts: [&[u8]; 1] = [b"what do ya want for nothing?"];
        assert_eq!(hmac_sha1_matches(&["new", "Jefe"], &parts, &tag), Some(1));
        assert_eq!(hmac_sha1_matches(&["new"], &parts, &tag), None);
        assert_eq!(hmac_sha1_matches(&["Jefe"], &parts, &tag[..19]), None);
    }

    #[test]
    fn parts_are_concatenated() {
        assert_eq!(
            hmac_sha256(b"k", &[b"ab", b"c"]),
            hmac_sha256(b"k", &[b"abc"])
        );
    }

    #[test]
    fn secret_matching_is_exact() {
        assert_eq!(matching_secret(&["a", "b"], b"b"), Some(1));
        assert_eq!(matching_secret(&["a", "b"], b"bb"), None);
        assert_eq!(matching_secret::<&str>(&[], b""), None);
    }
}
