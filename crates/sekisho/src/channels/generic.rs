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
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::envelope::event_id;

    /// shared/vectors/standard_webhooks.json `standardwebhooks-sign-1` (the reference libraries' sign test).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TIMESTAMP: &str = "1614265330";
    const SW_NOW_MS: u64 = 1_614_265_330_000;
    const SW_BODY: &str = r#"{"test": 2432232314}"#;
    const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const BEARER_SECRET: &str = "satori-shared-secret-0123456789";

    fn config(secrets: &str) -> HashMap<String, String> {
        HashMap::from([("GENERIC_DEMO_SECRET".to_owned(), secrets.to_owned())])
    }

    fn run(
        secrets: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        now_ms: u64,
    ) -> Result<Handled, Rejection> {
        run_with(&config(secrets), headers, body, now_ms)
    }

    fn run_with(
        config: &HashMap<String, String>,
        headers: &[(&str, &str)],
        body: &[u8],
        now_ms: u64,
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: None,
            headers,
            body,
            now_ms,
        };
        test_support::run(&Generic, config, demo)
    }

    fn sw_headers(signature: &str) -> [(&str, &str); 4] {
        [
            (ID_HEADER, SW_ID),
            (TIMESTAMP_HEADER, SW_TIMESTAMP),
            (SIGNATURE_HEADER, signature),
            ("content-type", "application/json"),
        ]
    }

    #[test]
    fn standard_webhooks_vector_verifies_with_the_webhook_id_as_dedupe_key() {
        let secrets = format!("whsec_bmV3LXNlY3JldA== {SW_SECRET}");
        let handled = run(
            &secrets,
            &sw_headers(SW_SIGNATURE),
            SW_BODY.as_bytes(),
            SW_NOW_MS,
        )
        .unwrap();
        let event = &handled.events[0];
        assert_eq!(event.event_type, "webhook.received");
        assert_eq!(event.id, event_id("generic", "demo", SW_ID));
        assert_eq!(event.time, "2021-02-25T15:02:10.000Z");
        assert_eq!(
            event.data.verification,
            Verification {
                scheme: STANDARD_WEBHOOKS_SCHEME.into(),
                key_index: 1
            }
        );
        assert_eq!(
            event.data.raw.value(),
            serde_json::json!({ "test": 2_432_232_314_u64 })
        );

        let options = [
            ("secret".to_owned(), SW_SECRET.to_owned()),
            ("webhook-id".to_owned(), SW_ID.to_owned()),
            ("timestamp".to_owned(), SW_TIMESTAMP.to_owned()),
        ];
        let request = Generic
            .sign(&SignParams {
                body: SW_BODY.into(),
                options: options.into(),
                now_s: 0,
            })
            .unwrap();
        assert!(request
            .headers
            .contains(&(SIGNATURE_HEADER.to_owned(), SW_SIGNATURE.to_owned())));
    }

    #[test]
    fn standard_webhooks_negatives() {
        let negative = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
        let body = SW_BODY.as_bytes();
        assert_eq!(
            run(SW_SECRET, &sw_headers(negative), body, SW_NOW_MS).unwrap_err(),
            Rejection::InvalidSignature
        );
        assert_eq!(
            run(
                SW_SECRET,
                &sw_headers(SW_SIGNATURE),
                body,
                SW_NOW_MS + 301_000
            )
            .unwrap_err(),
            Rejection::StaleTimestamp
        );
        assert_eq!(
            run(
                SW_SECRET,
                &sw_headers(SW_SIGNATURE),
                body,
                SW_NOW_MS - 301_000
            )
            .unwrap_err(),
            Rejection::StaleTimestamp
        );
        assert!(run(
            SW_SECRET,
            &sw_headers(SW_SIGNATURE),
            body,
            SW_NOW_MS + 300_000
        )
        .is_ok());
        // Another entry in the list may match (rotation on the sender's side).
        let listed = format!("v1,bm90IGl0 {SW_SIGNATURE}");
        assert!(run(SW_SECRET, &sw_headers(&listed), body, SW_NOW_MS).is_ok());
        let without_id = [
            (TIMESTAMP_HEADER, SW_TIMESTAMP),
            (SIGNATURE_HEADER, SW_SIGNATURE),
        ];
        assert_eq!(
            run(SW_SECRET, &without_id, body, SW_NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
        // A Bearer account does not look at Standard Webhooks headers at all.
        assert_eq!(
            run(BEARER_SECRET, &sw_headers(SW_SIGNATURE), body, SW_NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
    }

    #[test]
    fn bearer_secret_and_form_bodies() {
        let form = b"name=Taro+Yamada&email=taro%40example.jp&tag=a&tag=b";
        let authorization = format!("Bearer {BEARER_SECRET}");
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let secrets = format!("newer-secret,{BEARER_SECRET}");
        let handled = run(&secrets, &headers, form, 0).unwrap();
        let event = &handled.events[0];
        assert_eq!(event.event_type, "form.submitted");
        assert_eq!(
            event.id,
            event_id("generic", "demo", &crate::channels::content_hash_key(form))
        );
        assert_eq!(
            event.data.verification,
            Verification {
                scheme: BEARER_SCHEME.into(),
                key_index: 1
            }
        );
        assert_eq!(
            event.data.raw.value(),
            serde_json::json!({ "name": "Taro Yamada", "email": "taro@example.jp", "tag": ["a", "b"] })
        );

        let options = [
            ("secret".to_owned(), BEARER_SECRET.to_owned()),
            ("bearer".to_owned(), "true".to_owned()),
        ];
        let signed = Generic
            .sign(&SignParams {
                body: form.to_vec(),
                options: options.into(),
                now_s: 0,
            })
            .unwrap();
        let headers: Vec<(&str, &str)> = signed
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            run(BEARER_SECRET, &headers, form, 0).unwrap().events[0].event_type,
            "form.submitted"
        );

        let lower = format!("bearer {BEARER_SECRET}");
        assert!(run(BEARER_SECRET, &[("authorization", &lower)], b"[1]", 0).is_ok());
        for wrong in [
            "Bearer satori-shared-secret-012345678",
            "Basic c2F0b3Jp",
            "Bearer",
            BEARER_SECRET,
        ] {
            assert_eq!(
                run(BEARER_SECRET, &[("authorization", wrong)], b"{}", 0).unwrap_err(),
                Rejection::InvalidSignature
            );
        }
        assert_eq!(
            run(BEARER_SECRET, &[], b"{}", 0).unwrap_err(),
            Rejection::MissingSignature
        );
        assert_eq!(
            run(
                BEARER_SECRET,
                &[("authorization", &authorization)],
                b"not json",
                0
            )
            .unwrap_err(),
            Rejection::MalformedBody {
                expected: "JSON or form-urlencoded"
            }
        );
    }

    fn with_scheme(secrets: &str, scheme: &str) -> HashMap<String, String> {
        let mut config = config(secrets);
        config.insert("GENERIC_DEMO_SCHEME".to_owned(), scheme.to_owned());
        config
    }

    fn misconfigured_binding(result: Result<Handled, Rejection>) -> (String, ConfigProblem) {
        match result {
            Err(Rejection::Misconfigured { binding, problem }) => (binding, problem),
            other => panic!("expected misconfigured, got {other:?}"),
        }
    }

    #[test]
    fn a_whsec_signing_secret_is_never_accepted_as_a_bearer_password() {
        let bearer = format!("Bearer {SW_SECRET}");
        let headers = [
            ("authorization", bearer.as_str()),
            ("content-type", "application/json"),
        ];
        // Unset scheme: a whsec_ secret makes a Standard Webhooks account, which wants a signature.
        assert_eq!(
            run(SW_SECRET, &headers, b"{}", SW_NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
        let explicit = with_scheme(SW_SECRET, "standard-webhooks");
        assert_eq!(
            run_with(&explicit, &headers, b"{}", SW_NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
        // Declaring it a Bearer password does not make it one.
        let (binding, problem) = misconfigured_binding(run_with(
            &with_scheme(SW_SECRET, "bearer"),
            &headers,
            b"{}",
            SW_NOW_MS,
        ));
        assert_eq!(binding, "GENERIC_DEMO_SCHEME");
        assert_eq!(problem, ConfigProblem::SigningSecretAsBearer);
    }

    #[test]
    fn a_bearer_account_refuses_standard_webhooks_signatures_made_with_its_token() {
        // `openssl rand -hex 32` output is also valid base64, so it could be read as a signing key.
        let token = "6d2f0b8a1c7e4d3f9a0b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f";
        let keys = SigningKeys::parse(&[token]).unwrap();
        let signature = keys.signature(SW_ID, SW_NOW_MS / 1000, SW_BODY.as_bytes());
        let headers = [
            (ID_HEADER, SW_ID),
            (TIMESTAMP_HEADER, SW_TIMESTAMP),
            (SIGNATURE_HEADER, signature.as_str()),
            ("content-type", "application/json"),
        ];
        assert_eq!(
            run(token, &headers, SW_BODY.as_bytes(), SW_NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
        assert_eq!(
            run_with(
                &with_scheme(token, "Bearer"),
                &headers,
                SW_BODY.as_bytes(),
                SW_NOW_MS
            )
            .unwrap_err(),
            Rejection::MissingSignature
        );
        // Only when the account says so is the token a signing key.
        let signed = run_with(
            &with_scheme(token, "standard-webhooks"),
            &headers,
            SW_BODY.as_bytes(),
            SW_NOW_MS,
        )
        .unwrap();
        assert_eq!(
            signed.events[0].data.verification.scheme,
            "standard-webhooks"
        );
        let bearer = format!("Bearer {token}");
        assert_eq!(
            run_with(
                &with_scheme(token, "standard-webhooks"),
                &[("authorization", bearer.as_str())],
                b"{}",
                SW_NOW_MS
            )
            .unwrap_err(),
            Rejection::MissingSignature
        );
    }

    #[test]
    fn an_invalid_or_ambiguous_scheme_is_a_misconfiguration_naming_the_binding() {
        let bearer = format!("Bearer {BEARER_SECRET}");
        let headers = [("authorization", bearer.as_str())];
        let mixed = format!("{BEARER_SECRET},{SW_SECRET}");
        for (config, names, expected) in [
            (
                config(&mixed),
                "GENERIC_DEMO_SCHEME",
                ConfigProblem::MixedSecrets,
            ),
            (
                with_scheme(BEARER_SECRET, "hmac"),
                "GENERIC_DEMO_SCHEME",
                ConfigProblem::UnknownScheme,
            ),
            (
                with_scheme(BEARER_SECRET, "standard-webhooks,bearer"),
                "GENERIC_DEMO_SCHEME",
                ConfigProblem::UnknownScheme,
            ),
            (
                with_scheme(&mixed, "bearer"),
                "GENERIC_DEMO_SCHEME",
                ConfigProblem::SigningSecretAsBearer,
            ),
            (
                with_scheme(&mixed, "standard-webhooks"),
                "GENERIC_DEMO_SECRET",
                ConfigProblem::NotSigningSecrets,
            ),
            (
                with_scheme(BEARER_SECRET, "standard-webhooks"),
                "GENERIC_DEMO_SECRET",
                ConfigProblem::NotSigningSecrets,
            ),
        ] {
            let (binding, problem) =
                misconfigured_binding(run_with(&config, &headers, b"{}", SW_NOW_MS));
            assert_eq!(binding, names, "{config:?}");
            assert_eq!(problem, expected, "{config:?}");
            assert!(
                !binding.contains(BEARER_SECRET),
                "the log never names a secret"
            );
        }
        // A blank scheme is unset; the value is case-insensitive.
        assert!(run_with(&with_scheme(BEARER_SECRET, " "), &headers, b"{}", 0).is_ok());
        assert!(run_with(&with_scheme(BEARER_SECRET, "BEARER"), &headers, b"{}", 0).is_ok());
    }

    proptest! {
        #[test]
        fn handle_never_panics_on_arbitrary_requests(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            id in "[ -~]{0,20}",
            timestamp in "[ -~]{0,20}",
            signature in "[ -~]{0,80}",
            authorization in "[ -~]{0,60}",
            content_type in prop_oneof![Just("application/x-www-form-urlencoded".to_owned()), "[ -~]{0,30}"],
            now_ms in any::<u64>(),
            standard in any::<bool>(),
        ) {
            let mut headers = vec![("authorization", authorization.as_str()), ("content-type", content_type.as_str())];
            if standard {
                headers.extend([(ID_HEADER, id.as_str()), (TIMESTAMP_HEADER, timestamp.as_str()), (SIGNATURE_HEADER, signature.as_str())]);
            }
            for secrets in [SW_SECRET, BEARER_SECRET] {
                let _ = run(secrets, &headers, &body, now_ms);
            }
            // Authenticated, so arbitrary bodies reach the body decoding.
            let bearer = format!("Bearer {BEARER_SECRET}");
            let _ = run(BEARER_SECRET, &[("authorization", &bearer), ("content-type", &content_type)], &body, now_ms);
        }
    }
}
