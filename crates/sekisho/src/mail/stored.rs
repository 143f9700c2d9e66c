//! The attachments of an accepted message that go into the `ATTACHMENTS` bucket, and their links in the event
//! ([`crate::attachments`] decides keys, caps and links).

use crate::attachments::{self, StoredPart};
use crate::config::Bindings;
use crate::envelope::Event;
use crate::gateway::Accepted;
use crate::Rejection;

/// Whether the `ATTACHMENTS` R2 bucket is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Present,
    Absent,
}

/// An accepted message: its deliveries, and the attachments to put into the bucket before it is acknowledged.
#[derive(Debug)]
pub struct AcceptedEmail {
    pub accepted: Accepted,
    pub stored: Vec<StoredPart>,
    /// Why the stored attachments got no link (`ATTACHMENT_URL_SECRET` or `ATTACHMENT_URL_BASE` missing or
    /// invalid): they are stored anyway, and the admin is told in the log.
    pub link_problem: Option<Rejection>,
}

/// The attachments within the caps, keyed by the event id, each with its signed link in the event.
pub(super) fn store_attachments(
    event: &mut Event,
    parts: Vec<PartBytes>,
    bindings: &dyn Bindings,
    now_s: u64,
) -> (Vec<StoredPart>, Option<Rejection>) {
    let links = attachments::Links::from_bindings(bindings);
    let sizes: Vec<u64> = parts.iter().map(|part| part.bytes.len() as u64).collect();
    let selected = attachments::Caps::from_bindings(bindings).select(&sizes);
    let event_id = event.id.clone();
    let Some(listed) = event.data.message.as_mut().map(|m| &mut m.attachments) else {
        return (Vec::new(), None);
    };
    let mut stored = Vec::new();
    for (index, ((part, keep), attachment)) in parts
        .into_iter()
        .zip(selected)
        .zip(listed.iter_mut())
        .enumerate()
    {
        if !keep {
            continue;
        }
        let key = attachments::object_key(&event_id, index);
        attachment.url = links
            .as_ref()
            .ok()
            .and_then(|links| links.link(&key, now_s));
        stored.push(StoredPart {
            key,
            content_type: part.content_type,
            filename: attachment.name.clone(),
            bytes: part.bytes,
        });
    }
    (stored, links.err())
}

/// An attachment's content as stored: its decoded bytes (text parts as the UTF-8 text they were decoded to).
pub(super) struct PartBytes {
    pub(super) content_type: String,
    pub(super) bytes: Vec<u8>,
}
