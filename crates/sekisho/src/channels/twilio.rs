//! Twilio Programmable Messaging: inbound SMS, MMS and WhatsApp messages, and message status callbacks.
//!
//! Twilio posts form-encoded parameters and signs them with the account's auth token (`AUTH_TOKEN`, several
//! values for rotation, newest first): `X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + for each
//! parameter name in byte order, for each of its distinct values in byte order: name + value))`, the URL being
//! the one Twilio called, query included. Like Twilio's own validators (twilio-node, twilio-python,
//! twilio-php), the URL is accepted without its port and with it (`:443`/`:80` added when absent). A JSON body
//! is signed differently: Twilio adds `bodySHA256=<hex SHA-256 of the body>` to the query and signs the URL
//! alone; the body must then hash to that value. Behind a proxy that rewrites the host, `WEBHOOK_URL` names the
//! public URL (scheme, host, path) that Twilio calls; the query is always the one received.
//!
//! | request | envelope `type` | de-duplication key |
//! |---|---|---|
//! | inbound message (`MessageSid`, no `MessageStatus` other than `received`) | `message.received`, or `postback` with a WhatsApp `ButtonPayload` | `MessageSid` |
//! | status callback (`MessageStatus`) | `message.sent` / `message.delivered` / `message.read` / `message.failed` (`failed`, `undelivered`) / `message.status` (any other) | `MessageSid` + `:` + `MessageStatus` |
//! | any other signed form, or a JSON body | `unrecognized` | SHA-256 of the signed parameters / of the body |
//!
//! Form requests are answered with empty TwiML (`<Response></Response>`, `text/xml`): Twilio reads the answer
//! to an inbound message as instructions, and an empty `Response` means "no reply". JSON requests get
//! `{"accepted":1}`.

mod signature;

#[cfg(test)]
use http::Method;
use serde_json::Value;

use self::signature::{body_matches, signed_url, verify, Params};

use super::Verdict;
use super::{Channel, ChannelRequest, EdgeResponse};
use crate::config::field::{FieldSpec, Format};
use crate::config::Account;
#[cfg(feature = "tooling")]
use crate::crypto;
use crate::envelope::Raw;
use crate::envelope::{
    Attachment, Conversation, ConversationKind, EventData, EventParts, Location, Message, Postback,
    Sender, Verification, UNRECOGNIZED_TYPE,
};
#[cfg(feature = "tooling")]
use crate::tooling::{Sign, SignParams, SignedRequest, ToolingError};
use crate::Rejection;

pub struct Twilio;

const SIGNATURE_HEADER: &str = "x-twilio-signature";
const AUTH_TOKEN: &str = "AUTH_TOKEN";
const WEBHOOK_URL: &str = "WEBHOOK_URL";
/// The query parameter Twilio adds for JSON bodies: the lowercase hex SHA-256 of the body.
const BODY_SHA256: &str = "bodySHA256";
const SCHEME: &str = "twilio-hmac-sha1";
/// Twilio's messaging requests are a few kilobytes (a body of at most 1600 characters, up to ten media URLs).
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";
/// A status Twilio reports for inbound messages; with it a request is still the inbound message itself.
const INBOUND_STATUS: &str = "received";

impl Channel for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn account_field(&self) -> &'static str {
        AUTH_TOKEN
    }

    fn fields(&self) -> &'static [FieldSpec] {
        const FIELDS: &[FieldSpec] = &[
            FieldSpec::secret("AUTH_TOKEN", Format::Hex { len: 32 }).help(
                "Twilio Console → Account Info → Auth Token",
                "Twilio Console → Account Info → Auth Token",
            ),
            FieldSpec::setting("WEBHOOK_URL", Format::Url).help(
                "Twilio が呼ぶ URL（プロキシが URL を変える場合のみ）",
                "The URL Twilio calls (only when a proxy changes it)",
            ),
            FieldSpec::setting("ACCOUNT_SID", Format::Token { min: 34, max: 34 }).help(
                "Twilio Console → Account Info → Account SID（AC…、送信に使います）",
                "Twilio Console → Account Info → Account SID (AC…, for sending)",
            ),
            FieldSpec::setting("FROM", Format::Token { min: 3, max: 64 }).help(
                "送信元：Twilio の電話番号（+81…、WhatsApp は whatsapp:+…）か Messaging Service SID（MG…）。Console → Phone Numbers / Messaging → Services",
                "Sender: your Twilio number (+1…; whatsapp:+… for WhatsApp) or a Messaging Service SID (MG…). Console → Phone Numbers / Messaging → Services",
            ),
        ];
        FIELDS
    }

    fn default_max_body_bytes(&self) -> Option<usize> {
        Some(DEFAULT_MAX_BODY_BYTES)
    }

    fn handle(
        &self,
        request: &ChannelRequest<'_>,
        account: &Account<'_>,
    ) -> Result<Verdict, Rejection> {
        let tokens = account.required_values(AUTH_TOKEN)?;
        let url = signed_url(request, account)?;
        let signature = request
            .header(SIGNATURE_HEADER)
            .ok_or(Rejection::MissingSignature)?;
        let verification = |key_index| Verification {
            scheme: SCHEME.to_owned(),
            key_index,
        };
        match request.query.get(BODY_SHA256) {
            Some(body_sha256) => {
                let key_index = verify(&tokens, &url, &[], signature)?;
                if !body_matches(body_sha256, request.body) {
                    return Err(Rejection::InvalidSignature);
                }
                let (body, raw) = super::json_body(request.body, "JSON")?;
                let parts = normalize_json(
                    (&body, raw),
                    request.body,
                    verification(key_index),
                    request.now_ms,
                );
                Ok(Verdict::accepted(vec![parts]))
            }
            None => {
                let params = Params::parse(request.body);
                let key_index = verify(&tokens, &url, &params.signed_suffix(), signature)?;
                let parts = normalize(&params, verification(key_index), request.now_ms);
                Ok(Verdict::respond(twiml(EMPTY_TWIML), vec![parts]))
            }
        }
    }
}

