//! `sekisho send-message <channel> <URL> --secret whsec_… (--to-conversation ID | --to-user ID)
//! (--text T | --raw JSON) [--in-reply-to EVENT_ID] [--id WEBHOOK_ID]`: one send, signed with Standard
//! Webhooks as a backend signs it, POSTed to `URL` (the gateway's `…/send/<channel>/<account>`). The
//! `webhook-id` is the idempotency key: give the same `--id` again and the gateway sends nothing twice.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sekisho::forward::SigningKeys;
use serde_json::{json, Value};

pub const USAGE: &str = "sekisho send-message <channel> <URL> --secret whsec_... (--to-conversation ID | --to-user ID) \
(--text T | --raw JSON) [--in-reply-to EVENT_ID] [--id WEBHOOK_ID]
  URL is the gateway's send endpoint, https://gateway/send/<channel>/<account>";

/// The signed request, ready to POST.
#[derive(Debug)]
pub struct SignedSend {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// Builds the body of the send contract and signs it at `now_s` with `webhook_id`.
pub fn build(
    channel: &str,
    url: &str,
    options: &BTreeMap<String, String>,
    webhook_id: &str,
    now_s: u64,
) -> Result<SignedSend, String> {
    let path = url.split('?').next().unwrap_or_default();
    if !path.contains(&format!("/send/{channel}/")) {
        return Err(format!(
            "the URL must be the gateway's /send/{channel}/<account>"
        ));
    }
    let secrets = options
        .get("secret")
        .ok_or("send-message needs --secret (BACKEND_SIGNING_SECRET)")?;
    let keys =
        SigningKeys::parse(&sekisho::config::split_values(secrets)).map_err(|e| e.to_string())?;
    let to = match (options.get("to-conversation"), options.get("to-user")) {
        (Some(id), None) => json!({ "conversation": id }),
        (None, Some(id)) => json!({ "user": id }),
        _ => return Err("give exactly one of --to-conversation and --to-user".into()),
    };
    let message = match (options.get("text"), options.get("raw")) {
        (Some(text), None) => json!({ "text": text }),
        (None, Some(raw)) => {
            let raw: Value =
                serde_json::from_str(raw).map_err(|e| format!("--raw is not JSON: {e}"))?;
            json!({ "raw": raw })
        }
        _ => return Err("give exactly one of --text and --raw".into()),
    };
    let mut body = json!({ "to": to, "message": message });
    if let (Some(reply_to), Some(object)) = (options.get("in-reply-to"), body.as_object_mut()) {
        object.insert("in_reply_to".into(), Value::from(reply_to.as_str()));
    }
    let body = body.to_string();
    Ok(SignedSend {
        url: url.to_owned(),
        headers: vec![
            ("content-type", "application/json".to_owned()),
            ("webhook-id", webhook_id.to_owned()),
            ("webhook-timestamp", now_s.to_string()),
            (
                "webhook-signature",
                keys.signature(webhook_id, now_s, body.as_bytes()),
            ),
        ],
        body,
    })
}

/// A fresh `webhook-id`: `msg_` and 32 random hex digits.
fn new_webhook_id() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(format!("msg_{}", sekisho::crypto::hex_encode(&bytes)))
}

pub fn run(positional: &[String], options: &BTreeMap<String, String>) -> Result<(), String> {
    let (Some(channel), Some(url)) = (positional.get(1), positional.get(2)) else {
        return Err(USAGE.to_owned());
    };
    let webhook_id = match options.get("id") {
        Some(id) => id.clone(),
        None => new_webhook_id()?,
    };
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let signed = build(channel, url, options, &webhook_id, now_s)?;
    let mut call = ureq::post(&signed.url);
    for (name, value) in &signed.headers {
        call = call.set(name, value);
    }
    let (status, body) = match call.send_string(&signed.body) {
        Ok(response) => (
            response.status(),
            response.into_string().unwrap_or_default(),
        ),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().unwrap_or_default())
        }
        Err(error) => return Err(format!("sending to {}: {error}", signed.url)),
    };
    eprintln!("webhook-id: {webhook_id}");
    println!("{status} {body}");
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("the gateway answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_send_is_the_contract_body_signed_as_the_gateway_verifies_it() {
        let signed = build(
            "line",
            "https://gw.test/send/line/acme",
            &options(&[
                ("secret", SECRET),
                ("to-user", "U1"),
                ("text", "hi"),
                ("in-reply-to", "evt_1"),
            ]),
            "msg_1",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&signed.body).unwrap(),
            json!({"to":{"user":"U1"},"message":{"text":"hi"},"in_reply_to":"evt_1"})
        );
        let header = |name| {
            signed
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
                .clone()
        };
        let keys = SigningKeys::parse(&[SECRET]).unwrap();
        assert_eq!(
            keys.verify(
                "msg_1",
                &header("webhook-timestamp"),
                &header("webhook-signature"),
                signed.body.as_bytes(),
                1_700_000_000
            ),
            Ok(())
        );
    }

    #[test]
    fn options_must_name_one_recipient_and_one_message() {
        let url = "https://gw.test/send/line/acme";
        let run = |pairs: &[(&str, &str)]| build("line", url, &options(pairs), "m", 0).unwrap_err();
        assert!(run(&[("secret", SECRET), ("text", "x")]).contains("--to-conversation"));
        assert!(run(&[
            ("secret", SECRET),
            ("to-user", "U"),
            ("to-conversation", "C"),
            ("text", "x")
        ])
        .contains("exactly one"));
        assert!(run(&[("secret", SECRET), ("to-user", "U")]).contains("--text"));
        assert!(run(&[("secret", SECRET), ("to-user", "U"), ("raw", "{")]).contains("not JSON"));
        assert!(build("slack", url, &options(&[("secret", SECRET)]), "m", 0)
            .unwrap_err()
            .contains("/send/slack/"));
        let raw = build(
            "line",
            url,
            &options(&[
                ("secret", SECRET),
                ("to-conversation", "C"),
                ("raw", r#"{"type":"sticker"}"#),
            ]),
            "m",
            0,
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&raw.body).unwrap(),
            json!({"to":{"conversation":"C"},"message":{"raw":{"type":"sticker"}}})
        );
    }
}
