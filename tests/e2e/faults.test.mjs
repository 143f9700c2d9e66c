// The short version of the fault-injection run (`node tests/e2e/faults.mjs 600 16` is the long one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { runFaults } from "./faults.mjs";

test("150 signed requests, 10% duplicates, backends flapping 200/500/302/hang and one refusing connections: every accepted event exactly delivered or dead-lettered", async () => {
  const r = await runFaults({ requests: 150, concurrency: 16, settleMs: 120000, log: (line) => console.log(line) });
  assert.equal(r.dead_letter_error, null, "the admin API pages the dead letters");
  assert.deepEqual(Object.keys(r.statuses), ["200"], `provider answers: ${JSON.stringify(r.statuses)}`);
  assert.equal(r.accepted, r.distinct, "every distinct event accepted");
  assert.equal(r.redirects_followed, 0, "no redirect followed");
  assert.equal(r.missing, 0, `accepted events neither delivered nor dead-lettered (e.g. ${r.missing_sample})`);
  assert.equal(r.delivered_and_dead, 0, `events both delivered and dead-lettered (e.g. ${r.both_sample})`);
  assert.equal(r.unexpected, 0);
  assert.equal(r.delivered + r.dead, r.accepted, "delivered ∪ dead = accepted");
  assert.equal(r.unverified, 0);
  assert.equal(r.ids_not_unique, 0, "one webhook-id per event");
  assert.ok(r.dead > 0 && r.delivered > 0, "the run exercised both outcomes");
  // Reported, not asserted: the queue delivers at least once, so a rare second 2xx is allowed by the contract.
  console.log(`events acknowledged (2xx) more than once: ${r.acked_more_than_once} (expected 0 in this setup)`);
});
