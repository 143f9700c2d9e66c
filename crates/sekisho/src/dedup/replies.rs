//! Replies kept with their event's claim. A signed request can be sent again by anyone who saw it, within its
//! signature's window (a Slack slash command for 5 minutes, a Discord interaction likewise): each copy is a
//! duplicate of an event already accepted, and must not make the backend answer again. The first request's
//! rendered reply is kept in the de-duplication object beside the claim for [`REPLY_KEPT_MS`]; a duplicate gets
//! that reply (a provider retrying because the first answer came late sees what it missed), or the usual answer
//! when none was kept — never a new reply call.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::channels::EdgeResponse;

/// How long a rendered reply is kept: longer than providers retry or sign requests for (Slack's and Discord's
/// timestamps hold 5 minutes; WeChat retries within 15 s; Telegram within minutes).
pub const REPLY_KEPT_MS: u64 = 10 * 60_000;

/// The content types replies are rendered with; a kept reply is answered with one of these.
const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "text/plain; charset=utf-8",
    "application/xml; charset=utf-8",
    "text/xml",
];

/// A rendered reply as the de-duplication object keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptReply {
    pub status: u16,
    pub content_type: String,
    /// The body, base64.
    pub body: String,
    pub at_ms: u64,
}

impl KeptReply {
    pub fn of(response: &EdgeResponse, now_ms: u64) -> KeptReply {
        KeptReply {
            status: response.status,
            content_type: response.content_type.to_owned(),
            body: base64::engine::general_purpose::STANDARD.encode(&response.body),
            at_ms: now_ms,
        }
    }

    fn response(&self) -> Option<EdgeResponse> {
        let content_type = CONTENT_TYPES
            .into_iter()
            .find(|known| *known == self.content_type)?;
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .ok()?;
        Some(EdgeResponse {
            status: self.status,
            content_type,
            body,
        })
    }
}

/// What a request whose event has a reply call does, once its claim is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyStep {
    /// A fresh event: call the backend, then keep what was rendered.
    Call,
    /// A duplicate: answer this, without calling the backend.
    Answer(EdgeResponse),
}

/// For a request with a reply call (it carries a single event) of which `duplicate_events` were already
/// accepted, with the reply kept for it ([`is_duplicate`]: looked up only then): a duplicate never calls; it
/// gets the kept reply while it is young, else `default`.
pub fn reply_step(
    duplicate_events: usize,
    kept: Option<&KeptReply>,
    now_ms: u64,
    default: &EdgeResponse,
) -> ReplyStep {
    if !is_duplicate(duplicate_events) {
        return ReplyStep::Call;
    }
    let young = kept.filter(|kept| now_ms.saturating_sub(kept.at_ms) < REPLY_KEPT_MS);
    ReplyStep::Answer(
        young
            .and_then(KeptReply::response)
            .unwrap_or_else(|| default.clone()),
    )
}

/// Whether the single event of a request with a reply call was already accepted.
pub fn is_duplicate(duplicate_events: usize) -> bool {
    duplicate_events > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_780_000_000_000;

    #[test]
    fn a_duplicate_gets_the_kept_reply_and_never_a_call() {
        let default = EdgeResponse::accepted(1);
        let rendered = EdgeResponse::json(
            200,
            r#"{"response_type":"ephemeral","text":"受け付けました"}"#.to_owned(),
        );
        let kept = KeptReply::of(&rendered, NOW);
        let round_trip: KeptReply =
            serde_json::from_str(&serde_json::to_string(&kept).unwrap()).unwrap();
        assert_eq!(reply_step(0, None, NOW, &default), ReplyStep::Call);
        assert_eq!(
            reply_step(1, Some(&round_trip), NOW + 60_000, &default),
            ReplyStep::Answer(rendered.clone())
        );
        // No reply kept (the first call failed, or is still running): the usual answer, no second call.
        assert_eq!(
            reply_step(1, None, NOW, &default),
            ReplyStep::Answer(default.clone())
        );
        // After the window, or a row that does not decode: the usual answer.
        assert_eq!(
            reply_step(1, Some(&kept), NOW + REPLY_KEPT_MS, &default),
            ReplyStep::Answer(default.clone())
        );
        let odd = KeptReply {
            content_type: "text/html".into(),
            ..kept.clone()
        };
        assert_eq!(
            reply_step(1, Some(&odd), NOW, &default),
            ReplyStep::Answer(default)
        );
        let xml = EdgeResponse {
            status: 200,
            content_type: "application/xml; charset=utf-8",
            body: b"<xml><Encrypt>x</Encrypt></xml>".to_vec(),
        };
        assert_eq!(
            reply_step(
                1,
                Some(&KeptReply::of(&xml, NOW)),
                NOW,
                &EdgeResponse::text("success")
            ),
            ReplyStep::Answer(xml)
        );
    }
}
