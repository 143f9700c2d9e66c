//! The parts of a request URL the gateway reads — origin, path, query — taken from the URL string the runtime
//! hands over. workerd gives every request's URL already parsed and serialized by the WHATWG URL rules (scheme
//! and host lower-cased, host punycoded, default port dropped, dot segments resolved, path and query
//! percent-encoded, no fragment), so splitting that string gives what parsing it again with the `url` crate
//! gives (a test checks this on generated URLs). The Worker thus carries neither the `url` crate's parser nor
//! the IDNA and Unicode tables it pulls in (about 70 KB of the gzipped upload).

/// A request URL split into the parts the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUrl<'a> {
    /// `scheme://host[:port]` (what `url::Url::origin().ascii_serialization()` gives), `null` for a scheme
    /// without a tuple origin.
    pub origin: String,
    /// From the first `/` after the authority, up to `?` or `#`; `/` when empty in a special URL.
    pub path: &'a str,
    /// After the first `?`, up to `#`.
    pub query: Option<&'a str>,
}

/// Schemes whose origin is `scheme://host[:port]`; any other scheme has an opaque origin (`null`).
const TUPLE_ORIGIN_SCHEMES: &[&str] = &["http", "https", "ws", "wss", "ftp"];
/// The WHATWG "special" schemes, whose serialized path is never empty.
const SPECIAL_SCHEMES: &[&str] = &["http", "https", "ws", "wss", "ftp", "file"];

impl<'a> RequestUrl<'a> {
    /// Splits a serialized absolute URL with an authority (`scheme://authority/path?query#fragment`); `None` for
    /// anything else (the runtime never hands over such a URL).
    pub fn parse(url: &'a str) -> Option<RequestUrl<'a>> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme_is_valid = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_is_valid {
            return None;
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, after_authority) = rest.split_at(authority_end);
        // The fragment is never part of the path or the query.
        let without_fragment = after_authority
            .split_once('#')
            .map_or(after_authority, |(before, _)| before);
        let (path, query) = match without_fragment.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (without_fragment, None),
        };
        // A special URL (http, https, …) always has a path, at least `/`.
        let path = if path.is_empty() && SPECIAL_SCHEMES.contains(&scheme) {
            "/"
        } else {
            path
        };
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        if host.is_empty() {
            return None;
        }
        let origin = if TUPLE_ORIGIN_SCHEMES.contains(&scheme) {
            format!("{scheme}://{host}")
        } else {
            "null".to_owned()
        };
        Some(RequestUrl {
            origin,
            path,
            query,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::RequestUrl;

    /// What the gateway read from the `url` crate before: the same three parts of the parsed URL.
    fn by_url_crate(url: &url::Url) -> (String, String, Option<String>) {
        (
            url.origin().ascii_serialization(),
            url.path().to_owned(),
            url.query().map(str::to_owned),
        )
    }

    fn split(serialized: &str) -> (String, String, Option<String>) {
        let split = RequestUrl::parse(serialized).unwrap();
        (
            split.origin,
            split.path.to_owned(),
            split.query.map(str::to_owned),
        )
    }

    #[test]
    fn urls_as_the_runtime_serializes_them_split_like_the_url_crate_parses_them() {
        // Request URLs as workerd handed them over (tests/e2e, raw requests with odd targets).
        for url in [
            "http://example.com:443/y/z?q=%27%22%3C%3E`",
            "http://example.com:443/p?",
            "http://example.com:443/p",
            "http://example.com:443/%7e%41%2F?x=%7e",
            "http://example.com:443/%C3%A9?%C3%A9=%C3%BC",
            "http://example.com:443//double//slash?a",
            "https://gw.example.workers.dev/line/acme",
            "https://gw.example/wechat/acme?signature=a+b/c%3D&timestamp=1&nonce=2&echostr=x",
            "http://127.0.0.1:8787/healthz",
            "http://[::1]:8787/generic/acme?x=1#frag",
            "https://xn--r8jz45g.example/line/acme",
            "https://user:pass@example.com/p?q",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            assert_eq!(split(parsed.as_str()), by_url_crate(&parsed), "{url}");
        }
    }

    #[test]
    fn what_is_not_an_absolute_url_with_a_host_is_refused() {
        for url in [
            "",
            "/line/acme",
            "example.com/p",
            "://x/",
            "1http://x/",
            "http:///p",
        ] {
            assert_eq!(RequestUrl::parse(url), None, "{url:?}");
        }
    }

    fn url_like() -> impl Strategy<Value = String> {
        let scheme = prop::sample::select(vec!["http", "https", "HTTP", "wss", "ftp", "foo"]);
        let userinfo = prop::option::of("[a-z:%]{0,6}@");
        let host = prop_oneof![
            "[a-zA-Z0-9.-]{1,20}",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
            Just("[::1]".to_owned()),
            Just("[2001:DB8::a]".to_owned()),
            "[a-z]{1,5}\\.\\PC{1,4}\\.jp",
        ];
        let port = prop::option::of(0u32..70000);
        let rest = "[/?#a-zA-Z0-9%._~!$&'()*+,;=:@\\[\\]{}|^`\"<> \\\\\\PC-]{0,40}";
        (scheme, userinfo, host, port, rest).prop_map(|(scheme, userinfo, host, port, rest)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{scheme}://{}{host}{port}{rest}",
                userinfo.unwrap_or_default()
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]
        #[test]
        fn any_url_the_url_crate_serializes_splits_like_it_parses(raw in url_like()) {
            // The runtime hands over serialized URLs only: whatever parses, as it serializes.
            if let Ok(parsed) = url::Url::parse(&raw) {
                if parsed.has_host() {
                    prop_assert_eq!(split(parsed.as_str()), by_url_crate(&parsed), "{}", raw);
                }
            }
        }
    }
}
