//! LINE WORKS API 2.0 service-account authentication: a JWT (RS256; `iss` the app's Client ID, `sub` its
//! Service Account, at most 60 minutes between `iat` and `exp`) signed with the app's private key, exchanged at
//! the auth server's `POST /oauth2/v2.0/token` for an access token (24 h) and a refresh token; the refresh
//! token renews the access token without a new JWT (`grant_type=refresh_token`).
//!
//! The grant travels to the account's token object, which signs a JWT only when it has to fetch: a send with
//! a cached token costs no RSA operation.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{api_base, credential, jwt, sender, Failure, ProviderRequest, SendError};
use crate::config::Account;

pub const AUTH_BASE_BINDING: &str = "LINEWORKS_AUTH_BASE";
pub const DEFAULT_AUTH_BASE: &str = "https://auth.worksmobile.com";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// LINE WORKS refuses a JWT that lives longer than 60 minutes.
const JWT_LIFETIME_S: u64 = 3_600;
/// Sending bot messages needs `bot` (or `bot.message`); `bot` also covers the callback settings.
const SCOPE: &str = "bot";
const CHANNEL: &str = "lineworks";

/// What the token object needs to fetch a LINE WORKS access token. Its `Debug` shows no credential.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountGrant {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub service_account: String,
    /// The PEM text of the app's private key.
    pub private_key: String,
}

