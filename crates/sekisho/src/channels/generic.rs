//! Generic webhooks, for any sender that can sign or set a header.
//!
//! Each account uses exactly one of two schemes (`GENERIC_{ACCOUNT}_SCHEME`, see [`AuthScheme`]); the other is
//! never accepted, so a leaked signature-verification secret is not also a static password:
//! - `standard-webhooks`: `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,<base64>` entries),
//!   verified with [`SigningKeys`] against every configured `whsec_` secret, 300 s tolerance both ways.
//! - `bearer`: `Authorization: Bearer <secret>`, for senders that can only add a fixed header (SATORI's webhook
//!   settings).
//!
//! A JSON body becomes one `webhook.received` event, a form body one `form.submitted` event whose `raw` is an
//! object of the form's fields.

#[cfg(test)]
use http::Method;

#[cfg(feature = "tooling")]
use super::form::FORM_CONTENT_TYPE;
use super::form::{form_object, is_form};
use super::Verdict;
use super::{text_at, Channel, ChannelRequest};
use crate::config::field::{FieldSpec, Format};
#[cfg(feature = "tooling")]
use crate::config::split_values;
use crate::config::Account;
use crate::crypto;
use crate::crypto::standard_webhooks::{ReceiveError, SigningKeys};
use crate::envelope::Raw;
use crate::envelope::{EventData, EventParts, Verification};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::{ConfigProblem, Rejection};

pub struct Generic;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
const SECRET: &str = "SECRET";
pub const SCHEME_FIELD: &str = "SCHEME";
/// The prefix of a Standard Webhooks signing secret.
const SIGNING_SECRET_PREFIX: &str = "whsec_";
const STANDARD_WEBHOOKS_SCHEME: &str = "standard-webhooks";
const BEARER_SCHEME: &str = "bearer";

impl Channel for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn account_field(&self) -> &'static str {
        SECRET
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("SECRET", Format::Token { min: 16, max: 256 }).help(
                "送信元と共有する鍵（whsec_… なら Standard Webhooks、それ以外は Bearer）",
                "The key shared with the sender (whsec_… for Standard Webhooks, else Bearer)",
            ),
            FieldSpec::setting(
                "SCHEME",
                Format::OneOf {
                    values: &["standard-webhooks", "bearer"],
                },
            )
            .help("署名方式", "The signing scheme"),
        ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values(SECRET)?;
        let (verification, webhook) = match AuthScheme::of(account, &secrets)? {
            AuthScheme::StandardWebhooks => {
                let keys = signing_keys(account, &secrets)?;
                let (verification, webhook) = verify_standard_webhooks(request, &keys)?;
                (verification, Some(webhook))
            }
            AuthScheme::Bearer => (verify_bearer(request, &secrets)?, None),
        };

        let (event_type, body, raw) = if is_form(request.header("content-type")) {
            let form = form_object(request.body);
            let raw = Raw::rendered(&form);
            ("form.submitted", form, raw)
        } else {
            let (json, raw) = super::json_body(request.body, "JSON or form-urlencoded")?;
            ("webhook.received", json, raw)
        };
        // Standard Webhooks payloads carry their own `type` by convention.
        let provider_type = text_at(&body, &["type"]).unwrap_or_else(|| {
            if event_type == "form.submitted" {
                "form"
            } else {
                "webhook"
            }
            .to_owned()
        });
        let (dedupe_key, time_ms) = match webhook {
            Some((id, sent_s)) => (id, sent_s.saturating_mul(1000)),
            None => (super::content_hash_key(request.body), request.now_ms),
        };
        Ok(Verdict::accepted(vec![EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms,
            data: EventData::new(provider_type, verification, raw),
        }]))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Generic {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        let content_type = params
            .option("content-type")
            .unwrap_or_else(|| sniff_content_type(&params.body));
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        let bearer = match params.option("bearer") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => {
                return Err(ToolingError::InvalidOption {
                    option: "bearer",
                    why: "expected true or false",
                })
            }
        };
        if bearer {
            headers.push(("authorization".to_owned(), format!("Bearer {secret}")));
            return Ok(SignedRequest::post(headers, params.body.clone()));
        }
        let keys =
            SigningKeys::parse(&split_values(secret)).map_err(|_| ToolingError::InvalidOption {
                option: "secret",
                why: "not a whsec_ base64 secret",
            })?;
        let timestamp = match params.option("timestamp") {
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| ToolingError::InvalidOption {
                    option: "timestamp",
                    why: "not unix seconds",
                })?,
            None => params.now_s,
        };
        // Without --webhook-id, the same body gets the same id, so re-sending it is deduplicated downstream.
        let webhook_id = params
            .option("webhook-id")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let digest = crypto::hex_encode(&crypto::sha256(&[&params.body]));
                format!("msg_{}", digest.get(..32).unwrap_or(&digest))
            });
        headers.push((ID_HEADER.to_owned(), webhook_id.clone()));
        headers.push((TIMESTAMP_HEADER.to_owned(), timestamp.to_string()));
        headers.push((
            SIGNATURE_HEADER.to_owned(),
            keys.signature(&webhook_id, timestamp, &params.body),
        ));
        Ok(SignedRequest::post(headers, params.body.clone()))
    }
}

