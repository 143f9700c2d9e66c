//! WeCom application message: `POST {WECOM_API_BASE}/cgi-bin/message/send?access_token=…` with the app's
//! `AGENT_ID`, the token from `gettoken` ([`super::tokens`]).

use serde_json::Value;

use super::tokens::{WECOM_API_BASE_BINDING, WECOM_DEFAULT_API_BASE};
use super::wechat::{classify_errcode, render_message};
use super::{
    api_base, credential, Failure, Outbound, ProviderAnswer, ProviderRequest, Recipient, SendError,
    SendJob, SendOutcome, Sender, TokenKind,
};
use crate::config::Account;

pub(super) struct WeCom;

impl Sender for WeCom {
    fn channel(&self) -> &'static str {
        "wecom"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["CORP_ID", "CORP_SECRET", "AGENT_ID"]
    }

    fn token(&self) -> Option<TokenKind> {
        Some(TokenKind::WecomApp)
    }

    /// To a member's userid (an app's direct conversation is the member's userid); the same text rules and
    /// 2,048-byte limit as WeChat.
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        render_message(to, message).map(|message| message.to_string())
    }

    /// The queued message gets the app's `agentid` as configured now.
    fn request(
        &self,
        _job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let agent_id: u64 = credential(self, account, "AGENT_ID")?
            .parse()
            .map_err(|_| SendError::NotConfigured { field: "AGENT_ID" })?;
        let token = token.ok_or(SendError::NotConfigured {
            field: "CORP_SECRET",
        })?;
        let mut message: Value = serde_json::from_str(payload)
            .map_err(|_| SendError::InvalidBody("the queued message is not JSON"))?;
        if let Some(object) = message.as_object_mut() {
            object.insert("agentid".into(), Value::from(agent_id));
        }
        let base = api_base(
            account.bindings(),
            WECOM_API_BASE_BINDING,
            WECOM_DEFAULT_API_BASE,
        );
        let token: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        Ok(ProviderRequest::post_json(
            format!("{base}/cgi-bin/message/send?access_token={token}"),
            Vec::new(),
            message.to_string(),
        ))
    }

    /// As WeChat's errcodes, plus: a recipient WeCom lists in `invaliduser` did not get the message.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        let outcome = classify_errcode(answer);
        if let SendOutcome::Sent { .. } = outcome {
            let body = answer.json();
            let invalid = body
                .get("invaliduser")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !invalid.is_empty() {
                return SendOutcome::Permanent(Failure::new(
                    "invaliduser",
                    format!("WeCom refused the recipient {invalid}"),
                ));
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::SendOutcome;

    fn configured() -> std::collections::HashMap<String, String> {
        env(&[
            ("WECOM_ACME_CORP_ID", "ww0123456789"),
            ("WECOM_ACME_CORP_SECRET", "corp-secret-0123"),
            ("WECOM_ACME_AGENT_ID", "1000002"),
        ])
    }

    #[test]
    fn an_app_message_carries_the_agent_id() {
        let (_, request) = first_request(
            "wecom",
            json!({"to":{"user":"zhangsan"},"message":{"text":"你好"}}),
            &configured(),
            Some("ACCESS_TOKEN"),
        )
        .unwrap();
        assert_eq!(
            request.url,
            "https://qyapi.weixin.qq.com/cgi-bin/message/send?access_token=ACCESS_TOKEN"
        );
        assert_eq!(
            body_json(&request),
            json!({"touser":"zhangsan","msgtype":"text","agentid":1000002,"text":{"content":"你好"}})
        );
    }

    #[test]
    fn every_credential_is_needed() {
        let mut env = configured();
        env.remove("WECOM_ACME_AGENT_ID");
        assert_eq!(
            first_request(
                "wecom",
                json!({"to":{"user":"zhangsan"},"message":{"text":"x"}}),
                &env,
                Some("T")
            )
            .unwrap_err()
            .body(),
            r#"{"error":"not_configured","field":"AGENT_ID"}"#
        );
    }

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(
                "wecom",
                200,
                r#"{"errcode":0,"errmsg":"ok","invaliduser":"","msgid":"xxxx"}"#,
                None
            ),
            SendOutcome::Sent {
                message_id: Some("xxxx".into())
            }
        );
        assert!(matches!(
            classify(
                "wecom",
                200,
                r#"{"errcode":0,"errmsg":"ok","invaliduser":"zhangsan","msgid":"x"}"#,
                None
            ),
            SendOutcome::Permanent(_)
        ));
        assert!(matches!(
            classify(
                "wecom",
                200,
                r#"{"errcode":42001,"errmsg":"access_token expired"}"#,
                None
            ),
            SendOutcome::TokenRejected(_)
        ));
        assert!(matches!(
            classify(
                "wecom",
                200,
                r#"{"errcode":81013,"errmsg":"user & party & tag all invalid"}"#,
                None
            ),
            SendOutcome::Permanent(_)
        ));
    }
}
