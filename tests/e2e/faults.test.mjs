// The short version of the fault-injection run (`node tests/e2e/faults.mjs 600 16` is the long one).
import { test } from "node:test";
import assert from "node:assert/strict";
import { runFaults } from "./faults.mjs";

test("150 signed requests, 10% duplicates, backends flapping 200/500/302/hang and one refusing connections: every accepted event exactly delivered or dead-lettered", async () => {
  const r = await runFaults({ requests: 150, concurrency: 16, settleMs: 150000, log: (line) => console.log(line) });
  // Every violation at once, so one run shows all that is wrong.
  const violations = [];
  const expect = (ok, what) => ok || violations.push(what);
  expect(r.dead_letter_error === null, `the admin API pages the dead letters: ${r.dead_letter_error}`);
  expect(Object.keys(r.statuses).join() === "200", `provider answers all 200: ${JSON.stringify(r.statuses)}`);
  expect(r.accepted === r.distinct, `every distinct event accepted: ${r.accepted} of ${r.distinct}`);
  expect(r.redirects_followed === 0, `no redirect followed: ${r.redirects_followed} requests reached the Location`);
  expect(r.stopped === "accounted_for", `the run ended ${r.stopped} (last activity ${r.last_activity_s_ago} s before)`);
  expect(r.missing === 0, `${r.missing} accepted events neither delivered nor dead-lettered (e.g. ${r.missing_sample})`);
  expect(r.delivered_and_dead === 0, `${r.delivered_and_dead} events both delivered and dead-lettered (e.g. ${r.both_sample})`);
  expect(r.unexpected === 0, `${r.unexpected} delivered or dead events that were never accepted`);
  expect(r.delivered + r.dead === r.accepted, `delivered ${r.delivered} + dead ${r.dead} = accepted ${r.accepted}`);
  expect(r.unverified === 0, `${r.unverified} unverified attempts`);
  expect(r.ids_not_unique === 0, `${r.ids_not_unique} events with more than one webhook-id`);
  expect(r.dead > 0 && r.delivered > 0, `the run exercised both outcomes (delivered ${r.delivered}, dead ${r.dead})`);
  assert.deepEqual(violations, [], "fault-run violations");
  // Reported, not asserted: the queue delivers at least once, so a rare second 2xx is allowed by the contract.
  console.log(`events acknowledged (2xx) more than once: ${r.acked_more_than_once} (expected 0 in this setup)`);
});
