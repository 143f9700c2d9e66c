//! Provider access tokens, decided here and cached by the edge in one object per account: WeChat's
//! `stable_token`, WeCom's `gettoken`, LINE WORKS' service-account JWT grant (with its refresh token,
//! [`super::service_account`]). A token is refreshed ahead of its expiry, fetched once at a time (the
//! edge's object lets concurrent sends wait for the one fetch), and dropped and fetched again once when the
//! provider says it is invalid. WeChat's `stable_token` is always called in its normal mode: a forced refresh
//! is limited to 20 a day and invalidates the token other senders use, so the gateway never forces one.
//!
//! Tokens never leave the cache, the consumer and the provider's request: no `Debug`, log line, event or answer
//! shows one.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::service_account::ServiceAccountGrant;
use super::{api_base, credential, sender, Failure, ProviderRequest, SendError};
use crate::config::Account;

pub const WECHAT_API_BASE_BINDING: &str = "WECHAT_API_BASE";
pub const WECHAT_DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
pub const WECOM_API_BASE_BINDING: &str = "WECOM_API_BASE";
pub const WECOM_DEFAULT_API_BASE: &str = "https://qyapi.weixin.qq.com";
/// Refresh this long before expiry (WeChat's normal mode hands out the next token in the last 5 minutes).
pub const REFRESH_AHEAD_MS: u64 = 5 * 60 * 1000;
/// A token whose answer states no lifetime is kept this long.
const DEFAULT_LIFETIME_S: u64 = 7_200;
/// The longest token accepted (WeChat asks to reserve 512 characters).
const MAX_TOKEN_BYTES: usize = 2_048;

/// Which token a channel's send API needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// `POST /cgi-bin/stable_token` with AppID and AppSecret.
    WechatStable,
    /// `GET /cgi-bin/gettoken` with CorpID and the app's Secret.
    WecomApp,
    /// LINE WORKS `POST /oauth2/v2.0/token`: the service account's JWT, then its refresh token.
    LineworksServiceAccount,
}

/// A cached token. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedToken {
    pub token: String,
    pub expires_at_ms: u64,
    /// When the next send fetches a new one.
    pub refresh_at_ms: u64,
    /// Renews the token without the full grant (LINE WORKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &"[redacted]")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("refresh_at_ms", &self.refresh_at_ms)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl CachedToken {
    /// A token fetched at `now_ms` that lives `lifetime_s`: refreshed [`REFRESH_AHEAD_MS`] before it expires,
    /// or at half its life when it is shorter than twice that (so a short-lived answer cannot make every send
    /// fetch again).
    pub fn fetched(token: String, lifetime_s: u64, now_ms: u64) -> CachedToken {
        let lifetime_ms = lifetime_s.saturating_mul(1000);
        let ahead_ms = REFRESH_AHEAD_MS.min(lifetime_ms / 2);
        CachedToken {
            token,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
            refresh_at_ms: now_ms.saturating_add(lifetime_ms - ahead_ms),
            refresh_token: None,
        }
    }
}

/// What the cache does for a send that needs a token.
#[derive(Clone, PartialEq, Eq)]
pub enum TokenDecision {
    Use(String),
    /// The full grant.
    Fetch,
    /// The refresh grant with this refresh token first, the full grant if it fails.
    Refresh(String),
}

impl fmt::Debug for TokenDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenDecision::Use(_) => "Use([redacted])",
            TokenDecision::Fetch => "Fetch",
            TokenDecision::Refresh(_) => "Refresh([redacted])",
        })
    }
}

/// The cached token unless it is due for refresh or is the one the provider just `rejected` (a token already
/// replaced since is used: concurrent sends that met the same invalid token cause one fetch, not one each). A
/// token due for refresh that came with a refresh token is renewed with it; a rejected one is replaced through
/// the full grant.
pub fn decide(cached: Option<&CachedToken>, rejected: Option<&str>, now_ms: u64) -> TokenDecision {
    let Some(cached) = cached else {
        return TokenDecision::Fetch;
    };
    let was_rejected = rejected
        .is_some_and(|r| crate::crypto::secrets_equal(r.as_bytes(), cached.token.as_bytes()));
    match &cached.refresh_token {
        _ if was_rejected => TokenDecision::Fetch,
        _ if now_ms < cached.refresh_at_ms => TokenDecision::Use(cached.token.clone()),
        Some(refresh_token) => TokenDecision::Refresh(refresh_token.clone()),
        None => TokenDecision::Fetch,
    }
}

