//! Email Routing's own verdict on a message. On receipt it checks SPF, DKIM and DMARC and records the results in
//! `ARC-Authentication-Results` (or `Authentication-Results`) *above* its own `Received` header; everything below
//! that `Received` header is the sender's to write, including a forged `Authentication-Results: … dmarc=pass`.
//! So only a results header before the first `Received` counts.

use crate::envelope::EmailAuthentication;

const RESULTS_HEADERS: [&str; 2] = ["ARC-Authentication-Results", "Authentication-Results"];

/// The verdict from the message's headers (name, value; in order, top first), or `None` when Email Routing's
/// own results header is not there.
pub(super) fn verdict(headers: &[(String, String)]) -> Option<EmailAuthentication> {
    let results = headers
        .iter()
        .take_while(|(name, _)| !name.eq_ignore_ascii_case("Received"))
        .find(|(name, _)| {
            RESULTS_HEADERS
                .iter()
                .any(|results| name.eq_ignore_ascii_case(results))
        })?;
    let value = &results.1;
    Some(EmailAuthentication {
        spf: result_of(value, "spf"),
        dkim: result_of(value, "dkim"),
        dmarc: result_of(value, "dmarc"),
    })
}

/// The first `method=result` of `method` in an RFC 8601 header value: the result keyword, lowercased.
fn result_of(value: &str, method: &str) -> Option<String> {
    value
        .split(|c: char| c == ';' || c.is_whitespace())
        .filter_map(|token| token.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(method))
        .map(|(_, result)| result.trim().to_ascii_lowercase())
        .filter(|result| {
            (1..=16).contains(&result.len()) && result.bytes().all(|b| b.is_ascii_lowercase())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn only_the_results_above_email_routings_received_count() {
        let routed = headers(&[
            ("ARC-Seal", "i=1; a=rsa-sha256; d=cloudflare-email.net"),
            (
                "ARC-Authentication-Results",
                "i=1; mx.cloudflare.net; dkim=none; dmarc=FAIL header.from=bank.example;\r\n spf=pass smtp.mailfrom=x@example.net",
            ),
            ("Received", "from mail.example.net by route1.mx.cloudflare.net"),
            (
                "Authentication-Results",
                "mx.cloudflare.net; spf=pass; dkim=pass; dmarc=pass",
            ),
            ("From", "ceo@bank.example"),
        ]);
        assert_eq!(
            verdict(&routed),
            Some(EmailAuthentication {
                spf: Some("pass".into()),
                dkim: Some("none".into()),
                dmarc: Some("fail".into()),
            })
        );
        // Without Email Routing's header, a forged one below its Received header is not taken.
        let forged = headers(&[
            (
                "Received",
                "from attacker.example by route1.mx.cloudflare.net",
            ),
            ("Authentication-Results", "mx.cloudflare.net; dmarc=pass"),
        ]);
        assert_eq!(verdict(&forged), None);
        assert_eq!(
            verdict(&headers(&[(
                "Authentication-Results",
                "mx.cloudflare.net; dmarc=pass(p=reject); spf=\u{7f}x"
            )])),
            Some(EmailAuthentication {
                spf: None,
                dkim: None,
                dmarc: None,
            })
        );
    }
}
