//! What the `wechat` and `wecom` channels share besides XML: account settings, the timestamp window, the
//! replay guard of signed queries that cover no body, and deterministic `sign` defaults.

use crate::channels::ReplayGuard;
use crate::config::Account;
use crate::crypto;
use crate::crypto::wxbiz::AesKey;
use crate::query::Query;
#[cfg(feature = "tooling")]
use crate::tooling::{SignParams, ToolingError};
use crate::Rejection;

/// Replay window when the account sets no `TIMESTAMP_SKEW_S`.
/// WeChat and WeCom pushes are a few KiB (a text message holds at most 2,048 bytes of content; safe mode adds
/// about a third in base64), so 64 KiB leaves ample room and bounds the work spent before the signature is
/// checked.
pub(super) const MAX_PUSH_BYTES: usize = 64 * 1024;

pub(super) const DEFAULT_TIMESTAMP_SKEW_S: u64 = 300;

/// The configured EncodingAESKeys, newest first; any malformed value makes the whole account misconfigured.
pub(super) fn aes_keys(account: &Account<'_>) -> Result<Vec<AesKey>, Rejection> {
    account
        .values("ENCODING_AES_KEY")
        .iter()
        .map(|value| AesKey::from_encoding_aes_key(value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Rejection::misconfigured(account.binding_name("ENCODING_AES_KEY")))
}

/// `TIMESTAMP_SKEW_S`: how far `timestamp` may be from the gateway's clock, in seconds.
pub(super) fn timestamp_skew_s(account: &Account<'_>) -> Result<u64, Rejection> {
    match account.field("TIMESTAMP_SKEW_S") {
        None => Ok(DEFAULT_TIMESTAMP_SKEW_S),
        Some(value) => value
            .parse()
            .map_err(|_| Rejection::misconfigured(account.binding_name("TIMESTAMP_SKEW_S"))),
    }
}

pub(super) fn param<'q>(query: &'q Query, name: &'static str) -> Result<&'q str, Rejection> {
    query.get(name).ok_or(Rejection::MissingParameter(name))
}

/// The query's `timestamp` (unix seconds) must be within `skew_s` of now, in either direction, to the
/// millisecond: the last instant accepted is [`window_end_ms`].
pub(super) fn check_timestamp(timestamp: &str, now_ms: u64, skew_s: u64) -> Result<(), Rejection> {
    let sent_ms = timestamp_ms(timestamp)?;
    if sent_ms.abs_diff(now_ms) > skew_s.saturating_mul(1000) {
        return Err(Rejection::StaleTimestamp);
    }
    Ok(())
}

fn timestamp_ms(timestamp: &str) -> Result<u64, Rejection> {
    timestamp
        .parse::<u64>()
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .ok_or(Rejection::StaleTimestamp)
}

/// The last millisecond at which a request signed with `timestamp` is still accepted.
pub(super) fn window_end_ms(timestamp: &str, skew_s: u64) -> Result<u64, Rejection> {
    Ok(timestamp_ms(timestamp)?.saturating_add(skew_s.saturating_mul(1000)))
}

/// The replay guard of a verified query whose signature covers `timestamp`, `nonce` and the token but not the
/// body (WeChat plaintext mode): the key is SHA-256 over `timestamp \n nonce \n signature` (the signature in
/// lowercase, since any case of the hex is accepted), the digest SHA-256 of the raw body, both hex; the guard
/// lasts to the end of the timestamp window. Call after [`check_timestamp`] succeeded.
pub(super) fn query_replay_guard(
    timestamp: &str,
    nonce: &str,
    signature: &str,
    body: &[u8],
    skew_s: u64,
) -> Result<ReplayGuard, Rejection> {
    let signature = signature.to_ascii_lowercase();
    let key = crypto::sha256(&[
        timestamp.as_bytes(),
        b"\n",
        nonce.as_bytes(),
        b"\n",
        signature.as_bytes(),
    ]);
    Ok(ReplayGuard {
        key: crypto::hex_encode(&key),
        body_digest: crypto::hex_encode(&crypto::sha256(&[body])),
        expires_at_ms: window_end_ms(timestamp, skew_s)?,
    })
}

#[cfg(feature = "tooling")]
/// What `sign` uses when an option is not given: derived from the body and timestamp, so the same command
/// always produces the same request.
pub(super) struct SignDefaults {
    pub timestamp: String,
    pub nonce: String,
    pub random: [u8; 16],
    /// Digits, for a handshake's echostr.
    pub echo: String,
}

#[cfg(feature = "tooling")]
pub(super) fn sign_defaults(params: &SignParams) -> Result<SignDefaults, ToolingError> {
    let timestamp = params
        .option("timestamp")
        .map_or_else(|| params.now_s.to_string(), str::to_owned);
    let seed = crypto::sha256(&[&params.body, b"\n", timestamp.as_bytes()]);
    let hex = crypto::hex_encode(&seed);
    let random_text = match params.option("random") {
        Some(random) => random.to_owned(),
        None => hex.chars().take(16).collect(),
    };
    let random: [u8; 16] =
        random_text
            .as_bytes()
            .try_into()
            .map_err(|_| ToolingError::InvalidOption {
                option: "random",
                why: "must be exactly 16 bytes",
            })?;
    let number = |skip: usize, digits: usize| -> String {
        seed.iter()
            .skip(skip)
            .take(digits)
            .map(|byte| char::from(b'0' + byte % 10))
            .collect()
    };
    let nonce = params
        .option("nonce")
        .map_or_else(|| number(16, 10), str::to_owned);
    let echo = params
        .option("echostr")
        .map_or_else(|| number(0, 19), str::to_owned);
    Ok(SignDefaults {
        timestamp,
        nonce,
        random,
        echo,
    })
}

#[cfg(feature = "tooling")]
/// `--token`, or the CLI's generic `--secret`.
pub(super) fn sign_token(params: &SignParams) -> Result<&str, ToolingError> {
    params
        .option("token")
        .or_else(|| params.option("secret"))
        .ok_or(ToolingError::MissingOption("token"))
}

#[cfg(feature = "tooling")]
pub(super) fn sign_key(params: &SignParams) -> Result<AesKey, ToolingError> {
    AesKey::from_encoding_aes_key(params.required("aes-key")?).map_err(|_| {
        ToolingError::InvalidOption {
            option: "aes-key",
            why: "must be a 43-character EncodingAESKey",
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_outside_the_window_are_stale() {
        assert_eq!(check_timestamp("1000", 1_300_000, 300), Ok(()));
        assert_eq!(check_timestamp("1000", 700_000, 300), Ok(()));
        assert_eq!(
            check_timestamp("1000", 1_301_000, 300),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            check_timestamp("1000", 699_000, 300),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            check_timestamp("abc", 1_000_000, 300),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(
            check_timestamp("-5", 0, 300),
            Err(Rejection::StaleTimestamp)
        );
    }

    /// Values computed independently with Python's hashlib:
    /// sha256(b"1409735669\n1320562132\n16120ec1b8dbb870f510d87ce6bc2463eae6ca1a") and sha256(b"<xml/>").
    #[test]
    fn replay_guard_identifies_the_signed_query_and_the_body() {
        let signature = "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a";
        let guard =
            query_replay_guard("1409735669", "1320562132", signature, b"<xml/>", 300).unwrap();
        assert_eq!(
            guard,
            ReplayGuard {
                key: "960e51d9848271fd4f54dfd907f9509922cb0b60f61d8154144eefeb181c7020".into(),
                body_digest: "6eb820e0f9762c611c2a77189f686afeca64dfb212e023017e0346e7ab826c39"
                    .into(),
                expires_at_ms: 1_409_735_969_000,
            }
        );
        let upper = signature.to_ascii_uppercase();
        let same = query_replay_guard("1409735669", "1320562132", &upper, b"<xml/>", 300).unwrap();
        assert_eq!(same, guard);
        // The separators keep the parts apart: moving a character between nonce and timestamp is another key.
        let moved =
            query_replay_guard("140973566", "91320562132", signature, b"<xml/>", 300).unwrap();
        assert_ne!(moved.key, guard.key);
        assert_eq!(window_end_ms("1409735669", 0), Ok(1_409_735_669_000));
        // Absurd timestamps never overflow.
        assert_eq!(
            window_end_ms(&u64::MAX.to_string(), 1),
            Err(Rejection::StaleTimestamp)
        );
        assert_eq!(window_end_ms("18446744073709551", u64::MAX), Ok(u64::MAX));
        assert_eq!(check_timestamp("1", 0, u64::MAX), Ok(()));
    }
}
