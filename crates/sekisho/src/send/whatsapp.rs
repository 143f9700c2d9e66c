//! WhatsApp Cloud API: `POST {META_API_BASE}/{version}/{PHONE_NUMBER_ID}/messages` with the account's access
//! token as a bearer token. Text goes as a `text` message with `preview_url` off (no link preview the backend
//! did not ask for); WhatsApp has no mentions, and no escape for its `*bold*`-style formatting, which it shows
//! as it shows any text a user types.
//!
//! Errors are Graph API error objects, classified by `error.code` whatever the HTTP status (Meta answers some
//! rate limits with 400): throughput and pair rate limits → rate limited, Meta's "something went wrong" and
//! unavailable codes → temporary, everything else (e.g. 131047, a message outside the 24-hour customer service
//! window) → permanent.

use serde_json::{json, Value};

use super::contract::utf16_len;
use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct WhatsApp;

const API_BASE_BINDING: &str = "META_API_BASE";
const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
/// The Graph API version, as the CLI's default; `META_GRAPH_VERSION` (`v24.0`-like) overrides it.
const GRAPH_VERSION_BINDING: &str = "META_GRAPH_VERSION";
const DEFAULT_GRAPH_VERSION: &str = "v24.0";
const PHONE_NUMBER_ID: &str = "PHONE_NUMBER_ID";
const ACCESS_TOKEN: &str = "ACCESS_TOKEN";
/// A text message body holds at most 4,096 characters (counted here in UTF-16 units, never fewer).
const MAX_TEXT: usize = 4_096;
/// 4 (application request limit), 80007 (WhatsApp Business Account rate limit), 130429 (throughput), 131048
/// (spam rate limit), 131056 (business/consumer pair rate limit).
const RATE_LIMIT_CODES: &[u64] = &[4, 80007, 130_429, 131_048, 131_056];
/// 1 and 2 (unknown/service error), 131000 (something went wrong), 131016 (service unavailable), 131057
/// (account in maintenance mode), 133004 (server temporarily unavailable).
const TEMPORARY_CODES: &[u64] = &[1, 2, 131_000, 131_016, 131_057, 133_004];

