//! What Twilio signs: the URL it called (in each form Twilio has signed it) and the form parameters in Twilio's
//! order.

use serde_json::{Map, Value};

use super::WEBHOOK_URL;
use crate::channels::ChannelRequest;
use crate::config::Account;
use crate::crypto;
use crate::Rejection;

/// The URL Twilio signed: the one this request arrived at, or the account's `WEBHOOK_URL` (origin and path)
/// followed by the query exactly as received.
pub(super) fn signed_url(
    request: &ChannelRequest<'_>,
    account: &Account<'_>,
) -> Result<String, Rejection> {
    match account.field(WEBHOOK_URL) {
        None => Ok(request.url()),
        Some(pinned) if is_public_base_url(&pinned) => Ok(match request.raw_query {
            Some(query) => format!("{pinned}?{query}"),
            None => pinned,
        }),
        Some(_) => Err(Rejection::misconfigured(account.binding_name(WEBHOOK_URL))),
    }
}

/// `WEBHOOK_URL` is `http(s)://host[:port][/path]`: no query (that comes from the request, where Twilio adds
/// `bodySHA256`), no fragment, no white space.
fn is_public_base_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        !rest.is_empty()
            && !rest.starts_with('/')
            && !url.contains(['?', '#'])
            && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

/// Which auth token signed `url` (in one of the forms [`url_variants`] lists) followed by `suffix`; 0 = newest.
pub(super) fn verify(
    tokens: &[String],
    url: &str,
    suffix: &[u8],
    signature: &str,
) -> Result<usize, Rejection> {
    let tag = crypto::base64_decode(signature).ok_or(Rejection::InvalidSignature)?;
    url_variants(url)
        .iter()
        .filter_map(|variant| {
            crypto::hmac_sha1_matches(tokens, &[variant.as_bytes(), suffix], &tag)
        })
        .min()
        .ok_or(Rejection::InvalidSignature)
}

/// The forms of one URL that Twilio's own validators accept, because Twilio has signed each: without a port,
/// and with one (the scheme's default `:443`/`:80` when the URL has none). When the query holds a quote, each
/// again with it written the other way (`'` ↔ `%27`): Twilio signs a `'` of the configured URL as is, while URL
/// parsers, workerd's among them, escape it in a query (twilio-node accepts both, twilio/twilio-node#1059).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = match split_authority(url) {
        Some(parts) => {
            let default_port = if parts.scheme.eq_ignore_ascii_case("https") {
                "443"
            } else {
                "80"
            };
            let port = parts.port.unwrap_or(default_port);
            let (scheme, userinfo, host, tail) =
                (parts.scheme, parts.userinfo, parts.host, parts.tail);
            vec![
                format!("{scheme}://{userinfo}{host}{tail}"),
                format!("{scheme}://{userinfo}{host}:{port}{tail}"),
            ]
        }
        None => vec![url.to_owned()],
    };
    let quote_swapped = |query: &str| {
        if query.contains("%27") {
            Some(query.replace("%27", "'"))
        } else if query.contains('\'') {
            Some(query.replace('\'', "%27"))
        } else {
            None
        }
    };
    let swapped: Vec<String> = variants
        .iter()
        .filter_map(|variant| {
            let (before, query) = variant.split_once('?')?;
            Some(format!("{before}?{}", quote_swapped(query)?))
        })
        .collect();
    variants.extend(swapped);
    variants
}

struct UrlParts<'a> {
    scheme: &'a str,
    /// `user:password@` or empty.
    userinfo: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    /// Path, query and fragment.
    tail: &'a str,
}

fn split_authority(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    // A port is all digits after the last `:` (in an IPv6 literal such as `[::1]` the last `:` is followed by `1]`).
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (host_port, None),
    };
    Some(UrlParts {
        scheme,
        userinfo,
        host,
        port,
        tail,
    })
}

/// `bodySHA256` (hex) names the SHA-256 of exactly these bytes; compared in constant time.
pub(super) fn body_matches(body_sha256: &str, body: &[u8]) -> bool {
    crypto::hex_decode(body_sha256)
        .is_some_and(|expected| crypto::secrets_equal(&expected, &crypto::sha256(&[body])))
}

/// The POST parameters as Twilio signs them: sorted by name, then by value, bytewise, and a value repeated
/// under one name counted once (as in Twilio's validators). Values are form-decoded (`+` is a space): Twilio
/// signs the decoded text.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(body: &[u8]) -> Params {
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        Params(pairs)
    }

    /// How many name/value pairs were signed.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// What follows the URL in the signed string: every name immediately followed by its value.
    pub(super) fn signed_suffix(&self) -> Vec<u8> {
        let mut suffix = Vec::new();
        for (name, value) in &self.0 {
            suffix.extend_from_slice(name.as_bytes());
            suffix.extend_from_slice(value.as_bytes());
        }
        suffix
    }

    /// A parameter Twilio sends once, when not empty; `None` when absent, empty, or given with several values.
    pub(super) fn one(&self, name: &str) -> Option<&str> {
        let start = self.0.partition_point(|(n, _)| n.as_str() < name);
        match self.0.get(start..).unwrap_or_default() {
            [(first, value), rest @ ..]
                if first == name
                    && !value.is_empty()
                    && rest.first().is_none_or(|(n, _)| n != name) =>
            {
                Some(value)
            }
            _ => None,
        }
    }

    /// `data.raw`: the signed parameters, each a string, or an array of its distinct values when given several.
    pub(super) fn to_json(&self) -> Value {
        let mut fields = Map::new();
        for (name, value) in &self.0 {
            let value = Value::String(value.clone());
            match fields.get_mut(name) {
                None => {
                    fields.insert(name.clone(), value);
                }
                Some(Value::Array(values)) => values.push(value),
                Some(first) => {
                    let first_value = first.take();
                    *first = Value::Array(vec![first_value, value]);
                }
            }
        }
        Value::Object(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms_keep_credentials_and_ipv6_hosts() {
        assert_eq!(
            url_variants("http://[::1]:8787/twilio/demo?a=1"),
            [
                "http://[::1]/twilio/demo?a=1",
                "http://[::1]:8787/twilio/demo?a=1"
            ]
        );
        assert_eq!(
            url_variants("https://u:p@[::1]/x"),
            ["https://u:p@[::1]/x", "https://u:p@[::1]:443/x"]
        );
        assert_eq!(url_variants("HTTPS://h"), ["HTTPS://h", "HTTPS://h:443"]);
        assert_eq!(
            url_variants("https://h/x?q=it's"),
            [
                "https://h/x?q=it's",
                "https://h:443/x?q=it's",
                "https://h/x?q=it%27s",
                "https://h:443/x?q=it%27s"
            ]
        );
        assert_eq!(url_variants("no scheme"), ["no scheme"]);
    }

    #[test]
    fn parameters_sort_by_name_then_value_and_count_a_repeated_value_once() {
        let params = Params::parse(b"b=2&a=z&a=y&a=z&c=&d=x+y%2B");
        assert_eq!(params.signed_suffix(), b"ayazb2cdx y+");
        assert_eq!(
            (
                params.one("b"),
                params.one("a"),
                params.one("c"),
                params.one("d")
            ),
            (Some("2"), None, None, Some("x y+"))
        );
        assert_eq!(
            params.to_json(),
            serde_json::json!({"a": ["y", "z"], "b": "2", "c": "", "d": "x y+"})
        );
    }
}
