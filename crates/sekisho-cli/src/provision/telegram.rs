//! Telegram Bot API: `setWebhook` and `getWebhookInfo`.
//!
//! Every answer is `{"ok":true,"result":…}` or `{"ok":false,"error_code":401,"description":"Unauthorized"}`.
//! The bot token is part of the URL path (`/bot{token}/method`), so it is checked for shape before use and the
//! URL is never printed.

use ::http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    shown, trimmed_base, url_problem, ApiBody, ApiRequest, ApiResponse, Problem, Provider,
    ProviderError,
};
use sekisho::datetime::format_rfc3339_ms;

pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// A bot token as @BotFather issues it: `{bot id}:{secret}`.
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bot token is not of the form <digits>:<letters, digits, _ or ->")]
pub struct MalformedBotToken;

impl BotToken {
    pub fn parse(token: &str) -> Result<Self, MalformedBotToken> {
        let token = token.trim();
        let (id, secret) = token.split_once(':').ok_or(MalformedBotToken)?;
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        let secret_ok = !secret.is_empty() && super::secrets::is_token_alphabet(secret);
        if id_ok && secret_ok {
            Ok(BotToken(token.to_owned()))
        } else {
            Err(MalformedBotToken)
        }
    }

    /// The bot's numeric id, public (the `TELEGRAM_<ACCOUNT>_BOT_ID` binding).
    pub fn bot_id(&self) -> &str {
        self.0.split_once(':').map(|(id, _)| id).unwrap_or_default()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for BotToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BotToken({})", super::mask(&self.0))
    }
}

/// Telegram's rule for `secret_token` (1–256 characters of `A-Z a-z 0-9 _ -`): the channel's own check, so the
/// CLI never registers a value the gateway would refuse.
pub use sekisho::channels::telegram::is_valid_secret_token;

/// What `sekisho webhook telegram set` registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetWebhook {
    pub url: String,
    pub secret_token: String,
    /// `None` keeps Telegram's current setting (initially: every update type except `chat_member`,
    /// `message_reaction` and `message_reaction_count`).
    pub allowed_updates: Option<Vec<String>>,
    pub drop_pending_updates: bool,
}

fn method_url(base: &str, token: &BotToken, method: &str) -> String {
    format!("{}/bot{}/{method}", trimmed_base(base), token.expose())
}

pub fn set_webhook_request(base: &str, token: &BotToken, set: &SetWebhook) -> ApiRequest {
    let mut body = json!({ "url": set.url, "secret_token": set.secret_token });
    if let (Some(updates), Some(object)) = (&set.allowed_updates, body.as_object_mut()) {
        object.insert("allowed_updates".to_owned(), json!(updates));
    }
    if let (true, Some(object)) = (set.drop_pending_updates, body.as_object_mut()) {
        object.insert("drop_pending_updates".to_owned(), Value::Bool(true));
    }
    ApiRequest {
        method: Method::POST,
        url: method_url(base, token, "setWebhook"),
        headers: Vec::new(),
        body: ApiBody::Json(body),
    }
}

pub fn webhook_info_request(base: &str, token: &BotToken) -> ApiRequest {
    ApiRequest {
        method: Method::GET,
        url: method_url(base, token, "getWebhookInfo"),
        headers: Vec::new(),
        body: ApiBody::None,
    }
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    error_code: Option<u16>,
}

/// The `result` of a successful call, or the provider's `description`.
fn unwrap(response: &ApiResponse) -> Result<(Value, Option<String>), ProviderError> {
    let unreadable = ProviderError::Unreadable {
        provider: Provider::Telegram,
        status: response.status,
    };
    let envelope: Envelope = serde_json::from_slice(&response.body).map_err(|_| unreadable)?;
    if envelope.ok && (200..300).contains(&response.status) {
        return Ok((envelope.result, envelope.description));
    }
    Err(ProviderError::Refused {
        provider: Provider::Telegram,
        status: envelope.error_code.unwrap_or(response.status),
        message: shown(envelope.description.as_deref().unwrap_or("no description")),
    })
}

/// `setWebhook`'s answer: Telegram's description (`Webhook was set`) on success.
pub fn interpret_set_webhook(response: &ApiResponse) -> Result<String, ProviderError> {
    let (result, description) = unwrap(response)?;
    if result != Value::Bool(true) {
        return Err(ProviderError::Unreadable {
            provider: Provider::Telegram,
            status: response.status,
        });
    }
    Ok(shown(description.as_deref().unwrap_or("Webhook was set")))
}