/// How an account's sender authenticates. Exactly one per account: the other scheme is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    StandardWebhooks,
    Bearer,
}

impl AuthScheme {
    /// `GENERIC_{ACCOUNT}_SCHEME` when set (`standard-webhooks` or `bearer`, case-insensitive). Unset, it follows
    /// from the secrets: all `whsec_` → Standard Webhooks, none → Bearer, a mix → misconfigured. A `whsec_` value
    /// is never a Bearer password, even with `bearer` set: that is a misconfiguration too.
    pub fn of(account: &Account<'_>, secrets: &[String]) -> Result<AuthScheme, Rejection> {
        let signing_secrets = secrets
            .iter()
            .filter(|secret| secret.starts_with(SIGNING_SECRET_PREFIX))
            .count();
        let misconfigured =
            |problem| Rejection::misconfigured_because(account.binding_name(SCHEME_FIELD), problem);
        let scheme = match account.field(SCHEME_FIELD) {
            Some(value) if value.eq_ignore_ascii_case(STANDARD_WEBHOOKS_SCHEME) => {
                AuthScheme::StandardWebhooks
            }
            Some(value) if value.eq_ignore_ascii_case(BEARER_SCHEME) => AuthScheme::Bearer,
            Some(_) => return Err(misconfigured(ConfigProblem::UnknownScheme)),
            None if signing_secrets == secrets.len() => AuthScheme::StandardWebhooks,
            None if signing_secrets == 0 => AuthScheme::Bearer,
            None => return Err(misconfigured(ConfigProblem::MixedSecrets)),
        };
        if scheme == AuthScheme::Bearer && signing_secrets > 0 {
            return Err(misconfigured(ConfigProblem::SigningSecretAsBearer));
        }
        Ok(scheme)
    }
}

/// Every configured secret as a Standard Webhooks key, in order (so `key_index` is the secret's position).
fn signing_keys(account: &Account<'_>, secrets: &[String]) -> Result<Vec<SigningKeys>, Rejection> {
    secrets
        .iter()
        .map(|secret| SigningKeys::parse(&[secret]))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            Rejection::misconfigured_because(
                account.binding_name(SECRET),
                ConfigProblem::NotSigningSecrets,
            )
        })
}

/// The verification, the `webhook-id` and the signed timestamp (unix seconds).
fn verify_standard_webhooks(
    request: &ChannelRequest<'_>,
    keys: &[SigningKeys],
) -> Result<(Verification, (String, u64)), Rejection> {
    let signature = request
        .header(SIGNATURE_HEADER)
        .ok_or(Rejection::MissingSignature)?;
    let id = request
        .header(ID_HEADER)
        .ok_or(Rejection::MissingSignature)?;
    let timestamp = request
        .header(TIMESTAMP_HEADER)
        .ok_or(Rejection::StaleTimestamp)?;
    let sent_s: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Rejection::StaleTimestamp)?;
    let now_s = request.now_ms / 1000;
    for (key_index, key) in keys.iter().enumerate() {
        match key.verify(id, timestamp, signature, request.body, now_s) {
            Ok(()) => {
                let verification = Verification {
                    scheme: STANDARD_WEBHOOKS_SCHEME.to_owned(),
                    key_index,
                };
                return Ok((verification, (id.to_owned(), sent_s)));
            }
            Err(ReceiveError::BadTimestamp) => return Err(Rejection::StaleTimestamp),
            Err(ReceiveError::BadSignature) => {}
        }
    }
    Err(Rejection::InvalidSignature)
}

fn verify_bearer(
    request: &ChannelRequest<'_>,
    secrets: &[String],
) -> Result<Verification, Rejection> {
    let authorization = request
        .header("authorization")
        .ok_or(Rejection::MissingSignature)?;
    let (scheme, token) = authorization
        .trim()
        .split_once(' ')
        .ok_or(Rejection::InvalidSignature)?;
    // RFC 9110 §11.1: the auth scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::InvalidSignature);
    }
    let key_index = crypto::matching_secret(secrets, token.trim().as_bytes())
        .ok_or(Rejection::InvalidSignature)?;
    Ok(Verification {
        scheme: BEARER_SCHEME.to_owned(),
        key_index,
    })
}

#[cfg(feature = "tooling")]
fn sniff_content_type(body: &[u8]) -> &'static str {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => "application/json",
        _ => FORM_CONTENT_TYPE,
    }
}

#[cfg(test)]
mod tests;
