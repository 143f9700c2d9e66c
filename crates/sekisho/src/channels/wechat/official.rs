//! WeChat Official Account (公众号) server messages.
//!
//! - `GET ?signature&timestamp&nonce&echostr`: `signature` = hex(sha1(sort(token, timestamp, nonce))); the
//!   `echostr` is answered verbatim — the Official Account never encrypts it, even in safe mode.
//! - `POST ?signature&timestamp&nonce&openid&encrypt_type=aes&msg_signature=…` (compatible and safe mode):
//!   `msg_signature` covers the `<Encrypt>` element, which is found without parsing the rest of the body
//!   ([`encrypted`](super::encrypted)), verified, then decrypted with [`wxbiz`] and must carry the configured
//!   AppID. Only the decrypted message counts; compatible mode's plaintext copy is ignored.
//! - **The mode follows configuration, not the request.** With an `ENCODING_AES_KEY` every POST must be
//!   encrypted: one without `msg_signature` is refused as `encryption_required`, because the plaintext
//!   `signature` covers only token, timestamp and nonce — which WeChat puts in every URL, handshakes included.
//! - Without a key (plaintext mode) the body is not authenticated at all. The signed query is then given to the
//!   gateway as a [`ReplayGuard`](crate::channels::ReplayGuard), so that it is accepted again only with the same body
//!   (handshakes included, whose body is empty).
//!
//! Answered `success` at once (WeChat retries 3 times after 5 s otherwise); events are forwarded afterwards.

use http::Method;

use super::reply::{PassiveReplyTo, Seal};
use super::settings::{self, param};
use super::{encrypted, xml};
use crate::channels::Verdict;
use crate::channels::{Channel, ChannelRequest, EdgeResponse, ReplayGuard};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
use crate::crypto::wxbiz::{self, AesKey};
use crate::envelope::Verification;
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct WeChat;

const NAME: &str = "wechat";
const SCHEME_PLAIN: &str = "wechat-sha1";
const SCHEME_AES: &str = "wechat-aes";

struct Settings {
    tokens: Vec<String>,
    keys: Vec<AesKey>,
    skew_s: u64,
}

impl Channel for WeChat {
    fn name(&self) -> &'static str {
        NAME
    }

    fn account_field(&self) -> &'static str {
        "TOKEN"
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("TOKEN", Format::Token { min: 3, max: 32 }).help(
                "公众号 管理画面 → 开发 → 基本配置 → 服务器配置 → Token",
                "WeChat admin console → Development → Basic configuration → Server → Token",
            ),
            FieldSpec::setting("APP_ID", Format::Token { min: 8, max: 64 })
                .required()
                .help(
                    "开发 → 基本配置 → 开发者ID(AppID)",
                    "Development → Basic configuration → Developer ID (AppID)",
                ),
            FieldSpec::secret("ENCODING_AES_KEY", Format::EncodingAesKey)
                .optional()
                .help(
                    "开发 → 基本配置 → 服务器配置 → 消息加解密密钥 (EncodingAESKey)；安全模式で必要",
                    "Development → Basic configuration → Server → EncodingAESKey (for safe mode)",
                ),
            FieldSpec::secret("APP_SECRET", Format::Token { min: 8, max: 64 })
                .optional()
                .help(
                    "开发 → 基本配置 → 开发者密码(AppSecret)（送信に使います）",
                    "Development → Basic configuration → AppSecret (for sending)",
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
        let settings = Settings {
            tokens: account.required_values("TOKEN")?,
            keys: settings::aes_keys(account)?,
            skew_s: settings::timestamp_skew_s(account)?,
        };
        if *request.method == Method::GET {
            handshake(request, &settings)
        } else if *request.method == Method::POST {
            receive(request, account, &settings)
        } else {
            Err(Rejection::MethodNotAllowed)
        }
    }
}

#[cfg(feature = "tooling")]
impl Sign for WeChat {
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        sign(params)
    }
}

