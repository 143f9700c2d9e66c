//! Meta Graph API: the app's webhook subscriptions (`/{app-id}/subscriptions`), for WhatsApp, Messenger and
//! Instagram, with the app access token `{app-id}|{app-secret}` (sent as a bearer token, never in a URL).
//!
//! Meta verifies the callback during `POST …/subscriptions` (the `GET hub.mode=subscribe` handshake), so the
//! Worker must hold the verify token *before* the call. Errors: `{"error":{"message":"…","type":"…","code":…}}`.

use ::http::Method;
use serde::Deserialize;

use super::{
    shown, trimmed_base, ApiBody, ApiRequest, ApiResponse, Problem, Provider, ProviderError,
};

pub const DEFAULT_API_BASE: &str = "https://graph.facebook.com";
pub const DEFAULT_GRAPH_VERSION: &str = "v24.0";

/// The product an account of the gateway serves, and so the subscription object and binding prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    WhatsApp,
    Messenger,
    Instagram,
}

impl Product {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "whatsapp" => Some(Product::WhatsApp),
            "messenger" => Some(Product::Messenger),
            "instagram" => Some(Product::Instagram),
            _ => None,
        }
    }

    /// The gateway's channel (route segment and binding prefix).
    pub fn channel(self) -> &'static str {
        match self {
            Product::WhatsApp => "whatsapp",
            Product::Messenger => "messenger",
            Product::Instagram => "instagram",
        }
    }

    /// The Graph API's subscription `object`.
    pub fn object(self) -> &'static str {
        match self {
            Product::WhatsApp => "whatsapp_business_account",
            Product::Messenger => "page",
            Product::Instagram => "instagram",
        }
    }

    /// The fields docs/channels/meta.md recommends.
    pub fn default_fields(self) -> &'static [&'static str] {
        match self {
            Product::WhatsApp => &["messages"],
            Product::Messenger => &[
                "messages",
                "messaging_postbacks",
                "message_deliveries",
                "message_reads",
                "message_reactions",
                "message_echoes",
                "message_edits",
            ],
            Product::Instagram => &[
                "messages",
                "messaging_postbacks",
                "messaging_seen",
                "message_reactions",
            ],
        }
    }
}

/// The app a subscription belongs to.
#[derive(Clone, PartialEq, Eq)]
pub struct App {
    id: String,
    secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedApp {
    #[error("the app id must be digits")]
    Id,
    #[error("the app secret must be letters and digits")]
    Secret,
}

impl App {
    pub fn new(id: &str, secret: &str) -> Result<Self, MalformedApp> {
        let (id, secret) = (id.trim(), secret.trim());
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MalformedApp::Id);
        }
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedApp::Secret);
        }
        Ok(App {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn access_token(&self) -> String {
        format!("{}|{}", self.id, self.secret)
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "App({}, {})", self.id, super::mask(&self.secret))
    }
}

