// `make bench-worker`: Sekisho's built Worker (build/index.js + build/index_bg.wasm) side by side with a plain
// JavaScript Worker doing the same job (benches/worker/reference.js), each in its own `workerd serve` process
// on 127.0.0.1 (config from workerd-config.mjs), both forwarding to one local backend process
// (backend.mjs, answers 204). Sekisho runs in best-effort mode: no EVENTS queue and no DEDUP binding, so each
// event is forwarded once inside waitUntil after the answer — the same shape as the reference.
//
// Load comes from autocannon, 16 connections, pre-signed requests that are all distinct (fresh event ids per
// request), A and B alternately for several rounds, each run bounded by a request count and a time cap:
//   line-1    a 767-byte LINE request with 1 event
//   line-20   a 16 KiB LINE request with 20 events of mixed types
//   wechat    a WeChat safe-mode request (AES-256-CBC, msg_signature), 1 text message
// Per Worker: requests/s, p50/p99 latency, workerd CPU µs per request (utime+stime of that process from
// /proc/<pid>/stat, before the run and after its last forward arrived), peak RSS (VmHWM), startup time
// (spawn → first 200 on /healthz). Every request must be answered 2xx with the expected body, and the backend
// must receive exactly one correctly signed forward per event (distinct webhook-ids), or the run fails.
// Before the load, requests of each kind (signed with the older LINE secret: rotation), six kinds of WeChat
// messages and the accepted LINE fixtures go to both Workers, and the envelopes the backend receives from
// each are compared, event by event.
//
//   node benches/worker/bench.mjs     env: BENCH_ROUNDS (3), BENCH_SCALE (1.0: scales the request counts),
//                                     BENCH_ONLY=line-1,wechat (a subset of the scenarios),
//                                     SEKISHO_BUILD=<dir> / REFERENCE_JS=<file> (other builds, for experiments),
//                                     BENCH_INSPECT=sekisho|reference (workerd --inspector-addr 127.0.0.1:9229)
// Where the CPU goes: benches/worker/profile.mjs. Each run's numbers are also written to target/bench-worker/.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, mkdirSync, mkdtempSync, writeFileSync, openSync, existsSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { ROOT, workerModules, writeConfig } from "./workerd-config.mjs";
import { SIGNING_SECRET, LINE_SECRETS, benchBindings } from "./settings.mjs";
import { lineRequest, wechatRequest, lineFixtureRequests, wechatCheckRequests } from "./requests.mjs";

const require = createRequire(import.meta.url);

// ----------------------------------------------------------------------------------------------- settings

const CONNECTIONS = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const STARTUPS = 3; // extra cold starts per Worker, alternating, before the load (each scenario adds one)
const RUN_CAP_MS = 15000; // a run stops after this long even if its request count is not reached
const WORKERD = join(ROOT, "node_modules", ".bin", "workerd");
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100; // /proc/<pid>/stat ticks
let tags = 36; // each load run's requests carry its own two-character tag in every event id
export const nextTag = () => (tags++).toString(36).padStart(2, "0");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const SCENARIOS = {
  "line-1": { amount: 5000, events: 1, expectBody: '{"accepted":1}', make: (tag, n) => lineRequest("line-1", tag, n) },
  "line-20": { amount: 1000, events: 20, expectBody: '{"accepted":20}', make: (tag, n) => lineRequest("line-20", tag, n) },
  wechat: { amount: 5000, events: 1, expectBody: "success", make: (tag, n) => wechatRequest(tag, n) },
};

// ------------------------------------------------------------------------------------------------ processes

export function readCpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}

