//! Secret-rotation status: for each configured value of an account's secret binding (newest first), how
//! often it matched and when last, and whether an older value can be removed. Counts follow the value (by
//! fingerprint), not its position, so adding a new value in front keeps the old value's history.
//!
//! An older value (index ≥ 1) is removable once it has not matched for [`IDLE_BEFORE_REMOVAL_MS`] and a
//! newer value has matched since: then the provider signs with the new one. Requests without events
//! (handshakes, LINE's verify) do not count: only events carry `data.verification.key_index`.

use serde::Serialize;

use super::KeyRow;
use crate::datetime::format_rfc3339_ms;

/// Three days without a match: longer than every provider's redelivery of a failed event.
pub const IDLE_BEFORE_REMOVAL_MS: u64 = 3 * 24 * 3_600_000;
const DAY_MS: u64 = 24 * 3_600_000;
const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Advice {
    /// The newest value (index 0).
    Current,
    /// An older value that still matched recently: keep it.
    InUse { idle_hours: u64 },
    /// An older value unused for `idle_days` while a newer one matched: remove it.
    Removable { idle_days: u64 },
    /// An older value that never matched since recording began, while a newer one did: remove it.
    NeverMatched,
    /// No newer value has matched yet: the provider may not have switched; wait.
    NoNewerMatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    pub index: usize,
    pub matched: u64,
    #[serde(skip)]
    pub last_matched_at_ms: Option<u64>,
    /// RFC 3339.
    pub last_matched_at: Option<String>,
    pub advice: Advice,
    /// The advice as one plain sentence, in English and Japanese.
    pub sentence_en: String,
    pub sentence_ja: String,
}

/// The status of every configured value, in order. `fingerprints` are those of the configured values.
pub fn status(fingerprints: &[String], rows: &[KeyRow], now_ms: u64) -> Vec<KeyStatus> {
    let found: Vec<Option<&KeyRow>> = fingerprints
        .iter()
        .map(|f| rows.iter().find(|row| &row.fingerprint == f))
        .collect();
    found
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let last = row.map(|r| r.last_matched_ms);
            let newer_last = found
                .iter()
                .take(index)
                .filter_map(|r| r.map(|r| r.last_matched_ms))
                .max();
            let advice = advise(index, last, newer_last, now_ms);
            KeyStatus {
                index,
                matched: row.map_or(0, |r| r.matched),
                last_matched_at_ms: last,
                last_matched_at: last.map(format_rfc3339_ms),
                sentence_en: sentence_en(index, &advice),
                sentence_ja: sentence_ja(index, &advice),
                advice,
            }
        })
        .collect()
}

fn advise(index: usize, last: Option<u64>, newer_last: Option<u64>, now_ms: u64) -> Advice {
    if index == 0 {
        return Advice::Current;
    }
    let Some(newer_last) = newer_last else {
        return Advice::NoNewerMatch;
    };
    match last {
        Some(last) if now_ms.saturating_sub(last) < IDLE_BEFORE_REMOVAL_MS || last > newer_last => {
            Advice::InUse {
                idle_hours: now_ms.saturating_sub(last) / HOUR_MS,
            }
        }
        Some(last) => Advice::Removable {
            idle_days: now_ms.saturating_sub(last) / DAY_MS,
        },
        None => Advice::NeverMatched,
    }
}

fn sentence_en(index: usize, advice: &Advice) -> String {
    match advice {
        Advice::Current => format!("Newest secret (index {index})."),
        Advice::InUse { idle_hours: 0 } => format!(
            "Old secret (index {index}) was used within the last hour — keep it for now."
        ),
        Advice::InUse { idle_hours } => format!(
            "Old secret (index {index}) was used {idle_hours} h ago — keep it for now."
        ),
        Advice::Removable { idle_days } => format!(
            "Old secret (index {index}) has not been used for {idle_days} days — you can remove it."
        ),
        Advice::NeverMatched => format!(
            "Old secret (index {index}) has not been used since recording began — you can remove it."
        ),
        Advice::NoNewerMatch => format!(
            "No request has been signed with a newer secret yet — keep the old secret (index {index})."
        ),
    }
}

