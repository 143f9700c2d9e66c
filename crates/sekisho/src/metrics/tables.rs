//! Where a `Metrics` shard keeps its counter rows ([`super::packed`]): one table per resolution and UTC day,
//! `counters_5m_{day}` and `counters_1h_{day}` (days since the epoch), so the purge drops whole tables once
//! every bucket in them is past the resolution's retention. SQLite storage in Durable Objects bills each row a
//! `DELETE` removes, while `DROP TABLE` writes none (and `CREATE TABLE` two), so a counter row costs the writes
//! that fill it and nothing when it is forgotten. Reads query only the tables whose day overlaps the window.
//!
//! Earlier versions kept one row per metric in `counters` ([`LEGACY_TABLE`]): still read, and purged row by row
//! as before until it is empty, then dropped.

use std::fmt;

use super::window::Resolution;

/// The per-metric table of earlier versions.
pub const LEGACY_TABLE: &str = "counters";
const DAY_MS: u64 = 24 * 3_600_000;
const PREFIX: &str = "counters_";

/// The table of one resolution's buckets that start within one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CountersTable {
    /// Days since the epoch.
    pub day: u64,
    pub resolution: Resolution,
}

fn label(resolution: Resolution) -> &'static str {
    match resolution {
        Resolution::FiveMinutes => "5m",
        Resolution::Hour => "1h",
    }
}

impl CountersTable {
    /// The table a bucket is kept in.
    pub fn of(resolution: Resolution, bucket_ms: u64) -> CountersTable {
        CountersTable {
            day: bucket_ms / DAY_MS,
            resolution,
        }
    }

    /// Reads a table name back (anything else in the object's schema is not one of these tables).
    pub fn parse(table: &str) -> Option<CountersTable> {
        let (resolution, day) = table.strip_prefix(PREFIX)?.split_once('_')?;
        let resolution = Resolution::ALL
            .into_iter()
            .find(|r| label(*r) == resolution)?;
        if day.is_empty() || !day.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(CountersTable {
            day: day.parse().ok()?,
            resolution,
        })
    }

    pub fn start_ms(&self) -> u64 {
        self.day.saturating_mul(DAY_MS)
    }

    pub fn end_ms(&self) -> u64 {
        self.start_ms().saturating_add(DAY_MS)
    }

    /// Whether the table may hold buckets starting in `[from_ms, to_ms)`.
    pub fn overlaps(&self, from_ms: u64, to_ms: u64) -> bool {
        self.start_ms() < to_ms && from_ms < self.end_ms()
    }

    /// When every bucket in the table starts before the purge point of its resolution, it is dropped whole.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.end_ms() <= self.resolution.purge_before(now_ms)
    }

    /// One row per channel, account and bucket, `WITHOUT ROWID` (one B-tree entry: an upsert writes one row);
    /// the key leads with the account, which the alerts' look-ups and the flush's read-modify-write name.
    pub fn create_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {self} (channel TEXT NOT NULL, account TEXT NOT NULL, bucket INTEGER NOT NULL, \
             counts TEXT NOT NULL, PRIMARY KEY (channel, account, bucket)) WITHOUT ROWID"
        )
    }

    /// One stored row: bound `channel, account, bucket`.
    pub fn stored_sql(&self) -> String {
        format!("SELECT bucket, channel, account, counts FROM {self} WHERE channel = ? AND account = ? AND bucket = ?")
    }

    /// Writes one row's merged counts: bound `channel, account, bucket, counts`.
    pub fn upsert_sql(&self) -> String {
        format!(
            "INSERT INTO {self} (channel, account, bucket, counts) VALUES (?, ?, ?, ?) \
             ON CONFLICT (channel, account, bucket) DO UPDATE SET counts = excluded.counts"
        )
    }

    /// Every row of buckets from `?` on.
    pub fn window_sql(&self) -> String {
        format!("SELECT bucket, channel, account, counts FROM {self} WHERE bucket >= ?")
    }

    /// One account's rows of buckets in `[?, ?)`: bound `channel, account, from, to`.
    pub fn account_sql(&self) -> String {
        format!(
            "SELECT bucket, channel, account, counts FROM {self} WHERE channel = ? AND account = ? AND bucket >= ? AND bucket < ?"
        )
    }

    pub fn drop_sql(&self) -> String {
        format!("DROP TABLE IF EXISTS {self}")
    }
}

/// The table name: a fixed prefix and label, then digits, so it is safe to put into SQL text.
impl fmt::Display for CountersTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}", label(self.resolution), self.day)
    }
}

/// The counter tables an object has, read from its schema once and kept up to date by the object (the only
/// one changing it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterTables {
    /// A few per resolution (a day each within the retention): a list, not a set, keeps the Wasm smaller.
    tables: Vec<CountersTable>,
    /// Whether the per-metric table of earlier versions is still there.
    pub legacy: bool,
}

