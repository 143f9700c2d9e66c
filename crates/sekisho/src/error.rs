//! Every way a request can be refused, each mapped to one HTTP status and one machine-readable reason.

use http::StatusCode;

/// Why a request was refused. The [`reason`](Rejection::reason) goes to the caller as `{"error":"<reason>"}`;
/// the `Display` text is for the operator's log and never contains a secret or the body.
/// What is wrong with a binding (the admin's log line says it after the binding's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigProblem {
    #[error("is missing or invalid")]
    MissingOrInvalid,
    #[error("is neither standard-webhooks nor bearer")]
    UnknownScheme,
    #[error("is unset, and the secrets mix whsec_ keys and Bearer tokens")]
    MixedSecrets,
    #[error("is bearer, but the secrets hold a whsec_ signing secret")]
    SigningSecretAsBearer,
    #[error("must hold whsec_ base64 secrets for standard-webhooks")]
    NotSigningSecrets,
    #[error("name the same address (one address, one account)")]
    AddressInSeveralAccounts,
    #[error("is over {max_ms} ms, more than the provider waits for its answer")]
    OverProviderDeadline { max_ms: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no route matches the path")]
    RouteNotFound,
    #[error("the account has no configuration")]
    UnknownAccount,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("signature header or parameter is missing")]
    MissingSignature,
    #[error("signature does not match any configured secret")]
    InvalidSignature,
    #[error("the account has an encryption key, but the request is not encrypted and signed over its body")]
    EncryptionRequired,
    #[error("timestamp is missing, malformed or outside the allowed skew")]
    StaleTimestamp,
    #[error("the bot id header does not match the configured bot id")]
    BotIdMismatch,
    #[error("the handshake verify token does not match")]
    VerifyTokenMismatch,
    #[error("required parameter `{0}` is missing")]
    MissingParameter(&'static str),
    #[error("parameter `{0}` is not valid")]
    InvalidParameter(&'static str),
    #[error(
        "this signed query was already used with another body (it does not authenticate the body)"
    )]
    ReplayedSignature,
    #[error("another request is accepting the same event right now; the provider should retry")]
    ClaimInProgress,
    #[error("body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("message over a structural limit: {0}")]
    MimeBound(#[from] crate::mail::MimeBound),
    #[error("body is not valid {expected}")]
    MalformedBody { expected: &'static str },
    #[error("decryption failed: {0}")]
    Decrypt(#[from] crate::crypto::DecryptError),
    #[error("binding `{binding}` {problem}")]
    /// `binding` names the binding (several, comma-separated, for [`ConfigProblem::AddressInSeveralAccounts`]).
    Misconfigured {
        binding: String,
        problem: ConfigProblem,
    },
    #[error("admin token missing or wrong")]
    Unauthorized,
    #[error("the attachment link is not genuine")]
    InvalidLink,
    #[error("the attachment link has expired")]
    LinkExpired,
    #[error("the event queue did not accept the events; the provider should retry")]
    EnqueueFailed,
    #[error("no account is configured for this recipient address")]
    UnknownRecipient,
    #[error("the normalized event would be {size} bytes, over the queue's limit of {limit}")]
    EventTooLarge { size: usize, limit: usize },
    #[error("the account registry could not be read; the provider should retry")]
    RegistryUnavailable,
    #[error("too many look-ups of unknown accounts in this isolate; the provider should retry")]
    RegistryBusy,
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::RouteNotFound | Rejection::UnknownAccount | Rejection::UnknownRecipient => {
                StatusCode::NOT_FOUND
            }
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::MissingSignature
            | Rejection::InvalidSignature
            | Rejection::EncryptionRequired
            | Rejection::StaleTimestamp
            | Rejection::BotIdMismatch
            | Rejection::ReplayedSignature
            | Rejection::Unauthorized => StatusCode::UNAUTHORIZED,
            Rejection::VerifyTokenMismatch | Rejection::InvalidLink | Rejection::LinkExpired => {
                StatusCode::FORBIDDEN
            }
            Rejection::MissingParameter(_)
            | Rejection::InvalidParameter(_)
            | Rejection::MalformedBody { .. }
            | Rejection::Decrypt(_) => StatusCode::BAD_REQUEST,
            Rejection::PayloadTooLarge { .. }
            | Rejection::EventTooLarge { .. }
            | Rejection::MimeBound(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Misconfigured { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Rejection::EnqueueFailed
            | Rejection::ClaimInProgress
            | Rejection::RegistryUnavailable
            | Rejection::RegistryBusy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A binding that is missing or holds a value that cannot be used.
    pub fn misconfigured(binding: impl Into<String>) -> Rejection {
        Rejection::misconfigured_because(binding, ConfigProblem::MissingOrInvalid)
    }

    pub fn misconfigured_because(binding: impl Into<String>, problem: ConfigProblem) -> Rejection {
        Rejection::Misconfigured {
            binding: binding.into(),
            problem,
        }
    }

    /// The short reason sent to the caller. An unknown route and an unknown account share `not_found`, so a
    /// caller cannot probe which accounts exist.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::RouteNotFound | Rejection::UnknownAccount => "not_found",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::MissingSignature => "missing_signature",
            Rejection::InvalidSignature => "invalid_signature",
            Rejection::EncryptionRequired => "encryption_required",
            Rejection::StaleTimestamp => "stale_timestamp",
            Rejection::BotIdMismatch => "bot_id_mismatch",
            Rejection::VerifyTokenMismatch => "verify_token_mismatch",
            Rejection::MissingParameter(_) => "missing_parameter",
            Rejection::InvalidParameter(_) => "invalid_parameter",
            Rejection::ReplayedSignature => "replayed_signature",
            Rejection::ClaimInProgress => "claim_in_progress",
            Rejection::PayloadTooLarge { .. } => "payload_too_large",
            Rejection::MalformedBody { .. } => "malformed_body",
            Rejection::MimeBound(bound) => bound.reason(),
            Rejection::Decrypt(e) => e.reason(),
            Rejection::Misconfigured { .. } => "misconfigured",
            Rejection::Unauthorized => "unauthorized",
            Rejection::InvalidLink => "invalid_link",
            Rejection::LinkExpired => "link_expired",
            Rejection::EnqueueFailed => "enqueue_failed",
            Rejection::UnknownRecipient => "unknown_recipient",
            Rejection::EventTooLarge { .. } => "event_too_large",
            Rejection::RegistryUnavailable => "registry_unavailable",
            Rejection::RegistryBusy => "registry_busy",
        }
    }

    /// The JSON body sent to the caller.
    pub fn body(&self) -> String {
        format!("{{\"error\":\"{}\"}}", self.reason())
    }
}