/// `getWebhookInfo`'s `WebhookInfo`, the fields the admin needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookInfo {
    pub url: String,
    #[serde(default)]
    pub pending_update_count: u64,
    /// Unix seconds.
    #[serde(default)]
    pub last_error_date: Option<u64>,
    #[serde(default)]
    pub last_error_message: Option<String>,
    #[serde(default)]
    pub last_synchronization_error_date: Option<u64>,
    #[serde(default)]
    pub max_connections: Option<u64>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub allowed_updates: Option<Vec<String>>,
}

pub fn interpret_webhook_info(response: &ApiResponse) -> Result<WebhookInfo, ProviderError> {
    let (result, _) = unwrap(response)?;
    serde_json::from_value(result).map_err(|_| ProviderError::Unreadable {
        provider: Provider::Telegram,
        status: response.status,
    })
}

/// Unix seconds → RFC 3339 (UTC).
pub fn rfc3339(unix_s: u64) -> String {
    format_rfc3339_ms(unix_s.saturating_mul(1000))
}

impl WebhookInfo {
    /// `name: value` lines for display; provider text made safe.
    pub fn lines(&self) -> Vec<(&'static str, String)> {
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".to_owned());
        vec![
            (
                "url",
                if self.url.is_empty() {
                    "(none)".to_owned()
                } else {
                    shown(&self.url)
                },
            ),
            (
                "pending_update_count",
                self.pending_update_count.to_string(),
            ),
            (
                "last_error_date",
                or_none(self.last_error_date.map(rfc3339)),
            ),
            (
                "last_error_message",
                or_none(self.last_error_message.as_deref().map(shown)),
            ),
            (
                "last_synchronization_error_date",
                or_none(self.last_synchronization_error_date.map(rfc3339)),
            ),
            (
                "max_connections",
                or_none(self.max_connections.map(|n| n.to_string())),
            ),
            ("ip_address", or_none(self.ip_address.as_deref().map(shown))),
            (
                "allowed_updates",
                or_none(self.allowed_updates.as_ref().map(|u| shown(&u.join(",")))),
            ),
        ]
    }

    /// What is wrong: a delivery error no older than `recent_s` before `now_s`, a URL other than `expected_url`.
    pub fn problems(&self, now_s: u64, recent_s: u64, expected_url: Option<&str>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(at) = self.last_error_date {
            if at.saturating_add(recent_s) >= now_s {
                problems.push(Problem::RecentDeliveryError {
                    at: rfc3339(at),
                    message: shown(self.last_error_message.as_deref().unwrap_or("no message")),
                });
            }
        }
        problems.extend(url_problem(&self.url, expected_url));
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    fn token() -> BotToken {
        BotToken::parse(TOKEN).unwrap()
    }

    fn answer(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn bot_tokens_are_checked_before_they_enter_a_url() {
        assert_eq!(token().bot_id(), "123456789");
        assert_eq!(BotToken::parse("123:abc/../x"), Err(MalformedBotToken));
        assert_eq!(BotToken::parse("abc:def"), Err(MalformedBotToken));
        assert_eq!(BotToken::parse("123:"), Err(MalformedBotToken));
        assert_eq!(BotToken::parse("123456"), Err(MalformedBotToken));
        assert!(!format!("{:?}", token()).contains("CH1vGWJx"));
    }

    #[test]
    fn secret_tokens_follow_telegrams_rule() {
        assert!(is_valid_secret_token("a"));
        assert!(is_valid_secret_token(&"A_-9".repeat(64)));
        assert!(!is_valid_secret_token(""));
        assert!(!is_valid_secret_token(&"a".repeat(257)));
        assert!(!is_valid_secret_token("has space"));
    }

    #[test]
    fn set_webhook_posts_json_with_the_secret_and_the_options() {
        let request = set_webhook_request(
            "https://api.telegram.org/",
            &token(),
            &SetWebhook {
                url: "https://gw.example/telegram/acme".to_owned(),
                secret_token: "s3cret_-".to_owned(),
                allowed_updates: Some(vec!["message".to_owned(), "callback_query".to_owned()]),
                drop_pending_updates: true,
            },
        );
        assert_eq!(request.method, Method::POST);
        assert_eq!(
            request.url,
            format!("https://api.telegram.org/bot{TOKEN}/setWebhook")
        );
        assert_eq!(
            request.body,
            ApiBody::Json(json!({
                "url": "https://gw.example/telegram/acme",
                "secret_token": "s3cret_-",
                "allowed_updates": ["message", "callback_query"],
                "drop_pending_updates": true
            }))
        );
    }

    #[test]
    fn set_webhook_omits_what_was_not_asked_for() {
        let request = set_webhook_request(
            DEFAULT_API_BASE,
            &token(),
            &SetWebhook {
                url: "https://gw/telegram/a".to_owned(),
                secret_token: "t".to_owned(),
                allowed_updates: None,
                drop_pending_updates: false,
            },
        );
        assert_eq!(
            request.body,
            ApiBody::Json(json!({"url": "https://gw/telegram/a", "secret_token": "t"}))
        );
    }

    #[test]
    fn set_webhook_answers_are_interpreted() {
        assert_eq!(
            interpret_set_webhook(&answer(
                200,
                r#"{"ok":true,"result":true,"description":"Webhook was set"}"#
            )),
            Ok("Webhook was set".to_owned())
        );
        assert_eq!(
            interpret_set_webhook(&answer(
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
            )),
            Err(ProviderError::Refused {
                provider: Provider::Telegram,
                status: 401,
                message: "Unauthorized".to_owned()
            })
        );
        assert_eq!(
            interpret_set_webhook(&answer(
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: bad webhook: HTTPS url must be provided for webhook"}"#
            )),
            Err(ProviderError::Refused {
                provider: Provider::Telegram,
                status: 400,
                message: "Bad Request: bad webhook: HTTPS url must be provided for webhook"
                    .to_owned()
            })
        );
        assert_eq!(
            interpret_set_webhook(&answer(502, "<html>Bad Gateway</html>")),
            Err(ProviderError::Unreadable {
                provider: Provider::Telegram,
                status: 502
            })
        );
    }

    const INFO_WITH_ERROR: &str = r#"{"ok":true,"result":{"url":"https://gw.example/telegram/acme",
        "has_custom_certificate":false,"pending_update_count":7,"last_error_date":1764637200,
        "last_error_message":"Wrong response from the webhook: 401 Unauthorized","max_connections":40,
        "ip_address":"203.0.113.10","allowed_updates":["message","callback_query"]}}"#;