impl CounterTables {
    /// From the names of the object's tables.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> CounterTables {
        let mut tables = CounterTables::default();
        for name in names {
            if name == LEGACY_TABLE {
                tables.legacy = true;
            } else if let Some(table) = CountersTable::parse(name) {
                tables.made(table);
            }
        }
        tables
    }

    /// Whether the table still has to be made (then [`CounterTables::made`]).
    pub fn is_missing(&self, table: &CountersTable) -> bool {
        self.tables.binary_search(table).is_err()
    }

    pub fn made(&mut self, table: CountersTable) {
        if let Err(at) = self.tables.binary_search(&table) {
            self.tables.insert(at, table);
        }
    }

    /// The tables that may hold `resolution`'s buckets starting in `[from_ms, to_ms)`, oldest first.
    pub fn to_read(&self, resolution: Resolution, from_ms: u64, to_ms: u64) -> Vec<CountersTable> {
        self.tables
            .iter()
            .filter(|t| t.resolution == resolution && t.overlaps(from_ms, to_ms))
            .copied()
            .collect()
    }

    /// The tables past their retention, removed from the set (the caller drops them).
    pub fn take_expired(&mut self, now_ms: u64) -> Vec<CountersTable> {
        let (expired, kept) = self.tables.iter().partition(|t| t.expired(now_ms));
        self.tables = kept;
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_764_633_600_000; // 2025-12-02T00:00:00Z, day 20424
    const HOUR_MS: u64 = 3_600_000;

    #[test]
    fn a_bucket_goes_into_the_table_of_its_utc_day() {
        let table = CountersTable::of(Resolution::FiveMinutes, T + 23 * HOUR_MS + 55 * 60_000);
        assert_eq!(table.to_string(), "counters_5m_20424");
        assert_eq!((table.start_ms(), table.end_ms()), (T, T + DAY_MS));
        assert_eq!(
            CountersTable::of(Resolution::Hour, T + DAY_MS).to_string(),
            "counters_1h_20425"
        );
        assert_eq!(
            CountersTable::of(Resolution::Hour, T - 1).to_string(),
            "counters_1h_20423"
        );
    }

    #[test]
    fn names_read_back_and_nothing_else_does() {
        for table in [
            CountersTable::of(Resolution::FiveMinutes, T),
            CountersTable::of(Resolution::Hour, T),
        ] {
            assert_eq!(CountersTable::parse(&table.to_string()), Some(table));
        }
        for other in [
            "counters",
            "counters_",
            "counters_5m",
            "counters_5m_",
            "counters_1d_20424",
            "counters_5m_-1",
            "counters_5m_+1",
            "counters_5m_2a",
            "counters_5m_1; DROP TABLE keys",
            "claims_216_252",
            "keys",
        ] {
            assert_eq!(CountersTable::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_table_is_dropped_once_its_last_bucket_is_past_the_retention() {
        // 5-minute buckets are kept 24 hours: the day's last bucket (23:55–24:00) goes at 24:00 the next day,
        // when the per-row purge deleted it too.
        let five = CountersTable::of(Resolution::FiveMinutes, T);
        let last_bucket = T + DAY_MS - 300_000;
        assert_eq!(
            Resolution::FiveMinutes.purge_before(T + 2 * DAY_MS),
            last_bucket + 300_000
        );
        assert!(Resolution::FiveMinutes.purge_before(T + 2 * DAY_MS - 1) <= last_bucket);
        assert!(!five.expired(T + 2 * DAY_MS - 1));
        assert!(five.expired(T + 2 * DAY_MS));
        // Hourly buckets are kept 8 days.
        let hour = CountersTable::of(Resolution::Hour, T);
        assert!(!hour.expired(T + 9 * DAY_MS - 1));
        assert!(hour.expired(T + 9 * DAY_MS));
    }

    #[test]
    fn the_tables_read_are_those_of_the_window_and_resolution() {
        let mut tables = CounterTables::from_names([
            "counters_5m_20423",
            "counters_5m_20424",
            "counters_1h_20417",
            "counters_1h_20420",
            "counters_1h_20424",
            "counters",
            "keys",
            "seen",
        ]);
        assert!(tables.legacy);
        let now = T + 30 * 60_000;
        // The 1-hour window reads five-minute buckets from 23:35 the day before.
        let one_hour = tables.to_read(Resolution::FiveMinutes, now - 55 * 60_000, u64::MAX);
        assert_eq!(
            one_hour.iter().map(|t| t.day).collect::<Vec<_>>(),
            [20423, 20424]
        );
        let morning = tables.to_read(Resolution::FiveMinutes, T + 60_000, T + 120_000);
        assert_eq!(morning.iter().map(|t| t.day).collect::<Vec<_>>(), [20424]);
        let week = tables.to_read(Resolution::Hour, now - 167 * HOUR_MS, u64::MAX);
        assert_eq!(
            week.iter().map(|t| t.day).collect::<Vec<_>>(),
            [20417, 20420, 20424]
        );
        let new = CountersTable::of(Resolution::Hour, T + DAY_MS);
        assert!(tables.is_missing(&new));
        tables.made(new);
        assert!(!tables.is_missing(&new));
        // Two days on: yesterday's 5-minute table is past its retention, the hourly ones are not.
        let expired = tables.take_expired(T + DAY_MS);
        assert_eq!(
            expired.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["counters_5m_20423"]
        );
        assert!(tables.take_expired(T + DAY_MS).is_empty());
        assert_eq!(
            CountersTable::of(Resolution::Hour, T).drop_sql(),
            "DROP TABLE IF EXISTS counters_1h_20424"
        );
    }
}
