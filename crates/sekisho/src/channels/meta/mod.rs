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

const APP_SECRET_FIELD: FieldSpec = FieldSpec::secret("APP_SECRET", Format::Hex { len: 32 }).help(
    "Meta for Developers → アプリ → 設定 → ベーシック → app secret",
    "Meta for Developers → your app → Settings → Basic → App secret",
);
const VERIFY_TOKEN_FIELD: FieldSpec =
    FieldSpec::secret("VERIFY_TOKEN", Format::Token { min: 8, max: 256 }).help(
        "Webhooks 設定の「認証トークン」（任意の文字列をここと Meta の両方に）",
        "The Webhooks Verify token (any string, entered here and at Meta)",
    );
/// WhatsApp also sends (Cloud API `messages`): the sending number's id and an access token.
const WHATSAPP_FIELDS: &[FieldSpec] = &[
    APP_SECRET_FIELD,
    VERIFY_TOKEN_FIELD,
    FieldSpec::setting("PHONE_NUMBER_ID", Format::Number { min: 1, max: 999_999_999_999_999_999 }).help(
        "Meta for Developers → アプリ → WhatsApp → API設定 → 電話番号ID（送信に使います）",
        "Meta for Developers → your app → WhatsApp → API Setup → Phone number ID (for sending)",
    ),
    FieldSpec::secret("ACCESS_TOKEN", Format::Token { min: 20, max: 512 })
        .optional()
        .help(
            "Business Manager → ビジネス設定 → システムユーザー → トークンを生成（whatsapp_business_messaging、送信に使います）",
            "Business settings → System users → Generate token (whatsapp_business_messaging; for sending)",
        ),
];

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
        if self.product == Product::WhatsApp {
            return WHATSAPP_FIELDS;
        }
        const FIELDS: &[FieldSpec] = &[APP_SECRET_FIELD, VERIFY_TOKEN_FIELD];
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
mod tests;