function readStatusKb(pid, field) {
  return Number(new RegExp(`^${field}:\\s*(\\d+)\\s*kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
}

async function get(url, timeoutMs = 1000) {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, text: await response.text() };
}

export async function freePort() {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

export async function startBackend(logDir) {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, "benches", "worker", "backend.mjs"), String(port), SIGNING_SECRET], {
    stdio: ["ignore", "pipe", openSync(join(logDir, "backend.log"), "a")],
  });
  await new Promise((resolve, reject) => {
    child.stdout.once("data", resolve);
    child.once("exit", (code) => reject(new Error(`backend exited ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  return { child, url, stats: async () => JSON.parse((await get(`${url}/stats`)).text), checked: async () => JSON.parse((await get(`${url}/checked`)).text) };
}

/** Spawns `workerd serve` for one Worker and waits for /healthz: resolves with the process, its pid and the
 * startup time (spawn → first 200). */
export async function startWorker({ name, configPath, port, logDir, inspect = false }) {
  const args = ["serve", configPath];
  if (inspect) args.push("--inspector-addr=127.0.0.1:9229");
  const log = openSync(join(logDir, `${name}.log`), "a");
  const started = performance.now();
  const child = spawn(WORKERD, args, { stdio: ["ignore", log, log] });
  let exited = null;
  child.once("exit", (code, signal) => (exited = `${code ?? signal}`));
  const deadline = started + 20000;
  for (;;) {
    if (exited !== null) throw new Error(`${name}: workerd exited (${exited}); see ${join(logDir, `${name}.log`)}`);
    try {
      const { status } = await get(`http://127.0.0.1:${port}/healthz`, 500);
      if (status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${name}: no 200 on /healthz within 20 s`);
    await sleep(2);
  }
  const startupMs = performance.now() - started;
  return {
    name,
    child,
    pid: child.pid,
    port,
    startupMs,
    stop: () => new Promise((resolve) => {
      if (exited !== null) return resolve();
      child.once("exit", resolve);
      child.kill("SIGTERM");
    }),
  };
}

// ---------------------------------------------------------------------------------------------- load runs

const autocannon = require("autocannon");

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One bounded autocannon run of `scenario` against `worker`; waits for its forwards, then measures. */
export async function loadRun(worker, backend, scenarioName, tag, amount) {
  const scenario = SCENARIOS[scenarioName];
  const pool = Array.from({ length: amount + 4 * CONNECTIONS + 64 }, (_, n) => scenario.make(tag, n));
  let next = 0;
  const before = (await backend.stats())[worker.name] ?? { received: 0, distinct: 0, bad_signature: 0 };
  const cpuBefore = readCpuTicks(worker.pid);
  const latencies = [];
  const statuses = {};
  let wrongBodies = 0;
  const t0 = performance.now();
  const wall0 = Date.now();
  let tLast = t0;
  const result = await new Promise((resolve, reject) => {
    const instance = autocannon({
      url: `http://127.0.0.1:${worker.port}`,
      connections: CONNECTIONS,
      amount,
      sampleInt: 100, // autocannon reports (and calls back) on its sampling tick
      timeout: 10,
      requests: [{
        method: "POST",
        setupRequest: (req) => {
          const r = pool[next++];
          if (!r) throw new Error("request pool exhausted");
          return { ...req, path: r.path, headers: r.headers, body: r.body };
        },
        onResponse: (_status, body) => {
          if (body !== scenario.expectBody) wrongBodies++;
        },
      }],
    }, (error, res) => (error ? reject(error) : resolve(res)));
    instance.on("response", (_client, status, _bytes, ms) => {
      latencies.push(ms);
      tLast = performance.now();
      statuses[status] = (statuses[status] ?? 0) + 1;
    });
    const cap = setTimeout(() => instance.stop(), RUN_CAP_MS);
    instance.on("done", () => clearTimeout(cap));
  });
  const ok = Object.entries(statuses).filter(([s]) => s >= 200 && s < 300).reduce((a, [, c]) => a + c, 0);
  const expected = before.received + ok * scenario.events;
  const waitStart = performance.now();
  let after;
  for (;;) {
    after = (await backend.stats())[worker.name] ?? before;
    if (after.received >= expected || performance.now() - waitStart > 30000) break;
    await sleep(20);
  }
  const tDone = performance.now();
  const drainMs = tDone - waitStart;
  const cpuTicks = readCpuTicks(worker.pid) - cpuBefore;
  latencies.sort((a, b) => a - b);
  const received = after.received - before.received;
  const distinct = after.distinct - before.distinct;
  const bad = after.bad_signature - before.bad_signature;
  const run = {
    worker: worker.name,
    scenario: scenarioName,
    requests: latencies.length,
    ok,
    non2xx: latencies.length - ok,
    errors: result.errors,
    timeouts: result.timeouts,
    wrong_bodies: wrongBodies,
    duration_s: (tLast - t0) / 1000,
    rps: latencies.length / ((tLast - t0) / 1000),
    // The backend's clock (Date.now(), same machine) of the last forward, or the last answer if later.
    e2e_rps: latencies.length / (Math.max(tLast - t0, after.last_at - wall0) / 1000),
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    cpu_us_per_req: (cpuTicks * (1e6 / CLK_TCK)) / Math.max(1, latencies.length),
    forwards_expected: ok * scenario.events,
    forwards_received: received,
    forwards_distinct: distinct,
    bad_signatures: bad,
    drain_ms: drainMs,
  };
  run.verified = run.ok === amount && run.non2xx === 0 && run.errors === 0 && run.timeouts === 0 && wrongBodies === 0 &&
    received === run.forwards_expected && distinct === run.forwards_expected && bad === 0;
  return run;
}

// ------------------------------------------------------------------------------------------ envelope check

/** Sends the same requests to both Workers' `check` accounts and compares what the backend got, per
 * webhook-id: parsed JSON equal, and how many are byte-for-byte equal. */
export async function envelopeCheck(workers, backend) {
  // The older LINE secret: key_index 1 on both sides.
  const requests = [lineRequest("line-1", "ck", 1, "check", LINE_SECRETS[1]), lineRequest("line-20", "ck", 2, "check", LINE_SECRETS[1]),
    ...lineFixtureRequests(), ...wechatCheckRequests()];
  let expectedForwards = 0;
  for (const worker of workers) {
    for (const r of requests) {
      const response = await fetch(`http://127.0.0.1:${worker.port}${r.path}`, { method: "POST", headers: r.headers, body: r.body });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`check: ${worker.name} answered ${response.status} ${text} to ${r.path}`);
      if (worker === workers[0]) expectedForwards += r.path.startsWith("/wechat") ? 1 : JSON.parse(text).accepted;
    }
  }
  const deadline = Date.now() + 10000;
  let checked;
  do {
    await sleep(50);
    checked = await backend.checked();
  } while (checked.length < 2 * expectedForwards && Date.now() < deadline);
  // Per webhook-id, the list of bodies (the LINE fixtures repeat ids), compared as sorted multisets.
  const by = (name) => {
    const map = new Map();
    for (const c of checked.filter((c) => c.path.startsWith(`/${name}/`))) {
      const key = `${c.path.split("/").slice(2).join("/")} ${c.id}`; // e.g. "check/fixtures evt_…"
      map.set(key, [...(map.get(key) ?? []), c.body].sort());
    }
    return map;
  };
  const [a, b] = workers.map((w) => by(w.name));
  const count = (m) => [...m.values()].reduce((n, bodies) => n + bodies.length, 0);
  const differences = [];
  let equal = 0;
  let bytesEqual = 0;
  const bytesDiffer = [];
  for (const [id, bodiesA] of a) {
    const bodiesB = b.get(id) ?? [];
    if (bodiesA.length !== bodiesB.length) {
      differences.push({ id, problem: `${bodiesA.length} vs ${bodiesB.length} forwards` });
      continue;
    }
    const left = bodiesB.map((body) => ({ body, parsed: JSON.parse(body) }));
    for (const bodyA of bodiesA) {
      const parsed = JSON.parse(bodyA);
      const match = left.findIndex((b) => isDeepStrictEqual(b.parsed, parsed));
      if (match < 0) {
        differences.push({ id, [workers[0].name]: bodyA, [workers[1].name]: bodiesB });
        continue;
      }
      const [{ body: bodyB }] = left.splice(match, 1);
      equal++;
      if (bodyA === bodyB) bytesEqual++;
      else bytesDiffer.push({ id, [workers[0].name]: bodyA, [workers[1].name]: bodyB });
    }
  }
  for (const id of b.keys()) if (!a.has(id)) differences.push({ id, problem: `missing from ${workers[0].name}` });
  const fixtureBytesDiffer = bytesDiffer.filter((d) => d.id.startsWith("check/fixtures ")).length;
  return { requests: requests.length, events: expectedForwards, received: [count(a), count(b)], equal, bytesEqual, bytesDiffer, fixtureBytesDiffer, differences };
}

