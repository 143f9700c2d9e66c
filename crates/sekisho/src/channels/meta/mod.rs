//! Meta webhooks: WhatsApp Cloud API, Messenger and Instagram — one protocol, three routes.
//!
//! Subscription handshake: `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` → 200 with the challenge
//! as the body when the token matches. Notifications: `POST` with
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`. Meta signs the body as sent, with
//! non-ASCII characters `\uXXXX`-escaped, so only the raw bytes verify. The legacy SHA-1 `X-Hub-Signature` is
//! ignored.
//!
//! One POST batches several `entry[]`, each with WhatsApp `changes[]` or Messenger/Instagram `messaging[]`;
//! every message, status and messaging item becomes one event. Anything else passes through as
//! [`UNRECOGNIZED_TYPE`].
//!
//! This file holds the request path (handshake, signature, routing each entry's fields); `whatsapp.rs`
//! normalizes `changes[]` and `messaging.rs` normalizes `messaging[]`.

mod messaging;
mod whatsapp;

use http::Method;
use serde_json::Value;

use super::Verdict;
use super::{text_at, Channel, ChannelRequest, EdgeResponse};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Conversation, ConversationKind, EventData, EventParts, Message, Postback, Sender, Verification,
    UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

const SIGNATURE_HEADER: &str = "x-hub-signature-256";
const SIGNATURE_PREFIX: &str = "sha256=";
const SCHEME: &str = "meta-hmac-sha256";
const APP_SECRET: &str = "APP_SECRET";
const VERIFY_TOKEN: &str = "VERIFY_TOKEN";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Product {
    WhatsApp,
    Messenger,
    Instagram,
}

/// One Meta product's route. The three share verification; they differ in name and payload shape.
pub struct Meta {
    product: Product,
}

pub static WHATSAPP: Meta = Meta {
    product: Product::WhatsApp,
};
pub static MESSENGER: Meta = Meta {
    product: Product::Messenger,
};
pub static INSTAGRAM: Meta = Meta {
    product: Product::Instagram,
};

impl Channel for Meta {
    fn name(&self) -> &'static str {
        match self.product {
            Product::WhatsApp => "whatsapp",
            Product::Messenger => "messenger",
            Product::Instagram => "instagram",
        }
    }

    fn account_field(&self) -> &'static str {
        APP_SECRET
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("APP_SECRET", Format::Hex { len: 32 }).help(
                "Meta for Developers → アプリ → 設定 → ベーシック → app secret",
                "Meta for Developers → your app → Settings → Basic → App secret",
            ),
            FieldSpec::secret("VERIFY_TOKEN", Format::Token { min: 8, max: 256 }).help(
                "Webhooks 設定の「認証トークン」（任意の文字列をここと Meta の両方に）",
                "The Webhooks Verify token (any string, entered here and at Meta)",
            ),
        ];
        FIELDS
    }

    /// `GET` is the URL-verification handshake.
    fn allows(&self, method: &Method) -> bool {
        *method == Method::GET || *method == Method::POST
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        if *request.method == Method::GET {
            return handshake(request, account);
        }
        let secrets = account.required_values(APP_SECRET)?;
        let key_index = verify_signature(&secrets, request.header(SIGNATURE_HEADER), request.body)?;

        let payload = crate::json::parse_slice(request.body)
            .map_err(|_| Rejection::MalformedBody { expected: "JSON" })?;
        let context = Context {
            product: self.product,
            verification: Verification {
                scheme: SCHEME.to_owned(),
                key_index,
            },
            now_ms: request.now_ms,
        };
        Ok(Verdict::accepted(normalize_payload(&context, payload)))
    }
}

#[cfg(feature = "tooling")]
impl Sign for Meta {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        if let Some(token) = params.option("verify-token") {
            let challenge = params
                .option("challenge")
                .map(str::to_owned)
                .unwrap_or_else(|| params.now_s.to_string());
            return Ok(SignedRequest {
                method: Method::GET,
                extra_path: Vec::new(),
                query: vec![
                    ("hub.mode".to_owned(), "subscribe".to_owned()),
                    ("hub.verify_token".to_owned(), token.to_owned()),
                    ("hub.challenge".to_owned(), challenge),
                ],
                headers: Vec::new(),
                body: Vec::new(),
            });
        }
        let secret = params.required("secret")?;
        let tag = crypto::hmac_sha256(secret.as_bytes(), &[&params.body]);
        Ok(SignedRequest::post(
            vec![
                (
                    SIGNATURE_HEADER.to_owned(),
                    format!("{SIGNATURE_PREFIX}{}", crypto::hex_encode(&tag)),
                ),
                ("content-type".to_owned(), "application/json".to_owned()),
            ],
            params.body.clone(),
        ))
    }
}

/// The index of the app secret that signed `body`, newest first.
fn verify_signature(
    secrets: &[String],
    header: Option<&str>,
    body: &[u8],
) -> Result<usize, Rejection> {
    let header = header.ok_or(Rejection::MissingSignature)?;
    let tag = header
        .trim()
        .strip_prefix(SIGNATURE_PREFIX)
        .and_then(crypto::hex_decode)
        .ok_or(Rejection::InvalidSignature)?;
    crypto::hmac_sha256_matches(secrets, &[body], &tag).ok_or(Rejection::InvalidSignature)
}

fn handshake(request: &ChannelRequest<'_>, account: &Account<'_>) -> Result<Verdict, Rejection> {
    let tokens = account.required_values(VERIFY_TOKEN)?;
    let presented = request
        .query
        .get("hub.verify_token")
        .ok_or(Rejection::VerifyTokenMismatch)?;
    let matched = crypto::matching_secret(&tokens, presented.as_bytes()).is_some();
    if request.query.get("hub.mode") != Some("subscribe") || !matched {
        return Err(Rejection::VerifyTokenMismatch);
    }
    let challenge = request
        .query
        .get("hub.challenge")
        .ok_or(Rejection::MissingParameter("hub.challenge"))?;
    Ok(Verdict::handshake(EdgeResponse::text(challenge)))
}

struct Context {
    product: Product,
    verification: Verification,
    now_ms: u64,
}

impl Context {
    fn parts(
        &self,
        dedupe_key: String,
        event_type: &str,
        time_ms: Option<u64>,
        data: Data,
    ) -> EventParts {
        EventParts {
            dedupe_key,
            event_type: event_type.to_owned(),
            time_ms: time_ms.unwrap_or(self.now_ms),
            data: EventData {
                conversation: data.conversation,
                sender: data.sender,
                message: data.message,
                postback: data.postback,
                ..EventData::new(
                    data.provider_type,
                    self.verification.clone(),
                    Raw::rendered(&data.raw),
                )
            },
        }
    }

    fn unrecognized(&self, provider_type: &str, raw: Value) -> EventParts {
        let key = hash_key(&raw);
        self.parts(key, UNRECOGNIZED_TYPE, None, Data::new(provider_type, raw))
    }
}

/// The channel-specific part of one event's data.
struct Data {
    provider_type: String,
    conversation: Option<Conversation>,
    sender: Option<Sender>,
    message: Option<Message>,
    postback: Option<Postback>,
    raw: Value,
}

impl Data {
    fn new(provider_type: &str, raw: Value) -> Data {
        Data {
            provider_type: provider_type.to_owned(),
            conversation: None,
            sender: None,
            message: None,
            postback: None,
            raw,
        }
    }
}

/// serde_json's map is ordered by key, so a redelivered item hashes the same.
fn hash_key(raw: &Value) -> String {
    super::content_hash_key(&serde_json::to_vec(raw).unwrap_or_default())
}

fn direct(id: Option<String>) -> Option<Conversation> {
    id.map(|id| Conversation {
        id,
        kind: ConversationKind::Direct,
    })
}

fn array(value: Option<&Value>) -> &[Value] {
    value
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn normalize_payload(context: &Context, payload: Value) -> Vec<EventParts> {
    let Some(entries) = payload.get("entry").and_then(Value::as_array) else {
        // Signed by Meta but not shaped like a notification: forwarded as is rather than lost.
        let provider_type = text_at(&payload, &["object"]).unwrap_or_default();
        return vec![context.unrecognized(&provider_type, payload)];
    };
    let mut events = Vec::new();
    for entry in entries {
        normalize_entry(context, entry, &mut events);
    }
    events
}

fn normalize_entry(context: &Context, entry: &Value, events: &mut Vec<EventParts>) {
    let Some(fields) = entry.as_object() else {
        events.push(context.unrecognized("entry", entry.clone()));
        return;
    };
    for (key, value) in fields {
        match key.as_str() {
            "id" | "time" => {}
            "changes" => {
                for change in array(Some(value)) {
                    whatsapp::normalize_change(context, change, events);
                }
            }
            "messaging" => {
                for item in array(Some(value)) {
                    messaging::normalize_messaging(context, item, events);
                }
            }
            // `standby` (handover protocol: another app owns the thread) and fields Meta adds later.
            other => {
                let mut raw = serde_json::Map::new();
                for kept in ["id", "time"] {
                    if let Some(v) = fields.get(kept) {
                        raw.insert(kept.to_owned(), v.clone());
                    }
                }
                raw.insert(other.to_owned(), value.clone());
                events.push(context.unrecognized(other, Value::Object(raw)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::channels::test_support::{self, DemoRequest};
    use crate::channels::Handled;
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// shared/vectors/meta.json `whatsapp-derived-text`.
    pub(super) const WHATSAPP_TEXT: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"16505551111","phone_number_id":"123456123"},"contacts":[{"profile":{"name":"test user name"},"wa_id":"16315551181"}],"messages":[{"from":"16315551181","id":"ABGGFlA5Fpa","timestamp":"1504902988","type":"text","text":{"body":"this is a text message"}}]}}]}]}"#;
    pub(super) const WHATSAPP_TEXT_SIGNATURE: &str =
        "sha256=f8586d9ffbea92dce2f45cbdfaad128ad16b57260fa5cbff43d7ba5fd27c74a7";

    fn bindings(channel: &str, app_secret: &str) -> HashMap<String, String> {
        let prefix = channel.to_ascii_uppercase();
        HashMap::from([
            (format!("{prefix}_DEMO_APP_SECRET"), app_secret.to_owned()),
            (
                format!("{prefix}_DEMO_VERIFY_TOKEN"),
                "meatyhamhock".to_owned(),
            ),
        ])
    }

    fn run(
        channel: &Meta,
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
        test_support::run(channel, bindings, demo)
    }

    pub(super) fn post(
        channel: &Meta,
        secret: &str,
        signature: Option<&str>,
        body: &str,
    ) -> Result<Handled, Rejection> {
        let headers: Vec<(&str, &str)> = signature
            .map(|s| (SIGNATURE_HEADER, s))
            .into_iter()
            .collect();
        run(
            channel,
            &bindings(channel.name(), secret),
            Method::POST,
            None,
            &headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn github_documented_x_hub_signature_256_vector() {
        let secret = "It's a Secret to Everybody";
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let signed = WHATSAPP
            .sign(&SignParams {
                body: b"Hello, World!".to_vec(),
                options: [("secret".to_owned(), secret.to_owned())].into(),
                now_s: 0,
            })
            .unwrap();
        assert!(signed
            .headers
            .contains(&(SIGNATURE_HEADER.to_owned(), expected.to_owned())));
        // Configured secrets are split on whitespace (rotation lists), so this one is checked below the config.
        let secrets = vec!["newer".to_owned(), secret.to_owned()];
        assert_eq!(
            verify_signature(&secrets, Some(expected), b"Hello, World!"),
            Ok(1)
        );
        let wrong = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e18";
        assert_eq!(
            verify_signature(&secrets, Some(wrong), b"Hello, World!"),
            Err(Rejection::InvalidSignature)
        );
        let upper_prefix = expected.replace("sha256=", "SHA256=");
        assert_eq!(
            verify_signature(&secrets, Some(&upper_prefix), b"Hello, World!"),
            Err(Rejection::InvalidSignature)
        );
        assert_eq!(
            verify_signature(&secrets, None, b"Hello, World!"),
            Err(Rejection::MissingSignature)
        );
    }

    #[test]
    fn rotated_secret_reports_its_index_and_signature_rules_hold() {
        let handled = post(
            &WHATSAPP,
            "newer_secret, test_app_secret",
            Some(WHATSAPP_TEXT_SIGNATURE),
            WHATSAPP_TEXT,
        )
        .unwrap();
        assert_eq!(handled.events[0].data.verification.key_index, 1);
        assert_eq!(
            post(&WHATSAPP, "test_app_secret", None, WHATSAPP_TEXT).unwrap_err(),
            Rejection::MissingSignature
        );
        // The legacy SHA-1 header does not count as a signature.
        let legacy = run(
            &WHATSAPP,
            &bindings("whatsapp", "test_app_secret"),
            Method::POST,
            None,
            &[(
                "x-hub-signature",
                "sha1=0000000000000000000000000000000000000000",
            )],
            WHATSAPP_TEXT.as_bytes(),
        );
        assert_eq!(legacy.unwrap_err(), Rejection::MissingSignature);
        let no_prefix = WHATSAPP_TEXT_SIGNATURE.trim_start_matches("sha256=");
        assert_eq!(
            post(&WHATSAPP, "test_app_secret", Some(no_prefix), WHATSAPP_TEXT).unwrap_err(),
            Rejection::InvalidSignature
        );
        // Re-serialising changes the bytes: the same content no longer verifies.
        let reserialized =
            serde_json::to_string(&serde_json::from_str::<Value>(WHATSAPP_TEXT).unwrap()).unwrap();
        assert_ne!(reserialized, WHATSAPP_TEXT);
        assert_eq!(
            post(
                &WHATSAPP,
                "test_app_secret",
                Some(WHATSAPP_TEXT_SIGNATURE),
                &reserialized
            )
            .unwrap_err(),
            Rejection::InvalidSignature
        );
    }

    #[test]
    fn documented_get_handshake() {
        let config = bindings("messenger", "s");
        let ok = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
        let handled = run(&MESSENGER, &config, Method::GET, Some(ok), &[], b"").unwrap();
        assert_eq!(handled.response, EdgeResponse::text("1158201444"));
        assert!(handled.events.is_empty());
        for bad in [
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
            "hub.mode=unsubscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock",
            "hub.challenge=1158201444",
        ] {
            let rejection = run(&MESSENGER, &config, Method::GET, Some(bad), &[], b"").unwrap_err();
            assert_eq!(rejection, Rejection::VerifyTokenMismatch, "{bad}");
            assert_eq!(rejection.status().as_u16(), 403);
        }
        assert_eq!(
            run(&MESSENGER, &config, Method::PUT, None, &[], b"").unwrap_err(),
            Rejection::MethodNotAllowed
        );

        let options = [
            ("verify-token".to_owned(), "meatyhamhock".to_owned()),
            ("challenge".to_owned(), "42+1".to_owned()),
        ];
        let signed = MESSENGER
            .sign(&SignParams {
                body: Vec::new(),
                options: options.into(),
                now_s: 0,
            })
            .unwrap();
        assert_eq!(signed.method, Method::GET);
        let query = signed.query_string();
        let handled = run(
            &MESSENGER,
            &config,
            Method::GET,
            query.strip_prefix('?'),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(handled.response, EdgeResponse::text("42+1"));
    }

    /// JSON built from the keys and values Meta payloads use, so random bodies reach the normalizers.
    fn meta_json() -> impl Strategy<Value = Value> {
        const WORDS: &[&str] = &[
            "entry",
            "changes",
            "field",
            "value",
            "messages",
            "statuses",
            "contacts",
            "wa_id",
            "profile",
            "name",
            "from",
            "id",
            "type",
            "text",
            "body",
            "image",
            "document",
            "sticker",
            "location",
            "latitude",
            "longitude",
            "interactive",
            "button_reply",
            "list_reply",
            "nfm_reply",
            "button",
            "payload",
            "reaction",
            "emoji",
            "status",
            "sent",
            "delivered",
            "read",
            "failed",
            "timestamp",
            "recipient_id",
            "metadata",
            "phone_number_id",
            "messaging",
            "message",
            "mid",
            "is_echo",
            "is_deleted",
            "attachments",
            "url",
            "coordinates",
            "lat",
            "long",
            "sticker_id",
            "quick_reply",
            "postback",
            "delivery",
            "mids",
            "action",
            "unreact",
            "message_edit",
            "sender",
            "recipient",
            "standby",
        ];
        let word = proptest::sample::select(WORDS).prop_map(str::to_owned);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            word.clone().prop_map(Value::from),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
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
            query in "[ -~]{0,80}",
            get in any::<bool>(),
        ) {
            let config = bindings("whatsapp", "s");
            let method = if get { Method::GET } else { Method::POST };
            let _ = run(&WHATSAPP, &config, method, Some(&query), &[(SIGNATURE_HEADER, &signature)], &body);
        }

        #[test]
        fn normalization_never_panics_on_signed_json(entries in proptest::collection::vec(meta_json(), 0..4)) {
            let body = serde_json::json!({ "object": "page", "entry": entries }).to_string();
            let signature = format!("sha256={}", crypto::hex_encode(&crypto::hmac_sha256(b"s", &[body.as_bytes()])));
            for channel in [&WHATSAPP, &MESSENGER, &INSTAGRAM] {
                prop_assert!(post(channel, "s", Some(&signature), &body).is_ok());
            }
        }
    }
}
