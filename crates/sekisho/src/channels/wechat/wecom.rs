//! WeCom (企业微信) app callbacks and AI-bot (智能机器人) callbacks. Always encrypted with [`wxbiz`].
//!
//! - `GET ?msg_signature&timestamp&nonce&echostr`: the echostr is encrypted; `msg_signature` =
//!   hex(sha1(sort(token, timestamp, nonce, echostr))); the decrypted plaintext is answered exactly (no quotes,
//!   BOM or newline), within WeCom's 1 s.
//! - `POST ?msg_signature&timestamp&nonce`: apps send `<xml><ToUserName/><Encrypt/><AgentID/></xml>` and the
//!   receive id is the CorpID; AI bots (`MODE=aibot`) send `{"encrypt":"…"}` with an empty receive id and a JSON
//!   message inside. The receive id is checked against configuration, never against `ToUserName`.
//!
//! A POST is answered with an empty 200, which WeCom documents as "no passive reply".

use http::Method;
use serde_json::Value;

use super::reply::{PassiveReplyTo, Seal};
use super::settings::{self, param};
use super::{encrypted, xml};
use crate::channels::Verdict;
use crate::channels::{text_at, u64_at, value_at, Channel, ChannelRequest, EdgeResponse};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto::wxbiz::{self, AesKey};
use crate::envelope::Raw;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Message, Postback, Reply,
    Sender, Verification, UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct WeCom;

const NAME: &str = "wecom";
const SCHEME: &str = "wecom-aes";

/// `MODE`: `app` (default) for self-built and third-party apps, `aibot` for AI-bot API-mode callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    App,
    AiBot,
}

struct Settings {
    tokens: Vec<String>,
    keys: Vec<AesKey>,
    receive_id: String,
    mode: Mode,
    skew_s: u64,
}

impl Settings {
    fn load(account: &Account<'_>) -> Result<Settings, Rejection> {
        let mode = match account.field("MODE").as_deref() {
            None | Some("app") => Mode::App,
            Some("aibot") => Mode::AiBot,
            Some(_) => return Err(Rejection::misconfigured(account.binding_name("MODE"))),
        };
        let keys = settings::aes_keys(account)?;
        if keys.is_empty() {
            return Err(Rejection::misconfigured(
                account.binding_name("ENCODING_AES_KEY"),
            ));
        }
        Ok(Settings {
            tokens: account.required_values("TOKEN")?,
            keys,
            // AI bots inside the enterprise encrypt for the empty receive id.
            receive_id: match mode {
                Mode::App => account.required_field("CORP_ID")?,
                Mode::AiBot => String::new(),
            },
            mode,
            skew_s: settings::timestamp_skew_s(account)?,
        })
    }

    /// Checks the signature over `encrypt` and the timestamp window, then `rest` (the part of the envelope not
    /// read before the signature), and decrypts with whichever key fits.
    fn open(
        &self,
        request: &ChannelRequest<'_>,
        encrypt: &str,
        rest: impl FnOnce() -> Result<(), Rejection>,
    ) -> Result<(String, Verification, Seal), Rejection> {
        let msg_signature = request
            .query
            .get("msg_signature")
            .ok_or(Rejection::MissingSignature)?;
        let timestamp = param(request.query, "timestamp")?;
        let nonce = param(request.query, "nonce")?;
        let token_index =
            wxbiz::matching_token(&self.tokens, &[timestamp, nonce, encrypt], msg_signature)
                .ok_or(Rejection::InvalidSignature)?;
        settings::check_timestamp(timestamp, request.now_ms, self.skew_s)?;
        rest()?;
        let (key_index, decrypted) = wxbiz::decrypt_any(&self.keys, encrypt, &self.receive_id)?;
        // One index for both rotations: 0 means the newest token and the newest key.
        let verification = Verification {
            scheme: SCHEME.to_owned(),
            key_index: token_index.max(key_index),
        };
        let (Some(key), Some(token)) = (self.keys.get(key_index), self.tokens.get(token_index))
        else {
            return Err(Rejection::InvalidSignature);
        };
        // A passive reply is sealed with the token and key that opened the message.
        let seal = Seal {
            key: key.clone(),
            token: token.clone(),
            receive_id: self.receive_id.clone(),
        };
        Ok((decrypted.message, verification, seal))
    }
}

