//! Discord interactions (an application's Interactions Endpoint URL).
//!
//! Every request carries `X-Signature-Ed25519` (hex, 64 bytes) and `X-Signature-Timestamp` (unix seconds): an
//! Ed25519 signature over the bytes of the timestamp followed by the raw body, with the application's public
//! key (`PUBLIC_KEY`, 64 hex digits; several for rotation, newest first). The signature is checked first (an
//! unauthentic request is always `invalid_signature`, which is what Discord's own endpoint check expects), then
//! the timestamp must be within `TIMESTAMP_SKEW_S` (default 300 s) of the gateway's clock, then the JSON is read.
//!
//! `PING` (type 1) is answered `{"type":1}` and forwards nothing. Every other interaction becomes one event whose
//! id derives from the interaction `id`, and is answered at once (Discord waits 3 s) with a deferral, so the
//! backend answers later through the interaction webhook with `data.raw.token` (valid 15 minutes):
//!
//! | Discord `type` | envelope `type` | answer |
//! |---|---|---|
//! | 2 `APPLICATION_COMMAND` | `command.invoked` | `{"type":5}` deferred channel message |
//! | 3 `MESSAGE_COMPONENT` | `interaction.component` | `{"type":6}` deferred message update |
//! | 4 `APPLICATION_COMMAND_AUTOCOMPLETE` | `interaction.autocomplete` | `{"type":8,"data":{"choices":[]}}` |
//! | 5 `MODAL_SUBMIT` | `interaction.modal_submitted` | `{"type":5}` |
//! | anything newer | `unrecognized` | `{"type":5}` |

use ed25519_dalek::{Signature, VerifyingKey};
#[cfg(feature = "tooling")]
use ed25519_dalek::{Signer, SigningKey};
#[cfg(test)]
use http::Method;
use serde_json::{Map, Value};

use super::Verdict;
use super::{text_at, u64_at, value_at, Channel, ChannelRequest, EdgeResponse};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Conversation, ConversationKind, EventData, EventParts, Postback, Reply, Sender, Verification,
    UNRECOGNIZED_TYPE,
};
use crate::reply::{plain_text, BackendReply, Budget, NoReply, RenderContext, RenderReply};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Discord;

pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";
const PUBLIC_KEY: &str = "PUBLIC_KEY";
const TIMESTAMP_SKEW_S: &str = "TIMESTAMP_SKEW_S";
pub const DEFAULT_TIMESTAMP_SKEW_S: u64 = 300;
const SCHEME: &str = "discord-ed25519";
/// Snowflakes count milliseconds from 2015-01-01T00:00:00Z in their upper 42 bits.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

const PONG: &str = "{\"type\":1}";
const DEFERRED_CHANNEL_MESSAGE: &str = "{\"type\":5}";
const DEFERRED_UPDATE_MESSAGE: &str = "{\"type\":6}";
const NO_AUTOCOMPLETE_CHOICES: &str = "{\"type\":8,\"data\":{\"choices\":[]}}";

