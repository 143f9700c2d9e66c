// The built Worker under `wrangler dev` itself (not only Miniflare's API): the admin's local loop. A Japanese
// ISO-2022-JP message goes to wrangler dev's local e-mail endpoint and arrives decoded at the backend, through the
// queue and Durable Objects declared in wrangler.toml; an unknown recipient is rejected with its reason.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, SIGNING_SECRET, startBackend, freePort, until, validateEvent, loadEmailFixtures } from "./harness.mjs";

let backend;
let wrangler;
let port;
let logs = "";
const scratch = mkdtempSync(join(tmpdir(), "sekisho-wrangler-dev-"));
// wrangler.toml as deployed, minus its [build] step: `make build` has already produced build/ for this run.
const config = join(ROOT, ".wrangler-e2e.toml");

before(async () => {
  backend = await startBackend();
  port = await freePort();
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/\n\[build\]\n(?:[^\n[]*\n)*/, "\n");
  assert.doesNotMatch(toml, /\[build\]/);
  writeFileSync(config, toml);
  const vars = {
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    EMAIL_SUPPORT_ADDRESS: "support@example.com, info@example.co.jp",
  };
  const args = ["wrangler", "dev", "-c", config, "--ip", "127.0.0.1", "--port", String(port),
    "--persist-to", scratch, "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])];
  wrangler = spawn("npx", args, {
    cwd: ROOT, detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  wrangler.stdout.on("data", (d) => (logs += d));
  wrangler.stderr.on("data", (d) => (logs += d));
  await until(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 90000, "wrangler dev to serve /healthz").catch((e) => {
    throw new Error(`${e.message}\n${logs.slice(-3000)}`);
  });
});

after(async () => {
  if (wrangler?.pid) {
    try {
      process.kill(-wrangler.pid, "SIGTERM");
    } catch {}
  }
  await backend?.close();
  rmSync(config, { force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const mail = (from, to, raw) =>
  fetch(`http://127.0.0.1:${port}/cdn-cgi/handler/email?${new URLSearchParams({ from, to })}`, { method: "POST", body: raw });

test("wrangler dev: an ISO-2022-JP message to a configured address arrives decoded and signed", async () => {
  const { fixture, raw } = loadEmailFixtures().find((f) => f.name === "iso2022jp");
  const res = await mail(fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(res.status, 200, await res.text());
  await backend.waitFor(1, 30000);
  const [delivery] = backend.received;
  assert.ok(delivery.verified, delivery.verifyError);
  assert.ok(validateEvent(delivery.event), JSON.stringify(validateEvent.errors));
  assert.equal(delivery.event.data.email.subject, fixture.expect.email.subject);
  assert.equal(delivery.event.data.message.text, fixture.expect.email.text);
});

test("wrangler dev: mail to an unknown recipient is rejected with the reason, nothing forwarded", async () => {
  const { fixture, raw } = loadEmailFixtures().find((f) => f.name === "unknown_recipient");
  const count = backend.received.length;
  const res = await mail(fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(res.status, 400);
  assert.match(await res.text(), /unknown_recipient: no account is configured for this recipient address/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(backend.received.length, count);
});
