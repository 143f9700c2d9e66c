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
                "Developer Console → API 2.0 → アプリ → Client ID（送信に使います）",
                "Developer Console → API 2.0 → your app → Client ID (for sending)",
            ),
            FieldSpec::secret("CLIENT_SECRET", Format::Token { min: 4, max: 256 })
                .optional()
                .help(
                    "Developer Console → API 2.0 → アプリ → Client Secret",
                    "Developer Console → API 2.0 → your app → Client Secret",
                ),
            FieldSpec::setting("SERVICE_ACCOUNT", Format::Token { min: 4, max: 256 }).help(
                "Developer Console → アプリ → Service Account（発行したもの）",
                "Developer Console → your app → Service Account (issued there)",
            ),
            FieldSpec::secret("PRIVATE_KEY", Format::Pem)
                .optional()
                .help(
                    "Service Account 発行時にダウンロードした Private Key ファイルの中身",
                    "The Private Key file downloaded when the Service Account was issued",
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
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use crate::envelope::Raw;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    // shared/vectors/lineworks.json, lineworks-derived-text.
    const SECRET: &str = "bot-secret";
    const BOT_ID: &str = "bot-id";
    const BODY: &str = r#"{"type":"message","content":{"type":"text","text":"hi"}}"#;
    const SIGNATURE: &str = "vciLR7IFcNqs2C7zEqInqwpQqtGy+pOPXCdY23N1HoA=";

    fn bindings(secret: &str) -> HashMap<String, String> {
        HashMap::from([
            ("LINEWORKS_DEMO_BOT_SECRET".to_owned(), secret.to_owned()),
            ("LINEWORKS_DEMO_BOT_ID".to_owned(), BOT_ID.to_owned()),
        ])
    }

    fn call(
        bindings: &HashMap<String, String>,
        method: Method,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method,
            extra_path: &[],
            query: None,
            headers,
            body,
            now_ms: 1_700_000_000_000,
        };
        test_support::run(&LineWorks, bindings, demo)
    }

    #[test]
    fn shared_vector_signature_is_reproduced_and_accepted() {
        assert_eq!(
            crypto::base64_encode(&crypto::hmac_sha256(SECRET.as_bytes(), &[BODY.as_bytes()])),
            SIGNATURE
        );
        let handled = call(
            &bindings(SECRET),
            Method::POST,
            &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", BOT_ID)],
            BODY.as_bytes(),
        )
        .unwrap();
        let [event] = handled.events.as_slice() else {
            panic!("one event expected")
        };
        assert_eq!(event.event_type, "message.received");
        assert_eq!(
            event.data.message.as_ref().unwrap().text.as_deref(),
            Some("hi")
        );
        assert_eq!(event.data.verification.key_index, 0);
        assert_eq!(
            event.id,
            crate::envelope::event_id("lineworks", "demo", &content_hash_key(BODY.as_bytes()))
        );
    }

    #[test]
    fn shared_vector_negative_body_with_newline_is_rejected() {
        let body = format!("{BODY}\n");
        let result = call(
            &bindings(SECRET),
            Method::POST,
            &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", BOT_ID)],
            body.as_bytes(),
        );
        assert_eq!(result.unwrap_err(), Rejection::InvalidSignature);
    }

    #[test]
    fn rotated_secret_reports_its_index() {
        let handled = call(
            &bindings("new-secret,bot-secret"),
            Method::POST,
            &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", BOT_ID)],
            BODY.as_bytes(),
        )
        .unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
    }

    #[test]
    fn bot_id_must_match_and_be_present() {
        let wrong = call(
            &bindings(SECRET),
            Method::POST,
            &[("X-WORKS-Signature", SIGNATURE), ("X-WORKS-BotId", "other")],
            BODY.as_bytes(),
        );
        assert_eq!(wrong.unwrap_err(), Rejection::BotIdMismatch);
        let missing = call(
            &bindings(SECRET),
            Method::POST,
            &[("X-WORKS-Signature", SIGNATURE)],
            BODY.as_bytes(),
        );
        assert_eq!(missing.unwrap_err(), Rejection::BotIdMismatch);
    }

    #[test]
    fn missing_signature_wrong_method_and_missing_bot_id_config() {
        let missing = call(
            &bindings(SECRET),
            Method::POST,
            &[("X-WORKS-BotId", BOT_ID)],
            BODY.as_bytes(),
        );
        assert_eq!(missing.unwrap_err(), Rejection::MissingSignature);
        let get = call(&bindings(SECRET), Method::GET, &[], b"");
        assert_eq!(get.unwrap_err(), Rejection::MethodNotAllowed);
        let no_bot_id =
            HashMap::from([("LINEWORKS_DEMO_BOT_SECRET".to_owned(), SECRET.to_owned())]);
        let result = call(
            &no_bot_id,
            Method::POST,
            &[("X-WORKS-Signature", SIGNATURE)],
            BODY.as_bytes(),
        );
        assert!(
            matches!(result.unwrap_err(), Rejection::Misconfigured { binding, .. } if binding == "LINEWORKS_DEMO_BOT_ID")
        );
    }

    fn normalized(body: &str) -> EventParts {
        let payload: Value = serde_json::from_str(body).unwrap();
        normalize(
            (&payload, Raw::from_body(body.as_bytes()).unwrap()),
            "k".into(),
            Verification {
                scheme: SCHEME.into(),
                key_index: 0,
            },
            7,
        )
    }

    #[test]
    fn channel_messages_are_group_conversations_and_user_messages_direct() {
        let group = normalized(
            r#"{"type":"message","source":{"userId":"u1","channelId":"c1","domainId":10000001},"issuedTime":"2022-01-10T08:20:59.312Z","content":{"type":"sticker","packageId":"789","stickerId":"10855"}}"#,
        );
        assert_eq!(
            group.data.conversation,
            Some(Conversation {
                id: "c1".into(),
                kind: ConversationKind::Group
            })
        );
        assert_eq!(
            group.data.sender,
            Some(Sender {
                id: "u1".into(),
                name: None
            })
        );
        assert_eq!(group.time_ms, 1_641_802_859_312);
        let sticker = group.data.message.unwrap().sticker.unwrap();
        assert_eq!(
            (sticker.package_id.as_deref(), sticker.sticker_id.as_str()),
            (Some("789"), "10855")
        );

        let direct = normalized(
            r#"{"type":"message","source":{"userId":"u1"},"content":{"type":"image","fileId":"f1"}}"#,
        );
        assert_eq!(
            direct.data.conversation,
            Some(Conversation {
                id: "u1".into(),
                kind: ConversationKind::Direct
            })
        );
        assert_eq!(direct.time_ms, 7);
        assert_eq!(
            direct.data.message.unwrap().attachments[0].id.as_deref(),
            Some("f1")
        );
    }

    #[test]
    fn membership_events_list_members_and_unknown_types_pass_through() {
        let joined =
            normalized(r#"{"type":"joined","source":{"channelId":"c1"},"members":["u1","u2"]}"#);
        assert_eq!(joined.event_type, "member.joined");
        assert_eq!(joined.data.members.len(), 2);
        let unknown = normalized(r#"{"type":"reaction","source":{"userId":"u1"}}"#);
        assert_eq!(unknown.event_type, UNRECOGNIZED_TYPE);
        assert_eq!(unknown.data.provider_type, "reaction");
        assert_eq!(unknown.data.raw.value()["type"], "reaction");
    }

    #[test]
    fn sign_produces_an_accepted_request() {
        let params = SignParams {
            body: BODY.as_bytes().to_vec(),
            options: [
                ("secret".to_owned(), SECRET.to_owned()),
                ("bot-id".to_owned(), BOT_ID.to_owned()),
            ]
            .into(),
            now_s: 0,
        };
        let signed = LineWorks.sign(&params).unwrap();
        let headers: Vec<(&str, &str)> = signed
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(headers.contains(&("X-WORKS-Signature", SIGNATURE)));
        assert!(call(&bindings(SECRET), signed.method, &headers, &signed.body).is_ok());
    }

    fn json_body() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("message".to_owned()),
                Just("joined".to_owned()),
                Just("text".to_owned()),
                ".{0,8}"
            ]
            .prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("type"),
            Just("source"),
            Just("userId"),
            Just("channelId"),
            Just("content"),
            Just("members"),
            Just("issuedTime"),
            Just("latitude"),
            Just("data"),
            Just("stickerId"),
        ];
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
        .prop_map(|value| value.to_string())
    }

    proptest! {
        #[test]
        fn handle_never_panics(
            body in prop_oneof![json_body().prop_map(String::into_bytes), any::<Vec<u8>>()],
            signature in prop::option::of("[ -~]{0,60}"),
            bot_id in prop::option::of(prop_oneof![Just(BOT_ID.to_owned()), "[ -~]{0,20}"]),
            sign_correctly in any::<bool>(),
        ) {
            let good = crypto::base64_encode(&crypto::hmac_sha256(SECRET.as_bytes(), &[&body]));
            let signature = if sign_correctly { Some(good) } else { signature };
            let mut headers = Vec::new();
            if let Some(signature) = signature.as_deref() {
                headers.push(("x-works-signature", signature));
            }
            if let Some(bot_id) = bot_id.as_deref() {
                headers.push(("x-works-botid", bot_id));
            }
            let _ = call(&bindings(SECRET), Method::POST, &headers, &body);
        }
    }
}
