//! The admin console page (`GET /admin`): one HTML file with its style and script inline, served with a
//! Content-Security-Policy that allows exactly those two blocks (by their SHA-256), calls to this origin, and
//! nothing else — no CDN, no external fetch, no framing.

use base64::Engine;

use crate::crypto;

pub const PAGE: &str = include_str!("../assets/admin.html");

/// The text between the first `<{tag}>` and its closing tag.
fn inline_block<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = page.find(&open)? + open.len();
    let length = page.get(start..)?.find(&close)?;
    page.get(start..start + length)
}

fn source_hash(block: &str) -> String {
    let digest = crypto::sha256(&[block.as_bytes()]);
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The policy for [`PAGE`].
pub fn content_security_policy(page: &str) -> String {
    let hash = |tag| inline_block(page, tag).map_or("'none'".to_owned(), source_hash);
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash("script"),
        hash("style")
    )
}

/// The response headers of the page.
pub fn headers() -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "text/html; charset=utf-8".to_owned()),
        ("content-security-policy", content_security_policy(PAGE)),
        ("x-content-type-options", "nosniff".to_owned()),
        ("referrer-policy", "no-referrer".to_owned()),
        ("cache-control", "no-store".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let page = "<html><style>a{}</style><script>go()</script></html>";
        let policy = content_security_policy(page);
        assert!(
            policy.contains(&format!("script-src {};", source_hash("go()"))),
            "{policy}"
        );
        assert!(policy.contains(&format!("style-src {};", source_hash("a{}"))));
        assert!(policy.contains("connect-src 'self'"));
        assert!(!policy.contains("unsafe"));
        assert_eq!(content_security_policy("<p>").matches("'none'").count(), 6);
    }

    #[test]
    fn the_page_is_self_contained() {
        assert!(inline_block(PAGE, "script").is_some());
        assert!(inline_block(PAGE, "style").is_some());
        assert_eq!(PAGE.matches("<script").count(), 1, "one inline script");
        for external in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            " style=\"",
        ] {
            assert!(!PAGE.contains(external), "{external}");
        }
    }
}
