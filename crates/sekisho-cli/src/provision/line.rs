//! LINE Messaging API: the webhook endpoint of a channel (set, get, test), with the channel access token.
//!
//! Errors are 4xx with `{"message":"…","details":[{"message":"…","property":"…"}]}`.

use ::http::Method;
use serde::Deserialize;
use serde_json::json;

use super::{
    shown, trimmed_base, url_problem, ApiBody, ApiRequest, ApiResponse, Problem, Provider,
    ProviderError,
};

pub const DEFAULT_API_BASE: &str = "https://api.line.me";
const ENDPOINT_PATH: &str = "/v2/bot/channel/webhook/endpoint";
const TEST_PATH: &str = "/v2/bot/channel/webhook/test";

fn request(method: Method, base: &str, path: &str, token: &str, body: ApiBody) -> ApiRequest {
    ApiRequest {
        method,
        url: format!("{}{path}", trimmed_base(base)),
        headers: vec![("authorization", format!("Bearer {token}"))],
        body,
    }
}

/// `PUT /v2/bot/channel/webhook/endpoint` `{"endpoint": url}`.
pub fn set_endpoint_request(base: &str, token: &str, endpoint: &str) -> ApiRequest {
    request(
        Method::PUT,
        base,
        ENDPOINT_PATH,
        token,
        ApiBody::Json(json!({ "endpoint": endpoint })),
    )
}

/// `GET /v2/bot/channel/webhook/endpoint`.
pub fn endpoint_info_request(base: &str, token: &str) -> ApiRequest {
    request(Method::GET, base, ENDPOINT_PATH, token, ApiBody::None)
}

/// `POST /v2/bot/channel/webhook/test`, against `endpoint` or, without one, the registered URL.
pub fn test_endpoint_request(base: &str, token: &str, endpoint: Option<&str>) -> ApiRequest {
    let body = match endpoint {
        Some(endpoint) => json!({ "endpoint": endpoint }),
        None => json!({}),
    };
    request(Method::POST, base, TEST_PATH, token, ApiBody::Json(body))
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    property: Option<String>,
}

/// The body of a 2xx answer, or LINE's error message (with its details) for anything else.
fn success_body(response: &ApiResponse) -> Result<&[u8], ProviderError> {
    if (200..300).contains(&response.status) {
        return Ok(&response.body);
    }
    let error: ErrorBody =
        serde_json::from_slice(&response.body).map_err(|_| ProviderError::Unreadable {
            provider: Provider::Line,
            status: response.status,
        })?;
    let details: Vec<String> = error
        .details
        .iter()
        .map(|d| match (&d.property, &d.message) {
            (Some(property), Some(message)) => format!("{property}: {message}"),
            (None, Some(message)) => message.clone(),
            (Some(property), None) => property.clone(),
            (None, None) => String::new(),
        })
        .filter(|d| !d.is_empty())
        .collect();
    let message = if details.is_empty() {
        error.message
    } else {
        format!("{} ({})", error.message, details.join("; "))
    };
    Err(ProviderError::Refused {
        provider: Provider::Line,
        status: response.status,
        message: shown(&message),
    })
}

fn parse<T: for<'de> Deserialize<'de>>(response: &ApiResponse) -> Result<T, ProviderError> {
    serde_json::from_slice(success_body(response)?).map_err(|_| ProviderError::Unreadable {
        provider: Provider::Line,
        status: response.status,
    })
}

/// The PUT answers 200 with `{}`.
pub fn interpret_set_endpoint(response: &ApiResponse) -> Result<(), ProviderError> {
    success_body(response).map(|_| ())
}

/// `{"endpoint":"https://…","active":true}`; `active` is the console's "Use webhook" switch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EndpointInfo {
    pub endpoint: String,
    pub active: bool,
}

pub fn interpret_endpoint_info(response: &ApiResponse) -> Result<EndpointInfo, ProviderError> {
    parse(response)
}

impl EndpointInfo {
    pub fn problems(&self, expected_url: Option<&str>) -> Vec<Problem> {
        let mut problems: Vec<Problem> = url_problem(&self.endpoint, expected_url)
            .into_iter()
            .collect();
        if !self.active {
            problems.push(Problem::Inactive);
        }
        problems
    }
}

/// The test delivery's result: `statusCode` is zero or negative when LINE got no HTTP answer at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    #[serde(default)]
    pub success: bool,
    pub timestamp: String,
    pub status_code: i64,
    pub reason: String,
    pub detail: String,
}

pub fn interpret_test(response: &ApiResponse) -> Result<TestResult, ProviderError> {
    parse(response)
}

