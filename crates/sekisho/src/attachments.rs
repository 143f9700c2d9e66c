//! E-mail attachments kept in R2 and served by the Worker through signed, expiring links. Everything decided here
//! is pure: which parts are stored under which key (within the size caps), the link (`GET /attachments/{key}?
//! exp=…&sig=…`, HMAC-SHA256 with `ATTACHMENT_URL_SECRET`), its verification, and the answer's headers. The edge
//! only puts and gets the R2 objects.
//!
//! Keys are `{event id}/{index of the attachment}`: the event id derives from the message's de-duplication key
//! (Message-ID + content digest), so a message delivered again maps to the same keys and is not stored twice.

use crate::config::{self, Bindings};
use crate::crypto;
use crate::Rejection;

/// The R2 bucket binding. Without it attachments are not stored (metadata only, as before).
pub const BUCKET_BINDING: &str = "ATTACHMENTS";
/// The HMAC key(s) of the links, newest first; at least [`SECRET_MIN_CHARS`] characters each.
pub const URL_SECRET_BINDING: &str = "ATTACHMENT_URL_SECRET";
/// The Worker's public origin the links point at, e.g. `https://sekisho.example.workers.dev`.
pub const URL_BASE_BINDING: &str = "ATTACHMENT_URL_BASE";
pub const URL_TTL_BINDING: &str = "ATTACHMENT_URL_TTL_S";
pub const DEFAULT_URL_TTL_S: u64 = 7 * 24 * 3600;
pub const MAX_BYTES_BINDING: &str = "ATTACHMENT_MAX_BYTES";
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
pub const MAX_MESSAGE_BYTES_BINDING: &str = "ATTACHMENT_MAX_MESSAGE_BYTES";
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 20 * 1024 * 1024;
/// Attachments stored per message; the rest are listed without a link. Each stored part is one R2 write before
/// the message is acknowledged: 20 keeps a message within the free plan's 50 subrequests per invocation.
pub const MAX_PARTS_BINDING: &str = "ATTACHMENT_MAX_PARTS";
pub const DEFAULT_MAX_PARTS: usize = 20;
/// `ATTACHMENT_MAX_PARTS` above this is taken as this (the paid plan allows 1,000 subrequests).
pub const MAX_PARTS_LIMIT: usize = 200;
pub const SECRET_MIN_CHARS: usize = 32;
pub const ROUTE_PREFIX: &str = "/attachments/";

/// How links are made: the secrets (newest first), the origin, their lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    secrets: Vec<String>,
    base: String,
    ttl_s: u64,
}

impl Links {
    /// The link settings, or the binding that is missing or invalid.
    pub fn from_bindings(bindings: &dyn Bindings) -> Result<Links, Rejection> {
        let secrets =
            link_secrets(bindings)?.ok_or_else(|| Rejection::misconfigured(URL_SECRET_BINDING))?;
        let base = bindings
            .get(URL_BASE_BINDING)
            .map(|base| base.trim().trim_end_matches('/').to_owned())
            .filter(|base| {
                (base.starts_with("https://") || base.starts_with("http://"))
                    && !base.contains(|c: char| c.is_whitespace() || c == '?' || c == '#')
            })
            .ok_or_else(|| Rejection::misconfigured(URL_BASE_BINDING))?;
        let ttl_s = match bindings.get(URL_TTL_BINDING) {
            None => DEFAULT_URL_TTL_S,
            Some(value) => value
                .trim()
                .parse()
                .ok()
                .filter(|&ttl| ttl > 0)
                .ok_or_else(|| Rejection::misconfigured(URL_TTL_BINDING))?,
        };
        Ok(Links {
            secrets,
            base,
            ttl_s,
        })
    }

