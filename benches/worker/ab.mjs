// A/B of Sekisho builds against each other (and the reference) in one run, for changes smaller than the noise
// of `make bench-worker`: every Worker in its own workerd, all pinned to CPU 1 (this script, autocannon and
// the backend to CPU 0, with `taskset`), warmed up until the Wasm has tiered up, then driven round after round
// in turn. Prints each build's per-round CPU ratio to the first build (the median of those is the figure to
// quote: neighbouring runs share the machine's state) and the plain medians.
//   node benches/worker/ab.mjs <line-1|line-20|wechat> <rounds> <requests per round> <build dir> [<build dir> …]
// A build dir of `floor` runs the platform floor (floor.js) in that place instead.
//   env WARM (6000): warm-up requests per Worker
import { mkdtempSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { workerModules, writeConfig } from "./workerd-config.mjs";
import { benchBindings } from "./settings.mjs";
import { freePort, loadRun, nextTag, startBackend, startWorker } from "./bench.mjs";

const [scenario, rounds, amount, ...dirs] = process.argv.slice(2);
if (!scenario || !dirs.length) {
  console.error("usage: node benches/worker/ab.mjs <scenario> <rounds> <requests> <build dir> [<build dir> …]");
  process.exit(2);
}
const pin = (pid, cpu) => spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)]);
pin(process.pid, 0);
const dir = mkdtempSync(join(tmpdir(), "sekisho-ab-"));
const backend = await startBackend(dir);
pin(backend.child.pid, 0);
const workers = [];
for (const [i, build] of ["reference", ...dirs].entries()) {
  const name = build === "reference" || build === "floor" ? build : "sekisho";
  const port = await freePort();
  const modules = workerModules(name, name === "sekisho" ? { build } : {});
  const configPath = writeConfig({ name: `w${i}`, modules, bindings: benchBindings(backend.url, name), port, dir });
  const worker = await startWorker({ name, configPath, port, logDir: dir, inspect: false });
  pin(worker.pid, 1);
  await loadRun(worker, backend, scenario, nextTag(), Number(process.env.WARM ?? 6000));
  workers.push({ build, worker, cpu: [] });
}
for (let round = 0; round < Number(rounds); round++) {
  for (const w of workers) w.cpu.push((await loadRun(w.worker, backend, scenario, nextTag(), Number(amount))).cpu_us_per_req);
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const first = workers[1];
for (const w of workers) {
  const ratios = w.cpu.map((c, i) => c / first.cpu[i]);
  console.log(`${scenario} ${w.build.padEnd(24)} per-round CPU ratio to ${first.build}: median ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(2)).join(" ")})`);
}
const floor = workers.find((w) => w.build === "floor");
if (floor) {
  // The part an implementation controls: CPU above the floor, against the reference's, round by round.
  for (const w of workers.filter((w) => w !== floor && w !== workers[0])) {
    const above = w.cpu.map((c, i) => (c - floor.cpu[i]) / (workers[0].cpu[i] - floor.cpu[i]));
    console.log(`${scenario} ${w.build.padEnd(24)} CPU above the floor / the reference's: median ${median(above).toFixed(2)}`);
  }
}
const reference = median(workers[0].cpu);
for (const w of workers) console.log(`${scenario} ${w.build.padEnd(24)} median ${median(w.cpu).toFixed(0)} µs/request (${w.cpu.map((c) => c.toFixed(0)).join(" ")}), ${(median(w.cpu) / reference).toFixed(2)}× the reference`);
for (const w of workers) await w.worker.stop();
backend.child.kill("SIGTERM");
process.exit(0);
