// `make bench-cost`: what an accepted event costs at Cloudflare's list prices. The built Worker runs in workerd
// (Miniflare: queues, Durable Objects with SQLite, R2) behind benches/cost/meter.js, which counts every billable
// operation through wrapped bindings. Bounded workloads, one after the other, each measured from a zeroed meter
// until it is quiet (every event delivered, metrics flushed):
//   line-1        LINE, one text event per request
//   line-20       LINE, 20 events per request (16 KiB)
//   wechat        WeChat safe mode (AES), one message
//   slack-reply   a Slack slash command whose backend answers the reply call
//   email-2att    an e-mail with a PDF and a PNG attachment (R2)
//   retries-10    LINE one event, then 10 % of the requests again (provider retries: duplicates)
//   forged-1      LINE one event with 1 % forged signatures
//   backend-500   LINE one event; the backend answers 500 once every 20 events (then accepts the retry)
//   forged-only   forged LINE requests only: what an attacker makes the deployment pay
// Each run asserts exactly-once delivery (every accepted event answered 2xx by the backend exactly once, no other
// event) or exits 1, so a cheaper run that loses events cannot count. Prints operations per accepted event and
// $ per million accepted events per workload and in total, next to the floor (one Worker request per provider
// request, one consumer invocation per 10 events, one Durable Object request per request with events, one row
// written per event, three queue operations per 64 KB of event, the attachments' R2 writes) and Hookdeck's and
// Svix's published per-event prices. CPU is the workerd process's utime+stime (all of it: Worker, objects,
// queue broker glue), an upper bound.
//   node benches/cost/bench.mjs [scale=1]   env: SEKISHO_BUILD=<dir> (another build), COST_ONLY=line-1,wechat,
//                                          COST_JSON=<file> (also write the results as JSON)
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createHmac } from "node:crypto";
import { spawnSync } from "node:child_process";
import { startBackend, freePort, until, SIGNING_SECRET, lineSign } from "../../tests/e2e/harness.mjs";
import { startMeteredGateway, resetMeter, quietMeter } from "./metered.mjs";
import { lineRequest, wechatRequest } from "../worker/requests.mjs";
import { LINE_SECRETS, WX } from "../worker/settings.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const PRICES = JSON.parse(readFileSync(join(HERE, "prices.json"), "utf8"));
const SCALE = Number(process.argv[2] ?? 1);
const BUILD = process.env.SEKISHO_BUILD ?? join(ROOT, "build");
const SLACK_SECRET = "bench-cost-slack-signing-secret";
const CONCURRENCY = 8;
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const n = (count) => Math.max(1, Math.round(count * SCALE));

// ---------------------------------------------------------------------------------------------- requests

let tagSeq = 36 * 36;
const nextTag = () => (tagSeq++).toString(36).slice(-2);

function slackCommand(i, tag) {
  const body = new URLSearchParams({
    token: "x", team_id: "T1", team_domain: "acme", channel_id: "C1", channel_name: "general", user_id: "U1",
    user_name: "suzuki", command: "/ticket", text: `order ${tag}-${i}`, response_url: "https://hooks.slack.com/commands/T1/1/x",
    trigger_id: `trigger-${tag}-${i}`,
  }).toString();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = "v0=" + createHmac("sha256", SLACK_SECRET).update(`v0:${timestamp}:${body}`).digest("hex");
  return { path: "/slack/bench", headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp, "x-slack-signature": signature }, body };
}

const EML = readFileSync(join(ROOT, "fixtures", "email", "attachments.eml"), "utf8");
function emailRequest(i, tag) {
  const raw = EML.replace(/^Message-ID: <[^>]+>/m, `Message-ID: <bench-${tag}-${i}@example.co.jp>`);
  const query = new URLSearchParams({ from: "ichiro.suzuki@example.co.jp", to: "support@example.com" });
  return { path: `/cdn-cgi/handler/email?${query}`, headers: {}, body: raw, email: true };
}

function forged(req) {
  return { ...req, headers: { ...req.headers, "x-line-signature": lineSign("not-the-secret", req.body) }, forged: true };
}

