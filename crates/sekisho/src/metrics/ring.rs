//! A shard's latest rejections ([`super::REJECTION_RING`] of them), kept as one row per flushed batch (at most
//! [`super::MAX_REJECTIONS`] rejections each, oldest first) rather than one row per rejection: SQLite storage
//! in Durable Objects bills every row an `INSERT` writes and every row a `DELETE` removes, so a flush of 20
//! rejections writes one row (and, once the ring is full, deletes about one), not twenty and twenty.
//!
//! A batch is deleted once the newer batches hold the whole ring, so a shard stores fewer than
//! `REJECTION_RING + MAX_REJECTIONS` rejections, and the reads answer exactly the latest `REJECTION_RING`.

use super::RejectionRow;

/// A stored batch, as the trim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBatch {
    pub seq: u64,
    /// How many rejections it holds.
    pub count: u64,
}

/// What to remove after a batch is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    /// Delete the batches with a smaller seq: every one of their rejections is older than the latest `ring`.
    pub delete_before: Option<u64>,
    /// The per-rejection table of earlier versions holds only rejections older than the latest `ring`: drop
    /// it whole (no row written).
    pub drop_legacy: bool,
}

/// The row text of a batch (its rejections, oldest first).
pub fn encode(rejections: &[RejectionRow]) -> String {
    serde_json::to_string(rejections).unwrap_or_else(|_| "[]".to_owned())
}

/// A stored batch's rejections, oldest first (none when the text is not a batch).
pub fn decode(text: &str) -> Vec<RejectionRow> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The batches to delete, given every stored batch newest first: those after the batch that completes the
/// latest `ring` rejections.
pub fn trim(newest_first: &[StoredBatch], ring: usize) -> Trim {
    let ring = ring as u64;
    let mut newer: u64 = 0;
    for (at, batch) in newest_first.iter().enumerate() {
        newer = newer.saturating_add(batch.count);
        if newer >= ring {
            let older_remain = at + 1 < newest_first.len();
            return Trim {
                delete_before: older_remain.then_some(batch.seq),
                drop_legacy: true,
            };
        }
    }
    Trim {
        delete_before: None,
        drop_legacy: false,
    }
}

