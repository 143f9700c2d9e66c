//! Chatwork webhooks.
//!
//! `x-chatworkwebhooksignature` (also sent as the `chatwork_webhook_signature` query parameter) =
//! base64(HMAC-SHA256(key = base64-decoded webhook token, raw body)). Chatwork sends no event id: for the
//! message events the de-duplication key is webhook setting id + event type + message id + update time (see
//! [`dedupe_key`]); every other event is keyed by a digest of the signed raw body.

#[cfg(test)]
use http::Method;
use serde_json::Value;

use super::{text_at, u64_at, Channel, ChannelRequest, Verdict};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::{
    Conversation, ConversationKind, EventData, EventParts, Message, Raw, Sender, Verification,
    UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Chatwork;

pub const SIGNATURE_HEADER: &str = "x-chatworkwebhooksignature";
pub const SIGNATURE_PARAMETER: &str = "chatwork_webhook_signature";
const SCHEME: &str = "chatwork-hmac-sha256";

impl Channel for Chatwork {
    fn name(&self) -> &'static str {
        "chatwork"
    }

    fn account_field(&self) -> &'static str {
        "WEBHOOK_TOKEN"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] =
            &[
                FieldSpec::secret("WEBHOOK_TOKEN", Format::Token { min: 16, max: 256 }).help(
                    "Chatwork → サービス連携 → Webhook → 作成した Webhook の「トークン」",
                    "Chatwork → Integrations → Webhook → the webhook's Token",
                ),
            ];
        FIELDS
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let keys = account
            .required_values("WEBHOOK_TOKEN")?
            .iter()
            .map(|token| crypto::base64_decode(token))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Rejection::misconfigured(account.binding_name("WEBHOOK_TOKEN")))?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .or_else(|| request.query.get(SIGNATURE_PARAMETER));
        let key_index = super::verify_base64_body_hmac(&keys, signature, request.body)?;

        let (payload, raw) = super::json_object_body(request.body)?;
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let parts = normalize(&payload, raw, request.body, verification, request.now_ms);
        Ok(Verdict::accepted(vec![parts]))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Chatwork {
    /// `--secret` is the webhook token exactly as Chatwork shows it (base64).
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let token = params.required("secret")?;
        let key = crypto::base64_decode(token).ok_or(ToolingError::InvalidOption {
            option: "secret",
            why: "the Chatwork webhook token is base64",
        })?;
        let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[&params.body]));
        let mut signed = SignedRequest::post(
            vec![
                (SIGNATURE_HEADER.to_owned(), signature.clone()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        );
        signed
            .query
            .push((SIGNATURE_PARAMETER.to_owned(), signature));
        Ok(signed)
    }
}

/// Chatwork event type → envelope type. Types not listed pass through as [`UNRECOGNIZED_TYPE`].
fn envelope_type(chatwork_type: &str) -> &'static str {
    match chatwork_type {
        "message_created" => "message.received",
        "message_updated" => "message.edited",
        "mention_to_me" => "message.mentioned",
        _ => UNRECOGNIZED_TYPE,
    }
}

/// The de-duplication key. A message event that names its webhook setting and message is keyed by
/// `{webhook_setting_id}:{type}:{message_id}:{update_time}` (an edit has a new `update_time`, so each edit is its
/// own event; `message_updated` without one falls through). Anything else — an event type Sekisho does not know,
/// or a message event missing those fields — is keyed by SHA-256 of the signed raw body: its fields mean nothing
/// known, and two different events must never share a key.
fn dedupe_key(payload: &Value, chatwork_type: &str, body: &[u8]) -> String {
    let non_empty =
        |value: &Value, path: &[&str]| text_at(value, path).filter(|text| !text.is_empty());
    let event = payload.get("webhook_event").unwrap_or(&Value::Null);
    let update_time = non_empty(event, &["update_time"]);
    let edited_at = update_time.as_deref().filter(|time| *time != "0");
    let identified = match chatwork_type {
        "message_created" | "mention_to_me" => Some(update_time.as_deref().unwrap_or_default()),
        "message_updated" => edited_at,
        _ => None,
    };
    match (
        identified,
        non_empty(payload, &["webhook_setting_id"]),
        non_empty(event, &["message_id"]),
    ) {
        (Some(update_time), Some(setting_id), Some(message_id)) => {
            format!("{setting_id}:{chatwork_type}:{message_id}:{update_time}")
        }
        _ => super::content_hash_key(body),
    }
}