#[cfg(feature = "tooling")]
impl Sign for Twilio {
    /// `--secret` is the auth token; `--url` the URL Twilio calls, exactly (scheme, host, port, path, query: for
    /// the gateway itself `http://127.0.0.1:8787/twilio/<account>`, or the account's `WEBHOOK_URL` with the
    /// query). A form body (`Body=Hello&From=%2B81…`) is signed with its parameters; a JSON body (or
    /// `--content-type application/json`) the way Twilio signs JSON, with `bodySHA256` added to the query.
    fn sign(&self, params: &SignParams) -> Result<SignedRequest, ToolingError> {
        let token = params.required("secret")?;
        let url = params.required("url")?;
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(ToolingError::InvalidOption {
                option: "url",
                why: "not an http:// or https:// URL",
            });
        }
        let content_type = params.option("content-type").unwrap_or(
            match params.body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{' | b'[') => "application/json",
                _ => super::form::FORM_CONTENT_TYPE,
            },
        );
        let json = !super::form::is_form(Some(content_type));
        let (tag, query) = if json {
            if url.contains('?') {
                return Err(ToolingError::InvalidOption {
                    option: "url",
                    why: "with a JSON body the URL takes no query here (bodySHA256 is appended with `?`)",
                });
            }
            let digest = crypto::hex_encode(&crypto::sha256(&[&params.body]));
            let signed = format!("{url}?{BODY_SHA256}={digest}");
            let tag = crypto::hmac_sha1(token.as_bytes(), &[signed.as_bytes()]);
            (tag, vec![(BODY_SHA256.to_owned(), digest)])
        } else {
            let suffix = Params::parse(&params.body).signed_suffix();
            (
                crypto::hmac_sha1(token.as_bytes(), &[url.as_bytes(), &suffix]),
                Vec::new(),
            )
        };
        let mut request = SignedRequest::post(
            vec![
                (SIGNATURE_HEADER.to_owned(), crypto::base64_encode(&tag)),
                ("content-type".to_owned(), content_type.to_owned()),
            ],
            params.body.clone(),
        );
        request.query = query;
        Ok(request)
    }
}

fn twiml(body: &str) -> EdgeResponse {
    EdgeResponse {
        status: 200,
        content_type: "text/xml",
        body: body.as_bytes().to_vec(),
    }
}

/// One signed form request → its event: an inbound message, a status callback, or anything else Twilio posts.
fn normalize(params: &Params, verification: Verification, received_ms: u64) -> EventParts {
    let message_sid = params.one("MessageSid");
    match (message_sid, params.one("MessageStatus")) {
        (Some(sid), Some(status)) if status != INBOUND_STATUS => {
            status_callback(params, sid, status, verification, received_ms)
        }
        (Some(sid), _) => inbound_message(params, sid, verification, received_ms),
        (None, _) => EventParts {
            dedupe_key: super::content_hash_key(&params.signed_suffix()),
            event_type: UNRECOGNIZED_TYPE.to_owned(),
            time_ms: received_ms,
            data: event_data("unknown", verification, &params.to_json()),
        },
    }
}

/// Twilio posts a form, not JSON: `data.raw` is the JSON rendering of the signed parameters.
fn event_data(provider_type: &str, verification: Verification, params: &Value) -> EventData {
    EventData::new(provider_type, verification, Raw::rendered(params))
}

/// The user's address (`+81…` for SMS, `whatsapp:+81…` for WhatsApp, kept as Twilio gives it so that it can be
/// used as `To` of a reply) is the conversation.
fn direct(address: Option<&str>) -> Option<Conversation> {
    address.map(|id| Conversation {
        id: id.to_owned(),
        kind: ConversationKind::Direct,
    })
}

