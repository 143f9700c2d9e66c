//! LINE WORKS Bot API 2.0 callbacks.
//!
//! `X-WORKS-Signature` = base64(HMAC-SHA256(Bot Secret as UTF-8, raw body)), and `X-WORKS-BotId` must equal the
//! configured bot id. The body is one event object, not an array. LINE WORKS sends no event id and never
//! retries, so the de-duplication key is a hash of the raw body.

#[cfg(test)]
use http::Method;
use serde_json::Value;

use super::Verdict;
use super::{content_hash_key, f64_at, text_at, Channel, ChannelRequest};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Location, Message, Postback,
    Sender, Sticker, Verification, UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct LineWorks;

pub const SIGNATURE_HEADER: &str = "x-works-signature";
pub const BOT_ID_HEADER: &str = "x-works-botid";
const SCHEME: &str = "lineworks-hmac-sha256";

impl Channel for LineWorks {
    fn name(&self) -> &'static str {
        "lineworks"
    }

    fn account_field(&self) -> &'static str {
        "BOT_SECRET"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("BOT_SECRET", Format::Token { min: 8, max: 256 }).help(
                "LINE WORKS Developer Console → Bot → Bot Secret",
                "LINE WORKS Developer Console → Bot → Bot Secret",
            ),
            FieldSpec::setting(
                "BOT_ID",
                Format::Number {
                    min: 1,
                    max: 99_999_999_999,
                },
            )
            .required()
            .help(
                "LINE WORKS Developer Console → Bot → Bot ID",
                "LINE WORKS Developer Console → Bot → Bot ID",
            ),
            FieldSpec::setting("CLIENT_ID", Format::Token { min: 4, max: 128 }).help(
                "Developer Console → API 2.0 → アプリ → Client ID（送信に使います。OAuth Scopes に bot）",
                "Developer Console → API 2.0 → your app → Client ID (for sending; OAuth scope bot)",
            ),
            FieldSpec::secret("CLIENT_SECRET", Format::Token { min: 4, max: 256 })
                .optional()
                .help(
                    "Developer Console → API 2.0 → アプリ → Client Secret（送信に使います）",
                    "Developer Console → API 2.0 → your app → Client Secret (for sending)",
                ),
            FieldSpec::setting("SERVICE_ACCOUNT", Format::Token { min: 4, max: 256 }).help(
                "Developer Console → アプリ → Service Account（発行したもの）",
                "Developer Console → your app → Service Account (issued there)",
            ),
            FieldSpec::secret("PRIVATE_KEY", Format::Pem)
                .optional()
                .help(
                    "Service Account 発行後に発行・ダウンロードした Private Key ファイルの中身（送信に使います）",
                    "The text of the Private Key file issued and downloaded after the Service Account (for sending)",
                ),
        ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values("BOT_SECRET")?;
        let bot_id = account.required_field("BOT_ID")?;
        let key_index = super::verify_base64_body_hmac(
            &secrets,
            request.header(SIGNATURE_HEADER),
            request.body,
        )?;
        let presented_bot_id = request
            .header(BOT_ID_HEADER)
            .ok_or(Rejection::BotIdMismatch)?;
        if !crypto::secrets_equal(presented_bot_id.trim().as_bytes(), bot_id.as_bytes()) {
            return Err(Rejection::BotIdMismatch);
        }

        let (payload, raw) = super::json_object_body(request.body)?;
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let parts = normalize(
            (&payload, raw),
            content_hash_key(request.body),
            verification,
            request.now_ms,
        );
        Ok(Verdict::accepted(vec![parts]))
    }
}

#[cfg(feature = "tooling")]
impl Sign for LineWorks {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        let bot_id = params.required("bot-id")?;
        let signature =
            crypto::base64_encode(&crypto::hmac_sha256(secret.as_bytes(), &[&params.body]));
        Ok(SignedRequest::post(
            vec![
                ("X-WORKS-Signature".to_owned(), signature),
                ("X-WORKS-BotId".to_owned(), bot_id.to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// LINE WORKS event type → envelope type. Types not listed pass through as [`UNRECOGNIZED_TYPE`].
fn envelope_type(works_type: &str) -> &'static str {
    match works_type {
        "message" => "message.received",
        "postback" => "postback",
        "join" => "conversation.joined",
        "leave" => "conversation.left",
        "joined" => "member.joined",
        "left" => "member.left",
        _ => UNRECOGNIZED_TYPE,
    }
}

fn normalize(
    (payload, raw): (&Value, Raw),
    dedupe_key: String,
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let works_type = text_at(payload, &["type"]).unwrap_or_default();
    let time_ms = text_at(payload, &["issuedTime"])
        .and_then(|t| crate::datetime::parse_rfc3339_ms(&t))
        .unwrap_or(now_ms);
    let postback = match works_type.as_str() {
        "postback" => text_at(payload, &["data"]),
        // A message sent by tapping a quick-reply or button action carries the action's postback in its content.
        "message" => text_at(payload, &["content", "postback"]),
        _ => None,
    };
    let data = EventData {
        conversation: conversation(payload),
        sender: text_at(payload, &["source", "userId"]).map(|id| Sender { id, name: None }),
        message: match works_type.as_str() {
            "message" => payload.get("content").map(message_content),
            _ => None,
        },
        postback: postback.map(|data| Postback { data, params: None }),
        members: match works_type.as_str() {
            "joined" | "left" => members(payload),
            _ => Vec::new(),
        },
        ..EventData::new(works_type.clone(), verification, raw)
    };
    EventParts {
        dedupe_key,
        event_type: envelope_type(&works_type).to_owned(),
        time_ms,
        data,
    }
}

/// A message in a channel (group chat) carries `channelId`; a 1:1 message only the user's id.
fn conversation(raw: &Value) -> Option<Conversation> {
    let source = raw.get("source")?;
    if let Some(id) = text_at(source, &["channelId"]) {
        return Some(Conversation {
            id,
            kind: ConversationKind::Group,
        });
    }
    text_at(source, &["userId"]).map(|id| Conversation {
        id,
        kind: ConversationKind::Direct,
    })
}

fn members(raw: &Value) -> Vec<Sender> {
    raw.get("members")
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|member| match member {
                    Value::String(id) => Some(id.clone()),
                    other => text_at(other, &["userId"]),
                })
                .map(|id| Sender { id, name: None })
                .collect()
        })
        .unwrap_or_default()
}

fn message_content(content: &Value) -> Message {
    let kind = text_at(content, &["type"]).unwrap_or_else(|| "unknown".to_owned());
    let mut message = Message {
        kind: kind.clone(),
        ..Message::default()
    };
    match kind.as_str() {
        "text" => message.text = text_at(content, &["text"]),
        "image" | "file" | "audio" | "video" => message.attachments.push(Attachment {
            kind: kind.clone(),
            // Content is downloaded through the Bot API by this file id.
            id: text_at(content, &["fileId"]),
            ..Attachment::default()
        }),
        "location" => {
            message.text = text_at(content, &["address"]);
            if let (Some(latitude), Some(longitude)) = (
                f64_at(content, &["latitude"]),
                f64_at(content, &["longitude"]),
            ) {
                message.location = Some(Location {
                    latitude,
                    longitude,
                    title: None,
                    address: text_at(content, &["address"]),
                });
            }
        }
        "sticker" => {
            message.sticker = text_at(content, &["stickerId"]).map(|sticker_id| Sticker {
                package_id: text_at(content, &["packageId"]),
                sticker_id,
            });
        }
        _ => {}
    }
    message
}

#[cfg(test)]
mod tests;
