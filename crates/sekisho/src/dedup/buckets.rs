//! Committed claims kept in one table per span of time, so the purge drops whole tables instead of deleting
//! rows one by one. SQLite storage in Durable Objects bills every row written, and a `DELETE` writes each row it
//! removes, while `DROP TABLE` writes none (measured in workerd: 100 deletes → `rowsWritten` 100, the drop → 0;
//! `CREATE TABLE` → 2). A claim then costs the one row its insert writes, and nothing when it is forgotten.
//!
//! A table is named by the hours it covers, `claims_{first hour}_{end hour}` (hours since the epoch), so a table
//! is read and purged correctly whatever retention was configured when it was made.

use std::fmt;

/// How many tables a retention is cut into: a claim is kept at least the retention and less than
/// `retention × (1 + 1/SPANS_PER_RETENTION)`. Few, because making a table writes two rows in every shard that
/// takes an event in its span: with 36-hour spans (the default 72-hour retention) that is two rows per shard
/// and day and a half, against one `DELETE`d row per event without spans.
pub const SPANS_PER_RETENTION: u64 = 2;
const HOUR_MS: u64 = 3_600_000;
const PREFIX: &str = "claims_";

/// The hours `[first, end)` one table covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub first_hour: u64,
    pub end_hour: u64,
}

impl Span {
    /// The table a claim taken at `now_ms` goes into: spans of `retention / 12` whole hours (at least one),
    /// aligned to the epoch so every shard of every account agrees.
    pub fn at(now_ms: u64, retention_ms: u64) -> Span {
        let hours = (retention_ms / HOUR_MS / SPANS_PER_RETENTION).max(1);
        let first_hour = now_ms / HOUR_MS / hours * hours;
        Span {
            first_hour,
            end_hour: first_hour + hours,
        }
    }

    /// Reads a table name back (anything else in the object's schema is not a claims table).
    pub fn parse(table: &str) -> Option<Span> {
        let (first, end) = table.strip_prefix(PREFIX)?.split_once('_')?;
        let first_hour: u64 = first.parse().ok()?;
        let end_hour: u64 = end.parse().ok()?;
        (first_hour < end_hour).then_some(Span {
            first_hour,
            end_hour,
        })
    }

    /// When every claim in the table is older than the retention, the table is dropped whole.
    pub fn expired(&self, now_ms: u64, retention_ms: u64) -> bool {
        self.expires_at_ms(retention_ms) <= now_ms
    }

    /// The moment the newest claim the table can hold is older than the retention.
    pub fn expires_at_ms(&self, retention_ms: u64) -> u64 {
        self.end_hour
            .saturating_mul(HOUR_MS)
            .saturating_add(retention_ms)
    }

    /// `CREATE TABLE IF NOT EXISTS` of this span's table: the id and the reply kept for its event (NULL for most
    /// events), `WITHOUT ROWID` (one B-tree entry per claim, so an insert writes one row).
    pub fn create_sql(&self) -> String {
        format!("CREATE TABLE IF NOT EXISTS {self} (id TEXT PRIMARY KEY, reply TEXT) WITHOUT ROWID")
    }

    pub fn insert_sql(&self) -> String {
        format!("INSERT OR IGNORE INTO {self} (id) VALUES (?)")
    }

    /// The claim a commit writes, with its reply (`?1` the id, `?2` the reply or NULL).
    pub fn commit_sql(&self) -> String {
        format!("INSERT OR REPLACE INTO {self} (id, reply) VALUES (?1, ?2)")
    }

    /// Tables of earlier versions held the id alone: the reply column is added the first time a reply is kept
    /// in one.
    pub fn add_reply_column_sql(&self) -> String {
        format!("ALTER TABLE {self} ADD COLUMN reply TEXT")
    }

    pub fn drop_sql(&self) -> String {
        format!("DROP TABLE IF EXISTS {self}")
    }
}

/// The table name: digits and underscores only, so it is safe to put into SQL text.
impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.first_hour, self.end_hour)
    }
}

/// Whether a claims table, by the `CREATE TABLE` text `sqlite_master` keeps for it, has the reply column (an
/// `ALTER TABLE … ADD COLUMN` rewrites that text too).
pub fn keeps_replies(table_sql: &str) -> bool {
    table_sql.contains("reply TEXT")
}

