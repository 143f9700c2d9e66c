// Attempts that are not deliveries: a redirect is not followed (it is a failed attempt, retried, then
// dead-lettered), and a backend that never answers is cut off after DELIVERY_TIMEOUT_S without holding back
// other accounts' events in the same consumer batch.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startBackend, startGateway, durableOptions, lineBody, lineSign, until, allDeadLetters, SIGNING_SECRET,
} from "./harness.mjs";

const BASE = "http://gateway.test";
const SECRET = "redirect-timeout-line-secret";
const ADMIN_TOKEN = "admin-token-redirect-timeout-e2e-0123456789";
const MAX_ATTEMPTS = 3;
let redirecting; // answers 302 → elsewhere
let elsewhere; // the Location: must never be asked
let hanging; // accepts the connection, never answers
let healthy;
let gateway;

before(async () => {
  elsewhere = await startBackend({ respond: () => 200 });
  redirecting = await startBackend({ respond: () => ({ status: 302, headers: { location: `${elsewhere.url}/moved` } }) });
  hanging = await startBackend({ respond: () => "hang" });
  healthy = await startBackend({ respond: () => 204 });
  gateway = await startGateway({
    BACKEND_URL: `${healthy.url}/events`,
    LINE_REDIRECT_BACKEND_URL: `${redirecting.url}/events`,
    LINE_HANGA_BACKEND_URL: `${hanging.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_REDIRECT_CHANNEL_SECRET: SECRET,
    LINE_HANGA_CHANNEL_SECRET: SECRET,
    LINE_FASTB_CHANNEL_SECRET: SECRET,
    ADMIN_TOKEN,
    DELIVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    DELIVERY_BASE_DELAY_S: "1",
    DELIVERY_MAX_DELAY_S: "1",
    DELIVERY_TIMEOUT_S: "2",
  }, durableOptions());
});

after(async () => {
  await gateway?.dispose();
  for (const server of [redirecting, elsewhere, hanging, healthy]) await server?.close();
});

async function post(account, id, text) {
  const body = lineBody(id, text);
  const res = await gateway.dispatchFetch(`${BASE}/line/${account}`, {
    method: "POST", headers: { "x-line-signature": lineSign(SECRET, body) }, body,
  });
  return { status: res.status, text: await res.text() };
}

async function admin(path, { method = "GET" } = {}) {
  const res = await gateway.dispatchFetch(`${BASE}/admin/${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = { unparsed: text };
  }
  return { status: res.status, json };
}

const textOf = (d) => d.event?.data?.message?.text;

test("backend answers 302: the Location is never requested, the POST is retried, after DELIVERY_MAX_ATTEMPTS it is a dead letter with last_status 302 and the Location in last_error", async () => {
  const res = await post("redirect", "01HREDIRECT000000000000000", "redirected");
  assert.equal(res.status, 200, res.text);
  // Until the attempts are used up (or something reached the Location, which is already wrong).
  await until(() => redirecting.received.length >= MAX_ATTEMPTS || elsewhere.received.length > 0, 30000, `${MAX_ATTEMPTS} attempts at the redirecting backend`);
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(elsewhere.received.map((d) => `${d.method} ${d.path}`), [], "the redirect was followed: the Location server received requests");
  const attempts = redirecting.received.filter((d) => textOf(d) === "redirected");
  assert.ok(attempts.every((d) => d.method === "POST" && d.verified), "every attempt a signed POST");
  assert.equal(attempts.length, MAX_ATTEMPTS, `attempts at the redirecting backend: ${attempts.length}`);
  const id = attempts[0].headers["webhook-id"];
  let letter;
  await until(async () => {
    const { letters } = await allDeadLetters(admin);
    letter = letters.find((l) => l.webhook_id === id);
    return letter !== undefined;
  }, 20000, "the dead letter of the redirected event");
  assert.equal(letter.attempts, MAX_ATTEMPTS);
  assert.equal(letter.last_status, 302);
  assert.ok(String(letter.last_error ?? "").includes(`${elsewhere.url}/moved`), `last_error names the Location: ${JSON.stringify(letter.last_error)}`);
});

test("account A's backend never answers (DELIVERY_TIMEOUT_S=2): account B's events in the same batches arrive within 4 s; A's attempts are aborted, retried and dead-lettered with 'no answer within 2 s'", async () => {
  // A's events first so that they lead the consumer batch; everything within the 1 s batch window.
  const sent = [
    ["hanga", "01HHANGA000000000000000001", "A hangs 1"],
    ["fastb", "01HFASTB000000000000000001", "B fast 1"],
    ["hanga", "01HHANGA000000000000000002", "A hangs 2"],
    ["fastb", "01HFASTB000000000000000002", "B fast 2"],
    ["fastb", "01HFASTB000000000000000003", "B fast 3"],
  ];
  const t0 = Date.now();
  for (const [account, id, text] of sent) assert.equal((await post(account, id, text)).status, 200);
  const bTexts = sent.filter(([a]) => a === "fastb").map(([, , t]) => t);
  const bArrived = () => bTexts.filter((t) => healthy.received.some((d) => textOf(d) === t)).length;
  try {
    await until(() => bArrived() === bTexts.length, 4000, "B's events");
  } catch {
    assert.fail(`after ${Date.now() - t0} ms only ${bArrived()} of ${bTexts.length} of account B's events arrived: A's hanging backend holds them back (A attempts open: ${hanging.received.length})`);
  }
  console.log(`B's ${bTexts.length} events arrived ${Date.now() - t0} ms after the requests`);

  const aIds = new Set();
  let letters = [];
  await until(async () => {
    for (const d of hanging.received) aIds.add(d.headers["webhook-id"]);
    ({ letters } = await allDeadLetters(admin));
    return aIds.size === 2 && [...aIds].every((id) => letters.some((l) => l.webhook_id === id));
  }, 40000, "A's two events in the dead-letter store");
  for (const id of aIds) {
    const letter = letters.find((l) => l.webhook_id === id);
    assert.equal(letter.attempts, MAX_ATTEMPTS);
    assert.ok(String(letter.last_error ?? "").includes("no answer within 2 s"), `last_error: ${JSON.stringify(letter.last_error)}`);
    assert.equal(hanging.received.filter((d) => d.headers["webhook-id"] === id).length, MAX_ATTEMPTS, "each attempt reached the backend");
  }
  assert.equal(healthy.received.filter((d) => bTexts.includes(textOf(d))).length, bTexts.length, "B's events once each");
});
