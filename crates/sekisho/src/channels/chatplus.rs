//! ChatPlus "API output" (API出力) webhooks, at `/chatplus/{account}/{path_secret}`.
//!
//! ChatPlus signs nothing and publishes no payload schema. The request is authenticated by a high-entropy secret
//! in the URL path, compared in constant time; a wrong or missing secret answers exactly like an unknown account.
//! The event is recognised defensively from field names and values (see `docs/channels/chatplus.md`, which lists
//! every field looked at), and the whole payload is always kept in `raw`.

use std::collections::VecDeque;

use http::Method;
use serde_json::Value;

use super::form::{form_object, FORM_CONTENT_TYPE};
use super::Verdict;
use super::{content_hash_key, text_at, Channel, ChannelRequest};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Conversation, ConversationKind, EventData, EventParts, Message, Sender, Verification,
    UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct ChatPlus;

const SCHEME: &str = "chatplus-path-secret";
const MIN_SECRET_LEN: usize = 32;
const MAX_SECRET_LEN: usize = 256;
/// Compared against when the account does not exist, so that path costs what a wrong secret costs.
const DUMMY_SECRET: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Keys whose value names the event, most specific first. Keys are compared after [`normalize_key`].
const EVENT_KEYS: &[&str] = &[
    "event",
    "eventtype",
    "eventname",
    "webhookevent",
    "webhooktype",
    "type",
    "action",
    "trigger",
    "kind",
];
/// Keys whose value is a chat's state, consulted when no event key has a recognisable value.
const STATUS_KEYS: &[&str] = &["status", "chatstatus", "state"];
const EVENT_ID_KEYS: &[&str] = &[
    "eventid",
    "webhookid",
    "webhookeventid",
    "requestid",
    "deliveryid",
];
const CONVERSATION_ID_KEYS: &[&str] = &["chatid", "roomid", "conversationid", "threadid"];
const CONVERSATION_OBJECTS: &[&str] = &["chat", "room", "conversation"];
const VISITOR_ID_KEYS: &[&str] = &["visitorid", "customerid", "guestid", "enduserid", "userid"];
const VISITOR_NAME_KEYS: &[&str] = &["visitorname", "customername", "guestname", "username"];
const VISITOR_OBJECTS: &[&str] = &["visitor", "customer", "guest", "user"];
const OPERATOR_ID_KEYS: &[&str] = &["operatorid", "agentid", "staffid"];
const OPERATOR_NAME_KEYS: &[&str] = &["operatorname", "agentname", "staffname"];
const OPERATOR_OBJECTS: &[&str] = &["operator", "agent", "staff"];
const MESSAGE_ID_KEYS: &[&str] = &["messageid", "msgid"];
const MESSAGE_TEXT_KEYS: &[&str] = &["message", "text", "body", "content", "msg"];
const MESSAGE_OBJECTS: &[&str] = &["message", "msg"];
const TIME_KEYS: &[&str] = &[
    "timestamp",
    "eventtime",
    "time",
    "createdat",
    "sentat",
    "sendtime",
    "datetime",
    "date",
];

/// How deep into nested objects the recognizer looks, and how many nodes it visits at most.
const MAX_DEPTH: usize = 3;
const MAX_NODES: usize = 256;

