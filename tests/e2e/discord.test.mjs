// Discord through the built Worker. Its signature covers a timestamp, so the fixture bodies are re-signed with a
// fresh one here (node:crypto Ed25519) and by `sekisho send discord`; the fixtures themselves run natively.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startBackend, startGateway, freePort, validateEvent, runCli, assertSubset, SIGNING_SECRET } from "./harness.mjs";

// RFC 8032 section 7.1 TEST 1, the fixtures' key pair.
const SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_KEY = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const privateKey = createPrivateKey({
  key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(SEED, "hex")]),
  format: "der",
  type: "pkcs8",
});
let backend;
let gateway;
let base;
const scratch = mkdtempSync(join(tmpdir(), "sekisho-discord-"));

before(async () => {
  backend = await startBackend();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    // The account is `demo`, as in the fixtures, so their expected event ids hold.
    DISCORD_DEMO_PUBLIC_KEY: PUBLIC_KEY,
  }, { host: "127.0.0.1", port });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const fixture = (name) => JSON.parse(readFileSync(join(ROOT, "fixtures", "discord", `${name}.json`), "utf8"));

async function post(body, { key = privateKey, timestamp = String(Math.floor(Date.now() / 1000)) } = {}) {
  const signature = sign(null, Buffer.from(timestamp + body), key).toString("hex");
  const res = await fetch(`${base}/discord/demo`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-signature-ed25519": signature, "x-signature-timestamp": timestamp },
    body,
  });
  return { status: res.status, text: await res.text(), contentType: res.headers.get("content-type") };
}

test("Discord: a fresh PING is answered {\"type\":1}; an invalid signature and a stale timestamp get 401; nothing forwarded", async () => {
  const ping = fixture("ping").request.body;
  const pong = await post(ping);
  assert.equal(pong.status, 200, pong.text);
  assert.equal(pong.text, '{"type":1}');
  assert.equal(pong.contentType, "application/json");
  const forger = createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.alloc(32, 7)]),
    format: "der",
    type: "pkcs8",
  });
  const forged = await post(ping, { key: forger });
  assert.equal(forged.status, 401);
  assert.deepEqual(JSON.parse(forged.text), { error: "invalid_signature" });
  const stale = await post(ping, { timestamp: String(Math.floor(Date.now() / 1000) - 301) });
  assert.equal(stale.status, 401);
  assert.deepEqual(JSON.parse(stale.text), { error: "stale_timestamp" });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(backend.received.length, 0);
});

test("Discord: each interaction type gets its deferral and arrives as its fixture's event, verified and schema-valid", async () => {
  const names = ["command-guild", "command-dm", "button", "select-menu", "autocomplete", "modal-submit"];
  for (const [i, name] of names.entries()) {
    const f = fixture(name);
    const res = await post(f.request.body);
    assert.equal(res.status, 200, `${name}: ${res.text}`);
    assert.equal(res.text, f.expect.response_body, name);
    const [delivery] = (await backend.waitFor(i + 1)).slice(i);
    assert.ok(delivery.verified, `${name}: ${delivery.verifyError}`);
    assert.ok(validateEvent(delivery.event), `${name}: ${JSON.stringify(validateEvent.errors)}`);
    assertSubset(f.expect.events[0], delivery.event, name);
  }
});

test("Discord: sekisho send discord signs with the private key", async () => {
  const path = join(scratch, "ping.json");
  writeFileSync(path, fixture("ping").request.body);
  const res = await runCli(["send", "discord", `${base}/discord/demo`, "--secret", SEED, "--body", path]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, '200 {"type":1}\n');
  const wrong = await runCli(["send", "discord", `${base}/discord/demo`, "--secret", "11".repeat(32), "--body", path]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stdout, /^401 \{"error":"invalid_signature"\}/);
});