impl Channel for Discord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn account_field(&self) -> &'static str {
        PUBLIC_KEY
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("PUBLIC_KEY", Format::Hex { len: 64 }).help(
                "Discord Developer Portal → アプリ → General Information → Public Key",
                "Discord Developer Portal → your app → General Information → Public Key",
            ),
            crate::config::field::TIMESTAMP_SKEW_FIELD,
            FieldSpec::secret("BOT_TOKEN", Format::Token { min: 30, max: 200 })
                .optional()
                .help(
                    "Discord Developer Portal → アプリ → Bot → Token（Reset Token で表示、送信に使います）",
                    "Discord Developer Portal → your app → Bot → Token (shown by Reset Token; for sending)",
                ),
        ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let keys = public_keys(account)?;
        let skew_s = timestamp_skew_s(account)?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .ok_or(Rejection::MissingSignature)?;
        let timestamp = request
            .header(TIMESTAMP_HEADER)
            .ok_or(Rejection::MissingSignature)?;
        let key_index = verify(&keys, signature, timestamp.as_bytes(), request.body)?;
        // Signed as sent: only plain digits count as a time (a `+` prefix would parse, but is no Discord time).
        let sent_s = Some(timestamp)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or(Rejection::StaleTimestamp)?;
        if sent_s.saturating_mul(1000).abs_diff(request.now_ms) > skew_s.saturating_mul(1000) {
            return Err(Rejection::StaleTimestamp);
        }

        let interaction = crate::json::parse_slice(request.body)
            .map_err(|_| Rejection::MalformedBody { expected: "JSON" })?;
        let interaction_type = u64_at(&interaction, &["type"])
            .filter(|_| interaction.is_object())
            .ok_or(Rejection::MalformedBody {
                expected: "a Discord interaction with a type",
            })?;
        if interaction_type == 1 {
            return Ok(Verdict::handshake(EdgeResponse::json(200, PONG.to_owned())));
        }
        let id = text_at(&interaction, &["id"]).ok_or(Rejection::MalformedBody {
            expected: "a Discord interaction with an id",
        })?;
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let raw = Raw::from_body(request.body)
            .map_err(|_| Rejection::MalformedBody { expected: "JSON" })?;
        let (parts, answer) = normalize(
            interaction_type,
            id,
            (&interaction, raw),
            verification,
            sent_s.saturating_mul(1000),
        );
        let verdict = Verdict::respond(EdgeResponse::json(200, answer.to_owned()), vec![parts]);
        // Commands, components and modal submissions can be answered with a message; autocomplete cannot.
        Ok(if matches!(interaction_type, 2 | 3 | 5) {
            verdict.replying_with(InteractionReply)
        } else {
            verdict
        })
    }
}

/// 3 s deadline: 2.5 s by default, at most 2.8 s.
const REPLY_BUDGET: Budget = Budget {
    default_ms: 2_500,
    max_ms: 2_800,
};
/// A message's `content` holds at most 2,000 characters.
const MAX_CONTENT_CHARS: usize = 2_000;

/// An interaction answered with a message (`{"type":4,"data":{…}}`, CHANNEL_MESSAGE_WITH_SOURCE) instead of the
/// deferred acknowledgement.
#[derive(Debug)]
struct InteractionReply;

impl RenderReply for InteractionReply {
    fn budget(&self) -> Budget {
        REPLY_BUDGET
    }

