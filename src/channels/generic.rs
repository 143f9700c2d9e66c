//! Generic webhooks, for any sender that can sign or set a header.
//!
//! Two ways to authenticate, tried in this order:
//! - Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,<base64>` entries), verified
//!   with [`SigningKeys`] against every configured `whsec_` secret, 300 s tolerance both ways.
//! - `Authorization: Bearer <secret>`, for senders that can only add a fixed header (SATORI's webhook settings).
//!
//! A JSON body becomes one `webhook.received` event, a form body one `form.submitted` event whose `raw` is an
//! object of the form's fields.

use http::Method;
use serde_json::{Map, Value};

use super::{text_at, Channel, ChannelRequest, EdgeResponse, Handled};
use crate::config::{split_values, Account};
use crate::crypto;
use crate::envelope::{Event, EventData, EventParts, Verification};
use crate::forward::{ReceiveError, SigningKeys};
use crate::tooling::{SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Generic;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
const SECRET: &str = "SECRET";
const STANDARD_WEBHOOKS_SCHEME: &str = "standard-webhooks";
const BEARER_SCHEME: &str = "bearer";
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

impl Channel for Generic {
    fn name(&self) -> &'static str {
        "generic"
    }

    fn account_field(&self) -> &'static str {
        SECRET
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Handled, Rejection> {
        request.require_no_extra_path()?;
        request.require_method(Method::POST)?;
        let secrets = account.required_values(SECRET)?;
        let (verification, webhook) = authenticate(request, &secrets)?;

        let (event_type, raw) = if is_form(request.header("content-type")) {
            ("form.submitted", form_object(request.body))
        } else {
            let json =
                serde_json::from_slice(request.body).map_err(|_| Rejection::MalformedBody {
                    expected: "JSON or form-urlencoded",
                })?;
            ("webhook.received", json)
        };
        // Standard Webhooks payloads carry their own `type` by convention.
        let provider_type = text_at(&raw, &["type"]).unwrap_or_else(|| {
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
        let data = EventData {
            email: None,
            ordering: None,
            provider_type,
            conversation: None,
            sender: None,
            message: None,
            postback: None,
            reply: None,
            members: Vec::new(),
            verification,
            raw,
        };
        let parts = EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms,
            data,
        };
        let events = vec![Event::new(self.name(), account.name, parts)];
        Ok(Handled {
            response: EdgeResponse::accepted(events.len()),
            events, replay_guard: None,
        })
    }

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

/// The verification, and for Standard Webhooks the `webhook-id` and timestamp.
fn authenticate(
    request: &ChannelRequest<'_>,
    secrets: &[String],
) -> Result<(Verification, Option<(String, u64)>), Rejection> {
    if let Some(signature) = request.header(SIGNATURE_HEADER) {
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
        for (key_index, secret) in secrets.iter().enumerate() {
            // A value that is not a `whsec_` key can only be a Bearer secret.
            let Ok(keys) = SigningKeys::parse(&[secret]) else {
                continue;
            };
            match keys.verify(id, timestamp, signature, request.body, now_s) {
                Ok(()) => {
                    let verification = Verification {
                        scheme: STANDARD_WEBHOOKS_SCHEME.to_owned(),
                        key_index,
                    };
                    return Ok((verification, Some((id.to_owned(), sent_s))));
                }
                Err(ReceiveError::BadTimestamp) => return Err(Rejection::StaleTimestamp),
                Err(ReceiveError::BadSignature) => {}
            }
        }
        return Err(Rejection::InvalidSignature);
    }
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
    Ok((
        Verification {
            scheme: BEARER_SCHEME.to_owned(),
            key_index,
        },
        None,
    ))
}

pub(crate) fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE))
    })
}

fn sniff_content_type(body: &[u8]) -> &'static str {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') => "application/json",
        _ => FORM_CONTENT_TYPE,
    }
}

/// A form body as a JSON object of its fields (`+` is a space here: this is HTML form encoding). A field given
/// more than once becomes an array of its values, in order.
pub(crate) fn form_object(body: &[u8]) -> Value {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(name.as_ref()) {
            None => {
                fields.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        }
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
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
        let demo = DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: None,
            headers,
            body,
            now_ms,
        };
        test_support::run(&Generic, &config(secrets), demo)
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
        let secrets = format!("{BEARER_SECRET} whsec_bmV3LXNlY3JldA== {SW_SECRET}");
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
                key_index: 2
            }
        );
        assert_eq!(
            event.data.raw,
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
        // A Bearer-only secret cannot verify a Standard Webhooks signature.
        assert_eq!(
            run(BEARER_SECRET, &sw_headers(SW_SIGNATURE), body, SW_NOW_MS).unwrap_err(),
            Rejection::InvalidSignature
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
            event.data.raw,
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
            let secrets = format!("{SW_SECRET} {BEARER_SECRET}");
            let mut headers = vec![("authorization", authorization.as_str()), ("content-type", content_type.as_str())];
            if standard {
                headers.extend([(ID_HEADER, id.as_str()), (TIMESTAMP_HEADER, timestamp.as_str()), (SIGNATURE_HEADER, signature.as_str())]);
            }
            let _ = run(&secrets, &headers, &body, now_ms);
            // Authenticated, so arbitrary bodies reach the body decoding.
            let bearer = format!("Bearer {BEARER_SECRET}");
            let _ = run(&secrets, &[("authorization", &bearer), ("content-type", &content_type)], &body, now_ms);
        }
    }
}
