//! Building requests that channels accept: what `sekisho sign` and `sekisho send` use, and what tests use to
//! produce signed requests from fixtures. Compiled only natively (not into the Worker).

use std::collections::BTreeMap;

use http::Method;

/// Building a request a channel accepts, signed with the given secrets: what `sekisho sign`/`send` and the
/// tests use. Native only: the Worker carries no request-signing code.
pub trait Sign {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError>;
}

/// Inputs for [`Sign::sign`]: the body and named options
/// (`secret`, `timestamp`, `bot-id`, …), exactly as given on the command line.
#[derive(Debug, Default, Clone)]
pub struct SignParams {
    pub body: Vec<u8>,
    pub options: BTreeMap<String, String>,
    /// Seconds since the Unix epoch, for channels that sign a timestamp.
    pub now_s: u64,
}

impl SignParams {
    pub fn option(&self, name: &'static str) -> Option<&str> {
        self.options.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &'static str) -> Result<&str, ToolingError> {
        self.option(name).ok_or(ToolingError::MissingOption(name))
    }
}

/// A request ready to send to `/{channel}/{account}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub method: Method,
    /// Segments appended after `/{channel}/{account}`.
    pub extra_path: Vec<String>,
    /// Query parameters, not yet percent-encoded.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SignedRequest {
    pub fn post(headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        SignedRequest {
            method: Method::POST,
            extra_path: Vec::new(),
            query: Vec::new(),
            headers,
            body,
        }
    }

    /// `?k=v&…` with every reserved character percent-encoded (so `+` survives).
    pub fn query_string(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let encoded: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, NON_ALPHANUMERIC),
                    utf8_percent_encode(v, NON_ALPHANUMERIC)
                )
            })
            .collect();
        if encoded.is_empty() {
            String::new()
        } else {
            format!("?{}", encoded.join("&"))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolingError {
    #[error("option --{0} is required for this channel")]
    MissingOption(&'static str),
    #[error("option --{option} is invalid: {why}")]
    InvalidOption {
        option: &'static str,
        why: &'static str,
    },
    #[error("unknown channel `{0}`")]
    UnknownChannel(String),
}