/** Each workload: the requests in the order they are sent (`after`: sent once the first ones are delivered). */
const WORKLOADS = {
  "line-1": () => ({ first: Array.from({ length: n(200) }, (_, i) => lineRequest("line-1", WT.tag, i)), events: 1 }),
  "line-20": () => ({ first: Array.from({ length: n(20) }, (_, i) => lineRequest("line-20", WT.tag, i)), events: 20 }),
  wechat: () => ({ first: Array.from({ length: n(200) }, (_, i) => wechatRequest(WT.tag, i)), events: 1 }),
  "slack-reply": () => ({ first: Array.from({ length: n(200) }, (_, i) => slackCommand(i, WT.tag)), events: 1 }),
  "email-2att": () => ({ first: Array.from({ length: n(30) }, (_, i) => emailRequest(i, WT.tag)), events: 1 }),
  "retries-10": () => {
    const first = Array.from({ length: n(200) }, (_, i) => lineRequest("line-1", WT.tag, i));
    return { first, after: first.filter((_, i) => i % 10 === 3), events: 1 };
  },
  "forged-1": () => ({
    first: Array.from({ length: n(400) }, (_, i) => (i % 100 === 42 ? forged(lineRequest("line-1", WT.tag, i)) : lineRequest("line-1", WT.tag, i))),
    events: 1,
  }),
  "backend-500": () => ({ first: Array.from({ length: n(200) }, (_, i) => lineRequest("line-1", WT.tag, i)), events: 1, flaky: true }),
  "forged-only": () => ({ first: Array.from({ length: n(200) }, (_, i) => forged(lineRequest("line-1", WT.tag, i))), events: 1 }),
};
const WT = { tag: "aa" };

// ---------------------------------------------------------------------------------------------- the gateway

function workerdPids() {
  const parents = new Map();
  const names = new Map();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      names.set(pid, /^Name:\s*(\S+)/m.exec(status)?.[1]);
      parents.set(pid, /^PPid:\s*(\d+)/m.exec(status)?.[1]);
    } catch {
      // gone
    }
  }
  const below = (pid) => {
    for (let p = parents.get(pid); p && p !== "0"; p = parents.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  return [...names].filter(([pid, name]) => name === "workerd" && below(pid)).map(([pid]) => pid);
}

function cpuTicks(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return total;
}

async function startGatewayFor(backend, port) {
  return startMeteredGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    REPLY_URL: `${backend.url}/reply`,
    DELIVERY_BASE_DELAY_S: "1",
    LINE_BENCH_CHANNEL_SECRET: LINE_SECRETS.join(","),
    WECHAT_BENCH_TOKEN: WX.token,
    WECHAT_BENCH_ENCODING_AES_KEY: WX.aesKeys.join(" "),
    WECHAT_BENCH_APP_ID: WX.appId,
    SLACK_BENCH_SIGNING_SECRET: SLACK_SECRET,
    EMAIL_SUPPORT_ADDRESS: "support@example.com",
    ADMIN_TOKEN: "bench-cost-admin-token-0123456789abcdef",
  }, { port, build: BUILD });
}

// ---------------------------------------------------------------------------------------------- one run

