// `make bench-registry`: does the registry's size change what a request costs? The built Worker in workerd with
// N registry accounts loaded into the local KV (sealed exactly as the Worker seals them), the same signed LINE
// traffic for N = 10 and N = 100,000: acknowledgement p50/p99 and workerd's resident memory, side by side as a
// ratio. Then, through a counting wrapper around the ACCOUNTS binding, the storage reads per request for warm,
// cold and unknown-account traffic. Bounded: a fixed number of requests, then it stops.
//
//   node benches/worker/registry.mjs [large=100000] [requests=2000]
import { createCipheriv, createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, startBackend, durableOptions, lineBody, lineSign, SIGNING_SECRET } from "../../tests/e2e/harness.mjs";

const LARGE = Number(process.argv[2] ?? 100_000);
const REQUESTS = Number(process.argv[3] ?? 2000);
const ACTIVE = 10; // accounts the traffic goes to: the same ten in both registries, so only the size differs
const ROUNDS = 5;
const CONCURRENCY = 16;
const SEALING_KEY = randomBytes(32);
const KEY_ID = createHash("sha256").update(SEALING_KEY).digest("hex").slice(0, 8);
const secretOf = (i) => createHash("sha256").update(`bench-${i}`).digest("hex").slice(0, 32);
const fingerprint = (v) => createHash("sha256").update(v).digest("hex").slice(0, 8);

/** A record as `sekisho::registry::record` stores it: AES-256-GCM, nonce ‖ ciphertext ‖ tag, bound to its field. */
function record(i) {
  const account = `tenant-${i}`;
  const secret = secretOf(i);
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", SEALING_KEY, nonce);
  cipher.setAAD(Buffer.from(`sekisho/registry/v1/line/${account}/CHANNEL_SECRET`));
  const sealed = Buffer.concat([nonce, cipher.update(secret), cipher.final(), cipher.getAuthTag()]).toString("base64");
  return [`a/line/${account}`, JSON.stringify({
    channel: "line", account, version: 1, created_at_ms: 1, updated_at_ms: 1,
    fields: { CHANNEL_SECRET: { secret: { values: [{ fingerprint: fingerprint(secret), sealed: { key: KEY_ID, sealed } }] } } },
  })];
}

const KV_WRAPPER = `
class CountedKv {
  constructor(env) { this.real = env.REAL; this.control = env.CONTROL; }
  async count(op, key) { await this.control.fetch("http://count/", { method: "POST", body: JSON.stringify({ op, key }) }); }
  async get(key, o) { await this.count("get", key); return this.real.get(key, o); }
  async getWithMetadata(key, o) { await this.count("get", key); return this.real.getWithMetadata(key, o); }
  async put(key, v, o) { await this.count("put", key); return this.real.put(key, v, o); }
  async list(o) { await this.count("list", o?.prefix ?? ""); return this.real.list(o); }
  async delete(key) { await this.count("delete", key); return this.real.delete(key); }
}
export default function (env) { return new CountedKv(env); }`;

function gatewayOptions(backend, { counted = false, ops = [] } = {}) {
  const build = process.env.SEKISHO_BUILD ?? join(ROOT, "build");
  const durable = durableOptions({ metrics: false });
  const gateway = {
    name: "sekisho",
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: join(build, "index.js") },
      { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
    ],
    compatibilityDate: "2026-04-01",
    bindings: {
      BACKEND_URL: `${backend.url}/events`, BACKEND_SIGNING_SECRET: SIGNING_SECRET,
      ACCOUNTS_SEALING_KEY: SEALING_KEY.toString("base64"),
    },
    ...durable,
    durableObjects: { ...durable.durableObjects, ACCOUNT_WRITER: { className: "AccountWriter", useSQLite: true } },
  };
  if (!counted) {
    return {
      workers: [
        { ...gateway, kvNamespaces: { ACCOUNTS: "bench-accounts" } },
        { name: "loader", modules: true, script: LOADER, kvNamespaces: { KV: "bench-accounts" } },
      ],
    };
  }
  return {
    workers: [
      { ...gateway, wrappedBindings: { ACCOUNTS: "kv-count" } },
      {
        name: "kv-count", modules: true, script: KV_WRAPPER, kvNamespaces: { REAL: "bench-accounts" },
        serviceBindings: { async CONTROL(req) { ops.push(await req.json()); return new Response("ok"); } },
      },
    ],
  };
}

/** Loads n records through a loader Worker bound to the same namespace: batches of 500 puts inside workerd. */
async function load(mf, n) {
  const loader = await mf.getWorker("loader");
  const started = Date.now();
  for (let from = 0; from < n; from += 500) {
    const batch = [];
    for (let i = from; i < Math.min(n, from + 500); i++) batch.push(record(i));
    const res = await loader.fetch("http://loader/", { method: "POST", body: JSON.stringify(batch) });
    if (res.status !== 200) throw new Error(`loader: ${res.status} ${await res.text()}`);
  }
  return Date.now() - started;
}

const LOADER = `export default { async fetch(request, env) {
  const batch = await request.json();
  await Promise.all(batch.map(([key, value]) => env.KV.put(key, value)));
  return new Response("ok");
} };`;