impl Channel for WeCom {
    fn name(&self) -> &'static str {
        NAME
    }

    fn account_field(&self) -> &'static str {
        "TOKEN"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("TOKEN", Format::Token { min: 3, max: 32 }).help(
                "企业微信 管理后台 → 应用管理 → アプリ → 接收消息 → API接收 → Token",
                "WeCom admin → Apps → your app → Receive messages → Set API → Token",
            ),
            FieldSpec::secret("ENCODING_AES_KEY", Format::EncodingAesKey).help(
                "同じ画面の EncodingAESKey",
                "EncodingAESKey on the same page",
            ),
            FieldSpec::setting("CORP_ID", Format::Token { min: 8, max: 64 }).help(
                "管理后台 → 我的企业 → 企业ID（アプリ用。AI ボットでは不要）",
                "WeCom admin → My company → Corp ID (apps; not used by AI bots)",
            ),
            FieldSpec::setting(
                "MODE",
                Format::OneOf {
                    values: &["app", "aibot"],
                },
            )
            .help(
                "app（自作アプリ）または aibot（智能机器人）",
                "app (self-built app) or aibot (AI bot)",
            ),
            FieldSpec::secret("CORP_SECRET", Format::Token { min: 8, max: 128 })
                .optional()
                .help(
                    "アプリの Secret（送信に使います）",
                    "The app's Secret (for sending)",
                ),
            FieldSpec::setting(
                "AGENT_ID",
                Format::Number {
                    min: 1,
                    max: 9_999_999_999,
                },
            )
            .help(
                "アプリの AgentId（送信に使います）",
                "The app's AgentId (for sending)",
            ),
            crate::config::field::TIMESTAMP_SKEW_FIELD,
        ];
        FIELDS
    }

    fn default_max_body_bytes(&self) -> Option<usize> {
        Some(settings::MAX_PUSH_BYTES)
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
        let settings = Settings::load(account)?;
        if *request.method == Method::GET {
            // Verify before reading echostr's value, so a missing signature is reported as such.
            request
                .query
                .get("msg_signature")
                .ok_or(Rejection::MissingSignature)?;
            let echostr = param(request.query, "echostr")?;
            let (plaintext, _, _) = settings.open(request, echostr, || Ok(()))?;
            Ok(Verdict::handshake(EdgeResponse::text(plaintext)))
        } else if *request.method == Method::POST {
            receive(request, account, &settings)
        } else {
            Err(Rejection::MethodNotAllowed)
        }
    }
}

#[cfg(feature = "tooling")]
impl Sign for WeCom {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        sign(params)
    }
}

fn receive(
    request: &ChannelRequest<'_>,
    _account: &Account<'_>,
    settings: &Settings,
) -> Result<Verdict, Rejection> {
    // Only the signed value is read before the signature is checked; the rest of the envelope after.
    request
        .query
        .get("msg_signature")
        .ok_or(Rejection::MissingSignature)?;
    let (parts, reply_to) = match settings.mode {
        Mode::App => {
            let envelope = encrypted::find_encrypt(request.body)?;
            let (xml, verification, seal) =
                settings.open(request, &envelope.encrypt, || envelope.check_rest())?;
            let fields = xml::parse(&xml)?;
            let reply_to = PassiveReplyTo::for_message(&fields, Some(seal));
            (
                xml::normalize(fields, verification, request.now_ms),
                reply_to,
            )
        }
        // AI bots answer through their own stream protocol, not a passive reply: no reply call.
        Mode::AiBot => {
            let encrypt = encrypted::find_json_encrypt(request.body)?;
            let (json, verification, _) = settings.open(request, &encrypt, || {
                encrypted::check_json_rest(request.body)
            })?;
            let (message, raw) = crate::channels::json_object_body(json.as_bytes())?;
            (
                normalize_aibot((&message, raw), verification, request.now_ms),
                None,
            )
        }
    };
    let verdict = Verdict::respond(EdgeResponse::text(""), vec![parts]);
    Ok(match reply_to {
        Some(reply_to) => verdict.replying_with(reply_to),
        None => verdict,
    })
}

