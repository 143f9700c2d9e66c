//! WeChat Official Account (公众号) server messages.
//!
//! - `GET ?signature&timestamp&nonce&echostr`: `signature` = hex(sha1(sort(token, timestamp, nonce))); the
//!   `echostr` is answered verbatim — the Official Account never encrypts it, even in safe mode.
//! - `POST ?signature&timestamp&nonce&openid` with an XML body (plaintext mode), or with
//!   `&encrypt_type=aes&msg_signature=…` (compatible and safe mode): `msg_signature` covers the `<Encrypt>`
//!   element too, which is decrypted with [`wxbiz`] and must carry the configured AppID.
//!
//! Answered `success` at once (WeChat retries 3 times after 5 s otherwise); events are forwarded afterwards.

use http::Method;

use super::wxxml::{self, param};
use super::{Channel, ChannelRequest, EdgeResponse, Handled};
use crate::config::Account;
use crate::crypto::wxbiz::{self, AesKey};
use crate::envelope::{Event, Verification};
use crate::tooling::{SignParams, SignedRequest, ToolingError};
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

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Handled, Rejection> {
        request.require_no_extra_path()?;
        let settings = Settings {
            tokens: account.required_values("TOKEN")?,
            keys: wxxml::aes_keys(account)?,
            skew_s: wxxml::timestamp_skew_s(account)?,
        };
        wxxml::check_body_limit(account, request.body)?;
        if *request.method == Method::GET {
            handshake(request, &settings)
        } else if *request.method == Method::POST {
            receive(request, account, &settings)
        } else {
            Err(Rejection::MethodNotAllowed)
        }
    }

    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        sign(params)
    }
}

fn handshake(request: &ChannelRequest<'_>, settings: &Settings) -> Result<Handled, Rejection> {
    let signature = request
        .query
        .get("signature")
        .ok_or(Rejection::MissingSignature)?;
    let timestamp = param(request.query, "timestamp")?;
    let nonce = param(request.query, "nonce")?;
    let echostr = param(request.query, "echostr")?;
    wxbiz::matching_token(&settings.tokens, &[timestamp, nonce], signature)
        .ok_or(Rejection::InvalidSignature)?;
    wxxml::check_timestamp(timestamp, request.now_ms, settings.skew_s)?;
    Ok(Handled {
        response: EdgeResponse::text(echostr),
        events: Vec::new(), replay_guard: None,
    })
}

fn receive(
    request: &ChannelRequest<'_>,
    account: &Account<'_>,
    settings: &Settings,
) -> Result<Handled, Rejection> {
    let encrypted = request
        .query
        .get("encrypt_type")
        .is_some_and(|t| t.eq_ignore_ascii_case("aes"));
    let (xml, verification) = if encrypted {
        decrypt(request, account, settings)?
    } else {
        plaintext(request, settings)?
    };
    let fields = wxxml::parse(&xml)?;
    let event = Event::new(
        NAME,
        account.name,
        wxxml::normalize(fields, verification, request.now_ms),
    );
    Ok(Handled {
        response: EdgeResponse::text("success"),
        events: vec![event], replay_guard: None,
    })
}

/// Plaintext mode: the signature covers only token, timestamp and nonce — not the body.
fn plaintext(
    request: &ChannelRequest<'_>,
    settings: &Settings,
) -> Result<(String, Verification), Rejection> {
    let signature = request
        .query
        .get("signature")
        .ok_or(Rejection::MissingSignature)?;
    let timestamp = param(request.query, "timestamp")?;
    let nonce = param(request.query, "nonce")?;
    let key_index = wxbiz::matching_token(&settings.tokens, &[timestamp, nonce], signature)
        .ok_or(Rejection::InvalidSignature)?;
    wxxml::check_timestamp(timestamp, request.now_ms, settings.skew_s)?;
    let xml = std::str::from_utf8(request.body)
        .map_err(|_| Rejection::MalformedBody { expected: "XML" })?;
    Ok((
        xml.to_owned(),
        Verification {
            scheme: SCHEME_PLAIN.to_owned(),
            key_index,
        },
    ))
}

