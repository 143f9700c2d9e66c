//! WeChat Official Account customer-service message: `POST {WECHAT_API_BASE}/cgi-bin/message/custom/send
//! ?access_token=…`, the token from `stable_token` ([`super::tokens`]). WeChat allows it within 48 hours of
//! the user's last message (`45015` after that: permanent).

use serde_json::{json, Value};

use super::tokens::{WECHAT_API_BASE_BINDING, WECHAT_DEFAULT_API_BASE};
use super::{
    api_base, by_status, credential, within_limit, without_angle_markup, Failure, Outbound,
    ProviderAnswer, ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender, TokenKind,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct WeChat;

/// A text message's `content` holds at most 2,048 bytes.
pub(super) const MAX_TEXT_BYTES: usize = 2_048;
/// The access token is invalid or expired.
pub(super) const TOKEN_ERRORS: &[&str] = &["40001", "40014", "41001", "42001"];
/// System busy: try later.
const TEMPORARY_ERRORS: &[&str] = &["-1"];
/// Call frequency limits.
const RATE_ERRORS: &[&str] = &["45009", "45011", "45047"];

/// An OpenID (or a WeCom userid): letters, digits, `_`, `-`, `.` and `@`.
pub(super) fn is_user_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'))
}

/// `{"touser":…,"msgtype":"text","text":{"content":…}}`, or the raw message object with `touser` forced.
/// Text content may carry `<a href>` links: angle brackets become full-width, so none is forged.
pub(super) fn render_message(to: &Recipient, message: &Outbound) -> Result<Value, SendError> {
    if !is_user_id(to.id()) {
        return Err(SendError::InvalidRecipient);
    }
    match message {
        Outbound::Text(text) => {
            let content = without_angle_markup(&plain_text(text, usize::MAX));
            within_limit(&content, MAX_TEXT_BYTES, "bytes", str::len)?;
            Ok(json!({ "touser": to.id(), "msgtype": "text", "text": { "content": content } }))
        }
        Outbound::Raw(raw) => {
            if !raw.get("msgtype").is_some_and(Value::is_string) {
                return Err(SendError::InvalidRaw("a message needs its `msgtype`"));
            }
            let mut raw = raw.clone();
            raw.insert("touser".into(), Value::from(to.id()));
            Ok(Value::Object(raw))
        }
    }
}

/// `{"errcode":0,"errmsg":"ok"}` (WeCom adds `msgid`); anything else by its `errcode`.
pub(super) fn classify_errcode(answer: &ProviderAnswer<'_>) -> SendOutcome {
    let body = answer.json();
    let errcode = crate::channels::text_at(&body, &["errcode"]);
    let message = body
        .get("errmsg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(code) = errcode.filter(|_| (200..300).contains(&answer.status)) else {
        return by_status(answer, Failure::new(answer.status.to_string(), message));
    };
    let failure = Failure::new(code.clone(), message);
    match code.as_str() {
        "0" => SendOutcome::Sent {
            message_id: crate::channels::text_at(&body, &["msgid"]),
        },
        code if TOKEN_ERRORS.contains(&code) => SendOutcome::TokenRejected(failure),
        code if TEMPORARY_ERRORS.contains(&code) => SendOutcome::Temporary(failure),
        code if RATE_ERRORS.contains(&code) => SendOutcome::RateLimited {
            wait_s: None,
            failure,
        },
        _ => SendOutcome::Permanent(failure),
    }
}

