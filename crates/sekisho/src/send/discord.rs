//! Discord Create Message: `POST {DISCORD_API_BASE}/api/v10/channels/{channel.id}/messages` with
//! `Authorization: Bot {BOT_TOKEN}`. Text mentions nobody (`allowed_mentions.parse` empty: `@everyone`, `<@id>`
//! stay text), as the interaction reply does; a raw message mentions nobody either unless it sets
//! `allowed_mentions` itself. The send id is the message `nonce`, enforced: a retry after a timeout within
//! Discord's nonce window returns the message already created instead of posting it twice.

use serde_json::{json, Value};

use super::{
    api_base, by_status, credential, within_limit, Failure, Outbound, ProviderAnswer,
    ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct Discord;

const API_BASE_BINDING: &str = "DISCORD_API_BASE";
const DEFAULT_API_BASE: &str = "https://discord.com";
const BOT_TOKEN: &str = "BOT_TOKEN";
/// "The message contents (up to 2000 characters)" (counted here in UTF-16 units, never fewer).
const MAX_CONTENT: usize = 2_000;
/// A nonce is at most 25 characters.
const NONCE_CHARS: usize = 25;
/// What a message must carry at least one of.
const CONTENT_FIELDS: &[&str] = &["content", "embeds", "components", "sticker_ids", "poll"];

/// A snowflake: a decimal 64-bit id.
fn is_snowflake(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

fn content_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The send id's hex digits, cut to a nonce.
fn nonce(send_id: &str) -> String {
    let hex = send_id.strip_prefix("snd_").unwrap_or(send_id);
    hex.chars().take(NONCE_CHARS).collect()
}

impl Sender for Discord {
    fn channel(&self) -> &'static str {
        "discord"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &[BOT_TOKEN]
    }

    /// Channels only: a user id would need a DM channel created first, which the gateway does not do.
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        send_id: &str,
    ) -> Result<String, SendError> {
        let Recipient::Conversation(channel) = to else {
            return Err(SendError::UnsupportedRecipient("user"));
        };
        if !is_snowflake(channel) {
            return Err(SendError::InvalidRecipient);
        }
        let mut params = match message {
            Outbound::Text(text) => {
                let text = plain_text(text, usize::MAX);
                within_limit(&text, MAX_CONTENT, "utf16", content_len)?;
                json!({ "content": text, "allowed_mentions": { "parse": [] } })
            }
            // The Create Message parameters (`content`, `embeds`, `components`, `message_reference`, …).
            Outbound::Raw(raw) => {
                if !CONTENT_FIELDS.iter().any(|field| raw.contains_key(*field)) {
                    return Err(SendError::InvalidRaw(
                        "a Discord message needs `content`, `embeds`, `components`, `sticker_ids` or `poll`",
                    ));
                }
                match raw.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(content)) => {
                        within_limit(content, MAX_CONTENT, "utf16", content_len)?;
                    }
                    Some(_) => return Err(SendError::InvalidRaw("`content` must be a string")),
                }
                let mut raw = raw.clone();
                raw.entry("allowed_mentions")
                    .or_insert_with(|| json!({ "parse": [] }));
                Value::Object(raw)
            }
        };
        if let Some(params) = params.as_object_mut() {
            params.insert("nonce".into(), Value::from(nonce(send_id)));
            params.insert("enforce_nonce".into(), Value::Bool(true));
        }
        Ok(params.to_string())
    }

    fn request(
        &self,
        job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        _token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let token = credential(self, account, BOT_TOKEN)?;
        let base = api_base(account.bindings(), API_BASE_BINDING, DEFAULT_API_BASE);
        Ok(ProviderRequest::post_json(
            format!("{base}/api/v10/channels/{}/messages", job.to.id()),
            vec![("authorization".into(), format!("Bot {token}"))],
            payload.to_owned(),
        ))
    }

    /// `200` with the message object (`id`); errors `{"code":50013,"message":"Missing Permissions"}`; 429 with
    /// `retry_after` in seconds (a fraction) in the body, and `Retry-After`.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let body = answer.json();
        if (200..300).contains(&answer.status) {
            return SendOutcome::Sent {
                message_id: crate::channels::text_at(&body, &["id"]),
            };
        }
        let failure = Failure::new(
            crate::channels::text_at(&body, &["code"])
                .filter(|code| code != "0")
                .unwrap_or_else(|| answer.status.to_string()),
            body.get("message")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        if answer.status == 429 {
            let wait_s = crate::channels::f64_at(&body, &["retry_after"])
                .filter(|s| s.is_finite() && *s >= 0.0)
                // Whole seconds, rounded up: never before the reset.
                .map(|s| s.ceil().min(f64::from(u32::MAX)) as u32)
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

    const TOKEN: &str = "MTA0NjM1.Gx9aBc.abcdefghijklmnopqrstuvwxyz0123456789AB";

    fn with_token() -> std::collections::HashMap<String, String> {
        env(&[
            (
                "DISCORD_ACME_PUBLIC_KEY",
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
            ("DISCORD_ACME_BOT_TOKEN", TOKEN),
        ])
    }

    #[test]
    fn a_text_is_a_create_message_that_mentions_nobody() {
        let (job, request) = first_request(
            "discord",
            json!({"to":{"conversation":"1046350519133061193"},"message":{"text":"@everyone <@80351110224678912> hello"}}),
            &with_token(),
            None,
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://discord.com/api/v10/channels/1046350519133061193/messages"
        );
        assert_eq!(
            header(&request, "authorization"),
            Some(format!("Bot {TOKEN}").as_str())
        );
        assert_eq!(header(&request, "content-type"), Some("application/json"));
        let nonce = job.send_id.get(4..29).unwrap();
        assert_eq!(
            body_json(&request),
            json!({
                "content": "@everyone <@80351110224678912> hello",
                "allowed_mentions": {"parse": []},
                "nonce": nonce,
                "enforce_nonce": true,
            })
        );
        assert!(!format!("{request:?}").contains(TOKEN));
    }

    #[test]
    fn raw_messages_mention_only_whom_they_allow() {
        let env = with_token();
        let raw = |message| {
            let (_, request) = first_request(
                "discord",
                json!({"to":{"conversation":"1046350519133061193"},"message":{"raw":message}}),
                &env,
                None,
            )
            .unwrap();
            body_json(&request)
        };
        let embeds = raw(json!({"embeds":[{"title":"t"}]}));
        assert_eq!(embeds["embeds"][0]["title"], "t");
        assert_eq!(embeds["allowed_mentions"], json!({"parse": []}));
        let chosen = raw(json!({"content":"<@42>","allowed_mentions":{"users":["42"]}}));
        assert_eq!(chosen["allowed_mentions"], json!({"users": ["42"]}));
    }

    #[test]
    fn channels_only_within_the_limit_and_a_token_is_needed() {
        let env = with_token();
        let refused = |body, env: &std::collections::HashMap<String, String>| {
            first_request("discord", body, env, None)
                .unwrap_err()
                .body()
        };
        assert_eq!(
            refused(
                json!({"to":{"user":"80351110224678912"},"message":{"text":"x"}}),
                &env
            ),
            r#"{"error":"unsupported_recipient"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"general"},"message":{"text":"x"}}),
                &env
            ),
            r#"{"error":"invalid_recipient"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"1"},"message":{"text":"a".repeat(2001)}}),
                &env
            ),
            r#"{"error":"text_too_long","limit":2000,"unit":"utf16"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"1"},"message":{"raw":{"content":"a".repeat(2001)}}}),
                &env
            ),
            r#"{"error":"text_too_long","limit":2000,"unit":"utf16"}"#
        );
        assert_eq!(
            refused(
                json!({"to":{"conversation":"1"},"message":{"raw":{"tts":true}}}),
                &env
            ),
            r#"{"error":"invalid_raw"}"#
        );
        let inbound_only = super::super::test_support::env(&[(
            "DISCORD_ACME_PUBLIC_KEY",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        )]);
        assert_eq!(
            refused(
                json!({"to":{"conversation":"1"},"message":{"text":"x"}}),
                &inbound_only
            ),
            r#"{"error":"not_configured","field":"BOT_TOKEN"}"#
        );
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(
                "discord",
                200,
                r#"{"id":"1046350611432607774","channel_id":"1046350519133061193","content":"x","type":0}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("1046350611432607774".into())
            }
        );
        assert_eq!(
            classify(
                "discord",
                429,
                r#"{"message":"You are being rate limited.","retry_after":64.57,"global":false}"#,
                Some("65")
            ),
            SendOutcome::RateLimited {
                wait_s: Some(65),
                failure: Failure::new("429", "You are being rate limited.")
            }
        );
        // Without the body's `retry_after`, the header.
        assert_eq!(
            classify("discord", 429, "", Some("3")),
            SendOutcome::RateLimited {
                wait_s: Some(3),
                failure: Failure::new("429", "")
            }
        );
        assert_eq!(
            classify(
                "discord",
                403,
                r#"{"message":"Missing Permissions","code":50013}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new("50013", "Missing Permissions"))
        );
        assert_eq!(
            classify(
                "discord",
                401,
                r#"{"message":"401: Unauthorized","code":0}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new("401", "401: Unauthorized"))
        );
        assert!(matches!(
            classify("discord", 502, "<html>", None),
            SendOutcome::Temporary(_)
        ));
    }
}