/// A Graph API version as Meta names them: `v24.0`.
pub fn is_valid_graph_version(version: &str) -> bool {
    version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            !major.is_empty()
                && !minor.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && minor.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Meta's verify token as the gateway compares it: `A-Z a-z 0-9 - _ .` (the query is only percent-decoded).
pub fn is_valid_verify_token(token: &str) -> bool {
    (1..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn subscriptions_url(base: &str, version: &str, app: &App) -> String {
    format!("{}/{version}/{}/subscriptions", trimmed_base(base), app.id)
}

fn auth(app: &App) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {}", app.access_token()))]
}

/// What `sekisho webhook meta set` subscribes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub product: Product,
    pub callback_url: String,
    pub fields: Vec<String>,
    pub verify_token: String,
}

/// `POST /{version}/{app-id}/subscriptions` with `object`, `callback_url`, `fields`, `verify_token` as form fields.
pub fn subscribe_request(
    base: &str,
    version: &str,
    app: &App,
    subscribe: &Subscribe,
) -> ApiRequest {
    ApiRequest {
        method: Method::POST,
        url: subscriptions_url(base, version, app),
        headers: auth(app),
        body: ApiBody::Form(vec![
            ("object", subscribe.product.object().to_owned()),
            ("callback_url", subscribe.callback_url.clone()),
            ("fields", subscribe.fields.join(",")),
            ("verify_token", subscribe.verify_token.clone()),
        ]),
    }
}

/// `GET /{version}/{app-id}/subscriptions`.
pub fn subscriptions_request(base: &str, version: &str, app: &App) -> ApiRequest {
    ApiRequest {
        method: Method::GET,
        url: subscriptions_url(base, version, app),
        headers: auth(app),
        body: ApiBody::None,
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct GraphError {
    message: String,
    #[serde(default)]
    code: Option<i64>,
}

fn success_body(response: &ApiResponse) -> Result<&[u8], ProviderError> {
    if (200..300).contains(&response.status) {
        return Ok(&response.body);
    }
    let envelope: ErrorEnvelope =
        serde_json::from_slice(&response.body).map_err(|_| ProviderError::Unreadable {
            provider: Provider::Meta,
            status: response.status,
        })?;
    let message = match envelope.error.code {
        Some(code) => format!("{} (code {code})", envelope.error.message),
        None => envelope.error.message,
    };
    Err(ProviderError::Refused {
        provider: Provider::Meta,
        status: response.status,
        message: shown(&message),
    })
}

fn unreadable(response: &ApiResponse) -> ProviderError {
    ProviderError::Unreadable {
        provider: Provider::Meta,
        status: response.status,
    }
}

/// `{"success":true}` (the documentation's sample shows the string `"true"`; both are accepted).
pub fn interpret_subscribe(response: &ApiResponse) -> Result<(), ProviderError> {
    let body: serde_json::Value =
        serde_json::from_slice(success_body(response)?).map_err(|_| unreadable(response))?;
    match body.get("success") {
        Some(serde_json::Value::Bool(true)) => Ok(()),
        Some(serde_json::Value::String(text)) if text == "true" => Ok(()),
        _ => Err(unreadable(response)),
    }
}

/// A field as listed: `{"name":"messages","version":"v24.0"}` (or a bare name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum Field {
    Named { name: String },
    Bare(String),
}

#[derive(Deserialize)]
struct RawSubscription {
    object: String,
    #[serde(default)]
    callback_url: String,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    fields: Vec<Field>,
}

#[derive(Deserialize)]
struct Subscriptions {
    data: Vec<RawSubscription>,
}

/// One object's subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub object: String,
    pub callback_url: String,
    pub active: bool,
    pub fields: Vec<String>,
}

pub fn interpret_subscriptions(response: &ApiResponse) -> Result<Vec<Subscription>, ProviderError> {
    let parsed: Subscriptions =
        serde_json::from_slice(success_body(response)?).map_err(|_| unreadable(response))?;
    Ok(parsed
        .data
        .into_iter()
        .map(|raw| Subscription {
            object: shown(&raw.object),
            callback_url: raw.callback_url,
            active: raw.active,
            fields: raw
                .fields
                .into_iter()
                .map(|field| match field {
                    Field::Named { name } | Field::Bare(name) => shown(&name),
                })
                .collect(),
        })
        .collect())
}

/// What is wrong with `product`'s subscription: none, inactive, another URL, fields missing.
pub fn problems(
    subscriptions: &[Subscription],
    product: Product,
    expected_url: Option<&str>,
    expected_fields: &[String],
) -> Vec<Problem> {
    let Some(subscription) = subscriptions.iter().find(|s| s.object == product.object()) else {
        return vec![Problem::NotConfigured];
    };
    super::registration_problems(
        &subscription.callback_url,
        expected_url,
        subscription.active,
        &subscription.fields,
        expected_fields,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App::new("188559381496048", "0123456789abcdef0123456789abcdef").unwrap()
    }

    fn answer(status: u16, body: &str) -> ApiResponse {
        ApiResponse {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn inputs_that_enter_urls_are_checked() {
        assert_eq!(App::new("12/../x", "abc"), Err(MalformedApp::Id));
        assert_eq!(App::new("123", "a|b"), Err(MalformedApp::Secret));
        assert!(!format!("{:?}", app()).contains("89abcdef"));
        assert!(is_valid_graph_version("v24.0"));
        assert!(!is_valid_graph_version("24.0"));
        assert!(!is_valid_graph_version("v24"));
        assert!(!is_valid_graph_version("v24.0/../x"));
        assert!(is_valid_verify_token("abc.DEF-1_2"));
        assert!(!is_valid_verify_token("a b"));
        assert!(!is_valid_verify_token(""));
    }

    #[test]
    fn subscribe_posts_the_form_with_the_app_token_as_bearer() {
        let request = subscribe_request(
            "https://graph.facebook.com/",
            "v24.0",
            &app(),
            &Subscribe {
                product: Product::WhatsApp,
                callback_url: "https://gw/whatsapp/acme".to_owned(),
                fields: vec!["messages".to_owned()],
                verify_token: "vt-1".to_owned(),
            },
        );
        assert_eq!(request.method, Method::POST);
        assert_eq!(
            request.url,
            "https://graph.facebook.com/v24.0/188559381496048/subscriptions"
        );
        assert_eq!(
            request.headers,
            vec![(
                "authorization",
                "Bearer 188559381496048|0123456789abcdef0123456789abcdef".to_owned()
            )]
        );
        assert_eq!(
            request.body,
            ApiBody::Form(vec![
                ("object", "whatsapp_business_account".to_owned()),
                ("callback_url", "https://gw/whatsapp/acme".to_owned()),
                ("fields", "messages".to_owned()),
                ("verify_token", "vt-1".to_owned()),
            ])
        );
        let list = subscriptions_request(DEFAULT_API_BASE, DEFAULT_GRAPH_VERSION, &app());
        assert_eq!((list.method, list.body), (Method::GET, ApiBody::None));
    }

    #[test]
    fn subscribe_answers_are_interpreted() {
        assert_eq!(
            interpret_subscribe(&answer(200, r#"{"success":true}"#)),
            Ok(())
        );
        assert_eq!(
            interpret_subscribe(&answer(200, r#"{"success":"true"}"#)),
            Ok(())
        );
        assert_eq!(
            interpret_subscribe(&answer(200, r#"{"success":false}"#)),
            Err(ProviderError::Unreadable {
                provider: Provider::Meta,
                status: 200
            })
        );
        let refused = r#"{"error":{"message":"(#2200) callback verification failed with the following errors: HTTP Status Code = 403","type":"OAuthException","code":2200,"fbtrace_id":"AbC"}}"#;
        assert_eq!(
            interpret_subscribe(&answer(400, refused)),
            Err(ProviderError::Refused {
                provider: Provider::Meta,
                status: 400,
                message: "(#2200) callback verification failed with the following errors: HTTP Status Code = 403 (code 2200)"
                    .to_owned()
            })
        );
    }

    const LISTED: &str = r#"{"data":[
        {"object":"page","callback_url":"https://gw/messenger/acme","active":true,
         "fields":[{"name":"messages","version":"v24.0"},{"name":"messaging_postbacks","version":"v24.0"}]},
        {"object":"whatsapp_business_account","callback_url":"https://gw/whatsapp/old","active":false,
         "fields":[{"name":"messages","version":"v24.0"}]}]}"#;

    #[test]
    fn subscriptions_are_checked_per_product() {
        let listed = interpret_subscriptions(&answer(200, LISTED)).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].fields, vec!["messages", "messaging_postbacks"]);
        assert_eq!(
            problems(
                &listed,
                Product::Messenger,
                Some("https://gw/messenger/acme"),
                &["messages".to_owned()]
            ),
            vec![]
        );
        assert_eq!(
            problems(
                &listed,
                Product::Messenger,
                None,
                &["messages".to_owned(), "message_reads".to_owned()]
            ),
            vec![Problem::MissingFields(vec!["message_reads".to_owned()])]
        );
        assert_eq!(
            problems(
                &listed,
                Product::WhatsApp,
                Some("https://gw/whatsapp/acme"),
                &[]
            ),
            vec![
                Problem::UrlDiffers {
                    configured: "https://gw/whatsapp/old".to_owned(),
                    expected: "https://gw/whatsapp/acme".to_owned()
                },
                Problem::Inactive
            ]
        );
        assert_eq!(
            problems(&listed, Product::Instagram, None, &[]),
            vec![Problem::NotConfigured]
        );
    }

    #[test]
    fn subscription_errors_are_shown() {
        let body = r#"{"error":{"message":"Invalid OAuth access token signature.","type":"OAuthException","code":190}}"#;
        assert_eq!(
            interpret_subscriptions(&answer(400, body)),
            Err(ProviderError::Refused {
                provider: Provider::Meta,
                status: 400,
                message: "Invalid OAuth access token signature. (code 190)".to_owned()
            })
        );
        assert_eq!(
            interpret_subscriptions(&answer(500, "oops")),
            Err(ProviderError::Unreadable {
                provider: Provider::Meta,
                status: 500
            })
        );
    }
}
