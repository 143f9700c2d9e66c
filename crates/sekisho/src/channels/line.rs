//! LINE Messaging API webhooks.
//!
//! `x-line-signature` = base64(HMAC-SHA256(channel secret as UTF-8, raw body)). The channel secret looks like
//! hex but is used as text. The body is `{"destination":…,"events":[…]}`; the console's Verify button sends a
//! signed body with `"events":[]`, which is answered 200 and forwards nothing.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{f64_at, text_at, u64_at, value_at, Channel, ChannelRequest, Verdict};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
#[cfg(feature = "tooling")]
use crate::crypto;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Location, Message, Postback,
    Raw, Reply, Sender, Sticker, Verification, UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Line;

pub const SIGNATURE_HEADER: &str = "x-line-signature";
const SCHEME: &str = "line-hmac-sha256";

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
}

impl Channel for Line {
    fn name(&self) -> &'static str {
        "line"
    }

    fn account_field(&self) -> &'static str {
        "CHANNEL_SECRET"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("CHANNEL_SECRET", Format::Hex { len: 32 }).help(
                "LINE Developers → チャネル → チャネル基本設定 → チャネルシークレット",
                "LINE Developers → your channel → Basic settings → Channel secret",
            ),
            FieldSpec::secret("CHANNEL_ACCESS_TOKEN", Format::Token { min: 20, max: 512 })
                .optional()
                .help(
                    "LINE Developers → Messaging API設定 → チャネルアクセストークン（送信に使います）",
                    "LINE Developers → Messaging API → Channel access token (for sending)",
                ),
            FieldSpec::setting("CHANNEL_ID", Format::Number { min: 1, max: 99_999_999_999 }).help(
                "LINE Developers → チャネル基本設定 → チャネルID",
                "LINE Developers → Basic settings → Channel ID",
            ),
        ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values("CHANNEL_SECRET")?;
        let key_index = super::verify_base64_body_hmac(
            &secrets,
            request.header(SIGNATURE_HEADER),
            request.body,
        )?;

        let payload: Payload = serde_json::from_slice(request.body)
            .map_err(|_| Rejection::MalformedBody { expected: "JSON" })?;
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let events = payload
            .events
            .into_iter()
            .map(|raw| normalize(raw, &verification, request.now_ms))
            .collect::<Result<_, _>>()?;
        Ok(Verdict::accepted(events))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Line {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        let signature =
            crypto::base64_encode(&crypto::hmac_sha256(secret.as_bytes(), &[&params.body]));
        Ok(SignedRequest::post(
            vec![
                (SIGNATURE_HEADER.to_owned(), signature),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// LINE event type → envelope type. Types not listed pass through as [`UNRECOGNIZED_TYPE`].
fn envelope_type(line_type: &str) -> &'static str {
    match line_type {
        "message" => "message.received",
        "unsend" => "message.unsent",
        "messageEdited" => "message.edited",
        "follow" => "follow",
        "unfollow" => "unfollow",
        "join" => "conversation.joined",
        "leave" => "conversation.left",
        "memberJoined" => "member.joined",
        "memberLeft" => "member.left",
        "postback" => "postback",
        "videoPlayComplete" => "video.play_completed",
        "beacon" => "beacon",
        "accountLink" => "account.linked",
        "things" => "device.things",
        "module" => "module.action",
        "activated" => "module.activated",
        "deactivated" => "module.deactivated",
        "botSuspended" => "bot.suspended",
        "botResumed" => "bot.resumed",
        "delivery" => "notification.delivered",
        "membership" => "membership.changed",
        _ => UNRECOGNIZED_TYPE,
    }
}

fn normalize(
    event: &RawValue,
    verification: &Verification,
    now_ms: u64,
) -> Result<EventParts, Rejection> {
    let raw = crate::json::parse(event.get())
        .map_err(|_| Rejection::MalformedBody { expected: "JSON" })?;
    let line_type = text_at(&raw, &["type"]).unwrap_or_default();
    let dedupe_key = text_at(&raw, &["webhookEventId"]).unwrap_or_else(|| {
        // Older payloads (and the SDKs' fixtures) have no webhookEventId: fall back to the event's content.
        // serde_json's map is ordered by key, so the same event always hashes the same.
        super::content_hash_key(&serde_json::to_vec(&raw).unwrap_or_default())
    });
    let time_ms = u64_at(&raw, &["timestamp"]).unwrap_or(now_ms);
    let data = EventData {
        conversation: conversation(&raw),
        sender: text_at(&raw, &["source", "userId"]).map(|id| Sender { id, name: None }),
        message: message(&line_type, &raw),
        postback: value_at(&raw, &["postback"]).and_then(|postback| {
            Some(Postback {
                data: text_at(postback, &["data"])?,
                params: postback.get("params").cloned(),
            })
        }),
        reply: text_at(&raw, &["replyToken"]).map(|token| Reply { token }),
        members: members(&line_type, &raw),
        ..EventData::new(
            line_type.clone(),
            verification.clone(),
            Raw::verbatim(event),
        )
    };
    Ok(EventParts {
        dedupe_key,
        event_type: envelope_type(&line_type).to_owned(),
        time_ms,
        data,
    })
}

fn conversation(raw: &Value) -> Option<Conversation> {
    let source = raw.get("source")?;
    let (kind, id_field) = match source.get("type")?.as_str()? {
        "user" => (ConversationKind::Direct, "userId"),
        "group" => (ConversationKind::Group, "groupId"),
        "room" => (ConversationKind::Room, "roomId"),
        _ => return None,
    };
    Some(Conversation {
        id: text_at(source, &[id_field])?,
        kind,
    })
}

fn members(line_type: &str, raw: &Value) -> Vec<Sender> {
    let container = match line_type {
        "memberJoined" => "joined",
        "memberLeft" => "left",
        _ => return Vec::new(),
    };
    value_at(raw, &[container, "members"])
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|m| text_at(m, &["userId"]))
                .map(|id| Sender { id, name: None })
                .collect()
        })
        .unwrap_or_default()
}

