//! Performing an [`ApiRequest`]: a blocking HTTPS client (ureq with rustls). No redirects are followed (a
//! redirect would carry the credentials elsewhere), answers are read up to [`MAX_ANSWER_BYTES`], and transport
//! errors are reported without the URL (Telegram's URL contains the bot token).

use std::io::Read;
use std::time::Duration;

use super::{ApiBody, ApiRequest, ApiResponse};

const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not reach {host}: {kind}")]
pub(crate) struct TransportFailed {
    host: String,
    kind: String,
}

/// `scheme://host[:port]` of a URL, the only part of it that may be shown.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}

pub(crate) fn perform(request: &ApiRequest) -> Result<ApiResponse, TransportFailed> {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(TIMEOUT)
        .user_agent(concat!("sekisho/", env!("CARGO_PKG_VERSION")))
        .build();
    let mut call = agent.request(request.method.as_str(), &request.url);
    for (name, value) in &request.headers {
        call = call.set(name, value);
    }
    let result = match &request.body {
        ApiBody::None => call.call(),
        ApiBody::Json(value) => call
            .set("content-type", "application/json")
            .send_string(&value.to_string()),
        ApiBody::Form(fields) => {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call.send_form(&pairs)
        }
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(transport)) => {
            return Err(TransportFailed {
                host: origin(&request.url),
                kind: transport.kind().to_string(),
            })
        }
    };
    let status = response.status();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| TransportFailed {
            host: origin(&request.url),
            kind: e.kind().to_string(),
        })?;
    Ok(ApiResponse { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_origin_of_a_url_is_shown() {
        assert_eq!(
            origin("https://api.telegram.org/bot123:secret/setWebhook"),
            "https://api.telegram.org"
        );
        assert_eq!(origin("http://127.0.0.1:9/x?y"), "http://127.0.0.1:9");
    }
}