impl Sender for WeChat {
    fn channel(&self) -> &'static str {
        "wechat"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &["APP_ID", "APP_SECRET"]
    }

    fn token(&self) -> Option<TokenKind> {
        Some(TokenKind::WechatStable)
    }

    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        render_message(to, message).map(|message| message.to_string())
    }

    fn request(
        &self,
        _job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        credential(self, account, "APP_SECRET")?;
        let token = token.ok_or(SendError::NotConfigured {
            field: "APP_SECRET",
        })?;
        let base = api_base(
            account.bindings(),
            WECHAT_API_BASE_BINDING,
            WECHAT_DEFAULT_API_BASE,
        );
        let token: String = form_urlencoded::byte_serialize(token.as_bytes()).collect();
        Ok(ProviderRequest::post_json(
            format!("{base}/cgi-bin/message/custom/send?access_token={token}"),
            Vec::new(),
            payload.to_owned(),
        ))
    }

    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        classify_errcode(answer)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::*;
    use super::super::{Failure, SendOutcome};

    const OPENID: &str = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc";

    fn configured() -> std::collections::HashMap<String, String> {
        env(&[("WECHAT_ACME_APP_SECRET", "app-secret-0123")])
    }

    #[test]
    fn a_text_is_a_customer_service_message_with_the_token_in_the_query() {
        let (_, request) = first_request(
            "wechat",
            json!({"to":{"conversation":OPENID},"message":{"text":"<a href=\"https://evil\">点这里</a>"}}),
            &configured(),
            Some("ACCESS_TOKEN"),
        )
        .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.url,
            "https://api.weixin.qq.com/cgi-bin/message/custom/send?access_token=ACCESS_TOKEN"
        );
        assert_eq!(
            body_json(&request),
            json!({"touser":OPENID,"msgtype":"text","text":{"content":"＜a href=\"https://evil\"＞点这里＜/a＞"}})
        );
        assert!(!format!("{request:?}").contains("ACCESS_TOKEN"));
    }

    #[test]
    fn raw_messages_keep_their_type_and_limits_hold() {
        let configured = configured();
        let (_, request) = first_request(
            "wechat",
            json!({"to":{"user":OPENID},"message":{"raw":{"msgtype":"image","image":{"media_id":"MEDIA_ID"},"touser":"other"}}}),
            &configured,
            Some("T"),
        )
        .unwrap();
        assert_eq!(
            body_json(&request),
            json!({"touser":OPENID,"msgtype":"image","image":{"media_id":"MEDIA_ID"}})
        );
        let refused = |body| {
            first_request("wechat", body, &configured, Some("T"))
                .unwrap_err()
                .reason()
        };
        assert_eq!(
            refused(json!({"to":{"user":OPENID},"message":{"text":"字".repeat(683)}})),
            "text_too_long"
        );
        assert_eq!(
            refused(json!({"to":{"user":"a/b"},"message":{"text":"x"}})),
            "invalid_recipient"
        );
        assert_eq!(
            refused(json!({"to":{"user":OPENID},"message":{"raw":{"image":{}}}})),
            "invalid_raw"
        );
        assert_eq!(
            first_request(
                "wechat",
                json!({"to":{"user":OPENID},"message":{"text":"x"}}),
                &env(&[]),
                None
            )
            .unwrap_err()
            .body(),
            r#"{"error":"not_configured","field":"APP_SECRET"}"#
        );
    }

    #[test]
    fn errcodes_are_classified() {
        assert_eq!(
            classify("wechat", 200, r#"{"errcode":0,"errmsg":"ok"}"#, None),
            SendOutcome::Sent { message_id: None }
        );
        assert_eq!(
            classify(
                "wechat",
                200,
                r#"{"errcode":45015,"errmsg":"response out of time limit or subscription is canceled"}"#,
                None
            ),
            SendOutcome::Permanent(Failure::new(
                "45015",
                "response out of time limit or subscription is canceled"
            ))
        );
        assert_eq!(
            classify(
                "wechat",
                200,
                r#"{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest"}"#,
                None
            ),
            SendOutcome::TokenRejected(Failure::new(
                "40001",
                "invalid credential, access_token is invalid or not latest"
            ))
        );
        assert!(matches!(
            classify(
                "wechat",
                200,
                r#"{"errcode":-1,"errmsg":"system error"}"#,
                None
            ),
            SendOutcome::Temporary(_)
        ));
        assert!(matches!(
            classify(
                "wechat",
                200,
                r#"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#,
                None
            ),
            SendOutcome::RateLimited { .. }
        ));
        assert!(matches!(
            classify("wechat", 503, "", None),
            SendOutcome::Temporary(_)
        ));
    }
}