fn sentence_ja(index: usize, advice: &Advice) -> String {
    match advice {
        Advice::Current => format!("最新のシークレット (index {index})。"),
        Advice::InUse { idle_hours: 0 } => format!(
            "旧シークレット (index {index}) は 1 時間以内に使われました — まだ削除しないでください"
        ),
        Advice::InUse { idle_hours } => format!(
            "旧シークレット (index {index}) は {idle_hours} 時間前に使われました — まだ削除しないでください"
        ),
        Advice::Removable { idle_days } => format!(
            "旧シークレット (index {index}) は {idle_days} 日間使われていません — 削除できます"
        ),
        Advice::NeverMatched => format!(
            "旧シークレット (index {index}) は記録開始以来使われていません — 削除できます"
        ),
        Advice::NoNewerMatch => format!(
            "新しいシークレットで署名されたリクエストがまだありません — 旧シークレット (index {index}) は残してください"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_633_600_000;
    const H: u64 = 3_600_000;

    fn row(fingerprint: &str, matched: u64, last: u64) -> KeyRow {
        KeyRow {
            channel: "line".into(),
            account: "acme".into(),
            fingerprint: fingerprint.into(),
            matched,
            last_matched_ms: last,
        }
    }

    fn fps(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn an_old_secret_idle_for_three_days_while_the_new_one_matches_is_removable() {
        let rows = [row("new", 40, NOW - H), row("old", 7, NOW - 73 * H)];
        let keys = status(&fps(&["new", "old"]), &rows, NOW);
        assert_eq!(keys[0].advice, Advice::Current);
        assert_eq!(
            (keys[0].matched, keys[0].last_matched_at_ms),
            (40, Some(NOW - H))
        );
        assert_eq!(keys[1].advice, Advice::Removable { idle_days: 3 });
        assert_eq!(keys[1].matched, 7);
        assert_eq!(
            keys[1].sentence_ja,
            "旧シークレット (index 1) は 3 日間使われていません — 削除できます"
        );
        assert!(keys[1].sentence_en.contains("you can remove it"));
    }

    #[test]
    fn an_old_secret_used_recently_or_after_the_new_one_is_kept() {
        let rows = [row("new", 1, NOW - 100 * H), row("old", 3, NOW - 2 * H)];
        let keys = status(&fps(&["new", "old"]), &rows, NOW);
        assert_eq!(keys[1].advice, Advice::InUse { idle_hours: 2 });
        assert!(keys[1].sentence_ja.contains("2 時間前に使われました"));
        let rows = [row("new", 1, NOW - 100 * H), row("old", 3, NOW - H / 2)];
        let keys = status(&fps(&["new", "old"]), &rows, NOW);
        assert_eq!(
            keys[1].sentence_ja,
            "旧シークレット (index 1) は 1 時間以内に使われました — まだ削除しないでください"
        );
        // Idle for four days, but the newer one was last used even earlier: the provider went back.
        let rows = [row("new", 1, NOW - 200 * H), row("old", 3, NOW - 100 * H)];
        let keys = status(&fps(&["new", "old"]), &rows, NOW);
        assert_eq!(keys[1].advice, Advice::InUse { idle_hours: 100 });
    }

    #[test]
    fn without_a_match_of_a_newer_secret_there_is_no_evidence_to_remove() {
        let rows = [row("old", 3, NOW - 200 * H)];
        let keys = status(&fps(&["new", "old"]), &rows, NOW);
        assert_eq!(keys[0].matched, 0);
        assert_eq!(keys[0].last_matched_at_ms, None);
        assert_eq!(keys[1].advice, Advice::NoNewerMatch);
        assert!(keys[1].sentence_ja.contains("残してください"));
    }

    #[test]
    fn counts_follow_the_value_when_a_new_secret_is_put_in_front() {
        // Before: only "a" configured, matched 5 times. After: "b" in front, "a" moved to index 1.
        let rows = [row("a", 5, NOW - H)];
        let keys = status(&fps(&["b", "a"]), &rows, NOW);
        assert_eq!((keys[0].index, keys[0].matched), (0, 0));
        assert_eq!((keys[1].index, keys[1].matched), (1, 5));
        assert_eq!(keys[1].advice, Advice::NoNewerMatch);
    }

    #[test]
    fn an_old_secret_never_seen_while_the_new_one_matches_is_removable() {
        let keys = status(&fps(&["new", "old"]), &[row("new", 9, NOW - H)], NOW);
        assert_eq!(keys[1].advice, Advice::NeverMatched);
        assert!(keys[1].sentence_ja.ends_with("削除できます"));
        let keys = status(&fps(&["new", "old"]), &[], NOW);
        assert_eq!(keys[1].advice, Advice::NoNewerMatch);
    }
}
