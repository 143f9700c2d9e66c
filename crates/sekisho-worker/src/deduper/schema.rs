//! The object's tables, read from `sqlite_master` once per instance and kept up to date by this instance (the
//! only one writing them), so a call knows which tables exist without a query, and creates one only when it
//! first writes to it.

use std::cell::RefCell;
use std::collections::HashSet;

use serde::Deserialize;
use worker::{Result, SqlStorage};

use sekisho::dedup::buckets::{keeps_replies, Span};

/// Claims of earlier versions (with pending rows), read and purged until empty.
pub(super) const LEGACY_CLAIMS: &str = "event_claims";

#[derive(Deserialize)]
struct TableRow {
    name: String,
    sql: Option<String>,
}

/// The object's tables, read from `sqlite_master` once per instance and kept up to date by this instance (the
/// only one writing them).
#[derive(Default)]
pub(super) struct Schema {
    pub(super) spans: Vec<Span>,
    /// Claims tables of earlier versions, without the reply column (yet).
    pub(super) without_reply: HashSet<Span>,
    pub(super) tables: HashSet<String>,
}

#[derive(Default)]
pub(super) struct SchemaCache(RefCell<Option<Schema>>);

impl SchemaCache {
    /// Runs `f` on the schema, reading it first if this instance has not yet.
    pub(super) fn with<T>(&self, sql: &SqlStorage, f: impl FnOnce(&mut Schema) -> T) -> Result<T> {
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            let rows: Vec<TableRow> = sql
                .exec(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table'",
                    None,
                )?
                .to_array()?;
            let mut schema = Schema::default();
            for row in rows {
                match Span::parse(&row.name) {
                    Some(span) => {
                        if !row.sql.as_deref().is_some_and(keeps_replies) {
                            schema.without_reply.insert(span);
                        }
                        schema.spans.push(span);
                    }
                    None => {
                        schema.tables.insert(row.name);
                    }
                }
            }
            if schema.tables.contains("claims") || schema.tables.contains("seen") {
                migrate_oldest(sql, &mut schema);
            }
            *slot = Some(schema);
        }
        Ok(f(slot.get_or_insert_with(Schema::default)))
    }

    pub(super) fn has_table(&self, sql: &SqlStorage, name: &str) -> Result<bool> {
        self.with(sql, |schema| schema.tables.contains(name))
    }

    /// Drops a table (writing no row) and forgets it.
    pub(super) fn drop_table(&self, sql: &SqlStorage, name: &str) -> Result<()> {
        sql.exec(&format!("DROP TABLE IF EXISTS {name}"), None)?;
        self.with(sql, |schema| schema.tables.remove(name))?;
        Ok(())
    }

    pub(super) fn ensure_table(&self, sql: &SqlStorage, name: &str, create: &str) -> Result<()> {
        if !self.has_table(sql, name)? {
            sql.exec(create, None)?;
            self.with(sql, |schema| schema.tables.insert(name.to_owned()))?;
        }
        Ok(())
    }
}

/// Objects of the first versions kept claims in `claims` (with a rowid) and, before two-phase claims,
/// committed ids in `seen`: moved once into the legacy table, which is then read and purged like the others
/// (each statement fails harmlessly when its table is gone).
fn migrate_oldest(sql: &SqlStorage, schema: &mut Schema) {
    for statement in [
        "CREATE TABLE IF NOT EXISTS event_claims (id TEXT PRIMARY KEY, committed INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT OR IGNORE INTO event_claims (id, committed, at) SELECT id, committed, at FROM claims",
        "DROP TABLE IF EXISTS claims",
        "INSERT OR IGNORE INTO event_claims (id, committed, at) SELECT id, 1, seen_at FROM seen",
        "DROP TABLE IF EXISTS seen",
    ] {
        let _ = sql.exec(statement, None);
    }
    schema.tables.remove("claims");
    schema.tables.remove("seen");
    schema.tables.insert(LEGACY_CLAIMS.to_owned());
}
