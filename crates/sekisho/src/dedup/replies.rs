//! Replies kept with their event's claim. A signed request can be sent again by anyone who saw it, within its
//! signature's window (a Slack slash command for 5 minutes, a Discord interaction likewise): each copy is a
//! duplicate of an event already accepted, and must not make the backend answer again. The first request's
//! rendered reply is kept in the claim's own row (the accept call holds the claim, the commit after the reply
//! call writes both: one row, see [`super::Hold`]); a duplicate gets that reply for [`REPLY_KEPT_MS`] (a
//! provider retrying because the first answer came late sees what it missed), or the usual answer when none was
//! kept — never a new reply call.

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

/// What a request with a reply call does once its event is accepted (decided by [`crate::intake`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTurn {
    /// The request has no reply call.
    NoCall,
    /// A fresh event: call the backend; then, when its claim was held, commit it with what was rendered.
    Call { held: Option<HeldClaim> },
    /// A duplicate: answer this, without calling the backend.
    Answer(EdgeResponse),
}

/// A claim an accept call left for its commit ([`super::Hold`]): the event's id and the shard that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    pub shard: u16,
    /// The Durable Object name of that shard ([`super::object_name`]).
    pub object: String,
    pub id: String,
}

impl HeldClaim {
    /// The commit: the claim, with the reply the provider got (`None` when it got the default answer).
    pub fn commit(&self, rendered: Option<&EdgeResponse>, now_ms: u64) -> super::DedupCall {
        super::DedupCall::Commit {
            id: self.id.clone(),
            reply: rendered.map(|response| KeptReply::of(response, now_ms)),
            now_ms,
            spill: Vec::new(),
            source: String::new(),
        }
    }

    /// The commit of an event the edge could not send: its claim and its message kept in the spill, in one write.
    pub fn commit_spilling(&self, message: String, source: &str, now_ms: u64) -> super::DedupCall {
        super::DedupCall::Commit {
            id: self.id.clone(),
            reply: None,
            now_ms,
            spill: vec![message],
            source: source.to_owned(),
        }
    }
}

/// A duplicate's answer: the reply kept with its claim while it is young, else `default` — never a new call.
pub fn reply_step(kept: Option<&KeptReply>, now_ms: u64, default: &EdgeResponse) -> EdgeResponse {
    kept.filter(|kept| now_ms.saturating_sub(kept.at_ms) < REPLY_KEPT_MS)
        .and_then(KeptReply::response)
        .unwrap_or_else(|| default.clone())
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
        assert_eq!(
            reply_step(Some(&round_trip), NOW + 60_000, &default),
            rendered.clone()
        );
        // No reply kept (the first call failed): the usual answer, no second call.
        assert_eq!(reply_step(None, NOW, &default), default.clone());
        // After the window, or a row that does not decode: the usual answer.
        assert_eq!(
            reply_step(Some(&kept), NOW + REPLY_KEPT_MS, &default),
            default.clone()
        );
        let odd = KeptReply {
            content_type: "text/html".into(),
            ..kept.clone()
        };
        assert_eq!(reply_step(Some(&odd), NOW, &default), default);
        let xml = EdgeResponse {
            status: 200,
            content_type: "application/xml; charset=utf-8",
            body: b"<xml><Encrypt>x</Encrypt></xml>".to_vec(),
        };
        assert_eq!(
            reply_step(
                Some(&KeptReply::of(&xml, NOW)),
                NOW,
                &EdgeResponse::text("success")
            ),
            xml
        );
    }

    #[test]
    fn a_held_claim_is_committed_with_the_reply_the_provider_got() {
        let held = HeldClaim {
            shard: 3,
            object: "/slack/acme#3".into(),
            id: "evt_1".into(),
        };
        let rendered = EdgeResponse::text("ok");
        assert_eq!(
            held.commit(Some(&rendered), NOW),
            super::super::DedupCall::Commit {
                id: "evt_1".into(),
                reply: Some(KeptReply::of(&rendered, NOW)),
                now_ms: NOW,
                spill: vec![],
                source: String::new(),
            }
        );
        assert!(matches!(
            held.commit(None, NOW),
            super::super::DedupCall::Commit { reply: None, .. }
        ));
    }
}