/// Compatible and safe mode. The signed value is the `<Encrypt>` element's text, so the outer XML has to be
/// parsed before anything can be verified; the plaintext fields of compatible mode are ignored.
fn decrypt(
    request: &ChannelRequest<'_>,
    account: &Account<'_>,
    settings: &Settings,
) -> Result<(String, Verification), Rejection> {
    let msg_signature = request
        .query
        .get("msg_signature")
        .ok_or(Rejection::MissingSignature)?;
    let timestamp = param(request.query, "timestamp")?;
    let nonce = param(request.query, "nonce")?;
    if settings.keys.is_empty() {
        return Err(Rejection::Misconfigured {
            binding: account.binding_name("ENCODING_AES_KEY"),
        });
    }
    let app_id = account.required_field("APP_ID")?;
    let outer = std::str::from_utf8(request.body)
        .map_err(|_| Rejection::MalformedBody { expected: "XML" })?;
    let outer = serde_json::Value::Object(wxxml::parse(outer)?);
    let encrypt = wxxml::text(&outer, "Encrypt").ok_or(Rejection::MissingParameter("Encrypt"))?;
    let token_index = wxbiz::matching_token(
        &settings.tokens,
        &[timestamp, nonce, &encrypt],
        msg_signature,
    )
    .ok_or(Rejection::InvalidSignature)?;
    wxxml::check_timestamp(timestamp, request.now_ms, settings.skew_s)?;
    let (key_index, decrypted) = wxbiz::decrypt_any(&settings.keys, &encrypt, &app_id)?;
    // One index for both rotations: 0 means the newest token and the newest key; anything else names the
    // older value still in use.
    let verification = Verification {
        scheme: SCHEME_AES.to_owned(),
        key_index: token_index.max(key_index),
    };
    Ok((decrypted.message, verification))
}