/// How a token is fetched: a request built by the caller (WeChat, WeCom), or LINE WORKS' grant, whose JWT the
/// token object signs only when it fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenGrant {
    Request(ProviderRequest),
    ServiceAccount(ServiceAccountGrant),
}

/// One fetch the token object makes, in the order [`fetch_steps`] gives.
#[derive(Clone, PartialEq, Eq)]
pub enum FetchStep {
    Refresh(String),
    Grant,
}

impl fmt::Debug for FetchStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FetchStep::Refresh(_) => "Refresh([redacted])",
            FetchStep::Grant => "Grant",
        })
    }
}

/// The fetches to try until one gives a token: the refresh grant first when decided and the grant has one,
/// then the full grant (a refresh token expired or revoked falls back to it).
pub fn fetch_steps(decision: &TokenDecision, grant: &TokenGrant) -> Vec<FetchStep> {
    match (decision, grant) {
        (TokenDecision::Use(_), _) => Vec::new(),
        (TokenDecision::Refresh(refresh_token), TokenGrant::ServiceAccount(_)) => {
            vec![FetchStep::Refresh(refresh_token.clone()), FetchStep::Grant]
        }
        _ => vec![FetchStep::Grant],
    }
}

/// The request of one step at `now_ms` (a LINE WORKS JWT is signed here).
pub fn step_request(
    grant: &TokenGrant,
    step: &FetchStep,
    now_ms: u64,
) -> Result<ProviderRequest, Failure> {
    match (grant, step) {
        (TokenGrant::Request(request), _) => Ok(request.clone()),
        (TokenGrant::ServiceAccount(grant), FetchStep::Refresh(refresh_token)) => {
            Ok(grant.refresh_request(refresh_token))
        }
        (TokenGrant::ServiceAccount(grant), FetchStep::Grant) => grant.jwt_request(now_ms),
    }
}

/// The token in the answer to `step`. A refresh answer without a new refresh token keeps the one it used.
pub fn read_step_answer(
    step: &FetchStep,
    status: u16,
    body: &[u8],
    now_ms: u64,
) -> Result<CachedToken, Failure> {
    let mut token = read_answer(status, body, now_ms)?;
    if let (FetchStep::Refresh(used), None) = (step, &token.refresh_token) {
        token.refresh_token = Some(used.clone());
    }
    Ok(token)
}

/// One call to an account's token object: the token to use now, fetched with `request` when the cache has
/// none to give (`rejected`: the token the provider just refused).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCall {
    pub kind: TokenKind,
    pub grant: TokenGrant,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
    pub now_ms: u64,
}

impl fmt::Debug for TokenCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCall")
            .field("kind", &self.kind)
            .field("now_ms", &self.now_ms)
            .finish_non_exhaustive()
    }
}

/// The object's answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenReply {
    Token {
        token: String,
    },
    /// The provider would not issue one: the send waits for its next attempt.
    Failed {
        failure: Failure,
    },
}

impl fmt::Debug for TokenReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenReply::Token { .. } => f.write_str("Token([redacted])"),
            TokenReply::Failed { failure } => write!(f, "Failed({failure:?})"),
        }
    }
}

/// The name of an account's token object: one per channel and account.
pub fn object_name(channel: &str, account: &str) -> String {
    format!("{channel}/{account}")
}

/// How a token of `kind` is fetched for `account`, with its credentials of this moment.
pub fn grant(kind: TokenKind, account: &Account<'_>) -> Result<TokenGrant, SendError> {
    match kind {
        TokenKind::LineworksServiceAccount => {
            ServiceAccountGrant::of(account).map(TokenGrant::ServiceAccount)
        }
        _ => fetch_request(kind, account).map(TokenGrant::Request),
    }
}