fn message(line_type: &str, raw: &Value) -> Option<Message> {
    match line_type {
        "message" | "messageEdited" => raw.get("message").map(message_content),
        // An unsent message is known only by its id.
        "unsend" => Some(Message {
            id: text_at(raw, &["unsend", "messageId"]),
            kind: "unsent".to_owned(),
            ..Message::default()
        }),
        _ => None,
    }
}

fn message_content(message: &Value) -> Message {
    let kind = text_at(message, &["type"]).unwrap_or_else(|| "unknown".to_owned());
    let id = text_at(message, &["id"]);
    let mut normalized = Message {
        id: id.clone(),
        kind: kind.clone(),
        ..Message::default()
    };
    match kind.as_str() {
        "text" => normalized.text = text_at(message, &["text"]),
        "image" | "video" | "audio" | "file" => normalized.attachments.push(Attachment {
            kind: kind.clone(),
            id,
            // Content sent from outside LINE is referenced by URL; LINE-hosted content is fetched by id.
            url: text_at(message, &["contentProvider", "originalContentUrl"]),
            name: text_at(message, &["fileName"]),
            size: u64_at(message, &["fileSize"]),
            duration_ms: u64_at(message, &["duration"]),
            content_type: None,
        }),
        "location" => {
            normalized.text =
                text_at(message, &["title"]).or_else(|| text_at(message, &["address"]));
            if let (Some(latitude), Some(longitude)) = (
                f64_at(message, &["latitude"]),
                f64_at(message, &["longitude"]),
            ) {
                normalized.location = Some(Location {
                    latitude,
                    longitude,
                    title: text_at(message, &["title"]),
                    address: text_at(message, &["address"]),
                });
            }
        }
        "sticker" => {
            normalized.sticker = text_at(message, &["stickerId"]).map(|sticker_id| Sticker {
                package_id: text_at(message, &["packageId"]),
                sticker_id,
            });
        }
        _ => {}
    }
    normalized
}