    /// Text mentions nobody (`allowed_mentions.parse` empty: `@everyone` or `<@id>` stay text). `raw` is the
    /// interaction response object itself (embeds, components, flags); it mentions nobody either unless its
    /// `data` sets `allowed_mentions` itself.
    fn render(
        &self,
        reply: &BackendReply,
        _context: &RenderContext,
    ) -> Result<EdgeResponse, NoReply> {
        let response = match reply {
            BackendReply::Text(text) => serde_json::json!({
                "type": 4,
                "data": {
                    "content": plain_text(text, MAX_CONTENT_CHARS),
                    "allowed_mentions": { "parse": [] },
                },
            }),
            BackendReply::Raw(raw) if raw.get("type").is_some_and(serde_json::Value::is_u64) => {
                let mut raw = raw.clone();
                if let Some(data) = raw
                    .get_mut("data")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    data.entry("allowed_mentions")
                        .or_insert_with(|| serde_json::json!({ "parse": [] }));
                }
                raw
            }
            BackendReply::Raw(_) => {
                return Err(NoReply::Unrenderable(
                    "`raw` must be an interaction response with a `type`",
                ))
            }
        };
        Ok(EdgeResponse::json(200, response.to_string()))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Discord {
    /// `--secret` is the application's Ed25519 private key: its 32-byte seed as 64 hex digits (or the 64-byte
    /// libsodium/tweetnacl form, seed followed by public key, as 128 hex digits). `--timestamp` defaults to now.
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let signing_key = signing_key(params.required("secret")?)?;
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
        let mut message = Vec::with_capacity(timestamp.len() + params.body.len());
        message.extend_from_slice(timestamp.as_bytes());
        message.extend_from_slice(&params.body);
        let signature = signing_key.sign(&message);
        Ok(SignedRequest::post(
            vec![
                (
                    SIGNATURE_HEADER.to_owned(),
                    crypto::hex_encode(&signature.to_bytes()),
                ),
                (TIMESTAMP_HEADER.to_owned(), timestamp),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

#[cfg(feature = "tooling")]
/// The public key (64 hex digits) that the gateway must be configured with for a private key given to
/// [`Discord::sign`].
pub fn public_key_hex(secret: &str) -> Result<String, ToolingError> {
    Ok(crypto::hex_encode(
        signing_key(secret)?.verifying_key().as_bytes(),
    ))
}

#[cfg(feature = "tooling")]
fn signing_key(secret: &str) -> Result<SigningKey, ToolingError> {
    let invalid = ToolingError::InvalidOption {
        option: "secret",
        why: "not an Ed25519 private key (64 hex digits, or 128 for seed + public key)",
    };
    let bytes = crypto::hex_decode(secret).ok_or(invalid.clone())?;
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|seed| seed.try_into().ok())
        .ok_or(invalid.clone())?;
    let key = SigningKey::from_bytes(&seed);
    match bytes.len() {
        32 => Ok(key),
        64 if bytes.get(32..) == Some(&key.verifying_key().as_bytes()[..]) => Ok(key),
        _ => Err(invalid),
    }
}

/// `PUBLIC_KEY`: every value must be 64 hex digits that decode to a valid curve point; any bad value makes the
/// account misconfigured (never a pass, never a silently ignored key).
fn public_keys(account: &Account<'_>) -> Result<Vec<VerifyingKey>, Rejection> {
    let misconfigured = || Rejection::misconfigured(account.binding_name(PUBLIC_KEY));
    let values = account.required_values(PUBLIC_KEY)?;
    values
        .iter()
        .map(|value| {
            let bytes: [u8; 32] = crypto::hex_decode(value)
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(misconfigured)?;
            VerifyingKey::from_bytes(&bytes).map_err(|_| misconfigured())
        })
        .collect()
}

fn timestamp_skew_s(account: &Account<'_>) -> Result<u64, Rejection> {
    match account.field(TIMESTAMP_SKEW_S) {
        None => Ok(DEFAULT_TIMESTAMP_SKEW_S),
        Some(value) => value
            .parse()
            .map_err(|_| Rejection::misconfigured(account.binding_name(TIMESTAMP_SKEW_S))),
    }
}

/// Which key signed `timestamp ‖ body` (0 = newest). Strict verification (canonical encodings, no small-order
/// keys), as libsodium, which Discord's own libraries use, does.
fn verify(
    keys: &[VerifyingKey],
    signature_hex: &str,
    timestamp: &[u8],
    body: &[u8],
) -> Result<usize, Rejection> {
    let bytes: [u8; 64] = crypto::hex_decode(signature_hex)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(Rejection::InvalidSignature)?;
    let signature = Signature::from_bytes(&bytes);
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp);
    message.extend_from_slice(body);
    keys.iter()
        .position(|key| key.verify_strict(&message, &signature).is_ok())
        .ok_or(Rejection::InvalidSignature)
}

fn provider_type(interaction_type: u64) -> String {
    match interaction_type {
        2 => "APPLICATION_COMMAND".to_owned(),
        3 => "MESSAGE_COMPONENT".to_owned(),
        4 => "APPLICATION_COMMAND_AUTOCOMPLETE".to_owned(),
        5 => "MODAL_SUBMIT".to_owned(),
        other => other.to_string(),
    }
}

/// One interaction → its event and the answer Discord gets.
fn normalize(
    interaction_type: u64,
    id: String,
    (interaction, raw): (&Value, Raw),
    verification: Verification,
    signed_ms: u64,
) -> (EventParts, &'static str) {
    let data = interaction.get("data");
    let text = |field: &str| data.and_then(|d| text_at(d, &[field]));
    let field = |field: &str| data.and_then(|d| d.get(field)).cloned();
    let (event_type, postback, answer) = match interaction_type {
        2 => (
            "command.invoked",
            text("name").map(|name| Postback {
                data: name,
                params: field("options"),
            }),
            DEFERRED_CHANNEL_MESSAGE,
        ),
        3 => (
            "interaction.component",
            text("custom_id").map(|custom_id| {
                let mut params = Map::new();
                if let Some(component_type) = field("component_type") {
                    params.insert("component_type".to_owned(), component_type);
                }
                if let Some(values) = field("values") {
                    params.insert("values".to_owned(), values);
                }
                Postback {
                    data: custom_id,
                    params: Some(Value::Object(params)),
                }
            }),
            DEFERRED_UPDATE_MESSAGE,
        ),
        4 => (
            "interaction.autocomplete",
            text("name").map(|name| Postback {
                data: name,
                params: field("options"),
            }),
            NO_AUTOCOMPLETE_CHOICES,
        ),
        5 => (
            "interaction.modal_submitted",
            text("custom_id").map(|custom_id| Postback {
                data: custom_id,
                params: field("components"),
            }),
            DEFERRED_CHANNEL_MESSAGE,
        ),
        _ => (UNRECOGNIZED_TYPE, None, DEFERRED_CHANNEL_MESSAGE),
    };
    // The id is a snowflake: Discord's own time of the interaction.
    let time_ms = id
        .parse::<u64>()
        .ok()
        .map(|snowflake| (snowflake >> 22).saturating_add(DISCORD_EPOCH_MS))
        .unwrap_or(signed_ms);
    let parts = EventParts {
        dedupe_key: id,
        event_type: event_type.to_owned(),
        time_ms,
        data: EventData {
            conversation: conversation(interaction),
            sender: sender(interaction),
            postback,
            reply: text_at(interaction, &["token"]).map(|token| Reply { token }),
            ..EventData::new(provider_type(interaction_type), verification, raw)
        },
    };
    (parts, answer)
}

/// `channel.type`: 1 DM, 3 group DM, 10/11/12 threads; any other channel of a guild is a channel. Without a
/// channel object, a guild id means a guild channel and its absence a DM.
fn conversation(interaction: &Value) -> Option<Conversation> {
    let id = text_at(interaction, &["channel_id"])
        .or_else(|| text_at(interaction, &["channel", "id"]))?;
    let in_guild = interaction.get("guild_id").is_some_and(|g| !g.is_null());
    let kind = match u64_at(interaction, &["channel", "type"]) {
        Some(1) => ConversationKind::Direct,
        Some(3) => ConversationKind::Group,
        Some(10..=12) => ConversationKind::Thread,
        Some(_) if in_guild => ConversationKind::Channel,
        None if in_guild => ConversationKind::Channel,
        None => ConversationKind::Direct,
        Some(_) => ConversationKind::Unknown,
    };
    Some(Conversation { id, kind })
}

/// `member.user` in a guild, `user` in DMs; the name as the conversation shows it (nickname, display name,
/// user name).
fn sender(interaction: &Value) -> Option<Sender> {
    let user = value_at(interaction, &["member", "user"]).or_else(|| interaction.get("user"))?;
    let id = text_at(user, &["id"])?;
    let name = text_at(interaction, &["member", "nick"])
        .or_else(|| text_at(user, &["global_name"]))
        .or_else(|| text_at(user, &["username"]))
        .filter(|name| !name.is_empty());
    Some(Sender { id, name })
}

#[cfg(test)]
mod tests;
