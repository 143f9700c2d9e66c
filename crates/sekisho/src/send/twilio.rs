//! Twilio Messages API: `POST {TWILIO_API_BASE}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json`, form-encoded
//! `To`, `Body` and the sender, with HTTP Basic `ACCOUNT_SID:AUTH_TOKEN`.
//!
//! The recipient is the address the Twilio channel names as conversation and sender (`+81…` for SMS,
//! `whatsapp:+81…` for WhatsApp). The inbound event does not keep the number it was sent to, so the sender is
//! the account's `FROM`: a Twilio number (`+…`, prefixed with `whatsapp:` for a WhatsApp recipient when given
//! bare) or a Messaging Service SID (`MG…`, sent as `MessagingServiceSid`).

use serde_json::Value;

use super::contract::utf16_len;
use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct Twilio;

const API_BASE_BINDING: &str = "TWILIO_API_BASE";
const DEFAULT_API_BASE: &str = "https://api.twilio.com";
const ACCOUNT_SID: &str = "ACCOUNT_SID";
const AUTH_TOKEN: &str = "AUTH_TOKEN";
const FROM: &str = "FROM";
const WHATSAPP: &str = "whatsapp:";
/// "Can be up to 1,600 characters in length" (counted here in UTF-16 units, never fewer).
const MAX_BODY: usize = 1_600;
/// Parameters a raw message cannot set: the recipient is always `to`, the sender always the account's.
const FORCED: &[&str] = &["To", "From", "MessagingServiceSid"];