/// The query that finds one id (bound once as `?1`) among the claims tables — each with whether it has the
/// reply column — and, when `legacy` is set, the `event_claims` table of earlier versions (which also held
/// pending claims). One row `(committed, at, reply)` at most, a committed claim with a reply first; `None` when
/// there is no table to look in.
pub fn lookup_sql(spans: &[(Span, bool)], legacy: bool) -> Option<String> {
    let mut parts: Vec<String> = spans
        .iter()
        .map(|(span, with_reply)| {
            format!(
                "SELECT 1 AS committed, {} AS at, {} AS reply FROM {span} WHERE id = ?1",
                span.first_hour.saturating_mul(HOUR_MS),
                if *with_reply { "reply" } else { "NULL" }
            )
        })
        .collect();
    if legacy {
        parts
            .push("SELECT committed, at, NULL AS reply FROM event_claims WHERE id = ?1".to_owned());
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "SELECT committed, at, reply FROM ({}) ORDER BY committed DESC, reply IS NULL LIMIT 1",
        parts.join(" UNION ALL ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 24 * HOUR_MS;

    #[test]
    fn the_default_retention_is_cut_into_36_hour_tables_aligned_to_the_epoch() {
        let retention = 72 * HOUR_MS;
        let span = Span::at(10 * DAY_MS + 7 * HOUR_MS + 5, retention);
        assert_eq!(span.first_hour, 216);
        assert_eq!(span.end_hour, 252);
        assert_eq!(span.to_string(), "claims_216_252");
        // A short retention still makes hour-long tables.
        let short = Span::at(5 * HOUR_MS + 1, HOUR_MS);
        assert_eq!((short.first_hour, short.end_hour), (5, 6));
    }

    #[test]
    fn names_read_back_and_nothing_else_does() {
        let span = Span::at(1_765_000_000_000, 72 * HOUR_MS);
        assert_eq!(Span::parse(&span.to_string()), Some(span));
        for other in [
            "event_claims",
            "claims_",
            "claims_12",
            "claims_12_12",
            "claims_13_12",
            "claims_a_b",
            "guards",
            "claims_1_2; DROP TABLE guards",
        ] {
            assert_eq!(Span::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_table_is_dropped_only_when_its_newest_claim_is_older_than_the_retention() {
        let retention = 72 * HOUR_MS;
        let span = Span::at(0, retention);
        assert_eq!(span.end_hour, 36);
        // The last claim in it may be taken just before hour 36: kept until hour 108.
        assert!(!span.expired(108 * HOUR_MS - 1, retention));
        assert!(span.expired(108 * HOUR_MS, retention));
        assert_eq!(span.expires_at_ms(retention), 108 * HOUR_MS);
        // So a claim is kept at least the retention, and at most one span more.
        let claim_at = 36 * HOUR_MS - 1;
        assert!(!Span::at(claim_at, retention).expired(claim_at + retention, retention));
        assert!(Span::at(0, retention).expired(retention + 36 * HOUR_MS, retention));
    }

    #[test]
    fn the_lookup_covers_every_table_and_prefers_a_committed_claim() {
        assert_eq!(lookup_sql(&[], false), None);
        let spans = [
            (
                Span {
                    first_hour: 6,
                    end_hour: 12,
                },
                false,
            ),
            (
                Span {
                    first_hour: 12,
                    end_hour: 18,
                },
                true,
            ),
        ];
        let sql = lookup_sql(&spans, true).unwrap();
        assert_eq!(
            sql,
            "SELECT committed, at, reply FROM (SELECT 1 AS committed, 21600000 AS at, NULL AS reply FROM claims_6_12 WHERE id = ?1 \
             UNION ALL SELECT 1 AS committed, 43200000 AS at, reply AS reply FROM claims_12_18 WHERE id = ?1 \
             UNION ALL SELECT committed, at, NULL AS reply FROM event_claims WHERE id = ?1) ORDER BY committed DESC, reply IS NULL LIMIT 1"
        );
        assert_eq!(
            lookup_sql(&[], true).unwrap(),
            "SELECT committed, at, reply FROM (SELECT committed, at, NULL AS reply FROM event_claims WHERE id = ?1) ORDER BY committed DESC, reply IS NULL LIMIT 1"
        );
    }

    #[test]
    fn tables_of_this_version_keep_replies_and_earlier_ones_get_the_column_when_needed() {
        let span = Span::at(0, 72 * HOUR_MS);
        assert!(keeps_replies(&span.create_sql()));
        assert!(!keeps_replies(
            "CREATE TABLE claims_0_36 (id TEXT PRIMARY KEY) WITHOUT ROWID"
        ));
        // SQLite's own text after `ALTER TABLE claims_0_36 ADD COLUMN reply TEXT`.
        assert!(keeps_replies(
            "CREATE TABLE claims_0_36 (id TEXT PRIMARY KEY, reply TEXT) WITHOUT ROWID"
        ));
        assert_eq!(
            span.add_reply_column_sql(),
            "ALTER TABLE claims_0_36 ADD COLUMN reply TEXT"
        );
    }
}