/// The request that fetches a WeChat or WeCom token for `account`.
fn fetch_request(kind: TokenKind, account: &Account<'_>) -> Result<ProviderRequest, SendError> {
    let sender = sender(account.channel).ok_or(SendError::NoSendApi)?;
    match kind {
        TokenKind::LineworksServiceAccount => Err(SendError::NoSendApi),
        TokenKind::WechatStable => {
            let app_id = credential(sender, account, "APP_ID")?;
            let secret = credential(sender, account, "APP_SECRET")?;
            let base = api_base(
                account.bindings(),
                WECHAT_API_BASE_BINDING,
                WECHAT_DEFAULT_API_BASE,
            );
            Ok(ProviderRequest::post_json(
                format!("{base}/cgi-bin/stable_token"),
                Vec::new(),
                json!({
                    "grant_type": "client_credential",
                    "appid": app_id,
                    "secret": secret,
                    "force_refresh": false,
                })
                .to_string(),
            ))
        }
        TokenKind::WecomApp => {
            let corp_id = credential(sender, account, "CORP_ID")?;
            let secret = credential(sender, account, "CORP_SECRET")?;
            let base = api_base(
                account.bindings(),
                WECOM_API_BASE_BINDING,
                WECOM_DEFAULT_API_BASE,
            );
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("corpid", &corp_id)
                .append_pair("corpsecret", &secret)
                .finish();
            Ok(ProviderRequest {
                method: "GET".into(),
                url: format!("{base}/cgi-bin/gettoken?{query}"),
                headers: Vec::new(),
                body: None,
            })
        }
    }
}

/// The token in a provider's answer: `{"access_token":…,"expires_in":…}` (WeCom adds `"errcode":0`; LINE
/// WORKS `"refresh_token"`, with `expires_in` as a string), or the provider's `{"errcode":…,"errmsg":…}` (LINE
/// WORKS: `{"error":…,"error_description":…}` or `{"code":…,"description":…}`).
pub fn read_answer(status: u16, body: &[u8], now_ms: u64) -> Result<CachedToken, Failure> {
    let answer: Value = crate::json::parse_slice(body).unwrap_or(Value::Null);
    let errcode = ["errcode", "error", "code"]
        .iter()
        .find_map(|key| crate::channels::text_at(&answer, &[key]))
        .filter(|code| code != "0");
    let token = answer.get("access_token").and_then(Value::as_str);
    match (status, errcode, token) {
        (200..=299, None, Some(token)) if usable(token) => {
            let lifetime_s = crate::channels::u64_at(&answer, &["expires_in"])
                .filter(|&s| s > 0)
                .unwrap_or(DEFAULT_LIFETIME_S);
            let mut cached = CachedToken::fetched(token.to_owned(), lifetime_s, now_ms);
            cached.refresh_token = answer
                .get("refresh_token")
                .and_then(Value::as_str)
                .filter(|refresh_token| usable(refresh_token))
                .map(str::to_owned);
            Ok(cached)
        }
        (_, Some(code), _) => Err(Failure::new(
            code,
            ["errmsg", "error_description", "description"]
                .iter()
                .find_map(|key| answer.get(*key).and_then(Value::as_str))
                .unwrap_or_default(),
        )),
        (status, None, _) => Err(Failure::new(
            format!("token_{status}"),
            "the token answer holds no usable access_token",
        )),
    }
}

