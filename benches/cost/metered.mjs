// The built Worker in workerd (Miniflare) behind the cost meter (meter.js), with the durable path as
// wrangler.toml has it: the EVENTS queue and its dead-letter queue consumed by the same Worker, the three
// Durable Object classes with SQLite, the ATTACHMENTS bucket. Used by `make bench-cost` and tests/e2e/cost.test.mjs.
import { Miniflare } from "miniflare";
import { readFileSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");

/** `queues`: the producer bindings (EVENTS, EVENTS_2, …), each its own queue (`sekisho-events`, `sekisho-events-2`,
 * …) consumed by the Worker with the dead-letter queue of wrangler.toml; list them in EVENT_QUEUES to use them. */
export async function startMeteredGateway(bindings, { port, build = process.env.SEKISHO_BUILD ?? join(ROOT, "build"), queues = ["EVENTS"] } = {}) {
  if (!existsSync(join(build, "index.js"))) throw new Error(`${build}/index.js is missing: run \`make build\` first`);
  const mf = new Miniflare({
    host: "127.0.0.1",
    ...(port === undefined ? {} : { port }),
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: join(build, "meter.js"), contents: readFileSync(join(HERE, "meter.js"), "utf8") },
      { type: "ESModule", path: join(build, "index.js") },
      { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
    ],
    compatibilityDate: "2026-04-01",
    unsafeTriggerHandlers: true,
    // The Worker's log lines are not the meter's output.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
    bindings,
    r2Buckets: ["ATTACHMENTS"],
    queueProducers: Object.fromEntries(queues.map((binding) => [binding, { queueName: queueName(binding) }])),
    queueConsumers: {
      ...Object.fromEntries(queues.map((binding) => [queueName(binding), { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 10, deadLetterQueue: "sekisho-events-dlq" }])),
      "sekisho-events-dlq": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 100 },
    },
    durableObjects: {
      DEDUP: { className: "Deduper", useSQLite: true },
      DEAD_LETTERS: { className: "DeadLetters", useSQLite: true },
      METRICS: { className: "Metrics", useSQLite: true },
    },
  });
  await mf.ready;
  return mf;
}

function queueName(binding) {
  const n = /^EVENTS_(\d+)$/.exec(binding)?.[1];
  return n ? `sekisho-events-${n}` : "sekisho-events";
}

/** The meter's counts (see meter.js), through `base` (http://127.0.0.1:port). */
export async function readMeter(base) {
  return (await fetch(`${base}/__meter`)).json();
}

export async function resetMeter(base) {
  await (await fetch(`${base}/__meter/reset`, { method: "POST" })).arrayBuffer();
}

/** Waits until the counts have not moved for `quietMs` (claims committed, queue acked, metrics flushed). */
export async function quietMeter(base, quietMs, maxMs = 90000) {
  const deadline = Date.now() + maxMs;
  let last = JSON.stringify(await readMeter(base));
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const now = JSON.stringify(await readMeter(base));
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return JSON.parse(now);
    }
  }
  return JSON.parse(last);
}
