// End-to-end: the built Worker (Wasm) in workerd, a real backend on 127.0.0.1, real signatures.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import {
  loadFixtures, fixtureBindings, startBackend, startGateway, fixtureRequest, assertSubset, validateEvent,
  runCli, SIGNING_SECRET, OLD_SIGNING_SECRET, CLI,
} from "./harness.mjs";

// The origin the native fixture run uses too (tests/common): Twilio signs the full URL, scheme and host included.
const BASE = "https://gateway.test";
const MAX_BODY = 64 * 1024;
// Fixtures bound to a clock are replayed natively only; the rest run here, through the Wasm.
const fixtures = loadFixtures().filter(({ fixture }) => fixture.now_ms === undefined);
let backend;
let gateway;

const lineSign = (secret, body) => createHmac("sha256", secret).update(body).digest("base64");
const LINE_E2E_SECRETS = ["e2e-line-secret-new", "e2e-line-secret-old"];

function lineBody(id, text) {
  return JSON.stringify({
    destination: "U0123456789abcdef0123456789abcdef",
    events: [{
      type: "message", mode: "active", timestamp: 1700000000000, webhookEventId: id,
      deliveryContext: { isRedelivery: false }, source: { type: "user", userId: "U1" }, replyToken: "rt",
      message: { id: `m-${id}`, type: "text", text },
    }],
  });
}

