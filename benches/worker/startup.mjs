// Where Sekisho's cold start goes: alternating cold starts (spawn `workerd serve` → first 200 on /healthz) of
//   floor        benches/worker/floor.js: a JavaScript Worker with no Wasm (workerd's own start)
//   reference    benches/worker/reference.js
//   compile      a JavaScript Worker that imports build/index_bg.wasm and does nothing with it: workerd compiles
//                the module while it loads the Worker, so this is the floor plus the Wasm compile
//   sekisho      build/index.js + index_bg.wasm: the glue's evaluation, the instantiation and the first
//                request through the Rust entry point
//   instantiate  the compile Worker plus `new WebAssembly.Instance` of the module at load, every import a stub
//                (Node 20's V8 cannot compile this Wasm: it uses reference types and exception handling, so the
//                split is measured inside workerd only)
//   node benches/worker/startup.mjs [starts per Worker, 15]      env SEKISHO_BUILD=<dir>
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ROOT, workerModules, writeConfig } from "./workerd-config.mjs";
import { benchBindings } from "./settings.mjs";
import { freePort, median, startBackend, startWorker } from "./bench.mjs";

const starts = Number(process.argv[2] ?? 15);
// Diagnostics only (a deployed Worker cannot set them): e.g. STARTUP_V8_FLAGS=--no-wasm-lazy-compilation
const v8Flags = (process.env.STARTUP_V8_FLAGS ?? "").split(" ").filter(Boolean);
const build = process.env.SEKISHO_BUILD ?? join(ROOT, "build");
const dir = mkdtempSync(join(tmpdir(), "sekisho-startup-"));
const compileOnly = join(dir, "compile-only.js");
writeFileSync(compileOnly, `import wasm from "./index_bg.wasm";
export default { fetch: () => new Response(wasm instanceof WebAssembly.Module ? "ok" : "no module") };
`);
const instantiate = join(dir, "instantiate.js");
writeFileSync(instantiate, `import wasm from "./index_bg.wasm";
const imports = {};
for (const { module, name, kind } of WebAssembly.Module.imports(wasm)) {
  imports[module] ??= {};
  if (kind === "function") imports[module][name] = () => { throw new Error("stub"); };
  else if (kind === "tag") imports[module][name] = WebAssembly.JSTag; // wasm-bindgen's only tag import
  else if (kind === "table") imports[module][name] = new WebAssembly.Table({ initial: 1024, element: "externref" });
}
const instance = new WebAssembly.Instance(wasm, imports);
export default { fetch: () => new Response(instance.exports.memory ? "ok" : "no memory") };
`);
const variants = {
  floor: workerModules("floor"),
  reference: workerModules("reference"),
  compile: [
    { name: "compile-only.js", type: "esModule", path: compileOnly },
    { name: "index_bg.wasm", type: "wasm", path: join(build, "index_bg.wasm") },
  ],
  instantiate: [
    { name: "instantiate.js", type: "esModule", path: instantiate },
    { name: "index_bg.wasm", type: "wasm", path: join(build, "index_bg.wasm") },
  ],
  sekisho: workerModules("sekisho", { build }),
};
const backend = await startBackend(dir);
const times = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
for (let i = 0; i < starts; i++) {
  for (const [name, modules] of Object.entries(variants)) {
    const port = await freePort();
    const configPath = writeConfig({ name, modules, bindings: benchBindings(backend.url, name === "sekisho" ? "sekisho" : "floor"), port, dir, v8Flags });
    const worker = await startWorker({ name, configPath, port, logDir: dir });
    times[name].push(worker.startupMs);
    await worker.stop();
  }
}
backend.child.kill("SIGTERM");

const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
const f = (x) => `${x.toFixed(1)} ms`;
console.log(`cold starts, median of ${starts} each (spawn → first 200 on /healthz), ${new Date().toISOString().slice(0, 16)}Z:`);
for (const [name, v] of Object.entries(times)) console.log(`  ${name.padEnd(9)} ${f(m[name]).padStart(8)}   (${v.map((x) => x.toFixed(0)).join(" ")})`);
console.log(`  the Wasm's compile inside workerd (compile − floor):                 ${f(m.compile - m.floor)}`);
console.log(`  its instantiation (instantiate − compile):                          ${f(m.instantiate - m.compile)}`);
console.log(`  the glue's evaluation + the first request (sekisho − instantiate):  ${f(m.sekisho - m.instantiate)}`);
console.log(`  Sekisho − reference:                                                ${f(m.sekisho - m.reference)}`);
process.exit(0);
