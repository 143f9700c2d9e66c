//! The dead-letter store's records and decisions: what a letter holds, paging, retention.

use serde::{Deserialize, Serialize};

use super::queue::QueuedDelivery;
use crate::config::Bindings;
use crate::forward::Delivery;
use crate::query::Query;
use crate::Rejection;

/// A delivery that will not be retried any more, kept for an admin to inspect and replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub webhook_id: String,
    pub delivery: Delivery,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub dead_at_ms: u64,
}

/// Why a message reached the queue's own dead-letter queue: the consumer could not record its next step
/// (requeue or dead letter) as many times as the queue retries, or the consumer invocation died.
pub const QUEUE_GAVE_UP: &str =
    "the queue gave up on this message after its own retries (the consumer could not record the next step)";

impl DeadLetter {
    pub fn from_queued(queued: QueuedDelivery, now_ms: u64) -> Self {
        DeadLetter {
            webhook_id: queued.delivery.webhook_id.clone(),
            delivery: queued.delivery,
            attempts: queued.attempts,
            last_status: queued.last_status,
            last_error: queued.last_error,
            dead_at_ms: now_ms,
        }
    }

    /// A message that arrived on the dead-letter queue: kept with what it last knew, and why it is here when it
    /// knew nothing.
    pub fn from_dead_letter_queue(mut queued: QueuedDelivery, now_ms: u64) -> Self {
        if queued.last_error.is_none() {
            queued.set_last_error(QUEUE_GAVE_UP);
        }
        DeadLetter::from_queued(queued, now_ms)
    }

    /// The message that puts this letter back in the queue: a fresh first attempt of the same delivery (same
    /// `webhook-id`, so the backend de-duplicates).
    pub fn replay_message(&self) -> String {
        QueuedDelivery::first(self.delivery.clone()).to_message()
    }

    pub fn cursor(&self) -> Cursor {
        Cursor {
            dead_at_ms: self.dead_at_ms,
            webhook_id: self.webhook_id.clone(),
        }
    }
}

/// A position in the store's order (oldest first, then by id): the last letter of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub dead_at_ms: u64,
    pub webhook_id: String,
}

impl Cursor {
    /// `{dead_at_ms}:{webhook_id}`; ids never contain `:`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.dead_at_ms, self.webhook_id)
    }

    /// `None` for anything [`encode`](Cursor::encode) cannot have written, including a time past 2^53 − 1:
    /// the store binds it as a JavaScript number, which would not hold it exactly.
    pub fn parse(text: &str) -> Option<Cursor> {
        let (at, id) = text.split_once(':')?;
        if !is_delivery_id(id) {
            return None;
        }
        Some(Cursor {
            dead_at_ms: at.parse().ok().filter(|&at| at <= MAX_SAFE_INTEGER)?,
            webhook_id: id.to_owned(),
        })
    }
}

/// The largest integer a JavaScript number (the store's SQL binding) holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `evt_…` for a backend delivery, `evt_….chatwork` for a notification.
pub fn is_delivery_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// One page of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 500;