/// The latest `limit` rejections, newest first, from the stored batches' texts (newest batch first) and the
/// rows of the legacy table (newest first, all older than any batch: nothing is written there any more).
pub fn latest<'a>(
    batches_newest_first: impl IntoIterator<Item = &'a str>,
    legacy_newest_first: Vec<RejectionRow>,
    limit: usize,
) -> Vec<RejectionRow> {
    let mut out = Vec::new();
    for text in batches_newest_first {
        if out.len() >= limit {
            break;
        }
        out.extend(decode(text).into_iter().rev());
    }
    out.extend(legacy_newest_first);
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{MAX_REJECTIONS, REJECTION_RING};

    fn rejection(at_ms: u64) -> RejectionRow {
        RejectionRow {
            at_ms,
            channel: "line".into(),
            account: "shop".into(),
            reason: "invalid_signature".into(),
        }
    }

    /// What the store does: append a batch, apply the trim; returns the stored batches, oldest first.
    struct Store {
        batches: Vec<(u64, String)>,
        next_seq: u64,
        legacy: Option<Vec<RejectionRow>>,
        rows_written: u64,
    }

    impl Store {
        fn flush(&mut self, rows: &[RejectionRow]) {
            self.next_seq += 1;
            self.batches.push((self.next_seq, encode(rows)));
            self.rows_written += 1;
            let newest_first: Vec<StoredBatch> = self
                .batches
                .iter()
                .rev()
                .map(|(seq, text)| StoredBatch {
                    seq: *seq,
                    count: decode(text).len() as u64,
                })
                .collect();
            let trim = trim(&newest_first, REJECTION_RING);
            if let Some(before) = trim.delete_before {
                let kept: Vec<_> = self
                    .batches
                    .drain(..)
                    .filter(|(s, _)| *s >= before)
                    .collect();
                self.rows_written += (newest_first.len() - kept.len()) as u64;
                self.batches = kept;
            }
            if trim.drop_legacy {
                self.legacy = None;
            }
        }

        fn latest(&self, limit: usize) -> Vec<RejectionRow> {
            latest(
                self.batches.iter().rev().map(|(_, t)| t.as_str()),
                self.legacy.clone().unwrap_or_default(),
                limit,
            )
        }

        fn stored(&self) -> usize {
            self.batches.iter().map(|(_, t)| decode(t).len()).sum()
        }
    }

    #[test]
    fn a_batch_round_trips_and_anything_else_is_empty() {
        let rows = vec![rejection(1), rejection(2)];
        assert_eq!(decode(&encode(&rows)), rows);
        assert!(decode("not json").is_empty());
        assert!(decode("{}").is_empty());
    }

    #[test]
    fn the_ring_keeps_the_latest_and_stays_bounded_writing_about_two_rows_per_flush() {
        let mut store = Store {
            batches: Vec::new(),
            next_seq: 0,
            legacy: None,
            rows_written: 0,
        };
        let mut at = 0;
        let flushes = 100;
        for flush in 0..flushes {
            // Batches of varying sizes, up to the most one carries.
            let size = 1 + (flush * 7) % MAX_REJECTIONS as u64;
            let rows: Vec<_> = (0..size)
                .map(|_| {
                    at += 1;
                    rejection(at)
                })
                .collect();
            store.flush(&rows);
            assert!(store.stored() < REJECTION_RING + MAX_REJECTIONS, "bounded");
            let latest = store.latest(REJECTION_RING);
            let want: Vec<u64> = (1..=at).rev().take(REJECTION_RING).collect();
            assert_eq!(latest.iter().map(|r| r.at_ms).collect::<Vec<_>>(), want);
        }
        // One insert per flush, and each batch deleted at most once.
        assert!(store.rows_written <= 2 * flushes, "{}", store.rows_written);
        assert!(store.rows_written > flushes, "the trim deleted batches");
        assert_eq!(
            store.latest(3).iter().map(|r| r.at_ms).collect::<Vec<_>>(),
            [at, at - 1, at - 2]
        );
    }

    #[test]
    fn nothing_is_deleted_until_the_newer_batches_hold_the_whole_ring() {
        let full = |count| StoredBatch { seq: count, count };
        assert_eq!(
            trim(&[full(20), full(19)], REJECTION_RING),
            Trim {
                delete_before: None,
                drop_legacy: false
            }
        );
        let batches: Vec<_> = (1..=11)
            .rev()
            .map(|seq| StoredBatch { seq, count: 20 })
            .collect();
        // Batches 11..=2 hold the latest 200: batch 1 goes.
        assert_eq!(
            trim(&batches, REJECTION_RING),
            Trim {
                delete_before: Some(2),
                drop_legacy: true
            }
        );
        // Exactly the ring and nothing older: nothing to delete, but the legacy rows are hidden.
        assert_eq!(
            trim(&batches[..10], REJECTION_RING),
            Trim {
                delete_before: None,
                drop_legacy: true
            }
        );
        assert_eq!(trim(&[], REJECTION_RING).delete_before, None);
    }

    #[test]
    fn the_legacy_rows_are_read_after_the_batches_and_dropped_once_hidden() {
        let legacy: Vec<_> = (1..=150).rev().map(rejection).collect();
        let mut store = Store {
            batches: Vec::new(),
            next_seq: 0,
            legacy: Some(legacy),
            rows_written: 0,
        };
        let mut at = 1_000;
        for _ in 0..9 {
            let rows: Vec<_> = (0..20)
                .map(|_| {
                    at += 1;
                    rejection(at)
                })
                .collect();
            store.flush(&rows);
        }
        let latest = store.latest(REJECTION_RING);
        assert_eq!(latest.len(), REJECTION_RING);
        assert_eq!(latest[0].at_ms, at);
        assert_eq!(latest[179].at_ms, 1_001);
        assert_eq!(latest[180].at_ms, 150, "the legacy rows follow");
        assert_eq!(latest[199].at_ms, 131);
        assert!(store.legacy.is_some());
        store.flush(&[rejection(at + 1), rejection(at + 2)]);
        assert!(
            store.legacy.is_some(),
            "182 newer: the legacy rows still show"
        );
        store.flush(&vec![rejection(at + 3); 18]);
        assert!(store.legacy.is_none(), "200 newer: dropped");
        assert!(store.latest(REJECTION_RING).iter().all(|r| r.at_ms > 1_000));
    }
}