/// A verified plaintext `signature` over token, timestamp and nonce; in plaintext mode also the guard that
/// binds this query to the body it came with.
fn verify_plain(
    request: &ChannelRequest<'_>,
    settings: &Settings,
) -> Result<(usize, Option<ReplayGuard>), Rejection> {
    let signature = request
        .query
        .get("signature")
        .ok_or(Rejection::MissingSignature)?;
    let timestamp = param(request.query, "timestamp")?;
    let nonce = param(request.query, "nonce")?;
    let key_index = wxbiz::matching_token(&settings.tokens, &[timestamp, nonce], signature)
        .ok_or(Rejection::InvalidSignature)?;
    settings::check_timestamp(timestamp, request.now_ms, settings.skew_s)?;
    let guard = if settings.keys.is_empty() {
        Some(settings::query_replay_guard(
            timestamp,
            nonce,
            signature,
            request.body,
            settings.skew_s,
        )?)
    } else {
        // In safe and compatible mode this signature authorizes nothing but the echo.
        None
    };
    Ok((key_index, guard))
}

fn handshake(request: &ChannelRequest<'_>, settings: &Settings) -> Result<Verdict, Rejection> {
    request
        .query
        .get("signature")
        .ok_or(Rejection::MissingSignature)?;
    let echostr = param(request.query, "echostr")?;
    let (_, replay_guard) = verify_plain(request, settings)?;
    Ok(Verdict::handshake(EdgeResponse::text(echostr)).guarded_by(replay_guard))
}

fn receive(
    request: &ChannelRequest<'_>,
    account: &Account<'_>,
    settings: &Settings,
) -> Result<Verdict, Rejection> {
    let declared_aes = request
        .query
        .get("encrypt_type")
        .is_some_and(|t| t.eq_ignore_ascii_case("aes"));
    let (xml, verification, replay_guard, seal) = if !settings.keys.is_empty() {
        if request.query.get("msg_signature").is_none() && !declared_aes {
            return Err(Rejection::EncryptionRequired);
        }
        let (xml, verification, seal) = decrypt(request, account, settings)?;
        (xml, verification, None, Some(seal))
    } else if declared_aes {
        // WeChat encrypts, but the account has no key to decrypt with: the admin has to add it — said only
        // to a request that carries WeChat's valid plaintext `signature`, so that an unsigned one cannot
        // raise the alarm (it gets 401 like any other).
        request
            .query
            .get("signature")
            .ok_or(Rejection::MissingSignature)?;
        verify_plain(request, settings)?;
        return Err(Rejection::misconfigured(
            account.binding_name("ENCODING_AES_KEY"),
        ));
    } else {
        let (key_index, guard) = verify_plain(request, settings)?;
        let xml = std::str::from_utf8(request.body)
            .map_err(|_| Rejection::MalformedBody { expected: "XML" })?;
        let verification = Verification {
            scheme: SCHEME_PLAIN.to_owned(),
            key_index,
        };
        (xml.to_owned(), verification, guard, None)
    };
    let fields = xml::parse(&xml)?;
    let reply_to = PassiveReplyTo::for_message(&fields, seal);
    let parts = xml::normalize(fields, verification, request.now_ms);
    let verdict =
        Verdict::respond(EdgeResponse::text("success"), vec![parts]).guarded_by(replay_guard);
    Ok(match reply_to {
        Some(reply_to) => verdict.replying_with(reply_to),
        None => verdict,
    })
}

/// Compatible and safe mode: only `<Encrypt>` is read before `msg_signature` is checked over it; the rest of
/// the envelope is checked afterwards and its plaintext fields (compatible mode) are never used. Also returns
/// the token and key that opened the message, which seal a passive reply to it.
fn decrypt(
    request: &ChannelRequest<'_>,
    account: &Account<'_>,
    settings: &Settings,
) -> Result<(String, Verification, Seal), Rejection> {
    let msg_signature = request
        .query
        .get("msg_signature")
        .ok_or(Rejection::MissingSignature)?;
    let timestamp = param(request.query, "timestamp")?;
    let nonce = param(request.query, "nonce")?;
    let app_id = account.required_field("APP_ID")?;
    let envelope = encrypted::find_encrypt(request.body)?;
    let encrypt = envelope.encrypt.as_ref();
    let token_index = wxbiz::matching_token(
        &settings.tokens,
        &[timestamp, nonce, encrypt],
        msg_signature,
    )
    .ok_or(Rejection::InvalidSignature)?;
    settings::check_timestamp(timestamp, request.now_ms, settings.skew_s)?;
    envelope.check_rest()?;
    let (key_index, decrypted) = wxbiz::decrypt_any(&settings.keys, encrypt, &app_id)?;
    // One index for both rotations: 0 means the newest token and the newest key; anything else names the
    // older value still in use.
    let verification = Verification {
        scheme: SCHEME_AES.to_owned(),
        key_index: token_index.max(key_index),
    };
    let (Some(key), Some(token)) = (
        settings.keys.get(key_index),
        settings.tokens.get(token_index),
    ) else {
        return Err(Rejection::InvalidSignature);
    };
    let seal = Seal {
        key: key.clone(),
        token: token.clone(),
        receive_id: app_id,
    };
    Ok((decrypted.message, verification, seal))
}

