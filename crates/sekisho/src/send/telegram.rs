//! Telegram Bot API `sendMessage`: `POST {TELEGRAM_API_BASE}/bot{BOT_TOKEN}/sendMessage`. Text goes without
//! `parse_mode`, so nothing in it is read as markup.

use serde_json::{json, Value};

use super::contract::utf16_len;
use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct Telegram;

const API_BASE_BINDING: &str = "TELEGRAM_API_BASE";
const DEFAULT_API_BASE: &str = "https://api.telegram.org";
/// "1-4096 characters after entities parsing" (counted in UTF-16 units).
const MAX_TEXT: usize = 4_096;

/// A chat id: an integer (negative for groups and channels), or `@channelusername`; a user id is an integer.
fn is_chat_id(id: &str, usernames: bool) -> bool {
    let digits = id.strip_prefix('-').unwrap_or(id);
    let numeric = (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let username = id.strip_prefix('@').is_some_and(|name| {
        (5..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    numeric || (usernames && username)
}

impl Sender for Telegram {
    fn channel(&self) -> &'static str {
        "telegram"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["BOT_TOKEN"]
    }

    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        let valid = match to {
            Recipient::Conversation(id) => is_chat_id(id, true),
            Recipient::User(id) => is_chat_id(id, false) && !id.starts_with('-'),
        };
        if !valid {
            return Err(SendError::InvalidRecipient);
        }
        let call = match message {
            Outbound::Text(text) => {
                let text = plain_text(text, usize::MAX);
                within_limit(&text, MAX_TEXT, "utf16", utf16_len)?;
                json!({ "chat_id": to.id(), "text": text })
            }
            // The `sendMessage` parameters themselves (`text`, `parse_mode`, `reply_markup`, …); the chat is
            // always `to`.
            Outbound::Raw(params) => {
                if !params.get("text").is_some_and(Value::is_string) {
                    return Err(SendError::InvalidRaw("sendMessage needs a `text`"));
                }
                let mut params = params.clone();
                params.insert("chat_id".into(), Value::from(to.id()));
                Value::Object(params)
            }
        };
        Ok(call.to_string())
    }

    fn request(
        &self,
        _job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        _token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let token = credential(self, account, "BOT_TOKEN")?;
        let base = api_base(account.bindings(), API_BASE_BINDING, DEFAULT_API_BASE);
        Ok(ProviderRequest::post_json(
            format!("{base}/bot{token}/sendMessage"),
            Vec::new(),
            payload.to_owned(),
        ))
    }

    /// `{"ok":true,"result":{"message_id":…}}`, or `{"ok":false,"error_code":…,"description":…}` with
    /// `parameters.retry_after` on 429.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        if body.get("ok") == Some(&Value::Bool(true)) && (200..300).contains(&answer.status) {
            return SendOutcome::Sent {
                message_id: crate::channels::text_at(&body, &["result", "message_id"]),
            };
        }
        let failure = Failure::new(
            crate::channels::text_at(&body, &["error_code"])
                .unwrap_or_else(|| answer.status.to_string()),
            body.get("description")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        if answer.status == 429 {
            let wait_s = crate::channels::u64_at(&body, &["parameters", "retry_after"])
                .map(|s| u32::try_from(s).unwrap_or(u32::MAX))
                .or_else(|| answer.requested_wait_s());
            return SendOutcome::RateLimited { wait_s, failure };
        }
        by_status(answer, failure)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Failure, SendOutcome};

    fn with_token() -> std::collections::HashMap<String, String> {
        env(&[(
            "TELEGRAM_ACME_BOT_TOKEN",
            "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11",
        )])
    }

    #[test]
    fn a_text_is_send_message_without_parse_mode() {
        let (_, request) = first_request(
            "telegram",
            json!({"to":{"conversation":"-1001234567890"},"message":{"text":"<b>not bold</b> *x*"}}),
            &with_token(),
            None,
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://api.telegram.org/bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/sendMessage"
        );
        assert_eq!(
            body_json(&request),
            json!({"chat_id":"-1001234567890","text":"<b>not bold</b> *x*"})
        );
        assert!(!format!("{request:?}").contains("ABC-DEF"));
    }

    #[test]
    fn raw_parameters_keep_their_markup_and_the_chat_is_forced() {
        let (_, request) = first_request(
            "telegram",
            json!({"to":{"user":"1111111"},"message":{"raw":{"text":"<b>hi</b>","parse_mode":"HTML","chat_id":"999"}}}),
            &with_token(),
            None,
        )
        .unwrap();
        assert_eq!(
            body_json(&request),
            json!({"chat_id":"1111111","text":"<b>hi</b>","parse_mode":"HTML"})
        );
    }

    #[test]
    fn limits_and_shapes() {
        let env = with_token();
        let refused = |body| {
            first_request("telegram", body, &env, None)
                .unwrap_err()
                .reason()
        };
        assert_eq!(
            refused(json!({"to":{"user":"-100"},"message":{"text":"x"}})),
            "invalid_recipient"
        );
        assert_eq!(
            refused(json!({"to":{"user":"@name_x"},"message":{"text":"x"}})),
            "invalid_recipient"
        );
        assert_eq!(
            refused(json!({"to":{"conversation":"1/2"},"message":{"text":"x"}})),
            "invalid_recipient"
        );
        assert_eq!(
            refused(json!({"to":{"user":"1"},"message":{"text":"a".repeat(4097)}})),
            "text_too_long"
        );
        assert_eq!(
            refused(json!({"to":{"user":"1"},"message":{"raw":{"photo":"x"}}})),
            "invalid_raw"
        );
        let bare = env_without_token();
        assert_eq!(
            first_request(
                "telegram",
                json!({"to":{"user":"1"},"message":{"text":"x"}}),
                &bare,
                None
            )
            .unwrap_err()
            .body(),
            r#"{"error":"not_configured","field":"BOT_TOKEN"}"#
        );
    }

    fn env_without_token() -> std::collections::HashMap<String, String> {
        env(&[])
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(
                "telegram",
                200,
                r#"{"ok":true,"result":{"message_id":42,"chat":{"id":1}}}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("42".into())
            }
        );
        assert_eq!(
            classify(
                "telegram",
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
                None
            ),
            SendOutcome::RateLimited {
                wait_s: Some(7),
                failure: Failure::new("429", "Too Many Requests: retry after 7")
            }
        );
        assert_eq!(
            classify(
                "telegram",
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new(
                "403",
                "Forbidden: bot was blocked by the user"
            ))
        );
        assert!(matches!(
            classify("telegram", 502, "<html>", None),
            SendOutcome::Temporary(_)
        ));
    }
}
