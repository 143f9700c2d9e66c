//! Chatwork room message: `POST {CHATWORK_API_BASE}/v2/rooms/{room_id}/messages`, form-encoded `body`, with
//! `X-ChatWorkToken` — the request, token and limits notifications use ([`crate::notify`]). Text cannot carry
//! Chatwork markup (`[toall]`, `[To:…]`): its square brackets become full-width, as in notifications.

use serde_json::Value;

use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::notify::{self, MAX_MESSAGE_BYTES, TOKEN_HEADER};
use crate::reply::plain_text;

pub(super) struct Chatwork;

const TOKEN_FIELD: &str = "CHATWORK_API_TOKEN";

impl Sender for Chatwork {
    fn channel(&self) -> &'static str {
        "chatwork"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &[TOKEN_FIELD]
    }

    /// `CHATWORK_{ACCOUNT}_CHATWORK_API_TOKEN`, else the gateway's `CHATWORK_API_TOKEN` (notifications').
    fn gateway_credentials(&self) -> bool {
        true
    }

    /// Rooms only: Chatwork has no API to write to a user outside a room.
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        let Recipient::Conversation(room) = to else {
            return Err(SendError::UnsupportedRecipient("user"));
        };
        if !notify::is_valid_room_id(room) {
            return Err(SendError::InvalidRecipient);
        }
        let mut form = form_urlencoded::Serializer::new(String::new());
        match message {
            Outbound::Text(text) => {
                let text = notify::neutralised(&plain_text(text, usize::MAX));
                within_limit(&text, MAX_MESSAGE_BYTES, "bytes", str::len)?;
                form.append_pair("body", &text);
            }
            // The API's own parameters: `body` with the markup the backend wrote, `self_unread`.
            Outbound::Raw(raw) => {
                let Some(body) = raw.get("body").and_then(Value::as_str) else {
                    return Err(SendError::InvalidRaw("a Chatwork message needs a `body`"));
                };
                within_limit(body, MAX_MESSAGE_BYTES, "bytes", str::len)?;
                form.append_pair("body", body);
                match raw.get("self_unread") {
                    None => {}
                    Some(Value::Bool(unread)) => {
                        form.append_pair("self_unread", if *unread { "1" } else { "0" });
                    }
                    Some(_) => {
                        return Err(SendError::InvalidRaw("`self_unread` must be a boolean"))
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
        let token = credential(self, account, TOKEN_FIELD)?;
        let base = api_base(
            account.bindings(),
            notify::API_BASE_BINDING,
            notify::DEFAULT_API_BASE,
        );
        Ok(ProviderRequest {
            method: "POST".into(),
            url: format!("{base}/v2/rooms/{}/messages", job.to.id()),
            headers: vec![
                (TOKEN_HEADER.into(), token),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
            ],
            body: Some(payload.to_owned()),
        })
    }

    /// `200 {"message_id":"…"}`; errors `{"errors":["…"]}`; 429 with `X-RateLimit-Reset`.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        if (200..300).contains(&answer.status) {
            return SendOutcome::Sent {
                message_id: crate::channels::text_at(&body, &["message_id"]),
            };
        }
        let message = body
            .pointer("/errors/0")
            .and_then(Value::as_str)
            .unwrap_or_default();
        by_status(answer, Failure::new(answer.status.to_string(), message))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{sender, Failure, ProviderAnswer, SendOutcome};

    #[test]
    fn a_text_is_the_notification_request_without_markup() {
        let env = env(&[("CHATWORK_API_TOKEN", "0123456789abcdef0123456789abcdef")]);
        let (_, request) = first_request(
            "chatwork",
            json!({"to":{"conversation":"93207172"},"message":{"text":"[toall] 了解です"}}),
            &env,
            None,
        )
        .unwrap();
        assert_eq!(
            request.url,
            "https://api.chatwork.com/v2/rooms/93207172/messages"
        );
        assert_eq!(
            header(&request, "x-chatworktoken"),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            header(&request, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let form: Vec<(String, String)> =
            form_urlencoded::parse(request.body.as_deref().unwrap().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            form,
            vec![("body".to_owned(), "［toall］ 了解です".to_owned())]
        );
    }

    #[test]
    fn the_account_token_wins_and_raw_keeps_markup() {
        let env = env(&[
            ("CHATWORK_API_TOKEN", "gateway-token"),
            ("CHATWORK_ACME_CHATWORK_API_TOKEN", "account-token"),
            ("CHATWORK_API_BASE", "http://127.0.0.1:9"),
        ]);
        let (_, request) = first_request(
            "chatwork",
            json!({"to":{"conversation":"1"},"message":{"raw":{"body":"[To:1] hi","self_unread":true}}}),
            &env,
            None,
        )
        .unwrap();
        assert_eq!(request.url, "http://127.0.0.1:9/v2/rooms/1/messages");
        assert_eq!(header(&request, "x-chatworktoken"), Some("account-token"));
        assert_eq!(
            request.body.as_deref(),
            Some("body=%5BTo%3A1%5D+hi&self_unread=1")
        );
    }

    #[test]
    fn rooms_only_within_the_limit_and_a_token_is_needed() {
        let with = env(&[("CHATWORK_API_TOKEN", "t")]);
        let refused = |body, env| {
            first_request("chatwork", body, env, None)
                .unwrap_err()
                .reason()
        };
        assert_eq!(
            refused(json!({"to":{"user":"1"},"message":{"text":"x"}}), &with),
            "unsupported_recipient"
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"abc"},"message":{"text":"x"}}),
                &with
            ),
            "invalid_recipient"
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"1"},"message":{"text":"あ".repeat(21_846)}}),
                &with
            ),
            "text_too_long"
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"1"},"message":{"text":"x"}}),
                &env(&[])
            ),
            "not_configured"
        );
    }

    #[test]
    fn answers_are_classified_with_the_rate_limit_reset() {
        assert_eq!(
            classify("chatwork", 200, r#"{"message_id":"1234"}"#, None),
            SendOutcome::Sent {
                message_id: Some("1234".into())
            }
        );
        let limited = sender("chatwork").unwrap().classify(&ProviderAnswer {
            status: 429,
            retry_after: None,
            ratelimit_reset: Some(&(NOW_MS / 1000 + 40).to_string()),
            body: br#"{"errors":["Rate limit exceeded"]}"#,
            now_s: NOW_MS / 1000,
        });
        assert_eq!(
            limited,
            SendOutcome::RateLimited {
                wait_s: Some(40),
                failure: Failure::new("429", "Rate limit exceeded")
            }
        );
        assert_eq!(
            classify(
                "chatwork",
                403,
                r#"{"errors":["You don't have permission to send messages in this room"]}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new(
                "403",
                "You don't have permission to send messages in this room"
            ))
        );
    }
}
