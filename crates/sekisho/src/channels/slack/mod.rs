//! Slack: Events API, interactivity and slash commands.
//!
//! `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret as UTF-8, "v0:{X-Slack-Request-Timestamp}:{raw body}")>`,
//! with the timestamp within 300 s of now in either direction. Events API bodies are JSON (`url_verification`
//! is answered with its challenge after the signature is checked); interactivity posts a form with one
//! `payload` field holding JSON; slash commands post plain form fields.
//!
//! Bot messages are forwarded unless the account opts out with `IGNORE_BOTS=true` or lists bot ids in
//! `IGNORE_BOT_IDS`; an ignored event is still acknowledged, and counted in the response body
//! (`{"accepted":0,"ignored":1}`) so it is never silently lost.

#[cfg(test)]
use http::Method;
use serde_json::Value;

use super::form::is_form;
use super::Verdict;
use super::{text_at, Channel, ChannelRequest, EdgeResponse};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Conversation, ConversationKind, EventData, EventParts, Message, Postback, Reply, Sender,
    Verification,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

mod events;
mod interactivity;
mod reply;

pub struct Slack;

const SIGNATURE_HEADER: &str = "x-slack-signature";
const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
const SIGNING_SECRET: &str = "SIGNING_SECRET";
const IGNORE_BOTS: &str = "IGNORE_BOTS";
const IGNORE_BOT_IDS: &str = "IGNORE_BOT_IDS";
const MAX_SKEW_S: u64 = 300;
const SCHEME: &str = "slack-v0";