/// A token goes into a header or URL: printable ASCII, bounded.
fn usable(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && token.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::env;
    use super::*;

    #[test]
    fn tokens_are_used_until_due_and_refreshed_ahead_of_expiry() {
        let now = 1_000_000;
        let token = CachedToken::fetched("T1".into(), 7_200, now);
        assert_eq!(token.expires_at_ms, now + 7_200_000);
        assert_eq!(token.refresh_at_ms, now + 7_200_000 - REFRESH_AHEAD_MS);
        assert_eq!(decide(None, None, now), TokenDecision::Fetch);
        assert_eq!(
            decide(Some(&token), None, now),
            TokenDecision::Use("T1".into())
        );
        assert_eq!(
            decide(Some(&token), None, token.refresh_at_ms - 1),
            TokenDecision::Use("T1".into())
        );
        assert_eq!(
            decide(Some(&token), None, token.refresh_at_ms),
            TokenDecision::Fetch
        );
        // A short-lived answer is refreshed at half its life, never on every send.
        let short = CachedToken::fetched("T2".into(), 60, now);
        assert_eq!(short.refresh_at_ms, now + 30_000);
    }

    #[test]
    fn only_the_rejected_token_is_dropped() {
        let token = CachedToken::fetched("T2".into(), 7_200, 0);
        assert_eq!(decide(Some(&token), Some("T2"), 10), TokenDecision::Fetch);
        // Another send met the old token: the new one is used, no second fetch.
        assert_eq!(
            decide(Some(&token), Some("T1"), 10),
            TokenDecision::Use("T2".into())
        );
    }

    #[test]
    fn wechat_stable_token_is_requested_in_normal_mode() {
        let env = env(&[("WECHAT_ACME_APP_SECRET", "app-secret-0123")]);
        let account = Account::new("wechat", "acme", &env);
        let request = fetch_request(TokenKind::WechatStable, &account).unwrap();
        assert_eq!(
            grant(TokenKind::WechatStable, &account),
            Ok(TokenGrant::Request(request.clone()))
        );
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://api.weixin.qq.com/cgi-bin/stable_token"
        );
        let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"grant_type":"client_credential","appid":"wx0123456789abcdef","secret":"app-secret-0123","force_refresh":false})
        );
        let bare = super::super::test_support::env(&[]);
        assert_eq!(
            fetch_request(
                TokenKind::WechatStable,
                &Account::new("wechat", "acme", &bare)
            ),
            Err(SendError::NotConfigured {
                field: "APP_SECRET"
            })
        );
    }

    #[test]
    fn wecom_gettoken_is_a_get_with_the_corp_credentials() {
        let env = env(&[
            ("WECOM_ACME_CORP_ID", "ww0123456789"),
            ("WECOM_ACME_CORP_SECRET", "corp-secret&x"),
            ("WECOM_API_BASE", "http://127.0.0.1:9/"),
        ]);
        let request =
            fetch_request(TokenKind::WecomApp, &Account::new("wecom", "acme", &env)).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.url,
            "http://127.0.0.1:9/cgi-bin/gettoken?corpid=ww0123456789&corpsecret=corp-secret%26x"
        );
        assert_eq!(request.body, None);
    }

    #[test]
    fn answers_give_a_token_or_the_provider_error() {
        let token = read_answer(
            200,
            br#"{"access_token":"ACCESS_TOKEN","expires_in":7200}"#,
            5,
        )
        .unwrap();
        assert_eq!(token.token, "ACCESS_TOKEN");
        assert_eq!(token.expires_at_ms, 5 + 7_200_000);
        let wecom = read_answer(
            200,
            br#"{"errcode":0,"errmsg":"ok","access_token":"AT","expires_in":7200}"#,
            0,
        )
        .unwrap();
        assert_eq!(wecom.token, "AT");
        assert_eq!(
            read_answer(
                200,
                br#"{"errcode":40164,"errmsg":"invalid ip 1.2.3.4, not in whitelist"}"#,
                0
            ),
            Err(Failure::new(
                "40164",
                "invalid ip 1.2.3.4, not in whitelist"
            ))
        );
        assert_eq!(
            read_answer(502, b"<html>", 0).unwrap_err().code,
            "token_502"
        );
        assert!(read_answer(200, br#"{"access_token":"a b"}"#, 0).is_err());
        assert!(!format!("{token:?}").contains("ACCESS_TOKEN"));
    }

    fn lineworks_grant() -> TokenGrant {
        let env = env(&[
            ("LINEWORKS_ACME_CLIENT_ID", "client-id"),
            ("LINEWORKS_ACME_CLIENT_SECRET", "client-secret"),
            ("LINEWORKS_ACME_SERVICE_ACCOUNT", "x.serviceaccount@example"),
            (
                "LINEWORKS_ACME_PRIVATE_KEY",
                super::super::jwt::tests::TEST_PRIVATE_KEY,
            ),
        ]);
        grant(
            TokenKind::LineworksServiceAccount,
            &Account::new("lineworks", "acme", &env),
        )
        .unwrap()
    }

    #[test]
    fn lineworks_tokens_are_renewed_with_their_refresh_token_and_replaced_when_rejected() {
        let now = 1_000_000;
        let answer = br#"{"access_token":"kr1AT","refresh_token":"kr1RT","scope":"bot","token_type":"Bearer","expires_in":"86400"}"#;
        let token = read_answer(200, answer, now).unwrap();
        assert_eq!(token.token, "kr1AT");
        assert_eq!(token.refresh_token.as_deref(), Some("kr1RT"));
        assert_eq!(token.expires_at_ms, now + 86_400_000);
        assert_eq!(token.refresh_at_ms, now + 86_400_000 - REFRESH_AHEAD_MS);
        assert_eq!(
            decide(Some(&token), None, now + 1),
            TokenDecision::Use("kr1AT".into())
        );
        let due = decide(Some(&token), None, token.refresh_at_ms);
        assert_eq!(due, TokenDecision::Refresh("kr1RT".into()));
        // The API said the token is invalid: the full grant, not the refresh token.
        assert_eq!(
            decide(Some(&token), Some("kr1AT"), now + 1),
            TokenDecision::Fetch
        );

        let grant = lineworks_grant();
        let steps = fetch_steps(&due, &grant);
        assert_eq!(
            steps,
            [FetchStep::Refresh("kr1RT".into()), FetchStep::Grant]
        );
        assert_eq!(
            fetch_steps(&TokenDecision::Fetch, &grant),
            [FetchStep::Grant]
        );
        assert!(fetch_steps(&TokenDecision::Use("t".into()), &grant).is_empty());
        let refresh = step_request(&grant, &steps[0], now).unwrap();
        assert!(refresh
            .body
            .as_deref()
            .unwrap()
            .contains("grant_type=refresh_token"));
        let full = step_request(&grant, &steps[1], now).unwrap();
        assert!(full.body.as_deref().unwrap().contains("jwt-bearer"));
        // A refresh answer without a new refresh token keeps the one it used.
        let renewed = read_step_answer(
            &steps[0],
            200,
            br#"{"access_token":"kr1AT2","expires_in":"86400"}"#,
            now,
        )
        .unwrap();
        assert_eq!(renewed.refresh_token.as_deref(), Some("kr1RT"));
        assert!(!format!("{renewed:?} {due:?} {steps:?}").contains("kr1"));
        // WeChat's grant has no refresh: a due token is fetched again.
        let wechat = TokenGrant::Request(refresh.clone());
        assert_eq!(fetch_steps(&due, &wechat), [FetchStep::Grant]);
    }

    #[test]
    fn lineworks_auth_errors_are_failures() {
        assert_eq!(
            read_answer(
                400,
                br#"{"error":"invalid_grant","error_description":"JWT expired"}"#,
                0
            ),
            Err(Failure::new("invalid_grant", "JWT expired"))
        );
        assert_eq!(
            read_answer(
                401,
                br#"{"code":"UNAUTHORIZED","description":"invalid client"}"#,
                0
            ),
            Err(Failure::new("UNAUTHORIZED", "invalid client"))
        );
    }

    #[test]
    fn calls_and_replies_never_print_tokens() {
        let reply = TokenReply::Token {
            token: "SECRET_TOKEN".into(),
        };
        assert!(!format!("{reply:?}").contains("SECRET"));
        let call = TokenCall {
            kind: TokenKind::WechatStable,
            grant: TokenGrant::Request(ProviderRequest::post_json(
                "https://x/".into(),
                vec![],
                "{\"secret\":\"S3\"}".into(),
            )),
            rejected: Some("SECRET_TOKEN".into()),
            now_ms: 0,
        };
        let printed = format!("{call:?}");
        assert!(
            !printed.contains("SECRET") && !printed.contains("S3"),
            "{printed}"
        );
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<TokenCall>(&json).unwrap(), call);
    }
}