// ---------------------------------------------------------------------------------------------- reporting

export const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : "—");
const ratio = (a, b) => (Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : "—");

export function table(runs, startups, peaks, names) {
  const [A, B, F] = names;
  const lines = [];
  lines.push(`| scenario | metric | ${A} | ${B} | ${A}/${B} | ${F} | ${F}/${B} |`);
  lines.push("|---|---|---|---|---|---|---|");
  const metrics = [
    ["rps", "answered requests/s", 0],
    ["e2e_rps", "requests/s until the last forward arrived", 0],
    ["p50_ms", "p50 latency ms", 2],
    ["p99_ms", "p99 latency ms", 2],
    ["cpu_us_per_req", "workerd CPU µs/request", 0],
  ];
  for (const s of [...new Set(runs.map((r) => r.scenario))]) {
    const of = (w, key) => median(runs.filter((r) => r.scenario === s && r.worker === w).map((r) => r[key]));
    for (const [key, label, digits] of metrics) {
      const a = of(A, key);
      const b = of(B, key);
      const f = of(F, key);
      lines.push(`| ${s} | ${label} | ${fmt(a, digits)} | ${fmt(b, digits)} | ${ratio(a, b)} | ${fmt(f, digits)} | ${ratio(f, b)} |`);
    }
    // What the implementations control: CPU above the floor, Sekisho's against the reference's.
    const [ca, cb, cf] = [A, B, F].map((w) => of(w, "cpu_us_per_req"));
    lines.push(`| ${s} | CPU µs/request above the floor | ${fmt(ca - cf)} | ${fmt(cb - cf)} | ${ratio(ca - cf, cb - cf)} | 0 | — |`);
    const [pa, pb, pf] = [A, B, F].map((w) => peaks[s][w] / 1024);
    lines.push(`| ${s} | peak RSS (VmHWM) MiB | ${fmt(pa, 1)} | ${fmt(pb, 1)} | ${ratio(pa, pb)} | ${fmt(pf, 1)} | ${ratio(pf, pb)} |`);
  }
  const [sa, sb, sf] = [A, B, F].map((w) => median(startups[w]));
  lines.push(`| — | startup ms (spawn → 200 on /healthz), median of ${startups[A].length} | ${fmt(sa, 0)} | ${fmt(sb, 0)} | ${ratio(sa, sb)} | ${fmt(sf, 0)} | ${ratio(sf, sb)} |`);
  return lines.join("\n");
}

