// The SQLite facts the de-duplication object's cost and upgrade path stand on, checked in workerd's own Durable
// Object storage (the cursors' `rowsWritten`, as billed): creating a table writes 2 rows, an insert into a
// `WITHOUT ROWID` table 1 — with a 2 KB reply in it too —, a `DELETE` one per row, a `DROP TABLE` none; a claims
// table of an earlier version (the id alone) takes the reply column by `ALTER TABLE … ADD COLUMN` for 1 row, and
// `sqlite_master` then shows exactly the text `sekisho::dedup::buckets::keeps_replies` looks for (tested natively
// on the same text).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";

const PROBE = `
export class Probe {
  constructor(state) { this.sql = state.storage.sql; }
  async fetch(request) {
    const steps = await request.json();
    return Response.json(steps.map(([query, ...bindings]) => {
      const cursor = this.sql.exec(query, ...bindings);
      const rows = cursor.toArray();
      return { rows, written: cursor.rowsWritten };
    }));
  }
}
export default { fetch(request, env) { return env.PROBE.get(env.PROBE.idFromName("facts")).fetch(request); } };
`;

test("SQLite in workerd: rows written by create, insert, delete, drop and the reply column's ALTER", async () => {
  const mf = new Miniflare({ modules: true, script: PROBE, compatibilityDate: "2026-04-01", durableObjects: { PROBE: { className: "Probe", useSQLite: true } } });
  try {
    const run = async (steps) => (await (await mf.dispatchFetch("http://probe/", { method: "POST", body: JSON.stringify(steps) })).json());
    const reply = JSON.stringify({ status: 200, content_type: "application/json", body: "x".repeat(2000), at_ms: 1 });
    const [oldTable, oldClaim, alter, schema, commit, rows] = await run([
      ["CREATE TABLE claims_1_2 (id TEXT PRIMARY KEY) WITHOUT ROWID"],
      ["INSERT OR IGNORE INTO claims_1_2 (id) VALUES (?)", "evt_old"],
      ["ALTER TABLE claims_1_2 ADD COLUMN reply TEXT"],
      ["SELECT sql FROM sqlite_master WHERE name = 'claims_1_2'"],
      ["INSERT OR REPLACE INTO claims_1_2 (id, reply) VALUES (?1, ?2)", "evt_new", reply],
      ["SELECT id, reply FROM claims_1_2 ORDER BY id"],
    ]);
    assert.equal(oldTable.written, 2, "a new table");
    assert.equal(oldClaim.written, 1, "a claim");
    assert.equal(alter.written, 1, "the reply column added to a table of an earlier version");
    assert.equal(schema.rows[0].sql, "CREATE TABLE claims_1_2 (id TEXT PRIMARY KEY, reply TEXT) WITHOUT ROWID");
    assert.equal(commit.written, 1, "a claim with its 2 KB reply is one row");
    assert.deepEqual(rows.rows, [{ id: "evt_new", reply }, { id: "evt_old", reply: null }]);

    const inserts = Array.from({ length: 100 }, (_, i) => ["INSERT INTO claims_2_3 (id, reply) VALUES (?1, NULL)", `evt_${i}`]);
    const results = await run([
      ["CREATE TABLE IF NOT EXISTS claims_2_3 (id TEXT PRIMARY KEY, reply TEXT) WITHOUT ROWID"],
      ...inserts,
      ["DELETE FROM claims_2_3 WHERE id < 'evt_5'"],
      ["SELECT COUNT(*) AS n FROM claims_2_3"],
      ["DROP TABLE IF EXISTS claims_2_3"],
      ["DROP TABLE IF EXISTS claims_1_2"],
    ]);
    const [create, ...rest] = results;
    const [deleted, left, drop2, drop1] = rest.slice(100);
    assert.equal(create.written, 2);
    assert.ok(rest.slice(0, 100).every((r) => r.written === 1), "one row per claim");
    assert.equal(deleted.written, 100 - left.rows[0].n, "a DELETE writes every row it removes");
    assert.equal(deleted.written, 45, "evt_0–evt_4 and evt_10–evt_49");
    assert.equal(drop2.written, 0, "dropping a table writes nothing");
    assert.equal(drop1.written, 0);
  } finally {
    await mf.dispose();
  }
});
