// Where a Worker's CPU goes under the bench-worker load: runs one Worker (sekisho or reference) in workerd,
// drives one scenario with the same pre-signed requests as bench.mjs (after a warm-up) and profiles that run:
//   inspector (default)  a V8 CPU profile through workerd's --inspector-addr (Profiler domain): self time by
//                        function, grouped (Wasm by crate, the wasm-bindgen glue in index.js, the reference's
//                        JS, V8 builtins). Sees only the isolate's thread; the inspector itself makes
//                        console.log look expensive (every line is also sent to it). The .cpuprofile goes to
//                        target/bench-worker/ (Chrome DevTools → Performance, or speedscope).
//   perf                 Linux `perf record` of the whole workerd process (every thread, kernel included) with
//                        V8's --perf-basic-prof, so JIT-compiled JS and Wasm have names: self time by category
//                        (Wasm code, JS code, V8 runtime, workerd/kj native, allocator, kernel) and the top
//                        Wasm functions. Needs `perf` (linux-perf) and perf_event access.
//   node benches/worker/profile.mjs [sekisho|reference|floor] [line-1|line-20|wechat] [requests] [inspector|perf]
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequire } from "node:module";
import { ROOT, workerModules, writeConfig } from "./workerd-config.mjs";
import { benchBindings } from "./settings.mjs";
import { SCENARIOS, freePort, loadRun, nextTag, startBackend, startWorker } from "./bench.mjs";

const WebSocket = createRequire(import.meta.url)("ws");
const [name = "sekisho", scenario = "line-1", count, mode = "inspector"] = process.argv.slice(2);
const amount = Number(count ?? SCENARIOS[scenario].amount);
const INSPECTOR_PORT = 9229;

function inspector(url) {
  const ws = new WebSocket(url);
  let id = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const message = JSON.parse(data);
    if (message.id && pending.has(message.id)) {
      const { resolve, reject } = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) reject(new Error(JSON.stringify(message.error)));
      else resolve(message.result);
    }
  });
  const ready = new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  return {
    ready,
    send: (method, params = {}) => new Promise((resolve, reject) => {
      const messageId = ++id;
      pending.set(messageId, { resolve, reject });
      ws.send(JSON.stringify({ id: messageId, method, params }));
    }),
    close: () => ws.close(),
  };
}

function group(node) {
  const { url, functionName } = node.callFrame;
  if (url.startsWith("wasm://") || /^\$?func\d+|^wasm-function/.test(functionName)) return "Wasm (Sekisho's Rust)";
  if (url.endsWith("index.js")) return "index.js (wasm-bindgen glue + worker-build shim)";
  if (url.endsWith("reference.js")) return "reference.js";
  if (functionName === "(garbage collector)") return "(garbage collector)";
  if (functionName === "(idle)" || functionName === "(program)") return functionName;
  return url ? `other JS (${url.split("/").pop()})` : "V8 builtins / runtime (native)";
}

const pct = (n, of) => `${((100 * n) / of).toFixed(1).padStart(5)}%`;

