//! Slack `chat.postMessage`: `POST {SLACK_API_BASE}/api/chat.postMessage` with the bot token. Text is escaped
//! (`&`, `<`, `>`) so it cannot mention `@channel`, a user or a link the backend did not write as raw.

use serde_json::{json, Value};

use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::reply::{plain_text, slack_escaped};

pub(super) struct Slack;

const API_BASE_BINDING: &str = "SLACK_API_BASE";
const DEFAULT_API_BASE: &str = "https://slack.com";
/// Slack truncates `text` past 40,000 characters: refused instead of cut.
const MAX_TEXT: usize = 40_000;
/// Errors Slack documents as passing: retried on the schedule.
const TEMPORARY_ERRORS: &[&str] = &[
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// A conversation (`C…`, `G…`, `D…`) or user (`U…`, `W…`) id.
fn is_slack_id(id: &str) -> bool {
    (2..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Sender for Slack {
    fn channel(&self) -> &'static str {
        "slack"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["BOT_TOKEN"]
    }

    /// A user id as `channel` posts to the bot's direct messages with that user.
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        if !is_slack_id(to.id()) {
            return Err(SendError::InvalidRecipient);
        }
        let call = match message {
            Outbound::Text(text) => {
                let text = slack_escaped(&plain_text(text, usize::MAX));
                within_limit(&text, MAX_TEXT, "characters", |t| t.chars().count())?;
                json!({ "channel": to.id(), "text": text })
            }
            // The method's arguments (`blocks`, `text`, `thread_ts`, …); the conversation is always `to`.
            Outbound::Raw(args) => {
                let mut args = args.clone();
                args.insert("channel".into(), Value::from(to.id()));
                Value::Object(args)
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
        let mut request = ProviderRequest::post_json(
            format!("{base}/api/chat.postMessage"),
            vec![("authorization".into(), format!("Bearer {token}"))],
            payload.to_owned(),
        );
        // Slack warns about JSON bodies without a charset.
        for (name, value) in &mut request.headers {
            if name == "content-type" {
                *value = "application/json; charset=utf-8".into();
            }
        }
        Ok(request)
    }

    /// HTTP 200 with `{"ok":true,"ts":…}`, or `{"ok":false,"error":…}`; 429 with `Retry-After`.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        let ok = body.get("ok") == Some(&Value::Bool(true));
        if ok && (200..300).contains(&answer.status) {
            return SendOutcome::Sent {
                message_id: crate::channels::text_at(&body, &["ts"]),
            };
        }
        let error = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let failure = if error.is_empty() {
            Failure::new(answer.status.to_string(), "")
        } else {
            Failure::new(error.clone(), "")
        };
        if answer.status == 429 || error == "ratelimited" {
            return SendOutcome::RateLimited {
                wait_s: answer.requested_wait_s(),
                failure,
            };
        }
        if (200..300).contains(&answer.status) {
            return if TEMPORARY_ERRORS.contains(&error.as_str()) {
                SendOutcome::Temporary(failure)
            } else {
                SendOutcome::Permanent(failure)
            };
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
        env(&[("SLACK_ACME_BOT_TOKEN", "xoxb-0000-1111-abcdefghijkl")])
    }

    #[test]
    fn a_text_is_an_escaped_post_message() {
        let (_, request) = first_request(
            "slack",
            json!({"to":{"conversation":"C0123ABCD"},"message":{"text":"<!channel> <@U1> a & b"}}),
            &with_token(),
            None,
        )
        .unwrap();
        assert_eq!(request.url, "https://slack.com/api/chat.postMessage");
        assert_eq!(
            header(&request, "authorization"),
            Some("Bearer xoxb-0000-1111-abcdefghijkl")
        );
        assert_eq!(
            header(&request, "content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            body_json(&request),
            json!({"channel":"C0123ABCD","text":"&lt;!channel&gt; &lt;@U1&gt; a &amp; b"})
        );
    }

    #[test]
    fn raw_blocks_pass_to_the_same_conversation() {
        let (_, request) = first_request(
            "slack",
            json!({"to":{"user":"U024BE7LH"},"message":{"raw":{"blocks":[{"type":"divider"}],"text":"x","channel":"CEVIL"}}}),
            &with_token(),
            None,
        )
        .unwrap();
        assert_eq!(body_json(&request)["channel"], "U024BE7LH");
        assert_eq!(body_json(&request)["blocks"][0]["type"], "divider");
    }

    #[test]
    fn limits_count_the_escaped_text() {
        let env = with_token();
        let refused = |body| {
            first_request("slack", body, &env, None)
                .unwrap_err()
                .reason()
        };
        assert_eq!(
            refused(json!({"to":{"conversation":"c123"},"message":{"text":"x"}})),
            "invalid_recipient"
        );
        // 10,001 `<` become 40,004 characters once escaped.
        assert_eq!(
            refused(json!({"to":{"conversation":"C1"},"message":{"text":"<".repeat(10_001)}})),
            "text_too_long"
        );
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(
                "slack",
                200,
                r#"{"ok":true,"channel":"C123ABC456","ts":"1503435956.000247"}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("1503435956.000247".into())
            }
        );
        assert_eq!(
            classify("slack", 429, "", Some("30")),
            SendOutcome::RateLimited {
                wait_s: Some(30),
                failure: Failure::new("429", "")
            }
        );
        assert_eq!(
            classify(
                "slack",
                200,
                r#"{"ok":false,"error":"channel_not_found"}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new("channel_not_found", ""))
        );
        assert_eq!(
            classify(
                "slack",
                200,
                r#"{"ok":false,"error":"internal_error"}"#,
                None
            ),
            SendOutcome::Temporary(Failure::new("internal_error", ""))
        );
        assert!(matches!(
            classify("slack", 503, "", None),
            SendOutcome::Temporary(_)
        ));
    }
}