impl Channel for ChatPlus {
    fn name(&self) -> &'static str {
        "chatplus"
    }

    fn account_field(&self) -> &'static str {
        "PATH_SECRET"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("PATH_SECRET", Format::Token { min: 32, max: 128 }).help(
                "Webhook URL の最後の部分になる秘密の文字列（32 文字以上、例: openssl rand -hex 24）",
                "The secret last segment of the Webhook URL (32+ characters, e.g. openssl rand -hex 24)",
            ),
            FieldSpec::secret("API_TOKEN", Format::Token { min: 8, max: 256 })
                .optional()
                .help(
                    "ChatPlus 設定 → 外部連携 → API入力 → トークン発行（送信に使います）",
                    "ChatPlus settings → External integration → API input → Issue token (for sending)",
                ),
        ];
        FIELDS
    }

    /// The path secret is the segment after the account.
    fn takes_extra_path(&self) -> bool {
        true
    }

    /// Every method reaches [`handle`](Channel::handle), which checks the path secret first: a 405 for a wrong
    /// secret would tell an existing account from a guessed one.
    fn allows(&self, _method: &Method) -> bool {
        true
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let secrets = account.required_values("PATH_SECRET")?;
        if !secrets.iter().all(|secret| is_valid_path_secret(secret)) {
            return Err(Rejection::misconfigured(
                account.binding_name("PATH_SECRET"),
            ));
        }
        // The secret is checked before anything else: a 405 or 400 for a wrong secret would confirm the account.
        let key_index =
            secret_index(&secrets, presented_secret(request)).ok_or(Rejection::UnknownAccount)?;
        if *request.method != Method::POST {
            return Err(Rejection::MethodNotAllowed);
        }

        let (payload, raw) = parse_body(request.body, request.header("content-type"))?;
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        let parts = normalize(&payload, raw, request.body, verification, request.now_ms);
        Ok(Verdict::accepted(vec![parts]))
    }

    fn unknown_account(&self, request: &ChannelRequest<'_>) -> Rejection {
        std::hint::black_box(secret_index(&[DUMMY_SECRET], presented_secret(request)));
        Rejection::UnknownAccount
    }
}

#[cfg(feature = "tooling")]
impl Sign for ChatPlus {
    /// `--secret` is the path secret; it becomes the last path segment.
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let secret = params.required("secret")?;
        if !is_valid_path_secret(secret) {
            return Err(ToolingError::InvalidOption {
                option: "secret",
                why: "a path secret is 32-256 characters of A-Z a-z 0-9 _ -",
            });
        }
        let content_type = match params.body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => "application/json",
            _ => FORM_CONTENT_TYPE,
        };
        let mut signed = SignedRequest::post(
            vec![("content-type".to_owned(), content_type.to_owned())],
            params.body.clone(),
        );
        signed.extra_path.push(secret.to_owned());
        Ok(signed)
    }
}

/// A path secret is one URL segment of 32–256 unreserved characters (`openssl rand -hex 32` gives 64).
fn is_valid_path_secret(secret: &str) -> bool {
    (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The single path segment after the account; anything else (none, or several) presents the empty secret.
fn presented_secret<'a>(request: &ChannelRequest<'a>) -> &'a str {
    match request.extra_path {
        [secret] => secret,
        _ => "",
    }
}

/// Compares SHA-256 digests, so the comparison takes the same time whatever the presented length.
fn secret_index<S: AsRef<str>>(secrets: &[S], presented: &str) -> Option<usize> {
    let presented = crypto::sha256(&[presented.as_bytes()]);
    let digests: Vec<[u8; 32]> = secrets
        .iter()
        .map(|secret| crypto::sha256(&[secret.as_ref().as_bytes()]))
        .collect();
    crypto::matching_secret(&digests, &presented)
}

/// JSON, or `application/x-www-form-urlencoded` (as a JSON object of strings; a repeated key becomes an array).
/// The body's fields, and `data.raw`: the JSON text as sent, or the JSON rendering of a form.
fn parse_body(body: &[u8], content_type: Option<&str>) -> Result<(Value, Raw), Rejection> {
    let malformed = Rejection::MalformedBody {
        expected: "JSON or form",
    };
    let declared_form =
        content_type.is_some_and(|t| t.to_ascii_lowercase().contains(FORM_CONTENT_TYPE));
    if !declared_form {
        if let (Ok(value), Ok(raw)) = (crate::json::parse_slice(body), Raw::from_body(body)) {
            return Ok((value, raw));
        }
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| malformed.clone())?
        .trim();
    if text.is_empty() || !text.contains('=') {
        return Err(malformed);
    }
    let fields = form_object(text.as_bytes());
    let raw = Raw::rendered(&fields);
    Ok((fields, raw))
}