fn normalize(
    payload: &Value,
    raw: Raw,
    body: &[u8],
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let chatwork_type = text_at(payload, &["webhook_event_type"]).unwrap_or_default();
    let dedupe_key = dedupe_key(payload, &chatwork_type, body);
    let event = payload.get("webhook_event").cloned().unwrap_or(Value::Null);
    let time_ms = u64_at(payload, &["webhook_event_time"])
        .and_then(|seconds| seconds.checked_mul(1000))
        .unwrap_or(now_ms);
    let recognized = envelope_type(&chatwork_type) != UNRECOGNIZED_TYPE;
    let message = recognized.then(|| Message {
        id: text_at(&event, &["message_id"]),
        kind: "text".to_owned(),
        text: text_at(&event, &["body"]).map(|body| plain_text(&body)),
        ..Message::default()
    });
    let data = EventData {
        conversation: text_at(&event, &["room_id"]).map(|id| Conversation {
            id,
            kind: ConversationKind::Room,
        }),
        // `mention_to_me` names the author `from_account_id`; the message events `account_id`.
        sender: text_at(&event, &["from_account_id"])
            .or_else(|| text_at(&event, &["account_id"]))
            .map(|id| Sender { id, name: None }),
        message,
        ..EventData::new(chatwork_type.clone(), verification, raw)
    };
    EventParts {
        dedupe_key,
        event_type: envelope_type(&chatwork_type).to_owned(),
        time_ms,
        data,
    }
}

/// Chatwork message markup tags that carry no readable text of their own. Their contents (quoted text, info
/// boxes, titles, code, file names) are kept; a tag not listed here stays as typed.
const MARKUP_TAGS: &[&str] = &[
    "to",
    "toall",
    "rp",
    "re",
    "返信",
    "info",
    "title",
    "qt",
    "qtmeta",
    "hr",
    "picon",
    "piconname",
    "code",
    "download",
    "preview",
    "task",
    "dtext",
    "deleted",
];