impl TestResult {
    pub fn problems(&self) -> Vec<Problem> {
        if self.success {
            Vec::new()
        } else {
            vec![Problem::TestDeliveryFailed {
                status_code: self.status_code,
                reason: shown(&format!("{} {}", self.reason, self.detail)),
            }]
        }
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
    fn requests_carry_the_bearer_token_and_the_endpoint() {
        let set = set_endpoint_request("https://api.line.me/", "tok", "https://gw/line/acme");
        assert_eq!(set.method, Method::PUT);
        assert_eq!(
            set.url,
            "https://api.line.me/v2/bot/channel/webhook/endpoint"
        );
        assert_eq!(
            set.headers,
            vec![("authorization", "Bearer tok".to_owned())]
        );
        assert_eq!(
            set.body,
            ApiBody::Json(json!({"endpoint": "https://gw/line/acme"}))
        );

        let info = endpoint_info_request(DEFAULT_API_BASE, "tok");
        assert_eq!((info.method, info.body), (Method::GET, ApiBody::None));

        let test = test_endpoint_request(DEFAULT_API_BASE, "tok", None);
        assert_eq!(test.url, "https://api.line.me/v2/bot/channel/webhook/test");
        assert_eq!(
            (test.method, test.body),
            (Method::POST, ApiBody::Json(json!({})))
        );
        let test = test_endpoint_request(DEFAULT_API_BASE, "tok", Some("https://gw/line/acme"));
        assert_eq!(
            test.body,
            ApiBody::Json(json!({"endpoint": "https://gw/line/acme"}))
        );
    }

    #[test]
    fn errors_show_the_message_and_details() {
        let body = r#"{"message":"Invalid webhook endpoint URL","details":[{"message":"must be https","property":"endpoint"}]}"#;
        assert_eq!(
            interpret_set_endpoint(&answer(400, body)),
            Err(ProviderError::Refused {
                provider: Provider::Line,
                status: 400,
                message: "Invalid webhook endpoint URL (endpoint: must be https)".to_owned()
            })
        );
        let body = r#"{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}"#;
        assert_eq!(
            interpret_endpoint_info(&answer(401, body)),
            Err(ProviderError::Refused {
                provider: Provider::Line,
                status: 401,
                message: "Authentication failed. Confirm that the access token in the authorization header is valid."
                    .to_owned()
            })
        );
        assert_eq!(
            interpret_set_endpoint(&answer(503, "upstream down")),
            Err(ProviderError::Unreadable {
                provider: Provider::Line,
                status: 503
            })
        );
        assert_eq!(interpret_set_endpoint(&answer(200, "{}")), Ok(()));
    }

    #[test]
    fn endpoint_info_checks_url_and_active_flag() {
        let info = interpret_endpoint_info(&answer(
            200,
            r#"{"endpoint":"https://gw/line/acme","active":false}"#,
        ))
        .unwrap();
        assert_eq!(
            info.problems(Some("https://gw/line/acme")),
            vec![Problem::Inactive]
        );
        let info = interpret_endpoint_info(&answer(
            200,
            r#"{"endpoint":"https://gw/line/acme","active":true}"#,
        ))
        .unwrap();
        assert_eq!(info.problems(Some("https://gw/line/acme")), vec![]);
        assert_eq!(info.problems(None), vec![]);
        assert_eq!(
            info.problems(Some("https://gw/line/other")),
            vec![Problem::UrlDiffers {
                configured: "https://gw/line/acme".to_owned(),
                expected: "https://gw/line/other".to_owned()
            }]
        );
        assert_eq!(
            interpret_endpoint_info(&answer(200, r#"{"active":true}"#)),
            Err(ProviderError::Unreadable {
                provider: Provider::Line,
                status: 200
            })
        );
    }

    #[test]
    fn test_results_fail_when_success_is_false() {
        let ok = r#"{"success":true,"timestamp":"2020-09-30T05:38:20.031Z","statusCode":200,"reason":"OK","detail":"200"}"#;
        assert_eq!(interpret_test(&answer(200, ok)).unwrap().problems(), vec![]);
        let failed = r#"{"success":false,"timestamp":"2020-09-30T05:38:20.031Z","statusCode":401,"reason":"ERROR_STATUS_CODE","detail":"401 Unauthorized"}"#;
        let result = interpret_test(&answer(200, failed)).unwrap();
        assert_eq!(result.status_code, 401);
        assert_eq!(
            result.problems(),
            vec![Problem::TestDeliveryFailed {
                status_code: 401,
                reason: "ERROR_STATUS_CODE 401 Unauthorized".to_owned()
            }]
        );
        let unreachable = r#"{"success":false,"timestamp":"2020-09-30T05:38:20.031Z","statusCode":-1,"reason":"COULD_NOT_CONNECT","detail":"Connection refused"}"#;
        assert_eq!(
            interpret_test(&answer(200, unreachable))
                .unwrap()
                .status_code,
            -1
        );
    }
}