    #[test]
    fn webhook_info_reports_a_recent_error() {
        let info = interpret_webhook_info(&answer(200, INFO_WITH_ERROR)).unwrap();
        assert_eq!(info.pending_update_count, 7);
        assert_eq!(rfc3339(1_764_637_200), "2025-12-02T01:00:00.000Z");
        let an_hour_later = 1_764_637_200 + 3600;
        assert_eq!(
            info.problems(
                an_hour_later,
                86_400,
                Some("https://gw.example/telegram/acme")
            ),
            vec![Problem::RecentDeliveryError {
                at: "2025-12-02T01:00:00.000Z".to_owned(),
                message: "Wrong response from the webhook: 401 Unauthorized".to_owned()
            }]
        );
        let two_days_later = 1_764_637_200 + 2 * 86_400;
        assert_eq!(info.problems(two_days_later, 86_400, None), vec![]);
        let lines = info.lines();
        assert!(lines.contains(&("last_error_date", "2025-12-02T01:00:00.000Z".to_owned())));
        assert!(lines.contains(&("allowed_updates", "message,callback_query".to_owned())));
    }

    #[test]
    fn webhook_info_without_errors_checks_the_url() {
        let body = r#"{"ok":true,"result":{"url":"https://gw.example/telegram/old","has_custom_certificate":false,"pending_update_count":0}}"#;
        let info = interpret_webhook_info(&answer(200, body)).unwrap();
        assert_eq!(info.last_error_date, None);
        assert_eq!(info.problems(0, 86_400, None), vec![]);
        assert_eq!(
            info.problems(0, 86_400, Some("https://gw.example/telegram/acme")),
            vec![Problem::UrlDiffers {
                configured: "https://gw.example/telegram/old".to_owned(),
                expected: "https://gw.example/telegram/acme".to_owned()
            }]
        );
        let unset = r#"{"ok":true,"result":{"url":"","has_custom_certificate":false,"pending_update_count":0}}"#;
        let info = interpret_webhook_info(&answer(200, unset)).unwrap();
        assert_eq!(
            info.problems(0, 86_400, Some("https://gw/telegram/a")),
            vec![Problem::NotConfigured]
        );
        assert!(info.lines().contains(&("url", "(none)".to_owned())));
    }

    #[test]
    fn webhook_info_errors_are_shown() {
        assert_eq!(
            interpret_webhook_info(&answer(
                404,
                r#"{"ok":false,"error_code":404,"description":"Not Found"}"#
            )),
            Err(ProviderError::Refused {
                provider: Provider::Telegram,
                status: 404,
                message: "Not Found".to_owned()
            })
        );
        assert_eq!(
            interpret_webhook_info(&answer(
                200,
                r#"{"ok":true,"result":{"pending_update_count":1}}"#
            )),
            Err(ProviderError::Unreadable {
                provider: Provider::Telegram,
                status: 200
            })
        );
    }
}
