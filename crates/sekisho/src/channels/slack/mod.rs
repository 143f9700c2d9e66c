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
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::envelope::event_id;

    /// shared/vectors/slack.json `slack-docs-slash-command` (python-slack-sdk's verifier test, Slack's docs).
    pub(super) const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    pub(super) const TIMESTAMP: &str = "1531420618";
    pub(super) const NOW_MS: u64 = 1_531_420_618_000;
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    pub(super) const SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const FORM: &str = "application/x-www-form-urlencoded";

    pub(super) fn config(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut bindings =
            HashMap::from([("SLACK_DEMO_SIGNING_SECRET".to_owned(), SECRET.to_owned())]);
        for (field, value) in extra {
            bindings.insert(format!("SLACK_DEMO_{field}"), (*value).to_owned());
        }
        bindings
    }

    pub(super) fn run(
        bindings: &HashMap<String, String>,
        headers: &[(&str, &str)],
        body: &[u8],
        now_ms: u64,
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: None,
            headers,
            body,
            now_ms,
        };
        test_support::run(&Slack, bindings, demo)
    }

    pub(super) fn signed(
        body: &str,
        content_type: &str,
        now_ms: u64,
        bindings: &HashMap<String, String>,
    ) -> Result<Handled, Rejection> {
        let timestamp = (now_ms / 1000).to_string();
        let tag = crypto::hmac_sha256(
            SECRET.as_bytes(),
            &[b"v0:", timestamp.as_bytes(), b":", body.as_bytes()],
        );
        let signature = format!("v0={}", crypto::hex_encode(&tag));
        let headers = [
            (SIGNATURE_HEADER, signature.as_str()),
            (TIMESTAMP_HEADER, timestamp.as_str()),
            ("content-type", content_type),
        ];
        run(bindings, &headers, body.as_bytes(), now_ms)
    }

    fn vector_headers<'a>(signature: &'a str, timestamp: &'a str) -> [(&'static str, &'a str); 3] {
        [
            (SIGNATURE_HEADER, signature),
            (TIMESTAMP_HEADER, timestamp),
            ("content-type", FORM),
        ]
    }

    #[test]
    fn documented_slash_command_vector_verifies_and_normalizes() {
        let handled = run(
            &config(&[]),
            &vector_headers(SIGNATURE, TIMESTAMP),
            BODY.as_bytes(),
            NOW_MS,
        )
        .unwrap();
        assert_eq!(handled.response, EdgeResponse::text(Vec::new()));
        let event = &handled.events[0];
        assert_eq!(event.event_type, "command.invoked");
        assert_eq!(
            event.id,
            event_id(
                "slack",
                "demo",
                "trigger:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
            )
        );
        let data = &event.data;
        assert_eq!(
            data.postback.as_ref().map(|p| p.data.as_str()),
            Some("/webhook-collect")
        );
        assert_eq!(data.message.as_ref().and_then(|m| m.text.as_ref()), None);
        assert_eq!(
            data.sender,
            Some(Sender {
                id: "U2CERLKJA".into(),
                name: Some("roadrunner".into())
            })
        );
        assert_eq!(
            data.conversation,
            Some(Conversation {
                id: "G8PSS9T3V".into(),
                kind: ConversationKind::Channel
            })
        );
        assert_eq!(
            data.reply.as_ref().map(|r| r.token.as_str()),
            Some(
                "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN"
            )
        );
        assert_eq!(data.raw.value()["team_domain"], "testteamnow");

        let options = [
            ("secret".to_owned(), SECRET.to_owned()),
            ("timestamp".to_owned(), TIMESTAMP.to_owned()),
        ];
        let request = Slack
            .sign(&SignParams {
                body: BODY.into(),
                options: options.into(),
                now_s: 0,
            })
            .unwrap();
        assert!(request
            .headers
            .contains(&(SIGNATURE_HEADER.to_owned(), SIGNATURE.to_owned())));
        assert!(request
            .headers
            .contains(&("content-type".to_owned(), FORM.to_owned())));

        // Without --timestamp the request is signed for now, and accepted now.
        let body = r#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"D1","text":"hi"}}"#;
        let options = [("secret".to_owned(), SECRET.to_owned())];
        let request = Slack
            .sign(&SignParams {
                body: body.into(),
                options: options.into(),
                now_s: 1_700_000_000,
            })
            .unwrap();
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let handled = run(&config(&[]), &headers, body.as_bytes(), 1_700_000_000_999).unwrap();
        assert_eq!(
            handled.events[0].data.conversation.as_ref().map(|c| c.kind),
            Some(ConversationKind::Direct)
        );
    }

    #[test]
    fn documented_negatives_and_skew_in_both_directions() {
        let tampered = format!("{BODY}------");
        let headers = vector_headers(SIGNATURE, TIMESTAMP);
        assert_eq!(
            run(&config(&[]), &headers, tampered.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::InvalidSignature
        );
        // The vector's second negative: the same request 301 s later.
        assert_eq!(
            run(&config(&[]), &headers, BODY.as_bytes(), 1_531_420_919_000).unwrap_err(),
            Rejection::StaleTimestamp
        );
        assert!(run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS + 300_000).is_ok());
        assert!(run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS - 300_000).is_ok());
        assert_eq!(
            run(&config(&[]), &headers, BODY.as_bytes(), NOW_MS - 301_000).unwrap_err(),
            Rejection::StaleTimestamp
        );
        let spaced = vector_headers(SIGNATURE, " 1531420618");
        assert_eq!(
            run(&config(&[]), &spaced, BODY.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::StaleTimestamp
        );
        let missing = [(TIMESTAMP_HEADER, TIMESTAMP)];
        assert_eq!(
            run(&config(&[]), &missing, BODY.as_bytes(), NOW_MS).unwrap_err(),
            Rejection::MissingSignature
        );
        let rotated = config(&[])
            .into_iter()
            .map(|(k, v)| (k, format!("newer,{v}")))
            .collect();
        let handled = run(&rotated, &headers, BODY.as_bytes(), NOW_MS).unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
    }

    #[test]
    fn bot_messages_are_forwarded_unless_configured_and_ignoring_is_counted() {
        let body = r#"{"type":"event_callback","event_id":"Ev1","event_time":1531420618,"event":{"type":"message","subtype":"bot_message","bot_id":"B1","text":"loop","channel":"C1","channel_type":"channel","ts":"1531420618.000100"}}"#;
        let forwarded = signed(body, "application/json", NOW_MS, &config(&[])).unwrap();
        assert_eq!(forwarded.events.len(), 1);
        assert_eq!(forwarded.events[0].event_type, "message.received");
        assert_eq!(forwarded.events[0].time, "2018-07-12T18:36:58.000Z");
        for settings in [[("IGNORE_BOTS", "true")], [("IGNORE_BOT_IDS", "B0,B1")]] {
            let ignored = signed(body, "application/json", NOW_MS, &config(&settings)).unwrap();
            assert!(ignored.events.is_empty());
            assert_eq!(
                ignored.response,
                EdgeResponse::json(200, r#"{"accepted":0,"ignored":1}"#.to_owned())
            );
        }
        let other_bot = signed(
            body,
            "application/json",
            NOW_MS,
            &config(&[("IGNORE_BOT_IDS", "B2")]),
        )
        .unwrap();
        assert_eq!(other_bot.events.len(), 1);
        let bad = signed(
            body,
            "application/json",
            NOW_MS,
            &config(&[("IGNORE_BOTS", "yes please")]),
        );
        assert!(matches!(bad, Err(Rejection::Misconfigured { .. })));
    }

    #[test]
    fn slack_timestamps_become_milliseconds() {
        assert_eq!(ts_to_ms("1355517523.000005"), Some(1_355_517_523_000));
        assert_eq!(ts_to_ms("1355517523.9"), Some(1_355_517_523_900));
        assert_eq!(ts_to_ms("1515449522000016"), None);
        assert_eq!(ts_to_ms("x.1"), None);
        assert_eq!(ts_to_ms("1.x"), None);
        assert_eq!(ts_to_ms("+1.+5"), None);
        assert_eq!(ts_to_ms("99999999999999999999"), None);
    }

    fn slack_json() -> impl Strategy<Value = Value> {
        const WORDS: &[&str] = &[
            "type",
            "event",
            "event_id",
            "event_time",
            "event_callback",
            "url_verification",
            "challenge",
            "message",
            "subtype",
            "message_changed",
            "message_deleted",
            "previous_message",
            "bot_id",
            "bot_message",
            "user",
            "channel",
            "channel_type",
            "im",
            "mpim",
            "ts",
            "event_ts",
            "thread_ts",
            "text",
            "files",
            "mimetype",
            "size",
            "reaction_added",
            "item",
            "reaction",
            "member_joined_channel",
            "assistant_thread_started",
            "assistant_thread",
            "user_profile",
            "app_mention",
            "deleted_ts",
        ];
        let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            word.clone().prop_map(Value::from),
            "[0-9.]{0,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                proptest::collection::btree_map(word.clone(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn handle_never_panics_on_arbitrary_requests(
            body in proptest::collection::vec(any::<u8>(), 0..256),
            signature in "[ -~]{0,80}",
            timestamp in "[ -~]{0,20}",
            content_type in "[ -~]{0,40}",
            now_ms in any::<u64>(),
        ) {
            let headers = [(SIGNATURE_HEADER, signature.as_str()), (TIMESTAMP_HEADER, timestamp.as_str()), ("content-type", content_type.as_str())];
            let _ = run(&config(&[("IGNORE_BOTS", "true")]), &headers, &body, now_ms);
        }

        #[test]
        fn normalization_never_panics_on_signed_bodies(event in slack_json(), payload in slack_json(), form in "[ -~]{0,120}") {
            let bindings = config(&[]);
            let callback = serde_json::json!({ "type": "event_callback", "event": event }).to_string();
            prop_assert!(signed(&callback, "application/json", NOW_MS, &bindings).is_ok());
            let encoded: String = form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
            prop_assert!(signed(&encoded, FORM, NOW_MS, &bindings).is_ok());
            let _ = signed(&form, FORM, NOW_MS, &bindings);
        }
    }
}