/// `sekisho sign wechat`: options `token`, `timestamp`, `nonce`, `method` (POST|GET), `echostr` (GET),
/// `mode` (plain|compat|safe; safe when `aes-key` is given), `aes-key`, `app-id`, `random`, `openid`.
fn sign(params: &SignParams) -> Result<SignedRequest, ToolingError> {
    let token = wxxml::sign_token(params)?;
    let defaults = wxxml::sign_defaults(params)?;
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
    let fields = wxxml::parse(body_text).ok().map(serde_json::Value::Object);
    let field = |key: &str| {
        fields
            .as_ref()
            .and_then(|f| wxxml::text(f, key))
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
                let key = wxxml::sign_key(params)?;
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
mod tests {
    use super::*;
    use crate::channels::test_support::{self, DemoRequest};

    use proptest::prelude::*;
    use std::collections::HashMap;

    const OA_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const OFFICIAL_BODY: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>";

    fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("WECHAT_DEMO_{k}"), (*v).to_owned()))
            .collect()
    }

    fn official() -> HashMap<String, String> {
        bindings(&[
            ("TOKEN", "spamtest"),
            ("ENCODING_AES_KEY", OA_KEY),
            ("APP_ID", "wx2c2769f8efd9abc2"),
        ])
    }

    fn run(
        bindings: &HashMap<String, String>,
        method: Method,
        query: &str,
        body: &str,
        now_ms: u64,
    ) -> Result<Handled, Rejection> {
        let demo = DemoRequest::<&str> {
            method,
            extra_path: &[],
            query: Some(query),
            headers: &[],
            body: body.as_bytes(),
            now_ms,
        };
        test_support::run(&WeChat, bindings, demo)
    }

    fn signed_query(request: &SignedRequest) -> String {
        request.query_string().trim_start_matches('?').to_owned()
    }

    #[test]
    fn vector_plain_handshake_echoes_verbatim() {
        let b = bindings(&[("TOKEN", "test")]);
        let query = "signature=f21891de399b4e33a1a93c9a7b8a8fffb5a443ff&timestamp=1410685589&nonce=test&echostr=a+b%2F%3D";
        let handled = run(&b, Method::GET, query, "", 1_410_685_589_000).unwrap();
        assert_eq!(handled.response, EdgeResponse::text("a+b/="));
        assert!(handled.events.is_empty());
        let negative = query.replace("5a443ff", "5a443fe");
        assert_eq!(
            run(&b, Method::GET, &negative, "", 1_410_685_589_000).unwrap_err(),
            Rejection::InvalidSignature
        );
        assert_eq!(
            run(&b, Method::GET, query, "", 1_410_685_589_000 + 301_000).unwrap_err(),
            Rejection::StaleTimestamp
        );
    }

    #[test]
    fn vector_official_sample_in_compatible_and_safe_mode() {
        let query = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
        let now = 1_409_735_669_000;
        let handled = run(&official(), Method::POST, query, OFFICIAL_BODY, now).unwrap();
        assert_eq!(handled.response, EdgeResponse::text("success"));
        let [event] = handled.events.as_slice() else {
            panic!("one event")
        };
        assert_eq!(event.event_type, "message.received");
        assert_eq!(event.time, "2014-09-03T09:14:28.000Z");
        assert_eq!(
            event.data.message.as_ref().unwrap().text.as_deref(),
            Some("abcdteT")
        );
        assert_eq!(
            event.data.sender.as_ref().unwrap().id,
            "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
        );
        assert_eq!(
            event.data.verification,
            Verification {
                scheme: "wechat-aes".into(),
                key_index: 0
            }
        );
        assert_eq!(event.data.raw["MsgId"], "6054768590064713728");
        assert!(
            event.data.raw.get("Encrypt").is_none(),
            "raw is the decrypted message, not the envelope"
        );
        assert_eq!(
            event.id,
            crate::envelope::event_id("wechat", "demo", "6054768590064713728")
        );

        // Safe mode carries only ToUserName and Encrypt; the signature is the same.
        let start = OFFICIAL_BODY.find("<Encrypt>").unwrap();
        let safe = format!(
            "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>{}",
            &OFFICIAL_BODY[start..]
        );
        let safe_event = run(&official(), Method::POST, query, &safe, now)
            .unwrap()
            .events;
        assert_eq!(safe_event, handled.events);

        // The receive id is checked against configuration.
        let mut other = official();
        other.insert("WECHAT_DEMO_APP_ID".into(), "wx0000000000000000".into());
        assert_eq!(
            run(&other, Method::POST, query, OFFICIAL_BODY, now).unwrap_err(),
            Rejection::Decrypt(crate::crypto::DecryptError::ReceiveIdMismatch)
        );
        // The plaintext signature of the same request, without encrypt_type, reads the outer plaintext fields.
        let plain = "signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a&timestamp=1409735669&nonce=1320562132";
        let plain_events = run(&official(), Method::POST, plain, OFFICIAL_BODY, now)
            .unwrap()
            .events;
        assert_eq!(plain_events[0].data.verification.scheme, "wechat-sha1");
        assert_eq!(plain_events[0].id, event.id);
    }

    #[test]
    fn vector_java_sample_decrypts_to_text_that_is_not_xml() {
        let b = bindings(&[
            ("TOKEN", "pamtest"),
            ("ENCODING_AES_KEY", OA_KEY),
            ("APP_ID", "wxb11529c136998cb6"),
        ]);
        let body = "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg==]]></Encrypt></xml>";
        let query = "timestamp=1409304348&nonce=xxxxxx&encrypt_type=aes&msg_signature=82c962d39941aa48552f90ef55aa323dc620cc10";
        assert_eq!(
            run(&b, Method::POST, query, body, 1_409_304_348_000).unwrap_err(),
            Rejection::MalformedBody { expected: "XML" }
        );
    }

    #[test]
    fn key_rotation_reports_the_old_key_and_misconfiguration_is_a_500() {
        let new_key = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        let mut b = official();
        b.insert(
            "WECHAT_DEMO_ENCODING_AES_KEY".into(),
            format!("{new_key}, {OA_KEY}"),
        );
        let query = "timestamp=1409735669&nonce=1320562132&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&encrypt_type=aes";
        let events = run(&b, Method::POST, query, OFFICIAL_BODY, 1_409_735_669_000)
            .unwrap()
            .events;
        assert_eq!(events[0].data.verification.key_index, 1);
        b.insert("WECHAT_DEMO_ENCODING_AES_KEY".into(), "short".into());
        let error = run(&b, Method::POST, query, OFFICIAL_BODY, 1_409_735_669_000).unwrap_err();
        assert_eq!(
            error,
            Rejection::Misconfigured {
                binding: "WECHAT_DEMO_ENCODING_AES_KEY".into()
            }
        );
        assert_eq!(error.status().as_u16(), 500);
        let no_key = bindings(&[("TOKEN", "spamtest"), ("APP_ID", "wx2c2769f8efd9abc2")]);
        assert_eq!(
            run(
                &no_key,
                Method::POST,
                query,
                OFFICIAL_BODY,
                1_409_735_669_000
            )
            .unwrap_err(),
            Rejection::Misconfigured {
                binding: "WECHAT_DEMO_ENCODING_AES_KEY".into()
            }
        );
    }

    #[test]
    fn missing_parts_have_their_own_reasons() {
        let b = official();
        let now = 1_409_735_669_000;
        assert_eq!(
            run(&b, Method::POST, "timestamp=1&nonce=2", "<xml/>", now).unwrap_err(),
            Rejection::MissingSignature
        );
        assert_eq!(
            run(
                &b,
                Method::POST,
                "encrypt_type=aes&timestamp=1&nonce=2&signature=x",
                "<xml/>",
                now
            )
            .unwrap_err(),
            Rejection::MissingSignature
        );
        assert_eq!(
            run(&b, Method::POST, "signature=x&nonce=2", "<xml/>", now).unwrap_err(),
            Rejection::MissingParameter("timestamp")
        );
        assert_eq!(
            run(&b, Method::GET, "signature=x&nonce=2&timestamp=1", "", now).unwrap_err(),
            Rejection::MissingParameter("echostr")
        );
        assert_eq!(
            run(
                &b,
                Method::POST,
                "encrypt_type=aes&msg_signature=x&timestamp=1&nonce=2",
                "<xml><ToUserName>a</ToUserName></xml>",
                now
            )
            .unwrap_err(),
            Rejection::MissingParameter("Encrypt")
        );
        assert_eq!(
            run(&b, Method::PUT, "", "", now).unwrap_err(),
            Rejection::MethodNotAllowed
        );
    }

    fn sign_params(body: &str, options: &[(&str, &str)]) -> SignParams {
        SignParams {
            body: body.as_bytes().to_vec(),
            options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            now_s: 1_409_735_669,
        }
    }

    #[test]
    fn sign_reproduces_the_official_sample_and_round_trips_every_mode() {
        let plaintext = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";
        let base = [
            ("token", "spamtest"),
            ("aes-key", OA_KEY),
            ("app-id", "wx2c2769f8efd9abc2"),
            ("nonce", "1320562132"),
            ("random", "89465c840c5f116f"),
        ];
        let signed = sign(&sign_params(plaintext, &base)).unwrap();
        let query: HashMap<_, _> = signed.query.iter().cloned().collect();
        assert_eq!(
            query["msg_signature"],
            "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
        );
        assert_eq!(
            query["signature"],
            "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a"
        );
        assert_eq!(query["openid"], "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
        for mode in ["plain", "compat", "safe"] {
            let mut options = base.to_vec();
            options.push(("mode", mode));
            let signed = sign(&sign_params(plaintext, &options)).unwrap();
            let body = String::from_utf8(signed.body.clone()).unwrap();
            let handled = run(
                &official(),
                Method::POST,
                &signed_query(&signed),
                &body,
                1_409_735_669_000,
            )
            .unwrap();
            assert_eq!(handled.events[0].data.raw["Content"], "abcdteT", "{mode}");
        }
        let mut get = base.to_vec();
        get.extend([("method", "GET"), ("echostr", "hello+world")]);
        let signed = sign(&sign_params("", &get)).unwrap();
        let handled = run(
            &official(),
            Method::GET,
            &signed_query(&signed),
            "",
            1_409_735_669_000,
        )
        .unwrap();
        assert_eq!(handled.response.body, b"hello+world");
        // Without options the request is still deterministic.
        let a = sign(&sign_params(plaintext, &[("token", "t")])).unwrap();
        assert_eq!(a, sign(&sign_params(plaintext, &[("token", "t")])).unwrap());
        assert_eq!(
            sign(&sign_params(plaintext, &[("token", "t"), ("mode", "odd")])).unwrap_err(),
            ToolingError::InvalidOption {
                option: "mode",
                why: "must be plain, compat or safe"
            }
        );
        assert_eq!(
            sign(&sign_params(plaintext, &[("token", "t"), ("mode", "safe")])).unwrap_err(),
            ToolingError::MissingOption("aes-key")
        );
    }

    proptest! {
        #[test]
        fn handle_never_panics(
            query in "(signature|msg_signature|timestamp|nonce|encrypt_type|echostr)=[a-z0-9%+]{0,12}(&(signature|msg_signature|timestamp|nonce|encrypt_type|echostr)=[a-z0-9%+]{0,12}){0,6}",
            body in ".{0,200}",
            get in any::<bool>(),
        ) {
            let method = if get { Method::GET } else { Method::POST };
            let _ = run(&official(), method, &query, &body, 1_409_735_669_000);
        }

        #[test]
        fn handle_never_panics_on_signed_encrypted_garbage(message in ".{0,300}", random in "[a-z]{16}") {
            // A correctly signed and encrypted request whose plaintext is arbitrary.
            let base = [("token", "spamtest"), ("aes-key", OA_KEY), ("app-id", "wx2c2769f8efd9abc2"), ("random", random.as_str())];
            let mut options: Vec<(&str, &str)> = base.to_vec();
            options.push(("mode", "safe"));
            let signed = sign(&sign_params(&message, &options)).unwrap();
            let body = String::from_utf8(signed.body.clone()).unwrap();
            let _ = run(&official(), Method::POST, &signed_query(&signed), &body, 1_409_735_669_000);
        }
    }
}
