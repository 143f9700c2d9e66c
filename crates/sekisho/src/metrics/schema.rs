//! The tables of a `Metrics` shard, each made when it is first written, never in the object's constructor:
//! a `CREATE TABLE` writes two rows, and a shard that only ever stores counters (or is only read, as every
//! shard is by the console) should not pay for the tables it never fills. The object reads its schema once per
//! instance and keeps it up to date (it is the only writer); a read of a table that is not there answers
//! empty without making it.
//!
//! Objects of earlier versions made every table up front, and kept the latest rejections one row each in
//! `rejections` ([`Table::LegacyRejections`]): still read, never written, dropped whole once the rejection
//! ring ([`super::ring`]) holds enough newer ones to hide it.

use super::tables::CounterTables;

/// A table of the shard besides the counters' ([`super::tables`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Key fingerprints and when each last matched.
    Keys,
    /// When each account last had an accepted event.
    Seen,
    /// Since when each failing account's backend has failed.
    Failing,
    /// When each alert was last sent.
    AlertsSent,
    /// The rejection ring: one row per flush that carried rejections ([`super::ring`]).
    RejectionBatches,
    /// One row per rejection, of earlier versions: read, never written or made.
    LegacyRejections,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Keys,
        Table::Seen,
        Table::Failing,
        Table::AlertsSent,
        Table::RejectionBatches,
        Table::LegacyRejections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Keys => "keys",
            Table::Seen => "seen",
            Table::Failing => "failing",
            Table::AlertsSent => "alerts_sent",
            Table::RejectionBatches => "rejection_batches",
            Table::LegacyRejections => "rejections",
        }
    }

    /// The statement making the table (the same tables earlier versions made, `WITHOUT ROWID` where a row is
    /// keyed by text, so an upsert writes one B-tree entry); none for the legacy table, which is never made.
    pub fn create_sql(self) -> Option<&'static str> {
        Some(match self {
            Table::Keys => "CREATE TABLE IF NOT EXISTS keys (channel TEXT NOT NULL, account TEXT NOT NULL, fingerprint TEXT NOT NULL, matched INTEGER NOT NULL, last_matched INTEGER NOT NULL, PRIMARY KEY (channel, account, fingerprint)) WITHOUT ROWID",
            Table::Seen => "CREATE TABLE IF NOT EXISTS seen (channel TEXT NOT NULL, account TEXT NOT NULL, last_event INTEGER NOT NULL, PRIMARY KEY (channel, account)) WITHOUT ROWID",
            Table::Failing => "CREATE TABLE IF NOT EXISTS failing (channel TEXT NOT NULL, account TEXT NOT NULL, since INTEGER NOT NULL, PRIMARY KEY (channel, account)) WITHOUT ROWID",
            Table::AlertsSent => "CREATE TABLE IF NOT EXISTS alerts_sent (key TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID",
            // INTEGER PRIMARY KEY is the rowid itself: one entry per row. Without AUTOINCREMENT a new row's seq
            // is the largest plus one (no `sqlite_sequence` row to update on every insert); the trim never
            // deletes the newest batch, so seqs only grow.
            Table::RejectionBatches => "CREATE TABLE IF NOT EXISTS rejection_batches (seq INTEGER PRIMARY KEY, n INTEGER NOT NULL, rows TEXT NOT NULL)",
            Table::LegacyRejections => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The tables a shard has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    pub counters: CounterTables,
    present: u8,
}

impl Schema {
    /// From the names of the object's tables (`sqlite_master`); names of no table here are ignored.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Schema {
        let mut schema = Schema {
            counters: CounterTables::from_names(names.clone()),
            present: 0,
        };
        for name in names {
            if let Some(table) = Table::ALL.into_iter().find(|t| t.name() == name) {
                schema.made(table);
            }
        }
        schema
    }

    pub fn has(&self, table: Table) -> bool {
        self.present & table.bit() != 0
    }

    /// The statement to run before writing into `table`, when it is not there yet (then [`Schema::made`]).
    pub fn to_make(&self, table: Table) -> Option<&'static str> {
        if self.has(table) {
            None
        } else {
            table.create_sql()
        }
    }

    pub fn made(&mut self, table: Table) {
        self.present |= table.bit();
    }

    pub fn dropped(&mut self, table: Table) {
        self.present &= !table.bit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_shard_has_no_table_and_makes_each_once() {
        let mut schema = Schema::from_names([]);
        for table in Table::ALL {
            assert!(!schema.has(table), "{table:?}");
        }
        let create = schema.to_make(Table::Seen).unwrap();
        assert!(create.starts_with("CREATE TABLE IF NOT EXISTS seen "));
        schema.made(Table::Seen);
        assert_eq!(schema.to_make(Table::Seen), None);
        assert!(schema.has(Table::Seen));
        assert!(!schema.has(Table::Keys));
        assert!(schema.to_make(Table::Keys).is_some());
    }

    #[test]
    fn the_tables_of_earlier_versions_are_read_back() {
        let schema = Schema::from_names([
            "keys",
            "seen",
            "rejections",
            "failing",
            "alerts_sent",
            "sqlite_sequence",
            "counters",
            "counters_5m_20424",
        ]);
        for table in [
            Table::Keys,
            Table::Seen,
            Table::Failing,
            Table::AlertsSent,
            Table::LegacyRejections,
        ] {
            assert!(schema.has(table), "{table:?}");
        }
        assert!(!schema.has(Table::RejectionBatches));
        assert!(schema.counters.legacy);
        assert!(!schema
            .counters
            .to_read(super::super::window::Resolution::FiveMinutes, 0, u64::MAX)
            .is_empty());
    }

    #[test]
    fn the_legacy_rejections_are_never_made_and_are_forgotten_when_dropped() {
        let mut schema = Schema::from_names(["rejections"]);
        assert_eq!(Table::LegacyRejections.create_sql(), None);
        assert_eq!(Schema::default().to_make(Table::LegacyRejections), None);
        schema.dropped(Table::LegacyRejections);
        assert!(!schema.has(Table::LegacyRejections));
    }

    #[test]
    fn each_statement_makes_the_table_it_names() {
        for table in Table::ALL {
            if let Some(create) = table.create_sql() {
                let named = format!("CREATE TABLE IF NOT EXISTS {} (", table.name());
                assert!(create.starts_with(&named), "{create}");
            }
        }
    }
}
