//! LINE WORKS bot message: `POST {LINEWORKS_API_BASE}/v1.0/bots/{botId}/users/{userId}/messages` (to a user)
//! or `…/channels/{channelId}/messages` (to a talk room), with the access token of the app's service account
//! ([`super::service_account`]). LINE WORKS answers `201` with no message id.
//!
//! A received event's `data.conversation.id` is the talk room's `channelId`, or for a 1:1 talk (no channel) the
//! user's id: a conversation id is sent to the channel first and, when LINE WORKS knows no such channel
//! (`404`), once to the user of that id.

use serde_json::{json, Value};

use super::{
    api_base, by_status, credential, within_limit, without_angle_markup, Failure, Outbound,
    ProviderAnswer, ProviderRequest, Recipient, SendError, SendJob, SendOutcome, Sender, TokenKind,
};
use crate::config::Account;
use crate::reply::plain_text;

pub(super) struct LineWorks;

pub(super) const API_BASE_BINDING: &str = "LINEWORKS_API_BASE";
pub(super) const DEFAULT_API_BASE: &str = "https://www.worksapis.com";
/// A text message holds at most 2,000 characters.
const MAX_TEXT_CHARS: usize = 2_000;

/// A user id (a UUID, or the login id `name@domain`) or a channel id: it goes into the URL path.
fn is_works_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// Everything but RFC 3986's unreserved characters is escaped (`@` of a login id as `%40`).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn path_segment(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, PATH_SEGMENT).to_string()
}

impl Sender for LineWorks {
    fn channel(&self) -> &'static str {
        "lineworks"
    }

    fn credentials(&self) -> &'static [&'static str] {
        &[
            "BOT_ID",
            "CLIENT_ID",
            "CLIENT_SECRET",
            "SERVICE_ACCOUNT",
            "PRIVATE_KEY",
        ]
    }

    fn token(&self) -> Option<TokenKind> {
        Some(TokenKind::LineworksServiceAccount)
    }

    /// `{"content":{"type":"text","text":…}}`; `<m userId="…">` in a text is a mention, so angle brackets
    /// become full-width. A raw message is the content object (`type` and its fields).
    fn render(
        &self,
        to: &Recipient,
        message: &Outbound,
        _send_id: &str,
    ) -> Result<String, SendError> {
        if !is_works_id(to.id()) {
            return Err(SendError::InvalidRecipient);
        }
        let content = match message {
            Outbound::Text(text) => {
                let text = without_angle_markup(&plain_text(text, usize::MAX));
                within_limit(&text, MAX_TEXT_CHARS, "characters", |t| t.chars().count())?;
                json!({ "type": "text", "text": text })
            }
            Outbound::Raw(raw) => {
                if !raw.get("type").is_some_and(Value::is_string) {
                    return Err(SendError::InvalidRaw(
                        "a LINE WORKS message content needs a `type`",
                    ));
                }
                Value::Object(raw.clone())
            }
        };
        Ok(json!({ "content": content }).to_string())
    }

    fn request(
        &self,
        job: &SendJob,
        payload: &str,
        account: &Account<'_>,
        token: Option<&str>,
    ) -> Result<ProviderRequest, SendError> {
        let bot_id = credential(self, account, "BOT_ID")?;
        let token = token.ok_or(SendError::NotConfigured { field: "CLIENT_ID" })?;
        let base = api_base(account.bindings(), API_BASE_BINDING, DEFAULT_API_BASE);
        let (kind, id) = match &job.to {
            Recipient::User(id) => ("users", id),
            Recipient::Conversation(id) => ("channels", id),
        };
        Ok(ProviderRequest::post_json(
            format!(
                "{base}/v1.0/bots/{}/{kind}/{}/messages",
                path_segment(&bot_id),
                path_segment(id)
            ),
            vec![("authorization".into(), format!("Bearer {token}"))],
            payload.to_owned(),
        ))
    }

    /// `201`; errors are `{"code":…,"description":…}`: `401` an invalid or expired token, `429` too many
    /// requests.
    fn classify(&self, answer: &ProviderAnswer<'_>) -> SendOutcome {
        if (200..300).contains(&answer.status) {
            return SendOutcome::Sent { message_id: None };
        }
        let body = answer.json();
        let code =
            crate::channels::text_at(&body, &["code"]).unwrap_or_else(|| answer.status.to_string());
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let failure = Failure::new(code, description);
        match answer.status {
            401 => SendOutcome::TokenRejected(failure),
            _ => by_status(answer, failure),
        }
    }

    fn readdress(&self, job: &SendJob, status: u16) -> Option<Recipient> {
        match &job.to {
            Recipient::Conversation(id) if status == 404 => Some(Recipient::User(id.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