// ------------------------------------------------------------------------------------------------- main

async function main() {
  const build = process.env.SEKISHO_BUILD ?? join(ROOT, "build");
  if (!existsSync(join(build, "index.js")) || !existsSync(join(build, "index_bg.wasm"))) throw new Error(`${build}/index.js or index_bg.wasm is missing: run bash scripts/build-worker.sh`);
  const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",") : Object.keys(SCENARIOS);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "sekisho-bench-"));
  const backend = await startBackend(dir);
  // The platform floor (floor.js): the IO of the job without the job, the lowest CPU any implementation can have.
  const names = ["sekisho", "reference", "floor"];
  const setups = {};
  for (const name of names) {
    const port = await freePort();
    const configPath = writeConfig({ name, modules: workerModules(name, { build, reference: process.env.REFERENCE_JS }), bindings: benchBindings(backend.url, name), port, dir });
    setups[name] = { name, port, configPath, logDir: dir, inspect: process.env.BENCH_INSPECT === name };
  }
  console.log(`bench-worker: workerd ${WORKERD}, configs and logs in ${dir}`);
  console.log(`  ${names.join(" vs ")}, ${CONNECTIONS} connections, ${ROUNDS} rounds, scenarios ${only.join(", ")}; Sekisho build ${build}`);

  const startups = Object.fromEntries(names.map((n) => [n, []]));
  const start = async (name) => {
    const w = await startWorker(setups[name]);
    startups[name].push(w.startupMs);
    w.idleRssKb = readStatusKb(w.pid, "VmRSS");
    return w;
  };
  for (let i = 0; i < STARTUPS; i++) for (const name of names) await (await start(name)).stop();

  const runs = [];
  const peaks = {};
  const idle = Object.fromEntries(names.map((n) => [n, []]));
  let failed = false;
  let workers = [];
  const stopAll = async (scenario) => {
    for (const w of workers) {
      if (scenario) peaks[scenario] = { ...peaks[scenario], [w.name]: readStatusKb(w.pid, "VmHWM") };
      idle[w.name].push(w.idleRssKb);
      await w.stop();
    }
    workers = [];
  };
  try {
    // The envelope check, in Workers of its own (so it counts in no scenario's memory).
    // The floor starts too (its cold start counts like the others'), but builds no envelopes to compare.
    for (const name of names) workers.push(await start(name));
    const check = await envelopeCheck(workers.slice(0, 2), backend);
    await stopAll(null);
    const checkOk = check.differences.length === 0 && check.received[0] === check.events && check.received[1] === check.events;
    console.log(`envelope check: ${check.requests} requests, ${check.events} events each; forwarded ${check.received.join(" / ")}; ` +
      `${check.equal} identical as JSON${checkOk ? "" : " — DIFFERENT"}; ${check.bytesEqual} byte for byte, ` +
      `${check.bytesDiffer.length - check.fixtureBytesDiffer} other bench-shaped, ${check.fixtureBytesDiffer} pretty-printed SDK fixtures ` +
      "(Sekisho forwards data.raw as the provider's bytes, the reference re-serializes it)");
    for (const d of check.differences.slice(0, 3)) console.log(`  difference: ${JSON.stringify(d)}`);
    if (!checkOk) failed = true;

    // Each scenario in fresh processes (its own peak RSS): warm-up (not reported: the first requests compile
    // and tier up the code), then A, B, A, B… for ROUNDS rounds.
    for (const s of only) {
      for (const name of names) workers.push(await start(name));
      const amount = Math.max(CONNECTIONS, Math.round(SCENARIOS[s].amount * SCALE));
      for (const w of workers) await loadRun(w, backend, s, nextTag(), Math.max(CONNECTIONS, Math.round(amount / 5)));
      for (let round = 0; round < ROUNDS; round++) {
        for (const w of workers) {
          const run = await loadRun(w, backend, s, nextTag(), amount);
          runs.push(run);
          if (!run.verified) failed = true;
          console.log(`round ${round + 1} ${s.padEnd(7)} ${w.name.padEnd(9)} ${fmt(run.rps).padStart(5)} req/s (${fmt(run.e2e_rps).padStart(4)} until forwarded)  ` +
            `p50 ${fmt(run.p50_ms, 2).padStart(6)} ms  p99 ${fmt(run.p99_ms, 2).padStart(6)} ms  ${fmt(run.cpu_us_per_req).padStart(5)} µs CPU/req  | ` +
            `${run.ok}/${run.requests} 2xx, forwards ${run.forwards_received}/${run.forwards_expected} ` +
            `(${run.forwards_distinct} distinct, ${run.bad_signatures} bad sig) ${run.verified ? "ok" : "FAILED"}`);
        }
      }
      await stopAll(s);
    }
  } finally {
    await stopAll(null);
    backend.child.kill("SIGTERM");
  }
  console.log(`startup ms: ${names.map((n) => `${n} ${startups[n].map((x) => x.toFixed(0)).join("/")}`).join(", ")}; ` +
    `RSS after start MiB: ${names.map((n) => `${n} ${fmt(median(idle[n]) / 1024, 1)}`).join(", ")}`);
  for (const name of names) {
    const log = readFileSync(join(dir, `${name}.log`), "utf8");
    const failures = (log.match(/forward failed/g) ?? []).length;
    if (failures > 0) {
      console.log(`${name}: ${failures} "forward failed" log lines (see ${dir}/${name}.log)`);
      failed = true;
    }
  }
  console.log(`\nmedians of ${ROUNDS} rounds (${new Date().toISOString().slice(0, 10)}, ${((Date.now() - started) / 1000).toFixed(0)} s):\n`);
  console.log(table(runs, startups, peaks, names));
  const outDir = join(ROOT, "target", "bench-worker");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(out, JSON.stringify({ build, runs, startups, peaks_kb: peaks, idle_rss_kb: idle }, null, 2));
  console.log(`\nall runs: ${out}`);
  console.log(failed ? "bench-worker: FAILED verification (see above)" : "bench-worker: every request answered 2xx, every event forwarded exactly once with a valid signature, by both");
  process.exit(failed ? 1 : 0);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