/// AI-bot messages and events (JSON):
///
/// | msgtype / event.eventtype | type |
/// |---|---|
/// | text, image, mixed, voice, file, video | `message.received` |
/// | event `enter_chat` | `agent.entered` |
/// | event `template_card_event` | `postback` |
/// | event `feedback_event` | `feedback.received` |
/// | anything else (including `stream` refreshes) | `unrecognized` |
fn normalize_aibot(
    (aibot, raw): (&Value, Raw),
    verification: Verification,
    now_ms: u64,
) -> EventParts {
    let msg_type = text_at(aibot, &["msgtype"]).unwrap_or_default();
    let (provider_type, event_type) = if msg_type == "event" {
        let event = text_at(aibot, &["event", "eventtype"]).unwrap_or_default();
        let event_type = match event.as_str() {
            "enter_chat" => "agent.entered",
            "template_card_event" => "postback",
            "feedback_event" => "feedback.received",
            _ => UNRECOGNIZED_TYPE,
        };
        (event, event_type)
    } else {
        let event_type = match msg_type.as_str() {
            "text" | "image" | "mixed" | "voice" | "file" | "video" => "message.received",
            _ => UNRECOGNIZED_TYPE,
        };
        (msg_type.clone(), event_type)
    };
    let user = text_at(aibot, &["from", "userid"]).filter(|id| !id.is_empty());
    let conversation = match (
        text_at(aibot, &["chattype"]).as_deref(),
        text_at(aibot, &["chatid"]),
    ) {
        (Some("group"), Some(chat)) => Some(Conversation {
            id: chat,
            kind: ConversationKind::Group,
        }),
        _ => user.clone().map(|id| Conversation {
            id,
            kind: ConversationKind::Direct,
        }),
    };
    // WeCom: "msgid 本次回调的唯一性标志,开发者需据此进行事件排重" — events carry a msgid too. Scoped by the
    // sender like the Official Account's MsgId (`["msgid", from.userid, msgid]`); without a msgid, the hash of
    // the whole decrypted (authenticated) message.
    let dedupe_key = text_at(aibot, &["msgid"])
        .filter(|id| !id.is_empty())
        .map(|id| serde_json::json!(["msgid", user.clone().unwrap_or_default(), id]).to_string())
        .unwrap_or_else(|| {
            crate::channels::content_hash_key(&serde_json::to_vec(aibot).unwrap_or_default())
        });
    let time_ms = u64_at(aibot, &["create_time"])
        .and_then(|s| s.checked_mul(1000))
        .unwrap_or(now_ms);
    let message = (event_type == "message.received").then(|| aibot_message(&msg_type, aibot));
    let postback = value_at(aibot, &["event", "template_card_event"]).and_then(|card| {
        Some(Postback {
            data: text_at(card, &["event_key"])?,
            params: Some(card.clone()),
        })
    });
    let data = EventData {
        conversation,
        sender: user.map(|id| Sender { id, name: None }),
        message,
        postback,
        // The bot answers a message by POSTing to its response_url.
        reply: text_at(aibot, &["response_url"])
            .filter(|url| !url.is_empty())
            .map(|token| Reply { token }),
        ..EventData::new(provider_type, verification, raw)
    };
    EventParts {
        dedupe_key,
        event_type: event_type.to_owned(),
        time_ms,
        data,
    }
}