impl fmt::Debug for ServiceAccountGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountGrant")
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountGrant {
    /// The account's credentials of this moment (`not_configured` names the first one missing).
    pub fn of(account: &Account<'_>) -> Result<ServiceAccountGrant, SendError> {
        let sender = sender(CHANNEL).ok_or(SendError::NoSendApi)?;
        let client_id = credential(sender, account, "CLIENT_ID")?;
        let client_secret = credential(sender, account, "CLIENT_SECRET")?;
        let service_account = credential(sender, account, "SERVICE_ACCOUNT")?;
        // A PEM file has line breaks and spaces: not read as a one-word credential.
        let private_key = account
            .field("PRIVATE_KEY")
            .filter(|key| !key.trim().is_empty())
            .ok_or(SendError::NotConfigured {
                field: "PRIVATE_KEY",
            })?;
        let base = api_base(account.bindings(), AUTH_BASE_BINDING, DEFAULT_AUTH_BASE);
        Ok(ServiceAccountGrant {
            token_url: format!("{base}/oauth2/v2.0/token"),
            client_id,
            client_secret,
            service_account,
            private_key,
        })
    }

    /// The JWT's claims at `now_s`.
    pub fn claims(&self, now_s: u64) -> serde_json::Value {
        json!({
            "iss": self.client_id,
            "sub": self.service_account,
            "iat": now_s,
            "exp": now_s + JWT_LIFETIME_S,
        })
    }

    /// The access-token request: a freshly signed JWT as the assertion.
    pub fn jwt_request(&self, now_ms: u64) -> Result<ProviderRequest, Failure> {
        let assertion = jwt::sign_rs256(&self.claims(now_ms / 1000), &self.private_key)
            .map_err(|error| Failure::new("invalid_private_key", error.to_string()))?;
        Ok(self.form_post(&[
            ("assertion", &assertion),
            ("grant_type", JWT_BEARER_GRANT),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("scope", SCOPE),
        ]))
    }

    /// Renews the access token with the refresh token of the last answer.
    pub fn refresh_request(&self, refresh_token: &str) -> ProviderRequest {
        self.form_post(&[
            ("refresh_token", refresh_token),
            ("grant_type", "refresh_token"),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
        ])
    }

    fn form_post(&self, pairs: &[(&str, &str)]) -> ProviderRequest {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        ProviderRequest {
            method: "POST".into(),
            url: self.token_url.clone(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: Some(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::jwt::tests::{verified, TEST_PRIVATE_KEY};
    use super::super::test_support::env;
    use super::*;

    pub(crate) fn configured() -> HashMap<String, String> {
        env(&[
            ("LINEWORKS_ACME_CLIENT_ID", "XN3ffPU1bYkcL4PJzPlz"),
            ("LINEWORKS_ACME_CLIENT_SECRET", "Nn3mq0XUf4"),
            (
                "LINEWORKS_ACME_SERVICE_ACCOUNT",
                "1a2b3.serviceaccount@example.co.jp",
            ),
            ("LINEWORKS_ACME_PRIVATE_KEY", TEST_PRIVATE_KEY),
        ])
    }

    fn form(request: &ProviderRequest) -> HashMap<String, String> {
        form_urlencoded::parse(request.body.as_deref().unwrap().as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn the_jwt_grant_is_the_documented_form_with_a_verifiable_assertion() {
        let env = configured();
        let grant = ServiceAccountGrant::of(&Account::new("lineworks", "acme", &env)).unwrap();
        let request = grant.jwt_request(1_700_000_000_500).unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://auth.worksmobile.com/oauth2/v2.0/token"
        );
        assert_eq!(
            request.headers,
            [(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned()
            )]
        );
        let form = form(&request);
        assert_eq!(form["grant_type"], JWT_BEARER_GRANT);
        assert_eq!(form["client_id"], "XN3ffPU1bYkcL4PJzPlz");
        assert_eq!(form["client_secret"], "Nn3mq0XUf4");
        assert_eq!(form["scope"], "bot");
        let (header, claims) = verified(&form["assertion"]);
        assert_eq!(header, json!({"alg":"RS256","typ":"JWT"}));
        assert_eq!(
            claims,
            json!({"iss":"XN3ffPU1bYkcL4PJzPlz","sub":"1a2b3.serviceaccount@example.co.jp","iat":1_700_000_000u64,"exp":1_700_003_600u64})
        );
        // Nothing of the credentials in what a log line could show.
        let printed = format!("{grant:?} {request:?}");
        assert!(
            !printed.contains("Nn3mq0XUf4") && !printed.contains("PRIVATE KEY"),
            "{printed}"
        );
    }

    #[test]
    fn the_refresh_grant_and_the_auth_base_binding() {
        let mut env = configured();
        env.insert("LINEWORKS_AUTH_BASE".into(), "http://127.0.0.1:9/".into());
        let grant = ServiceAccountGrant::of(&Account::new("lineworks", "acme", &env)).unwrap();
        let request = grant.refresh_request("kr1AAAA+refresh/token");
        assert_eq!(request.url, "http://127.0.0.1:9/oauth2/v2.0/token");
        let form = form(&request);
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "kr1AAAA+refresh/token");
        assert_eq!(form["client_id"], "XN3ffPU1bYkcL4PJzPlz");
        assert_eq!(form["client_secret"], "Nn3mq0XUf4");
        assert!(!form.contains_key("assertion"));
    }

    #[test]
    fn missing_credentials_are_named_and_a_broken_key_is_a_failure() {
        let mut env = configured();
        env.remove("LINEWORKS_ACME_PRIVATE_KEY");
        assert_eq!(
            ServiceAccountGrant::of(&Account::new("lineworks", "acme", &env)),
            Err(SendError::NotConfigured {
                field: "PRIVATE_KEY"
            })
        );
        env.remove("LINEWORKS_ACME_CLIENT_SECRET");
        assert_eq!(
            ServiceAccountGrant::of(&Account::new("lineworks", "acme", &env)),
            Err(SendError::NotConfigured {
                field: "CLIENT_SECRET"
            })
        );
        let mut broken = configured();
        broken.insert(
            "LINEWORKS_ACME_PRIVATE_KEY".into(),
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----".into(),
        );
        let grant = ServiceAccountGrant::of(&Account::new("lineworks", "acme", &broken)).unwrap();
        assert_eq!(
            grant.jwt_request(0).unwrap_err().code,
            "invalid_private_key"
        );
    }
}
