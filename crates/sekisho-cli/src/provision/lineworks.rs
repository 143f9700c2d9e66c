//! LINE WORKS API 2.0: a bot's callback (`PATCH /v1.0/bots/{botId}` with `enableCallback`, `callbackUrl`,
//! `callbackEvents`; `GET /v1.0/bots/{botId}`), with an OAuth access token of scope `bot` (`bot.read` for GET).
//!
//! Errors: a 4xx/5xx whose JSON carries `code` and `description` (or `message`); another shape shows the status.

use ::http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{
    shown, trimmed_base, ApiBody, ApiRequest, ApiResponse, Problem, Provider, ProviderError,
};

pub const DEFAULT_API_BASE: &str = "https://www.worksapis.com";

/// The message types a bot can receive; the gateway normalizes all of them (docs/channels/lineworks.md).
pub const ALL_CALLBACK_EVENTS: &[&str] = &[
    "text", "location", "sticker", "image", "file", "audio", "video",
];

/// A bot id: digits only (it enters the URL path).
pub fn is_valid_bot_id(bot_id: &str) -> bool {
    !bot_id.is_empty() && bot_id.len() <= 20 && bot_id.bytes().all(|b| b.is_ascii_digit())
}

fn bot_url(base: &str, bot_id: &str) -> String {
    format!("{}/v1.0/bots/{bot_id}", trimmed_base(base))
}

fn auth(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

/// `PATCH /v1.0/bots/{botId}`: turns the callback on, at `callback_url`, for `events`; nothing else changes.
pub fn set_callback_request(
    base: &str,
    token: &str,
    bot_id: &str,
    callback_url: &str,
    events: &[String],
) -> ApiRequest {
    ApiRequest {
        method: Method::PATCH,
        url: bot_url(base, bot_id),
        headers: auth(token),
        body: ApiBody::Json(json!({
            "enableCallback": true,
            "callbackUrl": callback_url,
            "callbackEvents": events,
        })),
    }
}

/// `GET /v1.0/bots/{botId}`.
pub fn bot_request(base: &str, token: &str, bot_id: &str) -> ApiRequest {
    ApiRequest {
        method: Method::GET,
        url: bot_url(base, bot_id),
        headers: auth(token),
        body: ApiBody::None,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

fn success_body(response: &ApiResponse) -> Result<&[u8], ProviderError> {
    if (200..300).contains(&response.status) {
        return Ok(&response.body);
    }
    let unreadable = ProviderError::Unreadable {
        provider: Provider::LineWorks,
        status: response.status,
    };
    let error: ErrorBody =
        serde_json::from_slice(&response.body).map_err(|_| unreadable.clone())?;
    let text = error.description.or(error.message);
    let message = match (error.code, text) {
        (Some(code), Some(text)) => format!("{code}: {text}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => return Err(unreadable),
    };
    Err(ProviderError::Refused {
        provider: Provider::LineWorks,
        status: response.status,
        message: shown(&message),
    })
}

/// Any 2xx: the PATCH answers with the bot, which `info` reads anyway.
pub fn interpret_set_callback(response: &ApiResponse) -> Result<(), ProviderError> {
    success_body(response).map(|_| ())
}

/// The callback part of a bot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotCallback {
    #[serde(default)]
    pub bot_name: String,
    #[serde(default)]
    pub enable_callback: bool,
    #[serde(default)]
    pub callback_url: String,
    #[serde(default)]
    pub callback_events: Vec<String>,
}

pub fn interpret_bot(response: &ApiResponse) -> Result<BotCallback, ProviderError> {
    serde_json::from_slice(success_body(response)?).map_err(|_| ProviderError::Unreadable {
        provider: Provider::LineWorks,
        status: response.status,
    })
}

impl BotCallback {
    /// Off, another URL, or events the admin expects missing.
    pub fn problems(&self, expected_url: Option<&str>, expected_events: &[String]) -> Vec<Problem> {
        super::registration_problems(
            &self.callback_url,
            expected_url,
            self.enable_callback,
            &self.callback_events,
            expected_events,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn bot_ids_are_digits() {
        assert!(is_valid_bot_id("2000001"));
        assert!(!is_valid_bot_id("2000001/../x"));
        assert!(!is_valid_bot_id(""));
    }

    #[test]
    fn set_callback_patches_the_bot() {
        let events: Vec<String> = ALL_CALLBACK_EVENTS
            .iter()
            .map(|e| (*e).to_owned())
            .collect();
        let request = set_callback_request(
            "https://www.worksapis.com/",
            "tok",
            "2000001",
            "https://gw/lineworks/acme",
            &events,
        );
        assert_eq!(request.method, Method::PATCH);
        assert_eq!(request.url, "https://www.worksapis.com/v1.0/bots/2000001");
        assert_eq!(
            request.headers,
            vec![("authorization", "Bearer tok".to_owned())]
        );
        assert_eq!(
            request.body,
            ApiBody::Json(json!({
                "enableCallback": true,
                "callbackUrl": "https://gw/lineworks/acme",
                "callbackEvents": ["text", "location", "sticker", "image", "file", "audio", "video"]
            }))
        );
        let get = bot_request(DEFAULT_API_BASE, "tok", "2000001");
        assert_eq!((get.method, get.body), (Method::GET, ApiBody::None));
    }

    #[test]
    fn errors_are_shown() {
        assert_eq!(
            interpret_set_callback(&answer(
                401,
                r#"{"code":"UNAUTHORIZED","description":"Authentication failed"}"#
            )),
            Err(ProviderError::Refused {
                provider: Provider::LineWorks,
                status: 401,
                message: "UNAUTHORIZED: Authentication failed".to_owned()
            })
        );
        assert_eq!(
            interpret_bot(&answer(404, r#"{"message":"bot not found"}"#)),
            Err(ProviderError::Refused {
                provider: Provider::LineWorks,
                status: 404,
                message: "bot not found".to_owned()
            })
        );
        assert_eq!(
            interpret_bot(&answer(403, "{}")),
            Err(ProviderError::Unreadable {
                provider: Provider::LineWorks,
                status: 403
            })
        );
        assert_eq!(
            interpret_set_callback(&answer(200, r#"{"botId":2000001}"#)),
            Ok(())
        );
    }

    #[test]
    fn the_callback_is_checked() {
        let body = r#"{"botId":2000001,"botName":"Support","enableCallback":true,"callbackUrl":"https://gw/lineworks/acme",
            "callbackEvents":["text","image"],"channelEvents":["message"]}"#;
        let bot = interpret_bot(&answer(200, body)).unwrap();
        assert_eq!(bot.bot_name, "Support");
        assert_eq!(
            bot.problems(Some("https://gw/lineworks/acme"), &["text".to_owned()]),
            vec![]
        );
        assert_eq!(
            bot.problems(None, &["text".to_owned(), "file".to_owned()]),
            vec![Problem::MissingFields(vec!["file".to_owned()])]
        );
        let off = interpret_bot(&answer(200, r#"{"botId":1,"enableCallback":false}"#)).unwrap();
        assert_eq!(off.problems(None, &[]), vec![Problem::Inactive]);
        assert_eq!(
            off.problems(Some("https://gw/lineworks/acme"), &[]),
            vec![Problem::NotConfigured, Problem::Inactive]
        );
    }
}