/// `sekisho sign wechat`: options `token`, `timestamp`, `nonce`, `method` (POST|GET), `echostr` (GET),
/// `mode` (plain|compat|safe; safe when `aes-key` is given), `aes-key`, `app-id`, `random`, `openid`.
#[cfg(feature = "tooling")]
fn sign(params: &SignParams) -> Result<SignedRequest, ToolingError> {
    let token = settings::sign_token(params)?;
    let defaults = settings::sign_defaults(params)?;
    let timestamp = defaults.timestamp.as_str();
    let nonce = defaults.nonce.as_str();
    let signature = wxbiz::signature_hex(&[token, timestamp, nonce]);
    let mut query = vec![
        ("signature".to_owned(), signature),
        ("timestamp".to_owned(), timestamp.to_owned()),
        ("nonce".to_owned(), nonce.to_owned()),
    ];
    match params
        .option("method")
        .unwrap_or("POST")
        .to_ascii_uppercase()
        .as_str()
    {
        "GET" => {
            query.push(("echostr".to_owned(), defaults.echo.clone()));
            return Ok(SignedRequest {
                method: Method::GET,
                extra_path: Vec::new(),
                query,
                headers: Vec::new(),
                body: Vec::new(),
            });
        }
        "POST" => {}
        _ => {
            return Err(ToolingError::InvalidOption {
                option: "method",
                why: "must be GET or POST",
            })
        }
    }
    let body_text = std::str::from_utf8(&params.body).map_err(|_| ToolingError::InvalidOption {
        option: "body",
        why: "must be UTF-8 XML",
    })?;
    let fields = xml::parse(body_text).ok().map(serde_json::Value::Object);
    let field = |key: &str| {
        fields
            .as_ref()
            .and_then(|f| xml::text(f, key))
            .unwrap_or_default()
    };
    let openid = params
        .option("openid")
        .map_or_else(|| field("FromUserName"), str::to_owned);
    if !openid.is_empty() {
        query.push(("openid".to_owned(), openid));
    }
    let default_mode = if params.option("aes-key").is_some() {
        "safe"
    } else {
        "plain"
    };
    let body =
        match params.option("mode").unwrap_or(default_mode) {
            "plain" => params.body.clone(),
            mode @ ("compat" | "safe") => {
                let key = settings::sign_key(params)?;
                let app_id = params.required("app-id")?;
                let encrypt = wxbiz::encrypt(&key, &defaults.random, &params.body, app_id)
                    .map_err(|_| ToolingError::InvalidOption {
                        option: "body",
                        why: "is too long",
                    })?;
                let msg_signature = wxbiz::signature_hex(&[token, timestamp, nonce, &encrypt]);
                query.push(("encrypt_type".to_owned(), "aes".to_owned()));
                query.push(("msg_signature".to_owned(), msg_signature));
                let element = format!("<Encrypt><![CDATA[{encrypt}]]></Encrypt>");
                if mode == "compat" {
                    let end = body_text
                        .rfind("</xml>")
                        .ok_or(ToolingError::InvalidOption {
                            option: "mode",
                            why: "compat needs a body that ends with </xml>",
                        })?;
                    let (head, tail) = body_text.split_at(end);
                    format!("{head}{element}{tail}").into_bytes()
                } else {
                    format!(
                        "<xml><ToUserName><![CDATA[{}]]></ToUserName>{element}</xml>",
                        field("ToUserName")
                    )
                    .into_bytes()
                }
            }
            _ => {
                return Err(ToolingError::InvalidOption {
                    option: "mode",
                    why: "must be plain, compat or safe",
                })
            }
        };
    Ok(SignedRequest {
        method: Method::POST,
        extra_path: Vec::new(),
        query,
        headers: vec![("content-type".to_owned(), "text/xml".to_owned())],
        body,
    })
}

#[cfg(test)]
mod tests;
