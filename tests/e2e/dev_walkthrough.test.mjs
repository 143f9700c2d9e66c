// `make dev`'s send walk-through, run as a newcomer would: scripts/dev.sh itself (the receiver, the mock LINE
// push API and wrangler dev, on free ports; the already-built Worker, so wrangler's [build] step is left out),
// then the `sekisho send-message` command exactly as dev.sh prints it. The mock prints the push, and the receiver
// prints the signed `message.sent`. Everything dev.sh started is stopped with its process group.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, freePort, runCli, until } from "./harness.mjs";

const scratch = mkdtempSync(join(tmpdir(), "sekisho-dev-walkthrough-"));
const config = join(ROOT, ".wrangler-dev-walkthrough.toml");
let dev;
let output = "";
let gatewayPort;

before(async () => {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/\n\[build\]\n(?:[^\n[]*\n)*/, "\n");
  assert.doesNotMatch(toml, /\[build\]/);
  writeFileSync(config, toml);
  gatewayPort = await freePort();
  const env = {
    ...process.env,
    GATEWAY_PORT: String(gatewayPort),
    RECEIVER_PORT: String(await freePort()),
    MOCK_LINE_PORT: String(await freePort()),
    SEKISHO_DEV_CONFIG: config,
    SEKISHO_DEV_PERSIST_TO: scratch,
    WRANGLER_SEND_METRICS: "false",
    CI: "true",
  };
  dev = spawn("bash", ["scripts/dev.sh"], { cwd: ROOT, detached: true, env });
  dev.stdout.on("data", (d) => (output += d));
  dev.stderr.on("data", (d) => (output += d));
  await until(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${gatewayPort}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 120000, "make dev's gateway to serve /healthz").catch((e) => {
    throw new Error(`${e.message}\n${output.slice(-3000)}`);
  });
});

after(() => {
  if (dev?.pid) {
    try {
      process.kill(-dev.pid, "SIGTERM");
    } catch {}
  }
  rmSync(config, { force: true });
  rmSync(scratch, { recursive: true, force: true });
});

/** The walk-through's send-message command as dev.sh printed it (its `\` continuations joined). */
function printedSendCommand() {
  const joined = output.replace(/\\\n\s*/g, " ");
  const line = joined.split("\n").find((l) => l.includes("sekisho send-message"));
  assert.ok(line, `dev.sh printed no send-message step:\n${output.slice(0, 3000)}`);
  const args = [...line.trim().matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
  assert.equal(args[0], "./target/debug/sekisho");
  return args.slice(1);
}

test("make dev: the printed send-message step is pushed to the mock LINE API and message.sent reaches the receiver", async () => {
  const args = printedSendCommand();
  assert.equal(args[0], "send-message");
  const res = await runCli(args);
  assert.equal(res.code, 0, res.stderr + res.stdout);
  const [, sendId] = res.stdout.match(/^202 \{"send_id":"(snd_[0-9a-f]{32})"\}/) ?? [];
  assert.ok(sendId, res.stdout);
  await until(() => /mock LINE API: push \d+ to U0123456789abcdef0123456789abcdef: 受け付けました/.test(output), 30000, "the mock to print the push")
    .catch((e) => { throw new Error(`${e.message}\n${output.slice(-3000)}`); });
  await until(() => /"type":\s*"message\.sent"/.test(output) && output.includes(`"send_id": "${sendId}"`), 30000, "the receiver to print message.sent")
    .catch((e) => { throw new Error(`${e.message}\n${output.slice(-3000)}`); });
  const pushes = output.match(/mock LINE API: push /g) ?? [];
  assert.equal(pushes.length, 1);
});