before(async () => {
  backend = await startBackend();
  gateway = await startGateway({
    ...fixtureBindings(fixtures),
    BACKEND_URL: `${backend.url}/events`,
    // Two signing secrets: every forwarded request must verify with either (rotation on the backend leg).
    BACKEND_SIGNING_SECRET: `${SIGNING_SECRET} ${OLD_SIGNING_SECRET}`,
    MAX_BODY_BYTES: String(MAX_BODY),
    LINE_E2E_CHANNEL_SECRET: LINE_E2E_SECRETS.join(","),
  });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

async function send(channel, account, body, headers = {}, method = "POST") {
  const res = await gateway.dispatchFetch(`${BASE}/${channel}/${account}`, { method, headers, body: method === "GET" ? undefined : body });
  return { status: res.status, text: await res.text(), contentType: res.headers.get("content-type") };
}

test("every clock-independent fixture gets its status, and exactly its events reach the backend verified and schema-valid", async () => {
  assert.ok(fixtures.length >= 5, `only ${fixtures.length} fixtures`);
  let expectedTotal = 0;
  for (const { channel, file, fixture } of fixtures) {
    const [url, init] = fixtureRequest(BASE, channel, fixture);
    const start = backend.received.length;
    const res = await gateway.dispatchFetch(url, init);
    const text = await res.text();
    const label = `${channel}/${file}`;
    assert.equal(res.status, fixture.expect.status, `${label}: status (body ${text})`);
    if (fixture.expect.reason) assert.deepEqual(JSON.parse(text), { error: fixture.expect.reason }, `${label}: reason`);
    if (fixture.expect.response_body !== undefined) assert.equal(text, fixture.expect.response_body, `${label}: response body`);
    const expectedEvents = fixture.expect.events ?? [];
    expectedTotal += expectedEvents.length;
    if (expectedEvents.length > 0) {
      await backend.waitFor(expectedTotal);
      const events = backend.received.slice(start, start + expectedEvents.length);
      for (const delivery of events) {
        assert.ok(delivery.verified, `${label}: signature: ${delivery.verifyError}`);
        assert.ok(validateEvent(delivery.event), `${label}: schema: ${JSON.stringify(validateEvent.errors)}`);
        assert.equal(delivery.event.id, delivery.headers["webhook-id"], `${label}: id == webhook-id`);
        assert.equal(delivery.headers["webhook-signature"].split(" ").length, 2, `${label}: one v1 signature per secret`);
      }
      // Deliveries of one request are sent in order.
      assertSubset(expectedEvents, events.map((d) => d.event), label);
    }
  }
  // A last accepted request: once its event has arrived, nothing a refused request could have sent is pending.
  const sentinel = lineBody("01HSENTINEL000000000000000", "sentinel");
  const res = await send("line", "e2e", sentinel, { "x-line-signature": lineSign(LINE_E2E_SECRETS[0], sentinel) });
  assert.equal(res.status, 200);
  await backend.waitFor(expectedTotal + 1);
  assert.equal(backend.received.length, expectedTotal + 1, "refused requests forwarded nothing");
  assert.equal(backend.received.at(-1).event.data.message.text, "sentinel");
});

test("a request signed with the old (second) secret is accepted and records key_index 1", async () => {
  const body = lineBody("01HOLDSECRET00000000000000", "signed with the old secret");
  const before = backend.received.length;
  const res = await send("line", "e2e", body, { "x-line-signature": lineSign(LINE_E2E_SECRETS[1], body) });
  assert.equal(res.status, 200);
  const [delivery] = (await backend.waitFor(before + 1)).slice(before);
  assert.ok(delivery.verified);
  assert.deepEqual(delivery.event.data.verification, { scheme: "line-hmac-sha256", key_index: 1 });
});

test("a LINE redelivery keeps its webhook-id", async () => {
  const first = lineBody("01HREDELIVER00000000000000", "hello");
  const again = first.replace('"isRedelivery":false', '"isRedelivery":true');
  const before = backend.received.length;
  for (const body of [first, again]) {
    assert.equal((await send("line", "e2e", body, { "x-line-signature": lineSign(LINE_E2E_SECRETS[0], body) })).status, 200);
  }
  const [a, b] = (await backend.waitFor(before + 2)).slice(before);
  assert.equal(a.headers["webhook-id"], b.headers["webhook-id"]);
  assert.equal(b.event.data.raw.deliveryContext.isRedelivery, true);
});

test("rejections: wrong signature, missing header, unknown account, bad route, wrong method, oversize, not JSON", async () => {
  const body = lineBody("01HREJECT00000000000000000", "never forwarded");
  const good = lineSign(LINE_E2E_SECRETS[0], body);
  const before = backend.received.length;
  const cases = [
    [await send("line", "e2e", body, { "x-line-signature": lineSign("not-the-secret", body) }), 401, "invalid_signature"],
    [await send("line", "e2e", body, { "x-line-signature": "not base64!" }), 401, "invalid_signature"],
    [await send("line", "e2e", body, {}), 401, "missing_signature"],
    [await send("line", "nobody", body, { "x-line-signature": good }), 404, "not_found"],
    [await send("line", "Bad_Account", body, { "x-line-signature": good }), 404, "not_found"],
    [await send("nochannel", "e2e", body, { "x-line-signature": good }), 404, "not_found"],
    [await send("line", "e2e", undefined, {}, "GET"), 405, "method_not_allowed"],
  ];
  const big = JSON.stringify({ events: [], pad: "x".repeat(MAX_BODY) });
  cases.push([await send("line", "e2e", big, { "x-line-signature": lineSign(LINE_E2E_SECRETS[0], big) }), 413, "payload_too_large"]);
  const notJson = '{"events":[';
  cases.push([await send("line", "e2e", notJson, { "x-line-signature": lineSign(LINE_E2E_SECRETS[0], notJson) }), 400, "malformed_body"]);
  for (const [res, status, reason] of cases) {
    assert.equal(res.status, status, res.text);
    assert.deepEqual(JSON.parse(res.text), { error: reason });
    assert.equal(res.contentType, "application/json");
  }
  // Flush: an accepted request after them arrives alone.
  const after = lineBody("01HAFTERREJECT000000000000", "after");
  assert.equal((await send("line", "e2e", after, { "x-line-signature": lineSign(LINE_E2E_SECRETS[0], after) })).status, 200);
  await backend.waitFor(before + 1);
  assert.equal(backend.received.length, before + 1);
  assert.equal(backend.received.at(-1).event.data.message.text, "after");
});

test("GET /healthz answers 200", async () => {
  const res = await gateway.dispatchFetch(`${BASE}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok");
});

async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

test("sekisho send → gateway on a real port → sekisho receive (per-account backend override)", async () => {
  const receiverPort = await freePort();
  const receiver = spawn(CLI, ["receive", "--port", String(receiverPort), "--secret", SIGNING_SECRET, "--jsonl"]);
  const lines = [];
  // One event per line; a long line can arrive in several chunks, so only complete lines count.
  let pending = "";
  receiver.stdout.on("data", (d) => {
    const parts = (pending + d.toString()).split("\n");
    pending = parts.pop();
    lines.push(...parts.filter(Boolean));
  });
  await once(receiver.stderr, "data"); // "listening on …"
  const gatewayPort = await freePort();
  const served = await startGateway({
    BACKEND_URL: "http://127.0.0.1:9/unused",
    LINE_CLI_BACKEND_URL: `http://127.0.0.1:${receiverPort}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_CLI_CHANNEL_SECRET: "cli-secret",
  }, { host: "127.0.0.1", port: gatewayPort });
  try {
    const sent = await runCli(["send", "line", `http://127.0.0.1:${gatewayPort}/line/cli`, "--secret", "cli-secret", "--body", "examples/line-message.json"]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^200 /);
    const deadline = Date.now() + 15000;
    while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(lines.length, 1, `the receiver verified and printed one event: ${lines.map((l) => l.slice(0, 120)).join(" | ")}`);
    const event = JSON.parse(lines[0]);
    assert.ok(validateEvent(event), JSON.stringify(validateEvent.errors));
    assert.equal(event.source, "/line/cli");
    assert.equal(event.data.message.text, "こんにちは、関所!");
    const rejected = await runCli(["send", "line", `http://127.0.0.1:${gatewayPort}/line/cli`, "--secret", "wrong", "--body", "examples/line-message.json"]);
    assert.notEqual(rejected.code, 0);
    assert.match(rejected.stdout, /^401 \{"error":"invalid_signature"\}/);
  } finally {
    await served.dispose();
    receiver.kill();
  }
});
