// The small version of the load run (`make bench-load` runs 2,000 requests at 32 concurrent).
import { test } from "node:test";
import assert from "node:assert/strict";
import { runLoad } from "./load.mjs";

test("300 signed requests over three channels, 10% duplicates, 16 concurrent: no 5xx, exactly the distinct events arrive", async () => {
  const result = await runLoad({ requests: 300, concurrency: 16, log: (line) => console.log(line) });
  assert.equal(result.server_errors, 0);
  assert.deepEqual(Object.keys(result.statuses), ["200"]);
  assert.equal(result.received_distinct, result.distinct);
  assert.equal(result.received, result.distinct, "no duplicate reached the backend");
  assert.equal(result.unverified, 0);
});