/// A WhatsApp id (`wa_id`, the `from` of a received message) or a phone number with `+`.
fn is_wa_id(id: &str) -> bool {
    let digits = id.strip_prefix('+').unwrap_or(id);
    (5..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_graph_version(version: &str) -> bool {
    version.strip_prefix('v').is_some_and(|rest| {
        rest.split_once('.').is_some_and(|(major, minor)| {
            [major, minor].iter().all(|part| {
                (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
            })
        })
    })
}

impl Sender for WhatsApp {
    fn channel(&self) -> &'static str {
        "whatsapp"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &[PHONE_NUMBER_ID, ACCESS_TOKEN]
    }

    /// Conversation and user are the same `wa_id` (WhatsApp Cloud API conversations are one-to-one).
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        if !is_wa_id(to.id()) {
            return Err(SendError::InvalidRecipient);
        }
        let message = match message {
            Outbound::Text(text) => {
                let text = plain_text(text, usize::MAX);
                within_limit(&text, MAX_TEXT, "utf16", utf16_len)?;
                json!({
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": to.id(),
                    "type": "text",
                    "text": { "preview_url": false, "body": text },
                })
            }
            // The message object (`type` and its object: `image`, `template`, `interactive`, …); the product
            // and recipient are always this send's.
            Outbound::Raw(raw) => {
                let Some(kind) = raw.get("type").and_then(Value::as_str) else {
                    return Err(SendError::InvalidRaw(
                        "a WhatsApp message object needs a `type`",
                    ));
                };
                if !raw.get(kind).is_some_and(Value::is_object) {
                    return Err(SendError::InvalidRaw(
                        "a WhatsApp message needs the object its `type` names",
                    ));
                }
                if let Some(body) = raw.get("text").and_then(|text| text.get("body")) {
                    let body = body
                        .as_str()
                        .ok_or(SendError::InvalidRaw("`text.body` must be a string"))?;
                    within_limit(body, MAX_TEXT, "utf16", utf16_len)?;
                }
                let mut raw = raw.clone();
                raw.insert("messaging_product".into(), Value::from("whatsapp"));
                raw.insert("to".into(), Value::from(to.id()));
                raw.entry("recipient_type")
                    .or_insert_with(|| Value::from("individual"));
                Value::Object(raw)
            }
        };
        Ok(message.to_string())
    }

    fn request(
        &self,
        _job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        _token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let phone_number_id = credential(self, account, PHONE_NUMBER_ID)?;
        if !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SendError::NotConfigured {
                field: PHONE_NUMBER_ID,
            });
        }
        let token = credential(self, account, ACCESS_TOKEN)?;
        let bindings = account.bindings();
        let base = api_base(bindings, API_BASE_BINDING, DEFAULT_API_BASE);
        let version = bindings
            .get(GRAPH_VERSION_BINDING)
            .map(|v| v.trim().to_owned())
            .filter(|v| is_graph_version(v))
            .unwrap_or_else(|| DEFAULT_GRAPH_VERSION.to_owned());
        Ok(ProviderRequest::post_json(
            format!("{base}/{version}/{phone_number_id}/messages"),
            vec![("authorization".into(), format!("Bearer {token}"))],
            payload.to_owned(),
        ))
    }

    /// `200 {"messaging_product":"whatsapp","contacts":[…],"messages":[{"id":"wamid.…"}]}`; errors
    /// `{"error":{"message":…,"type":…,"code":…,"error_data":{"details":…},"fbtrace_id":…}}`.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        let error = body.get("error").filter(|error| error.is_object());
        if (200..300).contains(&answer.status) && error.is_none() {
            return SendOutcome::Sent {
                message_id: body
                    .pointer("/messages/0/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            };
        }
        let Some(error) = error else {
            return by_status(answer, Failure::new(answer.status.to_string(), ""));
        };
        let code = crate::channels::u64_at(error, &["code"]);
        let message = error.get("message").and_then(Value::as_str).unwrap_or("");
        let failure = Failure::new(
            code.map_or_else(|| answer.status.to_string(), |code| code.to_string()),
            match error.pointer("/error_data/details").and_then(Value::as_str) {
                Some(details) if !details.is_empty() => format!("{message}: {details}"),
                _ => message.to_owned(),
            },
        );
        match code {
            Some(code) if RATE_LIMIT_CODES.contains(&code) => SendOutcome::RateLimited {
                wait_s: answer.requested_wait_s(),
                failure,
            },
            Some(code) if TEMPORARY_CODES.contains(&code) => SendOutcome::Temporary(failure),
            Some(_) if (200..300).contains(&answer.status) => SendOutcome::Permanent(failure),
            _ => by_status(answer, failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Failure, SendOutcome};

    const TOKEN: &str = "EAAJB3Example0AccessToken0123456789";

    fn configured(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env = env(&[
            (
                "WHATSAPP_ACME_APP_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("WHATSAPP_ACME_PHONE_NUMBER_ID", "106540352242922"),
            ("WHATSAPP_ACME_ACCESS_TOKEN", TOKEN),
        ]);
        env.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        env
    }

    #[test]
    fn a_text_is_the_documented_text_message() {
        let (_, request) = first_request(
            "whatsapp",
            json!({"to":{"conversation":"16505551234"},"message":{"text":"see https://example.com *now*"}}),
            &configured(&[]),
            None,
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://graph.facebook.com/v24.0/106540352242922/messages"
        );
        assert_eq!(
            header(&request, "authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        assert_eq!(
            body_json(&request),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "text",
                "text": {"preview_url": false, "body": "see https://example.com *now*"},
            })
        );
        assert!(!format!("{request:?}").contains(TOKEN));
    }

    #[test]
    fn the_base_and_version_are_bindings_and_raw_keeps_its_type() {
        let env = configured(&[
            ("META_API_BASE", "http://127.0.0.1:9/"),
            ("META_GRAPH_VERSION", "v23.0"),
        ]);
        let (_, request) = first_request(
            "whatsapp",
            json!({"to":{"user":"+16505551234"},"message":{"raw":{"type":"template","template":{"name":"hello_world","language":{"code":"en_US"}},"to":"19999999999","messaging_product":"x"}}}),
            &env,
            None,
        )
        .unwrap();
        assert_eq!(
            request.url,
            "http://127.0.0.1:9/v23.0/106540352242922/messages"
        );
        assert_eq!(
            body_json(&request),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "+16505551234",
                "type": "template",
                "template": {"name": "hello_world", "language": {"code": "en_US"}},
            })
        );
        // A version of another shape is ignored.
        let env = configured(&[("META_GRAPH_VERSION", "24.0/../x")]);
        let (_, request) = first_request(
            "whatsapp",
            json!({"to":{"user":"16505551234"},"message":{"text":"x"}}),
            &env,
            None,
        )
        .unwrap();
        assert!(request.url.contains("/v24.0/"), "{}", request.url);
    }

    #[test]
    fn limits_shapes_and_credentials() {
        let env = configured(&[]);
        let refused = |body, env: &HashMap<String, String>| {
            first_request("whatsapp", body, env, None)
                .unwrap_err()
                .body()
        };
        for bad in ["abc", "1234", "+1-650-555", "1234567890123456"] {
            assert_eq!(
                refused(json!({"to":{"user":bad},"message":{"text":"x"}}), &env),
                r#"{"error":"invalid_recipient"}"#,
                "{bad}"
            );
        }
        assert_eq!(
            refused(
                json!({"to":{"user":"16505551234"},"message":{"text":"a".repeat(4097)}}),
                &env
            ),
            r#"{"error":"text_too_long","limit":4096,"unit":"utf16"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"user":"16505551234"},"message":{"raw":{"type":"text","text":{"body":"a".repeat(4097)}}}}),
                &env
            ),
            r#"{"error":"text_too_long","limit":4096,"unit":"utf16"}"#
        );
        for raw in [json!({"text":{"body":"x"}}), json!({"type":"image"})] {
            assert_eq!(
                refused(
                    json!({"to":{"user":"16505551234"},"message":{"raw":raw}}),
                    &env
                ),
                r#"{"error":"invalid_raw"}"#
            );
        }
        let inbound_only = super::super::test_support::env(&[(
            "WHATSAPP_ACME_APP_SECRET",
            "0123456789abcdef0123456789abcdef",
        )]);
        assert_eq!(
            refused(
                json!({"to":{"user":"16505551234"},"message":{"text":"x"}}),
                &inbound_only
            ),
            r#"{"error":"not_configured","field":"PHONE_NUMBER_ID"}"#
        );
    }

    #[test]
    fn answers_are_classified_by_their_graph_error_code() {
        assert_eq!(
            classify(
                "whatsapp",
                200,
                r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some(
                    "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA".into()
                )
            }
        );
        let error = |code: u64, message: &str, details: &str| {
            json!({"error":{"message":message,"type":"OAuthException","code":code,"error_data":{"messaging_product":"whatsapp","details":details},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}).to_string()
        };
        assert_eq!(
            classify(
                "whatsapp",
                400,
                &error(
                    131047,
                    "(#131047) Re-engagement message",
                    "Message failed to send because more than 24 hours have passed since the customer last replied to this number."
                ),
                None
            ),
            SendOutcome::Permanent(Failure::new(
                "131047",
                "(#131047) Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number."
            ))
        );
        for code in [130429, 80007, 131056] {
            assert!(
                matches!(
                    classify(
                        "whatsapp",
                        400,
                        &error(code, "(#130429) Rate limit hit", ""),
                        Some("30")
                    ),
                    SendOutcome::RateLimited {
                        wait_s: Some(30),
                        ..
                    }
                ),
                "{code}"
            );
        }
        assert_eq!(
            classify(
                "whatsapp",
                500,
                &error(131000, "Something went wrong", ""),
                None
            ),
            SendOutcome::Temporary(Failure::new("131000", "Something went wrong"))
        );
        assert_eq!(
            classify(
                "whatsapp",
                401,
                &error(190, "Error validating access token", ""),
                None
            ),
            SendOutcome::Permanent(Failure::new("190", "Error validating access token"))
        );
        assert!(matches!(
            classify("whatsapp", 502, "<html>", None),
            SendOutcome::Temporary(_)
        ));
        assert!(matches!(
            classify("whatsapp", 429, "", None),
            SendOutcome::RateLimited { .. }
        ));
    }
}