fn aibot_message(msg_type: &str, raw: &Value) -> Message {
    let mut message = Message {
        id: text_at(raw, &["msgid"]),
        kind: msg_type.to_owned(),
        ..Message::default()
    };
    let url_attachment = |kind: &str, item: &Value| Attachment {
        kind: kind.to_owned(),
        url: text_at(item, &[kind, "url"]),
        ..Attachment::default()
    };
    match msg_type {
        "text" => message.text = text_at(raw, &["text", "content"]),
        "voice" => {
            // Voice arrives already transcribed.
            message.kind = "audio".to_owned();
            message.text = text_at(raw, &["voice", "content"]);
        }
        "image" | "file" | "video" => message.attachments.push(url_attachment(msg_type, raw)),
        "mixed" => {
            let items = value_at(raw, &["mixed", "msg_item"])
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let texts: Vec<String> = items
                .iter()
                .filter_map(|item| text_at(item, &["text", "content"]))
                .collect();
            if !texts.is_empty() {
                message.text = Some(texts.join("\n"));
            }
            message.attachments = items
                .iter()
                .filter(|item| text_at(item, &["msgtype"]).as_deref() == Some("image"))
                .map(|item| url_attachment("image", item))
                .collect();
        }
        _ => {}
    }
    message
}

/// `sekisho sign wecom`: options `token`, `aes-key`, `corp-id` (not for `mode=aibot`), `mode` (app|aibot),
/// `timestamp`, `nonce`, `random`, `method` (POST|GET), `echostr` (the plaintext the GET must echo),
/// `agent-id` (default: the body's AgentID).
#[cfg(feature = "tooling")]
fn sign(params: &SignParams) -> Result<SignedRequest, ToolingError> {
    let token = settings::sign_token(params)?;
    let key = settings::sign_key(params)?;
    let defaults = settings::sign_defaults(params)?;
    let aibot = match params.option("mode").unwrap_or("app") {
        "app" => false,
        "aibot" => true,
        _ => {
            return Err(ToolingError::InvalidOption {
                option: "mode",
                why: "must be app or aibot",
            })
        }
    };
    let receive_id = if aibot {
        ""
    } else {
        params.required("corp-id")?
    };
    let get = match params
        .option("method")
        .unwrap_or("POST")
        .to_ascii_uppercase()
        .as_str()
    {
        "GET" => true,
        "POST" => false,
        _ => {
            return Err(ToolingError::InvalidOption {
                option: "method",
                why: "must be GET or POST",
            })
        }
    };
    let plaintext = if get {
        defaults.echo.as_bytes()
    } else {
        params.body.as_slice()
    };
    let encrypt = wxbiz::encrypt(&key, &defaults.random, plaintext, receive_id).map_err(|_| {
        ToolingError::InvalidOption {
            option: "body",
            why: "is too long",
        }
    })?;
    let msg_signature =
        wxbiz::signature_hex(&[token, &defaults.timestamp, &defaults.nonce, &encrypt]);
    let mut query = vec![
        ("msg_signature".to_owned(), msg_signature),
        ("timestamp".to_owned(), defaults.timestamp.clone()),
        ("nonce".to_owned(), defaults.nonce.clone()),
    ];
    if get {
        query.push(("echostr".to_owned(), encrypt));
        return Ok(SignedRequest {
            method: Method::GET,
            extra_path: Vec::new(),
            query,
            headers: Vec::new(),
            body: Vec::new(),
        });
    }
    let (content_type, body) = if aibot {
        (
            "application/json",
            serde_json::json!({ "encrypt": encrypt }).to_string(),
        )
    } else {
        let agent_id = params.option("agent-id").map(str::to_owned).or_else(|| {
            let fields = Value::Object(xml::parse(std::str::from_utf8(&params.body).ok()?).ok()?);
            xml::text(&fields, "AgentID")
        });
        let agent = agent_id
            .map(|id| format!("<AgentID><![CDATA[{id}]]></AgentID>"))
            .unwrap_or_default();
        ("text/xml", format!("<xml><ToUserName><![CDATA[{receive_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>{agent}</xml>"))
    };
    Ok(SignedRequest {
        method: Method::POST,
        extra_path: Vec::new(),
        query,
        headers: vec![("content-type".to_owned(), content_type.to_owned())],
        body: body.into_bytes(),
    })
}

#[cfg(test)]
mod tests;