async function inspectorProfile(worker, backend) {
  const targets = await (await fetch(`http://127.0.0.1:${INSPECTOR_PORT}/json/list`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl) ?? targets[0];
  const session = inspector(target.webSocketDebuggerUrl);
  await session.ready;
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: 100 });
  await session.send("Profiler.start");
  const run = await loadRun(worker, backend, scenario, nextTag(), amount);
  const { profile } = await session.send("Profiler.stop");
  session.close();
  const outDir = join(ROOT, "target", "bench-worker");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${scenario}-${name}.cpuprofile`);
  writeFileSync(out, JSON.stringify(profile));

  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1);
  const total = profile.samples.length;
  const busy = [...self].filter(([id]) => !["(idle)", "(program)"].includes(byId.get(id).callFrame.functionName)).reduce((a, [, n]) => a + n, 0);
  const groups = new Map();
  const functions = new Map();
  const crates = new Map();
  for (const [id, n] of self) {
    const node = byId.get(id);
    const g = group(node);
    if (g.startsWith("Wasm")) {
      // Rust symbol → its crate: `<a::b as c::d>::f` counts for a, `core::…`/`alloc::…` for the standard library.
      const symbol = node.callFrame.functionName.replace(/^<+/, "").replace(/^&(mut )?/, "");
      const crate = (/^([A-Za-z_][A-Za-z0-9_]*)/.exec(symbol)?.[1] ?? "?").replace(/^(core|alloc|std)$/, "core/alloc/std");
      crates.set(crate, (crates.get(crate) ?? 0) + n);
    }
    groups.set(g, (groups.get(g) ?? 0) + n);
    const key = `${node.callFrame.functionName || "(anonymous)"}  ${node.callFrame.url.split("/").pop()}:${node.callFrame.lineNumber + 1}`;
    functions.set(key, (functions.get(key) ?? 0) + n);
  }
  console.log(`${name} ${scenario}: ${run.requests} requests, ${run.cpu_us_per_req.toFixed(0)} µs workerd CPU/request (with the profiler on), ` +
    `${total} samples, ${busy} on the isolate's thread not idle`);
  console.log("\nself time by group (share of non-idle samples):");
  for (const [g, n] of [...groups].sort((a, b) => b[1] - a[1])) if (!["(idle)", "(program)"].includes(g)) console.log(`  ${pct(n, busy)}  ${g}`);
  console.log(`  (program: ${pct(groups.get("(program)") ?? 0, total)} of all samples — native work outside JS/Wasm: HTTP, I/O, workerd)`);
  if (crates.size) {
    console.log("\nWasm self time by crate (share of non-idle samples):");
    for (const [c, n] of [...crates].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${pct(n, busy)}  ${c}`);
  }
  console.log("\ntop functions by self time (share of non-idle samples):");
  const top = [...functions].filter(([f]) => !/^\((idle|program)\)/.test(f)).sort((a, b) => b[1] - a[1]).slice(0, 30);
  for (const [f, n] of top) console.log(`  ${pct(n, busy)}  ${f.length > 130 ? `${f.slice(0, 127)}…` : f}`);
  console.log(`\nprofile: ${out}`);
}

function perfCategory(kind, symbol) {
  if (kind === "k") return "kernel";
  if (symbol.startsWith("JS:")) return /\.m?js:/.test(symbol) ? "JS code (JIT-compiled)" : "Wasm code";
  if (symbol.startsWith("Builtins_Wasm") || symbol.includes("wasm::")) return "V8 Wasm runtime and builtins";
  if (symbol.startsWith("Builtins_")) return "V8 builtins (incl. the JS interpreter)";
  if (/tcmalloc/i.test(symbol)) return "allocator (tcmalloc)";
  if (/^v8::internal::(Scavenger|Heap|MarkCompact|MinorMarkSweep|ConcurrentMarking)|^cppgc/.test(symbol)) return "V8 garbage collector";
  if (/^(v8|unibrow)::/.test(symbol)) return "V8 runtime (C++)";
  if (/^(workerd|kj|capnp|edgeworker)::/.test(symbol)) return "workerd / kj / capnp (HTTP, I/O, APIs)";
  if (/^(__mem|__str|_int_|__libc|malloc|free)/.test(symbol)) return "libc";
  return "other native";
}

async function perfProfile(worker, backend) {
  const data = join(ROOT, "target", "bench-worker", `${scenario}-${name}.perf.data`);
  mkdirSync(join(ROOT, "target", "bench-worker"), { recursive: true });
  const perf = spawn("perf", ["record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-p", String(worker.pid), "-o", data], { stdio: "inherit" });
  await new Promise((r) => setTimeout(r, 300));
  const run = await loadRun(worker, backend, scenario, nextTag(), amount);
  perf.kill("SIGINT");
  await new Promise((r) => perf.once("exit", r));
  const report = spawnSync("perf", ["report", "-i", data, "--no-children", "--sort", "sym", "--stdio", "-g", "none", "--percent-limit", "0"], { encoding: "utf8", maxBuffer: 1 << 28 });
  const categories = new Map();
  const wasm = [];
  for (const line of report.stdout.split("\n")) {
    const m = /^\s+([\d.]+)%\s+\[(.)\]\s+(.*)$/.exec(line);
    if (!m) continue;
    const share = Number(m[1]);
    const category = perfCategory(m[2], m[3]);
    categories.set(category, (categories.get(category) ?? 0) + share);
    if (category === "Wasm code") wasm.push([m[3].replace(/^JS:\*?/, "").replace(/-(turbofan|liftoff)$/, "").replace(/-\d+$/, ""), share]);
  }
  const us = run.cpu_us_per_req / 100;
  console.log(`${name} ${scenario}: ${run.requests} requests, ${run.cpu_us_per_req.toFixed(0)} µs workerd CPU/request (perf attached); self time:`);
  for (const [c, share] of [...categories].sort((a, b) => b[1] - a[1])) console.log(`  ${share.toFixed(1).padStart(5)}%  ${(share * us).toFixed(0).padStart(5)} µs/request  ${c}`);
  if (wasm.length) {
    console.log("\ntop Wasm functions:");
    for (const [f, share] of wasm.slice(0, Number(process.env.TOP ?? 15))) console.log(`  ${share.toFixed(2).padStart(5)}%  ${(share * us).toFixed(0).padStart(5)} µs/request  ${f.length > 120 ? `${f.slice(0, 117)}…` : f}`);
  }
  console.log(`\nperf data: ${data} (perf report -i …; the JIT symbol map is /tmp/perf-${worker.pid}.map)`);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "sekisho-profile-"));
  const backend = await startBackend(dir);
  const port = await freePort();
  const modules = workerModules(name, { build: process.env.SEKISHO_BUILD ?? join(ROOT, "build"), reference: process.env.REFERENCE_JS });
  const v8Flags = mode === "perf" ? ["--perf-basic-prof"] : [];
  const configPath = writeConfig({ name, modules, bindings: benchBindings(backend.url, name), port, dir, v8Flags });
  const worker = await startWorker({ name, configPath, port, logDir: dir, inspect: mode === "inspector" });
  try {
    await loadRun(worker, backend, scenario, nextTag(), Math.max(16, Math.round(amount / 5))); // warm-up
    await (mode === "perf" ? perfProfile : inspectorProfile)(worker, backend);
  } finally {
    await worker.stop();
    backend.child.kill("SIGTERM");
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
