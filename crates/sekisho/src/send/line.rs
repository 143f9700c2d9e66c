//! LINE Messaging API push: `POST {LINE_API_BASE}/v2/bot/message/push` with the channel access token, and
//! `X-Line-Retry-Key` derived from the send id, so a push retried after a timeout is never delivered twice
//! (LINE answers `409` to a retry key it has already accepted).

use serde_json::{json, Value};

use super::contract::utf16_len;
use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct Line;

pub(super) const API_BASE_BINDING: &str = "LINE_API_BASE";
pub(super) const DEFAULT_API_BASE: &str = "https://api.line.me";
/// A text message holds at most 5,000 characters (counted here in UTF-16 units, never fewer).
const MAX_TEXT: usize = 5_000;

/// `U…` (user), `C…` (group) or `R…` (room) and 32 hex digits: what LINE's webhooks name as source ids.
fn is_line_id(id: &str, kinds: &[u8]) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 33
        && bytes.first().is_some_and(|first| kinds.contains(first))
        && bytes.iter().skip(1).all(|b| b.is_ascii_hexdigit())
}

/// The retry key LINE asks for: a UUID in hexadecimal, here the send id's 32 hex digits.
pub(super) fn retry_key(send_id: &str) -> String {
    let hex = send_id.strip_prefix("snd_").unwrap_or(send_id);
    let part = |from: usize, to: usize| hex.get(from..to).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

impl Sender for Line {
    fn channel(&self) -> &'static str {
        "line"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["CHANNEL_ACCESS_TOKEN"]
    }

    /// Text is a `text` message: LINE shows it as typed (mentions and emoji need `textV2`, sent only as raw).
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        let valid = match to {
            Recipient::Conversation(id) => is_line_id(id, b"UCR"),
            Recipient::User(id) => is_line_id(id, b"U"),
        };
        if !valid {
            return Err(SendError::InvalidRecipient);
        }
        let message = match message {
            Outbound::Text(text) => {
                let text = plain_text(text, usize::MAX);
                within_limit(&text, MAX_TEXT, "utf16", utf16_len)?;
                json!({ "type": "text", "text": text })
            }
            Outbound::Raw(raw) => {
                if !raw.get("type").is_some_and(Value::is_string) {
                    return Err(SendError::InvalidRaw(
                        "a LINE message object needs a `type`",
                    ));
                }
                Value::Object(raw.clone())
            }
        };
        Ok(json!({ "to": to.id(), "messages": [message] }).to_string())
    }

    fn request(
        &self,
        job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        _token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let token = credential(self, account, "CHANNEL_ACCESS_TOKEN")?;
        let base = api_base(account.bindings(), API_BASE_BINDING, DEFAULT_API_BASE);
        Ok(ProviderRequest::post_json(
            format!("{base}/v2/bot/message/push"),
            vec![
                ("authorization".into(), format!("Bearer {token}")),
                ("x-line-retry-key".into(), retry_key(&job.send_id)),
            ],
            payload.to_owned(),
        ))
    }

    /// `200 {"sentMessages":[{"id":…}]}`; `409` for a retry key already accepted is the same push, sent
    /// once. Errors are `{"message":…,"details":[…]}`.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        let sent_id = body
            .pointer("/sentMessages/0/id")
            .and_then(|id| crate::channels::text_at(id, &[]));
        match answer.status {
            200..=299 | 409 => SendOutcome::Sent {
                message_id: sent_id,
            },
            status => {
                let mut message = body
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(detail) = body.pointer("/details/0/message").and_then(Value::as_str) {
                    message = format!("{message}: {detail}");
                }
                by_status(answer, Failure::new(status.to_string(), message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Failure, SendOutcome};
    use super::*;

    pub(crate) const USER: &str = "U0123456789abcdef0123456789abcdef";

    fn with_token() -> std::collections::HashMap<String, String> {
        env(&[("LINE_ACME_CHANNEL_ACCESS_TOKEN", "line-token-0123456789")])
    }

    #[test]
    fn a_text_push_is_the_documented_request() {
        let (job, request) = first_request(
            "line",
            json!({"to":{"user":USER},"message":{"text":"こんにちは\r\n<b>x</b>\u{1b}"}}),
            &with_token(),
            None,
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "https://api.line.me/v2/bot/message/push");
        assert_eq!(
            header(&request, "authorization"),
            Some("Bearer line-token-0123456789")
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        let key = header(&request, "x-line-retry-key").unwrap();
        assert_eq!(key, retry_key(&job.send_id));
        assert_eq!(key.len(), 36);
        assert_eq!(
            body_json(&request),
            json!({"to": USER, "messages":[{"type":"text","text":"こんにちは\n<b>x</b>"}]})
        );
    }

    #[test]
    fn a_token_being_rotated_sends_its_newest_value_alone() {
        let env = env(&[(
            "LINE_ACME_CHANNEL_ACCESS_TOKEN",
            "line-token-new, line-token-old",
        )]);
        let (_, request) = first_request(
            "line",
            json!({"to":{"user":USER},"message":{"text":"hi"}}),
            &env,
            None,
        )
        .unwrap();
        assert_eq!(
            header(&request, "authorization"),
            Some("Bearer line-token-new")
        );
    }

    #[test]
    fn the_api_base_is_a_binding_and_raw_objects_pass() {
        let mut env = with_token();
        env.insert("LINE_API_BASE".into(), "http://127.0.0.1:9/".into());
        let sticker = json!({"type":"sticker","packageId":"446","stickerId":"1988"});
        let (_, request) = first_request(
            "line",
            json!({"to":{"conversation":"C0123456789abcdef0123456789abcdef"},"message":{"raw":sticker}}),
            &env,
            None,
        )
        .unwrap();
        assert_eq!(request.url, "http://127.0.0.1:9/v2/bot/message/push");
        assert_eq!(body_json(&request)["messages"][0], sticker);
    }

    #[test]
    fn what_line_can_never_take_is_refused() {
        let env = with_token();
        let refused = |body| {
            first_request("line", body, &env, None)
                .unwrap_err()
                .reason()
        };
        assert_eq!(
            refused(
                json!({"to":{"user":"C0123456789abcdef0123456789abcdef"},"message":{"text":"x"}})
            ),
            "invalid_recipient"
        );
        assert_eq!(
            refused(json!({"to":{"conversation":"U1/../x"},"message":{"text":"x"}})),
            "invalid_recipient"
        );
        assert_eq!(
            refused(json!({"to":{"user":USER},"message":{"text":"😀".repeat(2_501)}})),
            "text_too_long"
        );
        assert!(first_request(
            "line",
            json!({"to":{"user":USER},"message":{"text":"😀".repeat(2_500)}}),
            &env,
            None
        )
        .is_ok());
        assert_eq!(
            refused(json!({"to":{"user":USER},"message":{"raw":{"text":"no type"}}})),
            "invalid_raw"
        );
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(
                "line",
                200,
                r#"{"sentMessages":[{"id":"461230966842064897","quoteToken":"q"}]}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("461230966842064897".into())
            }
        );
        // A retry of an accepted push: already sent, never twice.
        assert_eq!(
            classify(
                "line",
                409,
                r#"{"message":"The retry key is already accepted","sentMessages":[{"id":"4612"}]}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("4612".into())
            }
        );
        assert_eq!(
            classify(
                "line",
                429,
                r#"{"message":"Too many requests"}"#,
                Some("30")
            ),
            SendOutcome::RateLimited {
                wait_s: Some(30),
                failure: Failure::new("429", "Too many requests")
            }
        );
        assert!(matches!(
            classify("line", 500, "", None),
            SendOutcome::Temporary(_)
        ));
        assert_eq!(
            classify(
                "line",
                400,
                r#"{"message":"The request body has 1 error(s)","details":[{"message":"May not be empty","property":"messages[0].text"}]}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new(
                "400",
                "The request body has 1 error(s): May not be empty"
            ))
        );
        assert!(matches!(
            classify("line", 401, "{}", None),
            SendOutcome::Permanent(_)
        ));
    }
}