/// `chat_id`, `chatId`, `Chat-ID` and the form key `data[chat_id]` all become `chatid`.
fn normalize_key(key: &str) -> String {
    let last = match key.strip_suffix(']') {
        Some(inner) => inner.rsplit('[').next().unwrap_or(inner),
        None => key,
    };
    last.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every (normalized key, value) of the payload, breadth first (top level first), bounded in depth and size.
fn entries(root: &Value) -> Vec<(String, &Value)> {
    let mut found = Vec::new();
    let mut queue = VecDeque::from([(root, 0usize)]);
    let mut visited = 0;
    while let Some((value, depth)) = queue.pop_front() {
        let children: Box<dyn Iterator<Item = (Option<&String>, &Value)>> = match value {
            Value::Object(map) => Box::new(map.iter().map(|(k, v)| (Some(k), v))),
            Value::Array(items) => Box::new(items.iter().map(|v| (None, v))),
            _ => continue,
        };
        for (key, child) in children {
            visited += 1;
            if visited > MAX_NODES {
                return found;
            }
            if let Some(key) = key {
                found.push((normalize_key(key), child));
            }
            if depth < MAX_DEPTH && (child.is_object() || child.is_array()) {
                queue.push_back((child, depth + 1));
            }
        }
    }
    found
}

/// The value of the first of `keys` that occurs anywhere in the payload (its shallowest occurrence) as a
/// non-empty string or a number.
fn scalar(entries: &[(String, &Value)], keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|wanted| {
        entries
            .iter()
            .filter(|(key, _)| key == wanted)
            .find_map(|(_, value)| scalar_text(value))
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The first object under any of `keys`.
fn object<'v>(entries: &[(String, &'v Value)], keys: &[&str]) -> Option<&'v Value> {
    keys.iter().find_map(|wanted| {
        entries
            .iter()
            .find(|(key, value)| key == wanted && value.is_object())
            .map(|(_, value)| *value)
    })
}

/// A ChatPlus event name or chat state → envelope type, from English words or Japanese terms in the value.
fn classify(value: &str) -> Option<&'static str> {
    const JAPANESE: &[(&str, &str)] = &[
        ("既読", "message.read"),
        ("対応中", "conversation.assigned"),
        ("終了", "conversation.ended"),
        ("完了", "conversation.ended"),
        ("開始", "conversation.started"),
        ("受信", "message.received"),
        ("送信", "message.sent"),
    ];
    const ENGLISH: &[(&[&str], &str)] = &[
        (&["read", "seen"], "message.read"),
        (
            &[
                "progress",
                "inprogress",
                "assign",
                "assigned",
                "accept",
                "accepted",
                "responding",
                "handling",
            ],
            "conversation.assigned",
        ),
        (
            &[
                "end",
                "ended",
                "close",
                "closed",
                "finish",
                "finished",
                "complete",
                "completed",
            ],
            "conversation.ended",
        ),
        (
            &["start", "started", "begin", "open"],
            "conversation.started",
        ),
        (
            &["receive", "received", "incoming", "inbound"],
            "message.received",
        ),
        (
            &["send", "sent", "outgoing", "outbound", "reply", "replied"],
            "message.sent",
        ),
    ];
    if let Some((_, event_type)) = JAPANESE.iter().find(|(term, _)| value.contains(term)) {
        return Some(event_type);
    }
    let words = words(value);
    ENGLISH
        .iter()
        .find(|(terms, _)| words.iter().any(|word| terms.contains(&word.as_str())))
        .map(|(_, event_type)| *event_type)
}

