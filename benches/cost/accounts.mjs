// The load run of the capacity model: LINE requests (one event each) spread over 50 accounts, through the
// metered Worker (benches/cost/meter.js), counting the requests every Durable Object receives. It fails
// unless every event is delivered exactly once and no object receives more than its share: a de-duplication
// shard at most 3× the mean of its class (16 per account, chosen by event id), and no object a share of all
// requests that grows with them (a Metrics shard takes one call per isolate and flush interval).
//   node benches/cost/accounts.mjs [requests=1000] [accounts=50]    env: SEKISHO_BUILD=<dir>
import { startBackend, freePort, until, SIGNING_SECRET, lineBody, lineSign } from "../../tests/e2e/harness.mjs";
import { startMeteredGateway, resetMeter, quietMeter } from "./metered.mjs";

const REQUESTS = Number(process.argv[2] ?? 1000);
const ACCOUNTS = Number(process.argv[3] ?? 50);
const CONCURRENCY = 16;
const secret = (a) => `load-secret-${a}`;

const bindings = { BACKEND_URL: "", BACKEND_SIGNING_SECRET: SIGNING_SECRET };
for (let a = 0; a < ACCOUNTS; a++) bindings[`LINE_ACME${a}_CHANNEL_SECRET`] = secret(a);
const backend = await startBackend();
bindings.BACKEND_URL = `${backend.url}/events`;
const port = await freePort();
const mf = await startMeteredGateway(bindings, { port });
const base = `http://127.0.0.1:${port}`;
let ok = false;
try {
  await resetMeter(base);
  let next = 0;
  const statuses = {};
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      const i = next++;
      const a = i % ACCOUNTS;
      const body = lineBody(`01LOAD${String(i).padStart(20, "0")}`, `load ${i}`);
      const res = await fetch(`${base}/line/acme${a}`, { method: "POST", headers: { "content-type": "application/json", "x-line-signature": lineSign(secret(a), body) }, body });
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  await until(() => new Set(backend.received.map((d) => d.headers["webhook-id"])).size >= REQUESTS, 120000, "every event delivered");
  const counts = await quietMeter(base, 7000);
  const objects = await (await fetch(`${base}/__meter/objects`)).json();
  const ids = backend.received.map((d) => d.headers["webhook-id"]);
  const byClass = {};
  for (const [key, calls] of Object.entries(objects)) {
    const [cls] = key.split(" ");
    (byClass[cls] ??= []).push([key, calls]);
  }
  console.log(`${REQUESTS} requests over ${ACCOUNTS} accounts in ${seconds.toFixed(1)} s, statuses ${JSON.stringify(statuses)}; ${ids.length} deliveries, ${new Set(ids).size} distinct`);
  const checks = [];
  for (const [cls, list] of Object.entries(byClass)) {
    const calls = list.map(([, c]) => c);
    const total = calls.reduce((a, b) => a + b, 0);
    const mean = total / calls.length;
    const [maxKey, max] = list.reduce((m, e) => (e[1] > m[1] ? e : m));
    console.log(`${cls}: ${list.length} objects, ${total} requests, mean ${mean.toFixed(1)}, max ${max} (${maxKey}), max share of all ${REQUESTS} provider requests ${(max / REQUESTS * 100).toFixed(1)} %`);
    if (cls === "Deduper") checks.push([`${cls} max ≤ 3× mean`, max <= 3 * mean]);
    checks.push([`${cls}: no object takes more than 5 % of the requests`, max <= 0.05 * REQUESTS]);
  }
  checks.push(["every event delivered exactly once", ids.length === REQUESTS && new Set(ids).size === REQUESTS]);
  checks.push(["no 5xx", Object.keys(statuses).every((s) => Number(s) < 500)]);
  for (const [what, pass] of checks) console.log(`${pass ? "ok  " : "FAIL"} ${what}`);
  console.log(`counts ${JSON.stringify(counts)}`);
  ok = checks.every(([, pass]) => pass);
} finally {
  await mf.dispose();
  await backend.close();
}
process.exit(ok ? 0 : 1);