    /// The link to `key`, valid until `now_s` + the lifetime, signed with the newest secret.
    pub fn link(&self, key: &str, now_s: u64) -> Option<String> {
        let secret = self.secrets.first()?;
        let exp = now_s.saturating_add(self.ttl_s);
        Some(format!(
            "{}{ROUTE_PREFIX}{key}?exp={exp}&sig={}",
            self.base,
            signature(secret, key, exp)
        ))
    }
}

/// `None` when no secret is configured; a value shorter than [`SECRET_MIN_CHARS`] is a misconfiguration.
fn link_secrets(bindings: &dyn Bindings) -> Result<Option<Vec<String>>, Rejection> {
    let Some(raw) = bindings.get(URL_SECRET_BINDING) else {
        return Ok(None);
    };
    let secrets = config::split_values(&raw);
    if secrets.is_empty() || secrets.iter().any(|s| s.chars().count() < SECRET_MIN_CHARS) {
        return Err(Rejection::misconfigured(URL_SECRET_BINDING));
    }
    Ok(Some(secrets))
}

/// base64url (no padding) of HMAC-SHA256(secret, `{key}\n{exp}`).
fn signature(secret: &str, key: &str, exp: u64) -> String {
    let tag = crypto::hmac_sha256(
        secret.as_bytes(),
        &[key.as_bytes(), b"\n", exp.to_string().as_bytes()],
    );
    crypto::base64_encode(&tag)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn decode_signature(sig: &str) -> Option<Vec<u8>> {
    if sig.len() != 43
        || !sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    crypto::base64_decode(&format!("{}=", sig.replace('-', "+").replace('_', "/")))
}

/// The key of the `index`-th attachment of the event `event_id`.
pub fn object_key(event_id: &str, index: usize) -> String {
    format!("{event_id}/{index}")
}

fn is_object_key(key: &str) -> bool {
    let Some((event_id, index)) = key.split_once('/') else {
        return false;
    };
    event_id.len() == 36
        && event_id.starts_with("evt_")
        && event_id
            .bytes()
            .skip(4)
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && (1..=4).contains(&index.len())
        && index.bytes().all(|b| b.is_ascii_digit())
}

/// The caps: bytes per attachment, bytes per message (the sum of what is stored), attachments per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub max_bytes: u64,
    pub max_message_bytes: u64,
    pub max_parts: usize,
}

impl Caps {
    pub fn from_bindings(bindings: &dyn Bindings) -> Caps {
        let read = |name, default| {
            bindings
                .get(name)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let max_parts = read(MAX_PARTS_BINDING, DEFAULT_MAX_PARTS as u64);
        Caps {
            max_bytes: read(MAX_BYTES_BINDING, DEFAULT_MAX_BYTES),
            max_message_bytes: read(MAX_MESSAGE_BYTES_BINDING, DEFAULT_MAX_MESSAGE_BYTES),
            max_parts: usize::try_from(max_parts)
                .unwrap_or(MAX_PARTS_LIMIT)
                .min(MAX_PARTS_LIMIT),
        }
    }

    /// Which of the attachments (their sizes, in order) are stored: each within the per-attachment cap, in order
    /// while the total stays within the per-message cap (a later smaller one may still fit), the first
    /// `max_parts` of those.
    pub fn select(&self, sizes: &[u64]) -> Vec<bool> {
        let mut total: u64 = 0;
        let mut parts = 0;
        sizes
            .iter()
            .map(|&size| {
                let fits = parts < self.max_parts
                    && size <= self.max_bytes
                    && total.saturating_add(size) <= self.max_message_bytes;
                if fits {
                    total += size;
                    parts += 1;
                }
                fits
            })
            .collect()
    }
}

/// One attachment to put into the bucket before the message is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub key: String,
    pub content_type: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// A request for `/attachments/…` whose link is genuine and unexpired: the key to answer from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub key: String,
}

/// A request for `/attachments/{key}` ([`crate::route::Route::Attachment`]). The signature is checked before
/// anything else is looked at, so an unknown key and a forged link get the same answer; without a secret the
/// route does not exist.
pub fn admit(
    method: &http::Method,
    key: &str,
    query: Option<&str>,
    bindings: &dyn Bindings,
    now_s: u64,
) -> Result<Fetch, Rejection> {
    verify(method, key, query.unwrap_or_default(), bindings, now_s)
}