async function send(mf, account, secret, id) {
  const body = lineBody(id, "bench");
  const started = performance.now();
  const res = await mf.dispatchFetch(`http://gate.test/line/${account}`, {
    method: "POST", headers: { "x-line-signature": lineSign(secret, body) }, body,
  });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - started };
}

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Resident memory (MB) of each workerd process this bench started (descendants of this process), by pid. */
function workerdRss() {
  try {
    const rows = execFileSync("ps", ["-eo", "pid=,ppid=,rss=,args="], { encoding: "utf8" })
      .trim().split("\n").map((line) => {
        const [pid, ppid, rss, ...args] = line.trim().split(/\s+/);
        return { pid: Number(pid), ppid: Number(ppid), rss: Number(rss), args: args.join(" ") };
      });
    const mine = new Set([process.pid]);
    for (let grew = true; grew;) {
      grew = false;
      for (const row of rows) if (mine.has(row.ppid) && !mine.has(row.pid)) { mine.add(row.pid); grew = true; }
    }
    return new Map(rows.filter((r) => mine.has(r.pid) && /workerd/.test(r.args)).map((r) => [r.pid, r.rss / 1024]));
  } catch {
    return new Map();
  }
}

async function start(n) {
  const backend = await startBackend();
  const mf = new Miniflare(gatewayOptions(backend));
  await mf.ready;
  const loadMs = await load(mf, n);
  // Warm-up: one request per active account (each its one cold read).
  for (let i = 0; i < ACTIVE; i++) await send(mf, `tenant-${i}`, secretOf(i), `01HWARM${n}x${i}`);
  return { n, mf, backend, loadMs, latencies: [], statuses: new Map(), issued: 0 };
}

/** One round of `count` requests on one gateway, 16 at a time; returns the round's p50. */
async function round(gw, count) {
  const latencies = [];
  let issued = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (issued < count) {
      issued++;
      const k = gw.issued++;
      const i = k % ACTIVE;
      const { status, ms } = await send(gw.mf, `tenant-${i}`, secretOf(i), `01HB${gw.n}x${k}`);
      latencies.push(ms);
      gw.statuses.set(status, (gw.statuses.get(status) ?? 0) + 1);
    }
  }));
  gw.latencies.push(...latencies);
  latencies.sort((a, b) => a - b);
  return percentile(latencies, 50);
}

async function stop(gw) {
  gw.latencies.sort((a, b) => a - b);
  const result = {
    n: gw.n, loadMs: gw.loadMs, p50: percentile(gw.latencies, 50), p99: percentile(gw.latencies, 99),
    statuses: Object.fromEntries(gw.statuses),
  };
  await gw.mf.dispose();
  await gw.backend.close();
  return result;
}

async function reads() {
  const backend = await startBackend();
  const ops = [];
  const mf = new Miniflare(gatewayOptions(backend, { counted: true, ops }));
  await mf.ready;
  const kv = await mf.getKVNamespace("REAL", "kv-count");
  for (let i = 0; i < 20; i++) {
    const [key, value] = record(i);
    await kv.put(key, value);
  }
  const gets = () => ops.filter((o) => o.op === "get").length;
  const measure = async (count, make) => {
    const before = gets();
    for (let k = 0; k < count; k++) await make(k);
    return (gets() - before) / count;
  };
  const cold = await measure(20, (k) => send(mf, `tenant-${k}`, secretOf(k), `01HCOLD${k}`));
  const warm = await measure(200, (k) => send(mf, `tenant-${k % 20}`, secretOf(k % 20), `01HWRM${k}`));
  const unknown = await measure(200, (k) => send(mf, "nobody", secretOf(0), `01HUNK${k}`));
  await mf.dispose();
  await backend.close();
  return { cold, warm, unknown };
}

// Both registries side by side, rounds interleaved, so that whatever else the machine does falls on both alike.
const smallGw = await start(10);
const smallPids = workerdRss();
const largeGw = await start(LARGE);
const largePids = new Map([...workerdRss()].filter(([pid]) => !smallPids.has(pid)));
const ratios = [];
for (let r = 0; r < ROUNDS; r++) {
  const a = await round(smallGw, REQUESTS / ROUNDS);
  const b = await round(largeGw, REQUESTS / ROUNDS);
  ratios.push(b / a);
}
ratios.sort((a, b) => a - b);
const rssAfter = workerdRss(); // before the gateways stop
const small = await stop(smallGw);
const large = await stop(largeGw);
const perRequest = await reads();
const row = (r) => `| ${r.n.toLocaleString("en")} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${JSON.stringify(r.statuses)} | ${(r.loadMs / 1000).toFixed(1)} |`;
console.log(`registry bench, ${new Date().toISOString()}, ${REQUESTS} signed LINE requests per registry over the same ${ACTIVE} accounts, ${CONCURRENCY} concurrent, ${ROUNDS} interleaved rounds`);
console.log("| registry accounts | ack p50 ms | ack p99 ms | statuses | load s |");
console.log("|---|---|---|---|---|");
console.log(row(small));
console.log(row(large));
console.log(`median per-round p50 ratio ${LARGE.toLocaleString("en")} / 10: ${ratios[Math.floor(ratios.length / 2)].toFixed(2)}× (rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")}); whole-run p99 ratio ${(large.p99 / small.p99).toFixed(2)}×`);
const sum = (pids) => [...pids.keys()].reduce((total, pid) => total + (rssAfter.get(pid) ?? 0), 0);
console.log(`workerd resident memory after the run: ${sum(smallPids).toFixed(0)} MB (10 accounts), ${sum(largePids).toFixed(0)} MB (${LARGE.toLocaleString("en")} accounts; the local KV store lives in the same process)`);
console.log(`KV reads per request: warm ${perRequest.warm.toFixed(3)}, cold ${perRequest.cold.toFixed(3)}, unknown account ${perRequest.unknown.toFixed(3)}`);