impl Channel for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn account_field(&self) -> &'static str {
        SIGNING_SECRET
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("SIGNING_SECRET", Format::Hex { len: 32 }).help(
                "api.slack.com/apps → アプリ → Basic Information → Signing Secret",
                "api.slack.com/apps → your app → Basic Information → Signing Secret",
            ),
            FieldSpec::setting(
                "IGNORE_BOTS",
                Format::OneOf {
                    values: &["true", "false"],
                },
            )
            .help(
                "ボットの投稿を転送しない",
                "Do not forward messages posted by bots",
            ),
            FieldSpec::setting("IGNORE_BOT_IDS", Format::Text { max: 1024 }).help(
                "転送しないボット ID（カンマ区切り）",
                "Bot ids not forwarded (comma-separated)",
            ),
            FieldSpec::secret("BOT_TOKEN", Format::Token { min: 20, max: 256 })
                .optional()
                .help(
                    "OAuth & Permissions → Bot User OAuth Token（送信に使います）",
                    "OAuth & Permissions → Bot User OAuth Token (for sending)",
                ),
        ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values(SIGNING_SECRET)?;
        let bot_filter = BotFilter::from_account(account)?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .ok_or(Rejection::MissingSignature)?;
        let timestamp = request
            .header(TIMESTAMP_HEADER)
            .ok_or(Rejection::StaleTimestamp)?;
        // The header is hashed as sent, so it must be exactly the digits that were parsed.
        let sent_s: u64 = timestamp.parse().map_err(|_| Rejection::StaleTimestamp)?;
        if sent_s.abs_diff(request.now_ms / 1000) > MAX_SKEW_S {
            return Err(Rejection::StaleTimestamp);
        }
        let tag = signature
            .trim()
            .strip_prefix("v0=")
            .and_then(crypto::hex_decode)
            .ok_or(Rejection::InvalidSignature)?;
        let signed: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", request.body];
        let key_index = crypto::hmac_sha256_matches(&secrets, &signed, &tag)
            .ok_or(Rejection::InvalidSignature)?;

        let context = Context {
            verification: Verification {
                scheme: SCHEME.to_owned(),
                key_index,
            },
            request_ms: sent_s.saturating_mul(1000),
        };
        let outcome = if is_form(request.header("content-type")) {
            interactivity::form_request(&context, request.body)?
        } else {
            events::json_request(&context, request.body, &bot_filter)?
        };
        let response = match outcome.response {
            Response::Accepted => return Ok(Verdict::accepted(outcome.events)),
            Response::Ignored => {
                EdgeResponse::json(200, "{\"accepted\":0,\"ignored\":1}".to_owned())
            }
            Response::Challenge(challenge) => EdgeResponse::text(challenge),
            // Slack shows a slash command's response body to the user, and reads a modal submission's body as
            // a `response_action`: an empty 200 is the neutral acknowledgement for both.
            Response::Empty => EdgeResponse::text(Vec::new()),
            Response::Command => {
                return Ok(
                    Verdict::respond(EdgeResponse::text(Vec::new()), outcome.events)
                        .replying_with(reply::SlashCommandReply),
                )
            }
        };
        Ok(Verdict::respond(response, outcome.events))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Slack {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        let timestamp = match params.option("timestamp") {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.to_owned()
            }
            Some(_) => {
                return Err(ToolingError::InvalidOption {
                    option: "timestamp",
                    why: "not unix seconds",
                })
            }
            None => params.now_s.to_string(),
        };
        let signed: [&[u8]; 4] = [b"v0:", timestamp.as_bytes(), b":", &params.body];
        let signature = format!(
            "v0={}",
            crypto::hex_encode(&crypto::hmac_sha256(secret.as_bytes(), &signed))
        );
        let content_type = params.option("content-type").unwrap_or(
            match params.body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => "application/json",
                _ => "application/x-www-form-urlencoded",
            },
        );
        Ok(SignedRequest::post(
            vec![
                (SIGNATURE_HEADER.to_owned(), signature),
                (TIMESTAMP_HEADER.to_owned(), timestamp),
                ("content-type".to_owned(), content_type.to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// Which bot-authored events the account does not want forwarded.
struct BotFilter {
    all: bool,
    ids: Vec<String>,
}

impl BotFilter {
    fn from_account(account: &Account<'_>) -> Result<BotFilter, Rejection> {
        let all = match account
            .field(IGNORE_BOTS)
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(_) => return Err(Rejection::misconfigured(account.binding_name(IGNORE_BOTS))),
        };
        Ok(BotFilter {
            all,
            ids: account.values(IGNORE_BOT_IDS),
        })
    }

    fn ignores(&self, event: &Value) -> bool {
        let bot_id = text_at(event, &["bot_id"]);
        let from_bot =
            bot_id.is_some() || text_at(event, &["subtype"]).as_deref() == Some("bot_message");
        (self.all && from_bot) || bot_id.is_some_and(|id| self.ids.contains(&id))
    }
}

struct Context {
    verification: Verification,
    /// `X-Slack-Request-Timestamp`, the time of events that carry none of their own.
    request_ms: u64,
}

impl Context {
    fn parts(
        &self,
        dedupe_key: String,
        event_type: &str,
        time_ms: Option<u64>,
        data: Data,
        raw: Raw,
    ) -> EventParts {
        EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms: time_ms.unwrap_or(self.request_ms),
            data: EventData {
                conversation: data.conversation,
                sender: data.sender,
                message: data.message,
                postback: data.postback,
                reply: data.reply,
                members: data.members,
                ..EventData::new(data.provider_type, self.verification.clone(), raw)
            },
        }
    }
}

#[derive(Default)]
struct Data {
    provider_type: String,
    conversation: Option<Conversation>,
    sender: Option<Sender>,
    message: Option<Message>,
    postback: Option<Postback>,
    reply: Option<Reply>,
    members: Vec<Sender>,
}

enum Response {
    Accepted,
    Ignored,
    Challenge(String),
    Empty,
    /// A slash command: an empty 200, or the backend's reply ([`reply`]).
    Command,
}

struct Outcome {
    response: Response,
    events: Vec<EventParts>,
}

fn hash_key(bytes: &[u8]) -> String {
    super::content_hash_key(bytes)
}

/// Slack timestamps (`"1355517523.000005"`) are seconds with a microsecond fraction; they are also message ids.
/// Anything else is not trusted as a time (Slack's own `app_mention` example has `"event_ts":"1515449522000016"`).
fn ts_to_ms(ts: &str) -> Option<u64> {
    let (seconds, fraction) = ts.split_once('.')?;
    if !(seconds
        .bytes()
        .chain(fraction.bytes())
        .all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let millis: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect();
    seconds
        .parse::<u64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(millis.parse::<u64>().ok()?)
}

/// `channel_type` is `im`/`mpim`/`channel`/`group` on message events and `C`/`G` on membership events; without
/// it, the id's first letter tells direct messages (`D`) and public channels (`C`) apart.
fn conversation(id: Option<String>, channel_type: Option<&str>) -> Option<Conversation> {
    let id = id?;
    let kind = match channel_type {
        Some("im") => ConversationKind::Direct,
        Some("mpim") => ConversationKind::Group,
        Some("channel" | "group" | "C" | "G") => ConversationKind::Channel,
        _ => match id.as_bytes().first() {
            Some(b'D') => ConversationKind::Direct,
            Some(b'C') => ConversationKind::Channel,
            _ => ConversationKind::Unknown,
        },
    };
    Some(Conversation { id, kind })
}

#[cfg(test)]
mod tests;