fn verify(
    method: &http::Method,
    key: &str,
    query: &str,
    bindings: &dyn Bindings,
    now_s: u64,
) -> Result<Fetch, Rejection> {
    let secrets = link_secrets(bindings)?.ok_or(Rejection::RouteNotFound)?;
    if method != http::Method::GET && method != http::Method::HEAD {
        return Err(Rejection::MethodNotAllowed);
    }
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    let exp = param("exp")
        .filter(|exp| (1..=20).contains(&exp.len()) && exp.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|exp| exp.parse::<u64>().ok());
    let tag = param("sig").and_then(decode_signature);
    let (Some(exp), Some(tag)) = (exp, tag) else {
        return Err(Rejection::InvalidLink);
    };
    if !is_object_key(key) {
        return Err(Rejection::InvalidLink);
    }
    let exp_text = exp.to_string();
    let signed = [key.as_bytes(), b"\n", exp_text.as_bytes()];
    crypto::hmac_sha256_matches(&secrets, &signed, &tag).ok_or(Rejection::InvalidLink)?;
    if exp < now_s {
        return Err(Rejection::LinkExpired);
    }
    Ok(Fetch {
        key: key.to_owned(),
    })
}

/// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266, RFC 5987): an ASCII fallback for old clients
/// (every other character `_`) and the exact name percent-encoded as UTF-8, which every current browser uses.
pub fn content_disposition(filename: Option<&str>) -> String {
    let Some(name) = filename.filter(|name| !name.trim().is_empty()) else {
        return "attachment".to_owned();
    };
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'!'
            | b'#'
            | b'$'
            | b'&'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~' => encoded.push(char::from(byte)),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The headers of an attachment's answer, besides its content type: a download, never rendered inline or
/// sniffed into something else, and cached only by the one who holds the link.
pub fn response_headers(filename: Option<&str>) -> [(&'static str, String); 4] {
    [
        ("content-disposition", content_disposition(filename)),
        ("x-content-type-options", "nosniff".to_owned()),
        (
            "content-security-policy",
            "default-src 'none'; sandbox".to_owned(),
        ),
        ("cache-control", "private, max-age=300".to_owned()),
    ]
}

/// The content type to answer with: the stored one if it is a plain `type/subtype[; params]`, else
/// `application/octet-stream`.
pub fn served_content_type(stored: Option<&str>) -> String {
    stored
        .filter(|ct| {
            ct.contains('/') && ct.len() <= 200 && ct.bytes().all(|b| (b' '..=b'~').contains(&b))
        })
        .map_or_else(|| "application/octet-stream".to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "attachment-link-secret-0123456789abcdef";
    const OLD: &str = "an-older-attachment-link-secret-9876543210";
    const KEY: &str = "evt_0123456789abcdef0123456789abcdef/1";
    const NOW: u64 = 1_780_000_000;

    fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn configured() -> HashMap<String, String> {
        bindings(&[
            (URL_SECRET_BINDING, &format!("{SECRET},{OLD}")),
            (URL_BASE_BINDING, "https://gw.example/"),
        ])
    }

    fn split(link: &str) -> (String, String) {
        let rest = link.strip_prefix("https://gw.example").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        (path.to_owned(), query.to_owned())
    }

    fn fetch(
        path: &str,
        query: &str,
        b: &HashMap<String, String>,
        now: u64,
    ) -> Result<Fetch, Rejection> {
        admitted(&http::Method::GET, path, Some(query), b, now).unwrap()
    }

    /// [`admit`] as the Worker reaches it: `None` when the router does not send the path here.
    fn admitted(
        method: &http::Method,
        path: &str,
        query: Option<&str>,
        b: &HashMap<String, String>,
        now: u64,
    ) -> Option<Result<Fetch, Rejection>> {
        match crate::route::route(method, path) {
            crate::route::Route::Attachment { key } => Some(admit(method, key, query, b, now)),
            _ => None,
        }
    }

    #[test]
    fn a_link_is_accepted_until_it_expires_and_refused_after() {
        let b = configured();
        let links = Links::from_bindings(&b).unwrap();
        let link = links.link(KEY, NOW).unwrap();
        let (path, query) = split(&link);
        assert_eq!(path, format!("/attachments/{KEY}"));
        assert!(query.starts_with(&format!("exp={}&sig=", NOW + DEFAULT_URL_TTL_S)));
        assert_eq!(fetch(&path, &query, &b, NOW), Ok(Fetch { key: KEY.into() }));
        assert_eq!(
            fetch(&path, &query, &b, NOW + DEFAULT_URL_TTL_S),
            Ok(Fetch { key: KEY.into() })
        );
        assert_eq!(
            fetch(&path, &query, &b, NOW + DEFAULT_URL_TTL_S + 1),
            Err(Rejection::LinkExpired)
        );
    }

    #[test]
    fn tampered_links_are_refused_alike_whatever_was_changed() {
        let b = configured();
        let (path, query) = split(&Links::from_bindings(&b).unwrap().link(KEY, NOW).unwrap());
        let sig = query.split("sig=").nth(1).unwrap().to_owned();
        let mut flipped = sig.clone().into_bytes();
        flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let exp = NOW + DEFAULT_URL_TTL_S;
        for (path, query) in [
            (path.clone(), format!("exp={exp}&sig={flipped}")),
            (path.clone(), format!("exp={}&sig={sig}", exp + 1)),
            (
                "/attachments/evt_0123456789abcdef0123456789abcdef/2".into(),
                query.clone(),
            ),
            (
                "/attachments/evt_ffffffffffffffffffffffffffffffff/1".into(),
                query.clone(),
            ),
            (path.clone(), format!("exp={exp}")),
            (path.clone(), format!("sig={sig}")),
            (path.clone(), format!("exp={exp}&sig={}", &sig[..20])),
            ("/attachments/../secret".into(), query.clone()),
            ("/attachments/".into(), query.clone()),
        ] {
            assert_eq!(
                fetch(&path, &query, &b, NOW),
                Err(Rejection::InvalidLink),
                "{path}?{query}"
            );
        }
        // An expired link with a bad signature says nothing about expiry.
        assert_eq!(
            fetch(&path, &format!("exp={}&sig={flipped}", NOW - 10), &b, NOW),
            Err(Rejection::InvalidLink)
        );
    }

    #[test]
    fn links_signed_with_an_older_secret_still_verify() {
        let old_only = bindings(&[
            (URL_SECRET_BINDING, OLD),
            (URL_BASE_BINDING, "https://gw.example"),
        ]);
        let (path, query) = split(
            &Links::from_bindings(&old_only)
                .unwrap()
                .link(KEY, NOW)
                .unwrap(),
        );
        assert!(fetch(&path, &query, &configured(), NOW).is_ok());
        let new_only = bindings(&[(URL_SECRET_BINDING, SECRET)]);
        assert_eq!(
            fetch(&path, &query, &new_only, NOW),
            Err(Rejection::InvalidLink)
        );
    }

    #[test]
    fn the_route_needs_a_long_secret_and_is_absent_without_one() {
        assert_eq!(
            admitted(&http::Method::GET, "/line/acme", None, &configured(), NOW),
            None
        );
        assert_eq!(
            fetch(&format!("/attachments/{KEY}"), "", &HashMap::new(), NOW),
            Err(Rejection::RouteNotFound)
        );
        let short = bindings(&[(URL_SECRET_BINDING, "short")]);
        assert_eq!(
            fetch(&format!("/attachments/{KEY}"), "", &short, NOW),
            Err(Rejection::misconfigured(URL_SECRET_BINDING))
        );
        assert_eq!(
            admitted(
                &http::Method::POST,
                &format!("/attachments/{KEY}"),
                None,
                &configured(),
                NOW
            ),
            Some(Err(Rejection::MethodNotAllowed))
        );
        assert_eq!(
            Links::from_bindings(&bindings(&[(URL_SECRET_BINDING, SECRET)])),
            Err(Rejection::misconfigured(URL_BASE_BINDING))
        );
        let ttl = bindings(&[
            (URL_SECRET_BINDING, SECRET),
            (URL_BASE_BINDING, "https://gw.example"),
            (URL_TTL_BINDING, "0"),
        ]);
        assert_eq!(
            Links::from_bindings(&ttl),
            Err(Rejection::misconfigured(URL_TTL_BINDING))
        );
    }

    #[test]
    fn japanese_file_names_survive_with_an_ascii_fallback() {
        assert_eq!(
            content_disposition(Some("見積書 2024.pdf")),
            "attachment; filename=\"___ 2024.pdf\"; filename*=UTF-8''%E8%A6%8B%E7%A9%8D%E6%9B%B8%202024.pdf"
        );
        assert_eq!(
            content_disposition(Some("a\"b\\c%.txt")),
            "attachment; filename=\"a_b_c_.txt\"; filename*=UTF-8''a%22b%5Cc%25.txt"
        );
        assert_eq!(content_disposition(None), "attachment");
        assert_eq!(content_disposition(Some("  ")), "attachment");
    }

    #[test]
    fn caps_per_attachment_and_per_message() {
        let caps = Caps {
            max_bytes: 10,
            max_message_bytes: 15,
            max_parts: 10,
        };
        assert_eq!(
            caps.select(&[4, 11, 8, 3, 5]),
            [true, false, true, true, false]
        );
        let defaults = Caps::from_bindings(&HashMap::new());
        assert_eq!(defaults.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(defaults.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(defaults.max_parts, DEFAULT_MAX_PARTS);
    }

    /// 480 one-byte attachments: the first 20 are stored (20 writes), the rest only listed.
    #[test]
    fn parts_stored_per_message_are_capped() {
        let caps = Caps::from_bindings(&HashMap::new());
        let selected = caps.select(&[1; 480]);
        assert_eq!(selected.iter().filter(|&&keep| keep).count(), 20);
        assert!(selected.iter().take(20).all(|&keep| keep));
        let skipping = Caps {
            max_parts: 2,
            ..caps
        };
        assert_eq!(
            skipping.select(&[DEFAULT_MAX_BYTES + 1, 1, 1, 1]),
            [false, true, true, false]
        );
        let configured = |value: &str| {
            Caps::from_bindings(&HashMap::from([(
                MAX_PARTS_BINDING.to_owned(),
                value.to_owned(),
            )]))
            .max_parts
        };
        assert_eq!(configured("5"), 5);
        assert_eq!(configured("100000"), MAX_PARTS_LIMIT);
        assert_eq!(configured("x"), DEFAULT_MAX_PARTS);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Whatever the path and query, nothing panics and nothing but a genuine link is let through.
        #[test]
        fn only_genuine_links_pass(path in "/attachments/[ -~]{0,60}", query in "[ -~]{0,120}") {
            let admitted = admitted(&http::Method::GET, &path, Some(&query), &configured(), NOW).unwrap();
            proptest::prop_assert!(admitted.is_err());
        }
    }

    #[test]
    fn served_types_are_plain_or_octet_stream() {
        assert_eq!(served_content_type(Some("image/png")), "image/png");
        assert_eq!(
            served_content_type(Some("bogus")),
            "application/octet-stream"
        );
        assert_eq!(
            served_content_type(Some("text/html\r\nx: y")),
            "application/octet-stream"
        );
        assert_eq!(served_content_type(None), "application/octet-stream");
    }
}