impl PageRequest {
    /// `?limit=` (1…500, default 100) and `?cursor=` (from the previous page's `next_cursor`).
    pub fn from_query(query: &Query) -> Result<PageRequest, Rejection> {
        let limit = match query.get("limit") {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or(Rejection::InvalidParameter("limit"))?,
        };
        let after = match query.get("cursor").filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => Some(Cursor::parse(text).ok_or(Rejection::InvalidParameter("cursor"))?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// A page as the admin API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub dead_letters: Vec<DeadLetter>,
    /// All letters in the store.
    pub total: u64,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl Page {
    /// `letters` are the rows after the cursor, fetched with one more than `limit` to tell whether a next page
    /// exists.
    pub fn from_rows(mut letters: Vec<DeadLetter>, limit: u32, total: u64) -> Page {
        let more = letters.len() > limit as usize;
        letters.truncate(limit as usize);
        let next_cursor = if more {
            letters.last().map(|l| l.cursor().encode())
        } else {
            None
        };
        Page {
            dead_letters: letters,
            total,
            next_cursor,
        }
    }
}

impl Page {
    /// One page across several stores, each asked for the same page (`limit` letters after the same cursor):
    /// the first `limit` letters of all of them in (time of death, id) order. A store holding more than it
    /// returned returned its `limit` first ones, so nothing it kept back can belong on this page.
    pub fn merge(pages: Vec<Page>, limit: u32) -> Page {
        let total = pages.iter().map(|p| p.total).sum();
        let kept_back = pages.iter().any(|p| p.next_cursor.is_some());
        let mut letters: Vec<DeadLetter> = pages.into_iter().flat_map(|p| p.dead_letters).collect();
        letters.sort_by(|a, b| (a.dead_at_ms, &a.webhook_id).cmp(&(b.dead_at_ms, &b.webhook_id)));
        let mut page = Page::from_rows(letters, limit, total);
        if kept_back && page.next_cursor.is_none() {
            page.next_cursor = page.dead_letters.last().map(|l| l.cursor().encode());
        }
        page
    }
}

/// Dead-letter stores of a deployment, chosen by webhook id: dead letters of a failing backend arrive as fast as
/// its events, so no single object takes them all. A constant: letters would move if it changed.
pub const SHARDS: u16 = 16;
/// The one store of versions before the sharding: still read (listed, replayed, deleted), never written.
pub const LEGACY_OBJECT: &str = "dead-letters";

pub fn shard_of(webhook_id: &str) -> u16 {
    let digest = crate::crypto::sha256(&[webhook_id.as_bytes()]);
    u16::from_be_bytes([digest[0], digest[1]]) % SHARDS
}

/// The Durable Object name a dead letter of `webhook_id` is written to.
pub fn object_for(webhook_id: &str) -> String {
    format!("dead-letters#{}", shard_of(webhook_id))
}

/// Every store a read across all letters asks: the shards, then the legacy one.
pub fn all_objects() -> Vec<String> {
    (0..SHARDS)
        .map(|shard| format!("dead-letters#{shard}"))
        .chain(std::iter::once(LEGACY_OBJECT.to_owned()))
        .collect()
}

/// Where a letter of `webhook_id` may be: its shard, and the legacy store.
pub fn objects_for(webhook_id: &str) -> [String; 2] {
    [object_for(webhook_id), LEGACY_OBJECT.to_owned()]
}

/// Default retention of dead letters: 30 days (`DEAD_LETTER_RETENTION_DAYS`), long enough to cover a holiday.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;

pub fn retention_ms(bindings: &dyn Bindings) -> u64 {
    bindings
        .get("DEAD_LETTER_RETENTION_DAYS")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|days| *days > 0)
        .unwrap_or(DEFAULT_RETENTION_DAYS)
        .saturating_mul(24 * 3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(id: &str, at: u64) -> DeadLetter {
        DeadLetter {
            webhook_id: id.into(),
            delivery: Delivery {
                webhook_id: id.into(),
                url: "https://backend.example/".into(),
                event_type: "message.received".into(),
                body: "{}".into(),
                target: Default::default(),
                origin: None,
            },
            attempts: 1,
            last_status: Some(400),
            last_error: None,
            dead_at_ms: at,
        }
    }

    /// A store of `letters` answering a page request as the `DeadLetters` object does.
    fn store_page(letters: &[DeadLetter], request: &PageRequest) -> Page {
        let mut sorted = letters.to_vec();
        sorted.sort_by(|a, b| (a.dead_at_ms, &a.webhook_id).cmp(&(b.dead_at_ms, &b.webhook_id)));
        let after: Vec<DeadLetter> = sorted
            .into_iter()
            .filter(|l| {
                request
                    .after
                    .as_ref()
                    .is_none_or(|c| (l.dead_at_ms, &l.webhook_id) > (c.dead_at_ms, &c.webhook_id))
            })
            .take(request.limit as usize + 1)
            .collect();
        Page::from_rows(after, request.limit, letters.len() as u64)
    }

    #[test]
    fn pages_across_the_shards_list_every_letter_once_in_order() {
        let mut stores: Vec<Vec<DeadLetter>> = vec![Vec::new(); all_objects().len()];
        for i in 0..97u64 {
            let id = format!("evt_{i:03}");
            let object = object_for(&id);
            let index = all_objects().iter().position(|o| *o == object).unwrap();
            stores[index].push(letter(&id, 1_000 + (i * 7) % 13));
        }
        stores.last_mut().unwrap().push(letter("evt_legacy", 1_005));
        let mut seen = Vec::new();
        let mut after = None;
        for _ in 0..100 {
            let request = PageRequest {
                limit: 10,
                after: after.clone(),
            };
            let page = Page::merge(stores.iter().map(|s| store_page(s, &request)).collect(), 10);
            assert_eq!(page.total, 98);
            seen.extend(
                page.dead_letters
                    .iter()
                    .map(|l| (l.dead_at_ms, l.webhook_id.clone())),
            );
            match page.next_cursor {
                Some(cursor) => after = Cursor::parse(&cursor),
                None => break,
            }
        }
        assert_eq!(seen.len(), 98);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(seen, sorted, "in order, each once");
        assert_eq!(objects_for("evt_1")[1], LEGACY_OBJECT);
        assert!(
            stores.iter().filter(|s| !s.is_empty()).count() > 10,
            "spread over the shards"
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let cursor = letter("evt_01.chatwork", 1_700_000_000_000).cursor();
        assert_eq!(cursor.encode(), "1700000000000:evt_01.chatwork");
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        let largest = format!("{}:evt_1", (1u64 << 53) - 1);
        assert_eq!(
            Cursor::parse(&largest).map(|c| c.dead_at_ms),
            Some((1 << 53) - 1)
        );
        for junk in [
            "",
            "12",
            ":evt_1",
            "x:evt_1",
            "1:evt 1",
            "1:a/b",
            "1:",
            "9007199254740992:evt_1",
            "18446744073709551615:evt_1",
            "-1:evt_1",
        ] {
            assert_eq!(Cursor::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn page_requests_from_the_query() {
        let page = |q: &str| PageRequest::from_query(&Query::parse(Some(q)));
        assert_eq!(
            page(""),
            Ok(PageRequest {
                limit: DEFAULT_PAGE_SIZE,
                after: None
            })
        );
        assert_eq!(page("limit=2&cursor=5:evt_a").map(|p| p.limit), Ok(2));
        assert_eq!(
            page("cursor=5:evt_a").map(|p| p.after),
            Ok(Some(Cursor {
                dead_at_ms: 5,
                webhook_id: "evt_a".into()
            }))
        );
        assert_eq!(page("limit=0"), Err(Rejection::InvalidParameter("limit")));
        assert_eq!(page("limit=501"), Err(Rejection::InvalidParameter("limit")));
        assert_eq!(page("limit=x"), Err(Rejection::InvalidParameter("limit")));
        assert_eq!(
            page("cursor=nonsense"),
            Err(Rejection::InvalidParameter("cursor"))
        );
        let past_2_53 = page("cursor=9007199254740993:evt_a").unwrap_err();
        assert_eq!(past_2_53, Rejection::InvalidParameter("cursor"));
        assert_eq!(past_2_53.status().as_u16(), 400);
    }

    #[test]
    fn a_page_says_whether_another_follows() {
        let rows: Vec<DeadLetter> = (0..3).map(|i| letter(&format!("evt_{i}"), i)).collect();
        let page = Page::from_rows(rows.clone(), 2, 7);
        assert_eq!(page.dead_letters.len(), 2);
        assert_eq!(page.total, 7);
        assert_eq!(page.next_cursor.as_deref(), Some("1:evt_1"));
        let last = Page::from_rows(rows[..2].to_vec(), 2, 2);
        assert_eq!(last.next_cursor, None);
        assert_eq!(Page::from_rows(Vec::new(), 2, 0).next_cursor, None);
    }

    #[test]
    fn letters_from_the_dead_letter_queue_say_why() {
        let queued = QueuedDelivery::first(letter("evt_q", 0).delivery);
        let dead = DeadLetter::from_dead_letter_queue(queued.clone(), 9);
        assert_eq!(dead.last_error.as_deref(), Some(QUEUE_GAVE_UP));
        assert_eq!(dead.dead_at_ms, 9);
        let mut known = queued;
        known.attempts = 3;
        known.set_last_error("status 503");
        let dead = DeadLetter::from_dead_letter_queue(known, 9);
        assert_eq!(dead.attempts, 3);
        assert_eq!(dead.last_error.as_deref(), Some("status 503"));
        assert_eq!(
            dead.replay_message(),
            QueuedDelivery::first(dead.delivery.clone()).to_message()
        );
    }

    #[test]
    fn retention_defaults_to_30_days() {
        let none = std::collections::HashMap::<String, String>::new();
        assert_eq!(retention_ms(&none), 30 * 86_400_000);
        let set = std::collections::HashMap::from([(
            "DEAD_LETTER_RETENTION_DAYS".to_owned(),
            "7".to_owned(),
        )]);
        assert_eq!(retention_ms(&set), 7 * 86_400_000);
        let zero = std::collections::HashMap::from([(
            "DEAD_LETTER_RETENTION_DAYS".to_owned(),
            "0".to_owned(),
        )]);
        assert_eq!(retention_ms(&zero), 30 * 86_400_000);
    }
}