async function send(base, requests, acks = []) {
  const statuses = {};
  let next = 0;
  async function lane() {
    while (next < requests.length) {
      const r = requests[next++];
      const started = performance.now();
      const res = await fetch(`${base}${r.path}`, { method: "POST", headers: r.headers, body: r.body });
      await res.arrayBuffer();
      acks.push(performance.now() - started);
      const key = r.forged ? `forged:${res.status}` : String(res.status);
      statuses[key] = (statuses[key] ?? 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return statuses;
}

async function runWorkload(name, base, backend, pids) {
  WT.tag = nextTag();
  const workload = WORKLOADS[name]();
  backend.flaky = Boolean(workload.flaky);
  const receivedBefore = backend.received.length;
  await resetMeter(base);
  const cpu0 = cpuTicks(pids);
  const acks = [];
  const statuses = await send(base, workload.first, acks);
  const accepted = workload.first.filter((r) => !r.forged).length;
  const expectedEvents = accepted * workload.events;
  const delivered = () => {
    const ok = new Map();
    for (const d of backend.received.slice(receivedBefore)) {
      if (d.path !== "/events") continue;
      const id = d.headers["webhook-id"];
      if (d.answerStatus >= 200 && d.answerStatus < 300) ok.set(id, (ok.get(id) ?? 0) + 1);
    }
    return ok;
  };
  await until(() => delivered().size >= expectedEvents, 120000, `${name}: ${expectedEvents} events delivered`);
  if (workload.after) {
    await sleep(300);
    const again = await send(base, workload.after);
    for (const [k, v] of Object.entries(again)) statuses[`again:${k}`] = (statuses[`again:${k}`] ?? 0) + v;
  }
  const counts = await quietMeter(base, 7000);
  const cpuMs = ((cpuTicks(pids) - cpu0) * 1000) / CLK_TCK;
  const ok = delivered();
  const twice = [...ok.values()].filter((c) => c !== 1).length;
  const exact = ok.size === expectedEvents && twice === 0;
  const bad = Object.entries(statuses).filter(([k]) => !k.startsWith("forged:") && !/^(again:)?2\d\d$/.test(k));
  acks.sort((a, b) => a - b);
  const at = (q) => acks[Math.min(acks.length - 1, Math.floor(q * acks.length))] ?? NaN;
  const ack_ms = { p50: at(0.5), p99: at(0.99) };
  return { name, requests: workload.first.length + (workload.after?.length ?? 0), accepted_events: expectedEvents, statuses, counts, cpu_ms: cpuMs, ack_ms, exact: exact && bad.length === 0, delivered: ok.size, delivered_twice: twice, workload };
}

// ---------------------------------------------------------------------------------------------- pricing

function sumMatching(counts, re) {
  return Object.entries(counts).filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
}

/** The billable units of a run, by price line. */
function units(run) {
  const c = run.counts;
  return {
    worker_requests: (c["worker.fetch"] ?? 0) + (c["worker.email"] ?? 0) + (c["worker.queue_batches"] ?? 0),
    cpu_ms: run.cpu_ms,
    do_requests: sumMatching(c, /^do\..*\.(requests|alarms)$/),
    rows_read: sumMatching(c, /^sql\..*\.rows_read$/),
    rows_written: sumMatching(c, /^sql\..*\.rows_written$/),
    queue_ops: sumMatching(c, /^queue\..*\.(writes|reads|deletes)$/),
    kv_reads: c["kv.reads"] ?? 0,
    kv_writes: (c["kv.writes"] ?? 0) + (c["kv.deletes"] ?? 0) + (c["kv.lists"] ?? 0),
    r2_class_a: c["r2.class_a"] ?? 0,
    r2_class_b: c["r2.class_b"] ?? 0,
    outbound: c["outbound.fetch"] ?? 0,
  };
}

/** The floor of the same workload: the IO no implementation of this design can avoid. */
function floorUnits(run) {
  const { workload } = run;
  const requests = workload.first.length;
  const accepted = run.accepted_events;
  const withEvents = workload.first.filter((r) => !r.forged).length;
  const queueChunks = Math.max(1, Math.ceil((run.counts["bytes.queue_written"] ?? 0) / Math.max(1, run.counts["queue.EVENTS.writes"] ?? 1) / 65536));
  return {
    worker_requests: requests + (workload.after?.length ?? 0) + Math.ceil(accepted / 10),
    cpu_ms: 0,
    do_requests: withEvents + (workload.after?.length ?? 0),
    rows_read: 0,
    rows_written: accepted,
    queue_ops: 3 * accepted * queueChunks,
    kv_reads: 0,
    kv_writes: 0,
    r2_class_a: run.name === "email-2att" ? 2 * accepted : 0,
    r2_class_b: 0,
    outbound: accepted,
  };
}

function dollars(u) {
  return Object.entries(u).reduce((a, [k, v]) => a + (v * (PRICES.per_million[k] ?? 0)) / 1e6, 0);
}

const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "—");

function report(runs) {
  const lines = [];
  const header = "| workload | accepted events | Worker req | DO req | rows written | rows read | queue ops | R2 A/B | KV | outbound | CPU ms | $/M events | floor $/M | × floor |";
  lines.push(header, header.replace(/[^|]+/g, "---"));
  const total = { units: {}, floor: {}, events: 0 };
  for (const run of runs) {
    const u = units(run);
    const f = floorUnits(run);
    const per = (x) => (run.accepted_events ? x / run.accepted_events : NaN);
    const cost = run.accepted_events ? (dollars(u) / run.accepted_events) * 1e6 : NaN;
    const floor = run.accepted_events ? (dollars(f) / run.accepted_events) * 1e6 : NaN;
    const perRequest = run.accepted_events ? "" : " (per request)";
    const div = run.accepted_events || run.requests;
    lines.push(`| ${run.name}${run.exact ? "" : " **NOT EXACT**"}${perRequest} | ${run.accepted_events} | ${fmt(u.worker_requests / div)} | ${fmt(u.do_requests / div)} | ${fmt(u.rows_written / div)} | ${fmt(u.rows_read / div, 1)} | ${fmt(u.queue_ops / div)} | ${fmt(u.r2_class_a / div)}/${fmt(u.r2_class_b / div)} | ${fmt((u.kv_reads + u.kv_writes) / div)} | ${fmt(u.outbound / div)} | ${fmt(u.cpu_ms / div)} | ${run.accepted_events ? fmt(cost) : `$${fmt((dollars(u) / run.requests) * 1e6)}/M requests`} | ${fmt(floor)} | ${fmt(cost / floor)} |`);
    void per;
    if (run.accepted_events) {
      for (const [k, v] of Object.entries(u)) total.units[k] = (total.units[k] ?? 0) + v;
      for (const [k, v] of Object.entries(f)) total.floor[k] = (total.floor[k] ?? 0) + v;
      total.events += run.accepted_events;
    }
  }
  const tu = total.units;
  const tc = (dollars(tu) / total.events) * 1e6;
  const tf = (dollars(total.floor) / total.events) * 1e6;
  lines.push(`| **total** | ${total.events} | ${fmt(tu.worker_requests / total.events)} | ${fmt(tu.do_requests / total.events)} | ${fmt(tu.rows_written / total.events)} | ${fmt(tu.rows_read / total.events, 1)} | ${fmt(tu.queue_ops / total.events)} | ${fmt(tu.r2_class_a / total.events)}/${fmt(tu.r2_class_b / total.events)} | ${fmt((tu.kv_reads + tu.kv_writes) / total.events)} | ${fmt(tu.outbound / total.events)} | ${fmt(tu.cpu_ms / total.events)} | ${fmt(tc)} | ${fmt(tf)} | ${fmt(tc / tf)} |`);
  lines.push("", `For scale, per million events: Hookdeck ≈ $${PRICES.for_scale_per_million_events.hookdeck}, Svix overage $${PRICES.for_scale_per_million_events.svix} (prices of ${PRICES.date}, sources in benches/cost/prices.json).`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------- main

const backend = await startBackend({
  respond: (entry, count) => {
    if (entry.path === "/reply") return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ reply: { text: "受け付けました" } }) };
    backend.events = (backend.events ?? 0) + 1;
    const status = backend.flaky && entry.path === "/events" && !backend.failedOnce?.has(entry.headers["webhook-id"]) && backend.events % 20 === 0 ? 500 : 204;
    if (status === 500) (backend.failedOnce ??= new Set()).add(entry.headers["webhook-id"]);
    entry.answerStatus = status;
    void count;
    return status;
  },
});
const port = await freePort();
const mf = await startGatewayFor(backend, port);
const base = `http://127.0.0.1:${port}`;
const pids = workerdPids();
const only = process.env.COST_ONLY?.split(",");
const runs = [];
try {
  // Warm-up (compiles the Wasm, creates the objects' tables), not measured.
  await send(base, [lineRequest("line-1", "zz", 0)]);
  await sleep(1500);
  for (const name of Object.keys(WORKLOADS)) {
    if (only && !only.includes(name)) continue;
    const run = await runWorkload(name, base, backend, pids);
    runs.push(run);
    console.error(`${name}: ${run.exact ? "exactly once" : "NOT EXACT"} (${run.delivered} delivered, ${run.delivered_twice} twice), statuses ${JSON.stringify(run.statuses)}, counts ${JSON.stringify(run.counts)}`);
  }
} finally {
  await mf.dispose();
  await backend.close();
}
console.log(`\nmake bench-cost, ${new Date().toISOString()}, build ${BUILD}, scale ${SCALE}\n`);
console.log(report(runs));
// Not a goal, and not comparable with tests/e2e/load.mjs (the meter wraps every binding): to compare builds on
// the same workload (SEKISHO_BUILD).
console.log(`\nAck latency through the meter (${CONCURRENCY} lanes), ms p50 / p99: ${runs.map((r) => `${r.name} ${fmt(r.ack_ms.p50, 1)} / ${fmt(r.ack_ms.p99, 1)}`).join("; ")}`);
if (process.env.COST_JSON) writeFileSync(process.env.COST_JSON, JSON.stringify(runs.map(({ workload, ...r }) => ({ ...r, units: units({ ...r, workload }), floor: floorUnits({ ...r, workload }) })), null, 2));
process.exit(runs.every((r) => r.exact) ? 0 : 1);