/// The readable text of a Chatwork message body: markup tags such as `[To:123]`, `[rp aid=… to=…]`,
/// `[info]…[/info]` and `[qt]…[/qt]` are removed, their readable contents kept.
pub fn plain_text(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some((before, after_open)) = rest.split_once('[') {
        out.push_str(before);
        match tag_end(after_open) {
            Some((inner, after_close)) if is_markup(inner) => {
                if block_break(inner) && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                rest = after_close;
            }
            _ => {
                out.push('[');
                rest = after_open;
            }
        }
    }
    out.push_str(rest);
    out.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Longest tag looked for (`[rp aid=… to=…-…]` is about 60 bytes). Bounding the search for `]` keeps a body full
/// of unmatched `[` linear.
const MAX_TAG_LEN: usize = 128;

/// The text inside a tag and the text after its `]`, when the `]` comes within [`MAX_TAG_LEN`] bytes.
fn tag_end(after_open: &str) -> Option<(&str, &str)> {
    let (end, _) = after_open
        .char_indices()
        .take_while(|(index, _)| *index < MAX_TAG_LEN)
        .find(|(_, c)| *c == ']')?;
    Some((after_open.get(..end)?, after_open.get(end + 1..)?))
}

fn tag_name(inner: &str) -> &str {
    let inner = inner.strip_prefix('/').unwrap_or(inner);
    inner
        .split([':', ' ', '='])
        .next()
        .unwrap_or_default()
        .trim()
}

fn is_markup(inner: &str) -> bool {
    let name = tag_name(inner);
    MARKUP_TAGS.iter().any(|tag| tag.eq_ignore_ascii_case(name))
}

/// Tags after which the readable text starts a new line (`[/title]`, `[hr]`, the end of a quote or info box).
fn block_break(inner: &str) -> bool {
    let closing = inner.starts_with('/');
    match tag_name(inner).to_ascii_lowercase().as_str() {
        "hr" => true,
        "title" | "qt" | "info" | "code" => closing,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use crate::envelope::Raw;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    // shared/vectors/chatwork.json, chatwork-sue445-mention-to-me (sue445/chatwork_webhook_verify @540b313f).
    const TOKEN: &str = "iY/hmitgwCBlc5DnjAZ8pyRG1HF0zFflfmKmtCDg1wk=";
    const BODY: &str = r#"{"webhook_setting_id":"581","webhook_event_type":"mention_to_me","webhook_event_time":1516629767,"webhook_event":{"from_account_id":2861671,"to_account_id":2739132,"room_id":93207172,"message_id":"1007287971738591232","body":"[rp aid=2739132 to=93207172-1007287785163345920] sue445\ntest","send_time":1516629766,"update_time":0}}"#;
    const SIGNATURE: &str = "NTIUzbXiwLvM7C/MT3Kd75Lw1w2N5tyWtcEieKiqhY0=";
    const WRONG_IF_TOKEN_NOT_DECODED: &str = "lUU9XJPoNaDUJr1erAQ86S3N16WU3p7EAXtMlO6bwt8=";

    fn bindings(token: &str) -> HashMap<String, String> {
        HashMap::from([("CHATWORK_DEMO_WEBHOOK_TOKEN".to_owned(), token.to_owned())])
    }

    fn call(
        bindings: &HashMap<String, String>,
        method: Method,
        query: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest {
            method,
            extra_path: &[],
            query,
            headers,
            body,
            now_ms: 1_700_000_000_000,
        };
        test_support::run(&Chatwork, bindings, demo)
    }

    #[test]
    fn shared_vector_key_is_the_decoded_token() {
        let decoded = crypto::base64_decode(TOKEN).unwrap();
        assert_eq!(BODY.len(), 329);
        assert_eq!(
            crypto::base64_encode(&crypto::hmac_sha256(&decoded, &[BODY.as_bytes()])),
            SIGNATURE
        );
        assert_eq!(
            crypto::base64_encode(&crypto::hmac_sha256(TOKEN.as_bytes(), &[BODY.as_bytes()])),
            WRONG_IF_TOKEN_NOT_DECODED
        );
    }

    #[test]
    fn shared_vector_is_accepted_by_header_and_by_query_parameter() {
        let by_header = call(
            &bindings(TOKEN),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", SIGNATURE)],
            BODY.as_bytes(),
        )
        .unwrap();
        let [event] = by_header.events.as_slice() else {
            panic!("one event expected")
        };
        assert_eq!(event.event_type, "message.mentioned");
        assert_eq!(
            event.id,
            crate::envelope::event_id(
                "chatwork",
                "demo",
                "581:mention_to_me:1007287971738591232:0"
            )
        );
        assert_eq!(event.time, "2018-01-22T14:02:47.000Z");
        assert_eq!(
            event.data.conversation,
            Some(Conversation {
                id: "93207172".into(),
                kind: ConversationKind::Room
            })
        );
        assert_eq!(event.data.sender.as_ref().unwrap().id, "2861671");
        let message = event.data.message.as_ref().unwrap();
        assert_eq!(message.text.as_deref(), Some("sue445\ntest"));
        assert_eq!(message.id.as_deref(), Some("1007287971738591232"));
        assert_eq!(
            event.data.raw.value()["webhook_event"]["body"],
            "[rp aid=2739132 to=93207172-1007287785163345920] sue445\ntest"
        );

        // `+` and `/` percent-encoded, as Chatwork sends the parameter.
        let query = "chatwork_webhook_signature=NTIUzbXiwLvM7C%2FMT3Kd75Lw1w2N5tyWtcEieKiqhY0%3D";
        assert!(call(
            &bindings(TOKEN),
            Method::POST,
            Some(query),
            &[],
            BODY.as_bytes()
        )
        .is_ok());
    }

    #[test]
    fn shared_vector_negatives_are_rejected() {
        for signature in ["AAAAAAAAA", WRONG_IF_TOKEN_NOT_DECODED] {
            let result = call(
                &bindings(TOKEN),
                Method::POST,
                None,
                &[("x-chatworkwebhooksignature", signature)],
                BODY.as_bytes(),
            );
            assert_eq!(
                result.unwrap_err(),
                Rejection::InvalidSignature,
                "{signature}"
            );
        }
        let missing = call(&bindings(TOKEN), Method::POST, None, &[], BODY.as_bytes());
        assert_eq!(missing.unwrap_err(), Rejection::MissingSignature);
    }

    #[test]
    fn rotated_tokens_report_the_index_and_an_undecodable_token_is_misconfiguration() {
        let rotated = format!("{},{TOKEN}", crypto::base64_encode(b"newer token"));
        let handled = call(
            &bindings(&rotated),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", SIGNATURE)],
            BODY.as_bytes(),
        )
        .unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
        let result = call(
            &bindings("not*base64"),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", SIGNATURE)],
            BODY.as_bytes(),
        );
        assert_eq!(
            result.unwrap_err(),
            Rejection::misconfigured("CHATWORK_DEMO_WEBHOOK_TOKEN")
        );
    }

    #[test]
    fn markup_is_stripped_and_readable_text_kept() {
        assert_eq!(plain_text("[To:123]Tanaka-san\nhello"), "Tanaka-san\nhello");
        assert_eq!(plain_text("[toall] meeting at 3"), "meeting at 3");
        assert_eq!(
            plain_text("[info][title]Release[/title]v1.2 is out[/info]"),
            "Release\nv1.2 is out"
        );
        assert_eq!(
            plain_text("[qt][qtmeta aid=1 time=1516629766]original[/qt]my answer"),
            "original\nmy answer"
        );
        assert_eq!(
            plain_text("[返信 aid=2739132 to=93207172-1007287785163345920]ok"),
            "ok"
        );
        assert_eq!(plain_text("a[hr]b"), "a\nb");
        assert_eq!(
            plain_text("[piconname:123] [code]let x = a[0];[/code]"),
            "let x = a[0];"
        );
        let long = format!("[To:1]{}", "[".repeat(200_000));
        assert_eq!(plain_text(&long), "[".repeat(200_000));
        assert_eq!(
            plain_text(&format!("[To:{}]x", "1".repeat(200))),
            format!("[To:{}]x", "1".repeat(200))
        );
        assert_eq!(
            plain_text("[important] keep [brackets] (smile) ["),
            "[important] keep [brackets] (smile) ["
        );
    }

    #[test]
    fn message_events_are_normalized() {
        let payload = serde_json::json!({
            "webhook_setting_id": "12345",
            "webhook_event_type": "message_updated",
            "webhook_event_time": 1498028130,
            "webhook_event": {"message_id": "789012345", "room_id": 54321, "account_id": 123456,
                "body": "[To:1] fixed", "send_time": 1498028125, "update_time": 1498028130}
        });
        let parts = normalize(
            &payload,
            Raw::rendered(&payload),
            b"{}",
            Verification {
                scheme: SCHEME.into(),
                key_index: 0,
            },
            0,
        );
        assert_eq!(parts.event_type, "message.edited");
        assert_eq!(
            parts.dedupe_key,
            "12345:message_updated:789012345:1498028130"
        );
        assert_eq!(parts.data.sender.unwrap().id, "123456");
        assert_eq!(parts.data.message.unwrap().text.as_deref(), Some("fixed"));
    }

    #[test]
    fn unknown_types_pass_through_and_non_json_is_malformed() {
        let body = br#"{"webhook_setting_id":"1","webhook_event_type":"room_created","webhook_event":{"room_id":1}}"#;
        let key = crypto::base64_decode(TOKEN).unwrap();
        let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[body]));
        let handled = call(
            &bindings(TOKEN),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", &signature)],
            body,
        )
        .unwrap();
        assert_eq!(handled.events[0].event_type, UNRECOGNIZED_TYPE);
        assert_eq!(handled.events[0].data.provider_type, "room_created");
        assert!(handled.events[0].data.message.is_none());

        let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[b"not json"]));
        let result = call(
            &bindings(TOKEN),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", &signature)],
            b"not json",
        );
        assert_eq!(
            result.unwrap_err(),
            Rejection::MalformedBody { expected: "JSON" }
        );
    }

    fn signed_call(body: &[u8]) -> Handled {
        let key = crypto::base64_decode(TOKEN).unwrap();
        let signature = crypto::base64_encode(&crypto::hmac_sha256(&key, &[body]));
        call(
            &bindings(TOKEN),
            Method::POST,
            None,
            &[("x-chatworkwebhooksignature", &signature)],
            body,
        )
        .unwrap()
    }

    fn event_id_of(body: &str) -> String {
        signed_call(body.as_bytes()).events[0].id.clone()
    }

    #[test]
    fn events_without_a_message_id_are_keyed_by_their_signed_body() {
        // Two different events of a type Sekisho does not know, neither with a message id.
        let room_created = r#"{"webhook_setting_id":"12347","webhook_event_type":"room_created","webhook_event_time":1498028130,"webhook_event":{"room_id":54322}}"#;
        let other_room = r#"{"webhook_setting_id":"12347","webhook_event_type":"room_created","webhook_event_time":1498028200,"webhook_event":{"room_id":54323}}"#;
        assert_ne!(event_id_of(room_created), event_id_of(other_room));
        // The same signed body again is the same event.
        assert_eq!(event_id_of(room_created), event_id_of(room_created));
        assert_eq!(
            event_id_of(room_created),
            crate::envelope::event_id(
                "chatwork",
                "demo",
                &format!(
                    "sha256:{}",
                    crypto::hex_encode(&crypto::sha256(&[room_created.as_bytes()]))
                )
            )
        );

        // Message events that lack the fields of their key are keyed by the body too.
        let created = |body: &str| {
            format!(
                r#"{{"webhook_setting_id":"12345","webhook_event_type":"message_created","webhook_event":{{"room_id":54321,"body":"{body}"}}}}"#
            )
        };
        assert_ne!(event_id_of(&created("one")), event_id_of(&created("two")));
        let updated = |body: &str, update_time: &str| {
            format!(
                r#"{{"webhook_setting_id":"12345","webhook_event_type":"message_updated","webhook_event":{{"message_id":"789012345","room_id":54321,"body":"{body}"{update_time}}}}}"#
            )
        };
        assert_ne!(
            event_id_of(&updated("first edit", "")),
            event_id_of(&updated("second edit", ""))
        );
        assert_ne!(
            event_id_of(&updated("first edit", r#","update_time":0"#)),
            event_id_of(&updated("second edit", r#","update_time":0"#))
        );
        let no_setting = |body: &str| {
            format!(
                r#"{{"webhook_event_type":"mention_to_me","webhook_event":{{"message_id":"1","body":"{body}"}}}}"#
            )
        };
        assert_ne!(event_id_of(&no_setting("a")), event_id_of(&no_setting("b")));
        // An unknown type is keyed by its body even when it carries a message id: its meaning is unknown.
        let unknown = |time: u64| {
            format!(
                r#"{{"webhook_setting_id":"1","webhook_event_type":"message_reacted","webhook_event_time":{time},"webhook_event":{{"message_id":"5"}}}}"#
            )
        };
        assert_ne!(event_id_of(&unknown(1)), event_id_of(&unknown(2)));
    }

    #[test]
    fn message_events_keep_their_provider_key() {
        let key_of = |body: &str| {
            let payload: Value = serde_json::from_str(body).unwrap();
            let chatwork_type = text_at(&payload, &["webhook_event_type"]).unwrap();
            dedupe_key(&payload, &chatwork_type, body.as_bytes())
        };
        assert_eq!(key_of(BODY), "581:mention_to_me:1007287971738591232:0");
        // The same message delivered with another event time is still the same event.
        let created = |time: u64| {
            format!(
                r#"{{"webhook_setting_id":"12345","webhook_event_type":"message_created","webhook_event_time":{time},"webhook_event":{{"message_id":"789012345","update_time":0}}}}"#
            )
        };
        assert_eq!(key_of(&created(1)), "12345:message_created:789012345:0");
        assert_eq!(key_of(&created(2)), key_of(&created(1)));
        let edit = r#"{"webhook_setting_id":"12345","webhook_event_type":"message_updated","webhook_event":{"message_id":"789012345","update_time":1498028190}}"#;
        assert_eq!(key_of(edit), "12345:message_updated:789012345:1498028190");
    }

    #[test]
    fn sign_produces_an_accepted_request() {
        let params = SignParams {
            body: BODY.as_bytes().to_vec(),
            options: [("secret".to_owned(), TOKEN.to_owned())].into(),
            now_s: 0,
        };
        let signed = Chatwork.sign(&params).unwrap();
        assert!(signed
            .headers
            .contains(&(SIGNATURE_HEADER.to_owned(), SIGNATURE.to_owned())));
        let query = signed.query_string();
        let only_query = call(
            &bindings(TOKEN),
            Method::POST,
            query.strip_prefix('?'),
            &[],
            &signed.body,
        );
        assert!(only_query.is_ok());
        let bad = SignParams {
            options: [("secret".to_owned(), "*".to_owned())].into(),
            ..params
        };
        assert!(Chatwork.sign(&bad).is_err());
    }

    fn json_body() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            prop_oneof![
                Just("message_created".to_owned()),
                Just("mention_to_me".to_owned()),
                "[\\[\\]a-zA-Z:/= 0-9返信]{0,24}",
            ]
            .prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("webhook_setting_id"),
            Just("webhook_event_type"),
            Just("webhook_event_time"),
            Just("webhook_event"),
            Just("room_id"),
            Just("message_id"),
            Just("body"),
            Just("account_id"),
            Just("update_time"),
        ];
        leaf.prop_recursive(3, 24, 6, move |inner| {
            prop::collection::vec((keys.clone(), inner), 0..6).prop_map(|pairs| {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            })
        })
        .prop_map(|value| value.to_string())
    }

    proptest! {
        #[test]
        fn handle_never_panics(
            body in prop_oneof![json_body().prop_map(String::into_bytes), any::<Vec<u8>>()],
            signature in prop::option::of("[ -~]{0,60}"),
            query in prop::option::of("[ -~]{0,80}"),
            sign_correctly in any::<bool>(),
        ) {
            let key = crypto::base64_decode(TOKEN).unwrap();
            let good = crypto::base64_encode(&crypto::hmac_sha256(&key, &[&body]));
            let signature = if sign_correctly { Some(good) } else { signature };
            let headers: Vec<(&str, &str)> =
                signature.as_deref().map(|s| (SIGNATURE_HEADER, s)).into_iter().collect();
            let _ = call(&bindings(TOKEN), Method::POST, query.as_deref(), &headers, &body);
        }

    }
}