/// An SMS, MMS or WhatsApp message to one of the account's numbers.
fn inbound_message(
    params: &Params,
    sid: &str,
    verification: Verification,
    received_ms: u64,
) -> EventParts {
    let from = params.one("From");
    let postback = params.one("ButtonPayload").map(|payload| Postback {
        data: payload.to_owned(),
        params: params
            .one("ButtonText")
            .map(|text| serde_json::json!({ "text": text })),
    });
    let event_type = if postback.is_some() {
        "postback"
    } else {
        "message.received"
    };
    let mut data = event_data(INBOUND_STATUS, verification, &params.to_json());
    data.conversation = direct(from);
    data.sender = from.map(|id| Sender {
        id: id.to_owned(),
        name: params.one("ProfileName").map(str::to_owned),
    });
    data.message = Some(message_content(params, sid, postback.is_some()));
    data.postback = postback;
    EventParts {
        dedupe_key: sid.to_owned(),
        event_type: event_type.to_owned(),
        time_ms: received_ms,
        data,
    }
}

/// `kind`: `location` (WhatsApp `Latitude`/`Longitude`), `button` (a WhatsApp quick reply), `text` when there is a
/// `Body`, else the first attachment's kind, else WhatsApp's `MessageType`, else `text`.
fn message_content(params: &Params, sid: &str, is_button: bool) -> Message {
    let text = params.one("Body").map(str::to_owned);
    let attachments = attachments(params);
    let location = location(params);
    let kind = if location.is_some() {
        "location".to_owned()
    } else if is_button {
        "button".to_owned()
    } else if text.is_some() {
        "text".to_owned()
    } else if let Some(first) = attachments.first() {
        first.kind.clone()
    } else {
        params.one("MessageType").unwrap_or("text").to_owned()
    };
    let text = text.or_else(|| {
        let place = location.as_ref()?;
        place.title.clone().or_else(|| place.address.clone())
    });
    Message {
        id: Some(sid.to_owned()),
        kind,
        text: text.or_else(|| params.one("ButtonText").map(str::to_owned)),
        attachments,
        location,
        sticker: None,
    }
}

/// `MediaUrl{N}` with `MediaContentType{N}` for N below `NumMedia`. The URLs are Twilio's (fetching them may need
/// the account's credentials); `id` is the media SID (`ME…`), the URL's last segment.
fn attachments(params: &Params) -> Vec<Attachment> {
    let count = params
        .one("NumMedia")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0)
        .min(params.len());
    (0..count)
        .filter_map(|n| {
            let url = params.one(&format!("MediaUrl{n}"))?;
            let content_type = params.one(&format!("MediaContentType{n}"));
            let kind = match content_type.and_then(|mime| mime.split('/').next()) {
                Some("image") => "image",
                Some("video") => "video",
                Some("audio") => "audio",
                _ => "file",
            };
            Some(Attachment {
                kind: kind.to_owned(),
                id: url
                    .rsplit('/')
                    .next()
                    .filter(|segment| segment.starts_with("ME"))
                    .map(str::to_owned),
                url: Some(url.to_owned()),
                content_type: content_type.map(str::to_owned),
                ..Attachment::default()
            })
        })
        .collect()
}

/// A WhatsApp location: `Latitude` and `Longitude` (finite decimal numbers), `Label` and `Address` when named.
fn location(params: &Params) -> Option<Location> {
    let coordinate = |name| {
        params
            .one(name)
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|value| value.is_finite())
    };
    Some(Location {
        latitude: coordinate("Latitude")?,
        longitude: coordinate("Longitude")?,
        title: params.one("Label").map(str::to_owned),
        address: params.one("Address").map(str::to_owned),
    })
}

/// A status callback of a message the account sent: each status is its own event.
fn status_callback(
    params: &Params,
    sid: &str,
    status: &str,
    verification: Verification,
    received_ms: u64,
) -> EventParts {
    let event_type = match status {
        "sent" => "message.sent",
        "delivered" => "message.delivered",
        "read" => "message.read",
        "failed" | "undelivered" => "message.failed",
        // queued, accepted, scheduled, sending, canceled, partially_delivered, and any newer one.
        _ => "message.status",
    };
    let mut data = event_data(status, verification, &params.to_json());
    // The recipient is the user the message went to.
    data.conversation = direct(params.one("To"));
    data.message = Some(Message {
        id: Some(sid.to_owned()),
        // A status callback does not say what kind of message it is about.
        kind: "unknown".to_owned(),
        ..Message::default()
    });
    EventParts {
        dedupe_key: format!("{sid}:{status}"),
        event_type: event_type.to_owned(),
        time_ms: received_ms,
        data,
    }
}

/// A JSON body (signed through `bodySHA256`): forwarded whole as `unrecognized`, `provider_type` = its `type`
/// (e.g. a CloudEvents type) when it names one.
fn normalize_json(
    (body, raw): (&Value, Raw),
    raw_body: &[u8],
    verification: Verification,
    received_ms: u64,
) -> EventParts {
    let provider_type = body
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("json")
        .to_owned();
    EventParts {
        dedupe_key: super::content_hash_key(raw_body),
        event_type: UNRECOGNIZED_TYPE.to_owned(),
        time_ms: received_ms,
        data: EventData::new(provider_type, verification, raw),
    }
}

#[cfg(test)]
mod tests;