/// `+` and an E.164 number, optionally on WhatsApp.
fn is_address(id: &str) -> bool {
    let number = id.strip_prefix(WHATSAPP).unwrap_or(id);
    number.strip_prefix('+').is_some_and(|digits| {
        (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// A Messaging Service SID: `MG` and 32 hex digits.
fn is_messaging_service(from: &str) -> bool {
    from.len() == 34
        && from.starts_with("MG")
        && from.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// The sender parameter for `to`: a bare number takes the recipient's `whatsapp:` prefix.
fn sender_param(from: &str, to: &str) -> (&'static str, String) {
    if is_messaging_service(from) {
        ("MessagingServiceSid", from.to_owned())
    } else if to.starts_with(WHATSAPP) && from.starts_with('+') {
        ("From", format!("{WHATSAPP}{from}"))
    } else {
        ("From", from.to_owned())
    }
}

/// A raw parameter's value(s): strings, numbers and booleans, or an array of them (`MediaUrl`).
fn raw_values(value: &Value) -> Option<Vec<String>> {
    let scalar = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|value| vec![value]),
    }
}

impl Sender for Twilio {
    fn channel(&self) -> &'static str {
        "twilio"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &[ACCOUNT_SID, AUTH_TOKEN, FROM]
    }

    /// SMS and WhatsApp have no markup to escape (the text goes as typed); conversation and user are the same
    /// address.
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        if !is_address(to.id()) {
            return Err(SendError::InvalidRecipient);
        }
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("To", to.id());
        match message {
            Outbound::Text(text) => {
                let text = plain_text(text, usize::MAX);
                within_limit(&text, MAX_BODY, "utf16", utf16_len)?;
                form.append_pair("Body", &text);
            }
            // The API's own parameters (`Body`, `MediaUrl`, `ContentSid`, `ContentVariables`, …).
            Outbound::Raw(params) => {
                if !["Body", "MediaUrl", "ContentSid"]
                    .iter()
                    .any(|name| params.contains_key(*name))
                {
                    return Err(SendError::InvalidRaw(
                        "a Twilio message needs a `Body`, `MediaUrl` or `ContentSid`",
                    ));
                }
                for (name, value) in params {
                    if FORCED.contains(&name.as_str()) {
                        continue;
                    }
                    let values = raw_values(value).ok_or(SendError::InvalidRaw(
                        "Twilio parameters are strings, numbers, booleans or arrays of them",
                    ))?;
                    if name == "Body" {
                        for body in &values {
                            within_limit(body, MAX_BODY, "utf16", utf16_len)?;
                        }
                    }
                    for value in values {
                        form.append_pair(name, &value);
                    }
                }
            }
        }
        Ok(form.finish())
    }

    fn request(
        &self,
        job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        _token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let sid = credential(self, account, ACCOUNT_SID)?;
        // The newest of the rotating auth tokens.
        let auth_token = account
            .values(AUTH_TOKEN)
            .into_iter()
            .next()
            .filter(|token| token.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or(SendError::NotConfigured { field: AUTH_TOKEN })?;
        let from = credential(self, account, FROM)?;
        let (name, value) = sender_param(&from, job.to.id());
        let mut body = payload.to_owned();
        form_urlencoded::Serializer::for_suffix(&mut body, 0).append_pair(name, &value);
        let base = api_base(account.bindings(), API_BASE_BINDING, DEFAULT_API_BASE);
        let basic = crate::crypto::base64_encode(format!("{sid}:{auth_token}").as_bytes());
        Ok(ProviderRequest {
            method: "POST".into(),
            url: format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"),
            headers: vec![
                ("authorization".into(), format!("Basic {basic}")),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: Some(body),
        })
    }

    /// `201` with the Message resource (`sid`); errors `{"code":21211,"message":"…","more_info":…,"status":400}`.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        if (200..300).contains(&answer.status) {
            return SendOutcome::Sent {
                message_id: crate::channels::text_at(&body, &["sid"]),
            };
        }
        let failure = Failure::new(
            crate::channels::text_at(&body, &["code"]).unwrap_or_else(|| answer.status.to_string()),
            body.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        by_status(answer, failure)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Failure, SendOutcome};

    const SID: &str = "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn configured(from: &str) -> HashMap<String, String> {
        env(&[
            (
                "TWILIO_ACME_AUTH_TOKEN",
                &format!("{TOKEN},fedcba9876543210fedcba9876543210"),
            ),
            ("TWILIO_ACME_ACCOUNT_SID", SID),
            ("TWILIO_ACME_FROM", from),
        ])
    }

    fn form(body: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_text_is_the_documented_create_message_call() {
        let (_, request) = first_request(
            "twilio",
            json!({"to":{"conversation":"+15558675310"},"message":{"text":"McAvoy or Stewart? These timelines can get so confusing."}}),
            &configured("+15017122661"),
            None,
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            format!("https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json")
        );
        // The newest auth token only.
        let expected = crate::crypto::base64_encode(format!("{SID}:{TOKEN}").as_bytes());
        assert_eq!(
            header(&request, "authorization"),
            Some(format!("Basic {expected}").as_str())
        );
        assert_eq!(
            header(&request, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            form(request.body.as_deref().unwrap()),
            pairs(&[
                ("To", "+15558675310"),
                (
                    "Body",
                    "McAvoy or Stewart? These timelines can get so confusing."
                ),
                ("From", "+15017122661"),
            ])
        );
        assert!(!format!("{request:?}").contains(&expected));
    }

    #[test]
    fn whatsapp_recipients_and_messaging_services() {
        let env = configured("+14155238886").into_iter().chain([(
            "TWILIO_API_BASE".to_owned(),
            "http://127.0.0.1:9/".to_owned(),
        )]);
        let (_, request) = first_request(
            "twilio",
            json!({"to":{"user":"whatsapp:+819012345678"},"message":{"text":"ご連絡\r\nありがとうございます\u{7}"}}),
            &env.collect(),
            None,
        )
        .unwrap();
        assert!(request.url.starts_with("http://127.0.0.1:9/2010-04-01/"));
        assert_eq!(
            form(request.body.as_deref().unwrap()),
            pairs(&[
                ("To", "whatsapp:+819012345678"),
                ("Body", "ご連絡\nありがとうございます"),
                ("From", "whatsapp:+14155238886"),
            ])
        );
        let service = "MG0123456789abcdef0123456789abcdef";
        let (_, request) = first_request(
            "twilio",
            json!({"to":{"conversation":"+15558675310"},"message":{"raw":{"ContentSid":"HX0123","ContentVariables":"{\"1\":\"x\"}","MediaUrl":["https://a.test/1.png","https://a.test/2.png"],"To":"+19999999999","From":"+18888888888"}}}),
            &configured(service),
            None,
        )
        .unwrap();
        assert_eq!(
            form(request.body.as_deref().unwrap()),
            pairs(&[
                ("To", "+15558675310"),
                ("ContentSid", "HX0123"),
                ("ContentVariables", "{\"1\":\"x\"}"),
                ("MediaUrl", "https://a.test/1.png"),
                ("MediaUrl", "https://a.test/2.png"),
                ("MessagingServiceSid", service),
            ])
        );
    }

    #[test]
    fn limits_shapes_and_credentials() {
        let env = configured("+15017122661");
        let refused = |body, env: &HashMap<String, String>| {
            first_request("twilio", body, env, None).unwrap_err().body()
        };
        for bad in [
            "15558675310",
            "+1555-867",
            "whatsapp:15558675310",
            "+1234567890123456",
        ] {
            assert_eq!(
                refused(json!({"to":{"user":bad},"message":{"text":"x"}}), &env),
                r#"{"error":"invalid_recipient"}"#,
                "{bad}"
            );
        }
        assert_eq!(
            refused(
                json!({"to":{"user":"+15558675310"},"message":{"text":"a".repeat(1601)}}),
                &env
            ),
            r#"{"error":"text_too_long","limit":1600,"unit":"utf16"}"#
        );
        // 800 emoji are 1,600 UTF-16 units: the limit; one more is over.
        assert!(first_request(
            "twilio",
            json!({"to":{"user":"+15558675310"},"message":{"text":"😀".repeat(800)}}),
            &env,
            None
        )
        .is_ok());
        assert_eq!(
            refused(
                json!({"to":{"user":"+15558675310"},"message":{"raw":{"Body":"a".repeat(1601)}}}),
                &env
            ),
            r#"{"error":"text_too_long","limit":1600,"unit":"utf16"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"user":"+15558675310"},"message":{"raw":{"StatusCallback":"https://x"}}}),
                &env
            ),
            r#"{"error":"invalid_raw"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"user":"+15558675310"},"message":{"raw":{"Body":{"nested":1}}}}),
                &env
            ),
            r#"{"error":"invalid_raw"}"#
        );
        let inbound_only = super::super::test_support::env(&[("TWILIO_ACME_AUTH_TOKEN", TOKEN)]);
        assert_eq!(
            refused(
                json!({"to":{"user":"+15558675310"},"message":{"text":"x"}}),
                &inbound_only
            ),
            r#"{"error":"not_configured","field":"ACCOUNT_SID"}"#
        );
        let no_from = super::super::test_support::env(&[
            ("TWILIO_ACME_AUTH_TOKEN", TOKEN),
            ("TWILIO_ACME_ACCOUNT_SID", SID),
        ]);
        assert_eq!(
            refused(
                json!({"to":{"user":"+15558675310"},"message":{"text":"x"}}),
                &no_from
            ),
            r#"{"error":"not_configured","field":"FROM"}"#
        );
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(
                "twilio",
                201,
                r#"{"account_sid":"ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","body":"x","sid":"SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX","status":"queued"}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX".into())
            }
        );
        assert_eq!(
            classify(
                "twilio",
                429,
                r#"{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}"#,
                Some("12")
            ),
            SendOutcome::RateLimited {
                wait_s: Some(12),
                failure: Failure::new("20429", "Too Many Requests")
            }
        );
        assert_eq!(
            classify(
                "twilio",
                400,
                r#"{"code":21211,"message":"Invalid 'To' Phone Number: +1555867XXXX","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new(
                "21211",
                "Invalid 'To' Phone Number: +1555867XXXX"
            ))
        );
        assert_eq!(
            classify(
                "twilio",
                401,
                r#"{"code":20003,"message":"Authenticate","status":401}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new("20003", "Authenticate"))
        );
        assert_eq!(
            classify("twilio", 503, "<html>", None),
            SendOutcome::Temporary(Failure::new("503", ""))
        );
    }
}