/// `chatStarted`, `chat_started`, `chat.started` and `Chat Started` all become `["chat", "started"]`.
fn words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in value.chars() {
        if c.is_ascii_uppercase() && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if c.is_ascii_alphanumeric() {
            current.push(c.to_ascii_lowercase());
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn normalize(
    payload: &Value,
    raw: Raw,
    body: &[u8],
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let entries = entries(payload);
    let event_names: Vec<String> = EVENT_KEYS
        .iter()
        .chain(STATUS_KEYS)
        .flat_map(|wanted| {
            entries
                .iter()
                .filter(move |(key, _)| key == wanted)
                .filter_map(|(_, value)| scalar_text(value))
        })
        .collect();
    let recognized = event_names
        .iter()
        .find_map(|name| Some((name.clone(), classify(name)?)));
    let (provider_type, event_type) = match recognized {
        Some((name, event_type)) => (name, event_type),
        None => (
            event_names
                .first()
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned()),
            UNRECOGNIZED_TYPE,
        ),
    };
    let dedupe_key = scalar(&entries, EVENT_ID_KEYS)
        .map(|id| format!("id:{id}"))
        .unwrap_or_else(|| content_hash_key(body));
    let time_ms = scalar(&entries, TIME_KEYS)
        .and_then(|time| time_ms(&time))
        .unwrap_or(now_ms);
    let is_message = event_type.starts_with("message.");
    let data = EventData {
        conversation: scalar(&entries, CONVERSATION_ID_KEYS)
            .or_else(|| object(&entries, CONVERSATION_OBJECTS).and_then(|o| text_at(o, &["id"])))
            .map(|id| Conversation {
                id,
                kind: ConversationKind::Direct,
            }),
        sender: if event_type == "message.sent" {
            party(
                &entries,
                OPERATOR_ID_KEYS,
                OPERATOR_NAME_KEYS,
                OPERATOR_OBJECTS,
            )
        } else {
            party(
                &entries,
                VISITOR_ID_KEYS,
                VISITOR_NAME_KEYS,
                VISITOR_OBJECTS,
            )
        },
        message: is_message.then(|| message(&entries)),
        ..EventData::new(provider_type, verification, raw)
    };
    EventParts {
        dedupe_key,
        event_type: event_type.to_owned(),
        time_ms,
        data,
    }
}

fn party(
    entries: &[(String, &Value)],
    id_keys: &[&str],
    name_keys: &[&str],
    objects: &[&str],
) -> Option<Sender> {
    if let Some(id) = scalar(entries, id_keys) {
        return Some(Sender {
            id,
            name: scalar(entries, name_keys),
        });
    }
    let object = object(entries, objects)?;
    Some(Sender {
        id: text_at(object, &["id"])?,
        name: text_at(object, &["name"]),
    })
}

fn message(entries: &[(String, &Value)]) -> Message {
    let nested = object(entries, MESSAGE_OBJECTS);
    let id = scalar(entries, MESSAGE_ID_KEYS).or_else(|| nested.and_then(|m| text_at(m, &["id"])));
    let text = scalar(entries, MESSAGE_TEXT_KEYS).or_else(|| {
        let nested = nested?;
        ["text", "body", "content", "message"]
            .iter()
            .find_map(|key| text_at(nested, &[key]))
    });
    Message {
        id,
        kind: if text.is_some() { "text" } else { "unknown" }.to_owned(),
        text,
        ..Message::default()
    }
}

/// Unix seconds or milliseconds (as number or digits), or RFC 3339. Local times without an offset are not
/// guessed at: they fall back to the receive time.
fn time_ms(text: &str) -> Option<u64> {
    if let Ok(number) = text.parse::<u64>() {
        // Below 10^11 a value is seconds (until the year 5138); above, milliseconds.
        return if number < 100_000_000_000 {
            number.checked_mul(1000)
        } else {
            Some(number)
        };
    }
    crate::datetime::parse_rfc3339_ms(text)
}

#[cfg(test)]
mod tests;
