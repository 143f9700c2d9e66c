// Twilio through the built Worker on a real port. Twilio signs the URL it calls, so the fixture bodies (signed for
// https://gateway.test, and replayed as they are by gateway.test.mjs) are re-signed here, with node:crypto, for the
// URL this Worker is reached at: http://127.0.0.1:PORT/twilio/demo. `sekisho send twilio` signs the same way.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startBackend, startGateway, freePort, validateEvent, runCli, assertSubset, SIGNING_SECRET } from "./harness.mjs";

const fixture = (name) => JSON.parse(readFileSync(join(ROOT, "fixtures", "twilio", `${name}.json`), "utf8"));
// The account is `demo` with the fixtures' tokens (newest first), so their expected event ids hold.
const [TOKEN, OLD_TOKEN] = fixture("sms-text").config.AUTH_TOKEN.split(" ");
const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
let backend;
let gateway;
let base;
const scratch = mkdtempSync(join(tmpdir(), "sekisho-twilio-"));

before(async () => {
  backend = await startBackend();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    TWILIO_DEMO_AUTH_TOKEN: `${TOKEN},${OLD_TOKEN}`,
  }, { host: "127.0.0.1", port });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** Twilio's scheme: the URL, then every parameter name (sorted) immediately followed by each of its distinct
 * values (sorted); HMAC-SHA1 with the auth token, base64. */
function twilioSignature(token, url, form = "") {
  const params = new URLSearchParams(form);
  let data = url;
  for (const name of [...new Set(params.keys())].sort()) {
    for (const value of [...new Set(params.getAll(name))].sort()) data += name + value;
  }
  return createHmac("sha1", token).update(Buffer.from(data, "utf8")).digest("base64");
}

async function post(body, { token = TOKEN, query = "", signedUrl, contentType = "application/x-www-form-urlencoded", signature } = {}) {
  const url = `${base}/twilio/demo${query}`;
  const headers = { "content-type": contentType };
  const json = contentType === "application/json";
  if (signature !== null) headers["x-twilio-signature"] = signature ?? twilioSignature(token, signedUrl ?? url, json ? "" : body);
  const res = await fetch(url, { method: "POST", headers, body });
  return { status: res.status, text: await res.text(), contentType: res.headers.get("content-type") };
}

async function deliveredEvent(count) {
  const [delivery] = (await backend.waitFor(count)).slice(count - 1);
  assert.ok(delivery.verified, delivery.verifyError);
  assert.ok(validateEvent(delivery.event), JSON.stringify(validateEvent.errors));
  assert.equal(delivery.event.id, delivery.headers["webhook-id"]);
  return delivery.event;
}

test("Twilio: a signed SMS is answered with empty TwiML and arrives normalized; the old token records key_index 1", async () => {
  const sms = fixture("sms-text");
  const res = await post(sms.request.body);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, EMPTY_TWIML);
  assert.equal(res.contentType, "text/xml");
  const event = await deliveredEvent(1);
  assertSubset(sms.expect.events[0], event, "sms-text");
  assert.equal(event.data.message.text, "予約を変更したいです。明日の15時は空いていますか?");

  const rotated = fixture("rotation-previous-token");
  assert.equal((await post(rotated.request.body, { token: OLD_TOKEN })).status, 200);
  assertSubset(rotated.expect.events[0], await deliveredEvent(2), "rotation-previous-token");
});

test("Twilio: forged, misaddressed, altered and unsigned requests get 401 and are never forwarded", async () => {
  const before = backend.received.length;
  const body = fixture("whatsapp-profile-name").request.body;
  const cases = [
    [await post(body, { token: "0".repeat(32) }), "invalid_signature"],
    [await post(body, { signedUrl: "https://other.example/twilio/demo" }), "invalid_signature"],
    [await post(body, { query: "?campaign=2026", signedUrl: `${base}/twilio/demo` }), "invalid_signature"],
    [await post(body, { signature: twilioSignature(TOKEN, `${base}/twilio/demo`, body.replace("Body=", "Body=forged")) }), "invalid_signature"],
    [await post(body, { signature: null }), "missing_signature"],
  ];
  for (const [res, reason] of cases) {
    assert.equal(res.status, 401, res.text);
    assert.deepEqual(JSON.parse(res.text), { error: reason });
  }
  // Flush: the next accepted request's event arrives alone.
  const after = fixture("whatsapp-location");
  assert.equal((await post(after.request.body)).status, 200);
  await backend.waitFor(before + 1);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(backend.received.length, before + 1, "nothing refused was forwarded");
  assertSubset(after.expect.events[0], backend.received.at(-1).event, "whatsapp-location");
});

test("Twilio: MMS, WhatsApp, a button, status callbacks and a query-string URL arrive as their fixtures' events", async () => {
  const names = ["mms-two-media", "whatsapp-profile-name", "whatsapp-button", "status-delivered", "status-undelivered", "status-queued"];
  for (const name of names) {
    const f = fixture(name);
    const count = backend.received.length + 1;
    const res = await post(f.request.body);
    assert.equal(res.status, 200, `${name}: ${res.text}`);
    assert.equal(res.text, EMPTY_TWIML, name);
    assertSubset(f.expect.events[0], await deliveredEvent(count), name);
  }
  const withQuery = fixture("query-string");
  const count = backend.received.length + 1;
  assert.equal((await post(withQuery.request.body, { query: `?${withQuery.request.query}` })).status, 200);
  assertSubset(withQuery.expect.events[0], await deliveredEvent(count), "query-string");
});

test("Twilio: a JSON body is accepted through bodySHA256 and refused when it does not hash to it", async () => {
  const f = fixture("json-body-sha256");
  const body = f.request.body;
  const query = `?bodySHA256=${createHash("sha256").update(body).digest("hex")}`;
  const count = backend.received.length + 1;
  const res = await post(body, { query, contentType: "application/json" });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, '{"accepted":1}');
  assertSubset(f.expect.events[0], await deliveredEvent(count), "json-body-sha256");
  const forged = await post(body.replace("JSONで", "偽の"), {
    query, contentType: "application/json", signature: twilioSignature(TOKEN, `${base}/twilio/demo${query}`),
  });
  assert.equal(forged.status, 401);
  assert.deepEqual(JSON.parse(forged.text), { error: "invalid_signature" });
});

test("Twilio: sekisho send twilio signs for --url", async () => {
  const path = join(scratch, "sms.txt");
  writeFileSync(path, fixture("sms-text").request.body);
  const url = `${base}/twilio/demo`;
  const res = await runCli(["send", "twilio", url, "--url", url, "--secret", TOKEN, "--body", path]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `200 ${EMPTY_TWIML}\n`);
  const wrong = await runCli(["send", "twilio", url, "--url", url, "--secret", OLD_TOKEN.replace(/./, "x"), "--body", path]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stdout, /^401 \{"error":"invalid_signature"\}/);
});
