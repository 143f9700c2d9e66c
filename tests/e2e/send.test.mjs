// Talking back through the built Worker in workerd: the backend signs `POST /send/{channel}/{account}` with
// Standard Webhooks → 202 {send_id} once queued → the queue consumer calls a local mock of the provider's API →
// the backend receives `message.sent` (or `message.send_failed`) signed like every delivery. Also: a repeated
// webhook-id is sent once; a 429 with Retry-After is retried after the wait, with the same LINE retry key;
// unsigned or stale calls are 401 with no outbound request; twenty concurrent WeChat sends make one token
// request.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { startBackend, startGateway, durableOptions, until, validateEvent, freePort, runCli, SIGNING_SECRET } from "./harness.mjs";

const BASE = "https://gateway.test";
const LINE_USER = "U0123456789abcdef0123456789abcdef";
const OPENID = "oLVPpjqs9BhvzwPj5A-vTYAX3GLc";
const LINE_TOKEN = "line-channel-access-token-0123";
const signer = new Webhook(SIGNING_SECRET);

let backend;
let provider;
let gateway;
let base;

/** The mock provider: LINE push and WeChat's stable_token + customer-service send. */
const rateLimitedOnce = new Set();
function providerAnswer(entry) {
  const body = entry.event ?? {};
  if (entry.path === "/v2/bot/message/push") {
    const text = body.messages?.[0]?.text ?? "";
    if (text.startsWith("rate") && !rateLimitedOnce.has(text)) {
      rateLimitedOnce.add(text);
      return { status: 429, headers: { "retry-after": "2", "content-type": "application/json" }, body: JSON.stringify({ message: "Too many requests" }) };
    }
    if (text === "refused") {
      return { status: 400, headers: { "content-type": "application/json" }, body: JSON.stringify({ message: "The request body has 1 error(s)", details: [{ message: "invalid", property: "to" }] }) };
    }
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ sentMessages: [{ id: `m-${entry.at}`, quoteToken: "q" }] }) };
  }
  if (entry.path === "/cgi-bin/stable_token") {
    // Slow enough that the concurrent sends all ask while this fetch is under way.
    return { status: 200, delayMs: 400, headers: { "content-type": "application/json" }, body: JSON.stringify({ access_token: "WX_TOKEN_1", expires_in: 7200 }) };
  }
  if (entry.path.startsWith("/cgi-bin/message/custom/send")) {
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ errcode: 0, errmsg: "ok" }) };
  }
  return 404;
}

before(async () => {
  backend = await startBackend();
  provider = await startBackend({ respond: providerAnswer });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    DELIVERY_BASE_DELAY_S: "1",
    LINE_ACME_CHANNEL_SECRET: "0123456789abcdef0123456789abcdef",
    LINE_ACME_CHANNEL_ACCESS_TOKEN: LINE_TOKEN,
    LINE_BARE_CHANNEL_SECRET: "0123456789abcdef0123456789abcdef",
    LINE_API_BASE: provider.url,
    WECHAT_ACME_TOKEN: "wechat-token",
    WECHAT_ACME_APP_ID: "wx0123456789abcdef",
    WECHAT_ACME_APP_SECRET: "wechat-app-secret",
    WECHAT_API_BASE: provider.url,
  }, { ...durableOptions(), host: "127.0.0.1", port });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  await provider?.close();
});

function send(channel, account, body, { id = `msg_${Math.random().toString(36).slice(2)}`, at = new Date(), sign = true } = {}) {
  const payload = JSON.stringify(body);
  const headers = { "content-type": "application/json" };
  if (sign) {
    headers["webhook-id"] = id;
    headers["webhook-timestamp"] = String(Math.floor(at.getTime() / 1000));
    headers["webhook-signature"] = signer.sign(id, at, payload);
  }
  return gateway.dispatchFetch(`${BASE}/send/${channel}/${account}`, { method: "POST", headers, body: payload });
}

const pushes = (text) => provider.received.filter((r) => r.path === "/v2/bot/message/push" && r.event?.messages?.[0]?.text === text);
const outcomes = (sendId) => backend.received.filter((r) => r.event?.data?.send_id === sendId);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("a signed send is queued, pushed once to LINE, and reported as message.sent", async () => {
  const res = await send("line", "acme", { to: { user: LINE_USER }, message: { text: "こんにちは <b>" }, in_reply_to: "evt_0123" }, { id: "msg_first" });
  assert.equal(res.status, 202);
  const { send_id } = await res.json();
  assert.match(send_id, /^snd_[0-9a-f]{32}$/);
  await until(() => outcomes(send_id).length === 1, 15000);
  const [push] = pushes("こんにちは <b>");
  assert.equal(pushes("こんにちは <b>").length, 1);
  assert.equal(push.method, "POST");
  assert.equal(push.headers.authorization, `Bearer ${LINE_TOKEN}`);
  assert.match(push.headers["x-line-retry-key"], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.deepEqual(push.event, { to: LINE_USER, messages: [{ type: "text", text: "こんにちは <b>" }] });
  const [outcome] = outcomes(send_id);
  assert.equal(outcome.verified, true, outcome.verifyError);
  assert.equal(outcome.event.type, "message.sent");
  assert.equal(outcome.event.source, "/line/acme");
  assert.equal(outcome.event.data.message.id, `m-${push.at}`);
  assert.deepEqual(outcome.event.data.recipient, { user: LINE_USER });
  assert.equal(outcome.event.data.in_reply_to, "evt_0123");
  assert.ok(validateEvent(outcome.event), JSON.stringify(validateEvent.errors));
  // Nothing of the token reached the backend.
  assert.ok(!outcome.body.includes(LINE_TOKEN));

  // The same webhook-id again: the same answer, and nothing sent a second time.
  const again = await send("line", "acme", { to: { user: LINE_USER }, message: { text: "こんにちは <b>" } }, { id: "msg_first" });
  assert.equal(again.status, 202);
  assert.deepEqual(await again.json(), { send_id });
  await sleep(2500);
  assert.equal(pushes("こんにちは <b>").length, 1);
  assert.equal(outcomes(send_id).length, 1);
});

test("unsigned, stale and forged sends are 401 and reach no provider", async () => {
  const before = provider.received.length;
  const body = { to: { user: LINE_USER }, message: { text: "never" } };
  const unsigned = await send("line", "acme", body, { sign: false });
  assert.equal(unsigned.status, 401);
  assert.deepEqual(await unsigned.json(), { error: "missing_signature" });
  const stale = await send("line", "acme", body, { at: new Date(Date.now() - 10 * 60 * 1000) });
  assert.equal(stale.status, 401);
  assert.deepEqual(await stale.json(), { error: "stale_timestamp" });
  const forged = await gateway.dispatchFetch(`${BASE}/send/line/acme`, {
    method: "POST",
    headers: { "webhook-id": "msg_x", "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": "v1,AAAA" },
    body: JSON.stringify(body),
  });
  assert.equal(forged.status, 401);
  await sleep(2000);
  assert.equal(provider.received.length, before);
  assert.equal(pushes("never").length, 0);
});

test("what can never be sent is 422, an unknown account 404", async () => {
  const bare = await send("line", "bare", { to: { user: LINE_USER }, message: { text: "x" } });
  assert.equal(bare.status, 422);
  assert.deepEqual(await bare.json(), { error: "not_configured", field: "CHANNEL_ACCESS_TOKEN" });
  const long = await send("line", "acme", { to: { user: LINE_USER }, message: { text: "a".repeat(5001) } });
  assert.equal(long.status, 422);
  assert.deepEqual(await long.json(), { error: "text_too_long", limit: 5000, unit: "utf16" });
  const shape = await send("line", "acme", { to: { group: LINE_USER }, message: { text: "x" } });
  assert.equal(shape.status, 422);
  assert.equal((await shape.json()).error, "invalid_body");
  const unknown = await send("line", "nobody", { to: { user: LINE_USER }, message: { text: "x" } });
  assert.equal(unknown.status, 404);
  const noApi = await send("generic", "nobody", { to: { user: "u" }, message: { text: "x" } });
  assert.equal(noApi.status, 404);
});

test("a 429 is retried after the provider's reset, with the same retry key: one message", async () => {
  const res = await send("line", "acme", { to: { user: LINE_USER }, message: { text: "rate-1" } });
  assert.equal(res.status, 202);
  const { send_id } = await res.json();
  await until(() => outcomes(send_id).length === 1, 20000);
  const attempts = pushes("rate-1");
  assert.equal(attempts.length, 2);
  assert.equal(attempts[0].answer.status, 429);
  assert.equal(attempts[1].answer.status, 200);
  assert.ok(attempts[1].at - attempts[0].at >= 2000, `retried after ${attempts[1].at - attempts[0].at} ms`);
  assert.equal(attempts[0].headers["x-line-retry-key"], attempts[1].headers["x-line-retry-key"]);
  assert.equal(outcomes(send_id)[0].event.type, "message.sent");
});

test("a permanent refusal is reported as message.send_failed at once", async () => {
  const res = await send("line", "acme", { to: { user: LINE_USER }, message: { text: "refused" } });
  const { send_id } = await res.json();
  await until(() => outcomes(send_id).length === 1, 15000);
  const [failed] = outcomes(send_id);
  assert.equal(failed.event.type, "message.send_failed");
  assert.deepEqual(failed.event.data.error, { code: "400", message: "The request body has 1 error(s): invalid" });
  assert.ok(validateEvent(failed.event), JSON.stringify(validateEvent.errors));
  assert.equal(pushes("refused").length, 1);
});

test("twenty concurrent WeChat sends make one token request", async () => {
  const answers = await Promise.all(
    Array.from({ length: 20 }, (_, i) => send("wechat", "acme", { to: { user: OPENID }, message: { text: `你好 ${i}` } })),
  );
  assert.deepEqual(answers.map((a) => a.status), Array(20).fill(202));
  const ids = await Promise.all(answers.map((a) => a.json().then((j) => j.send_id)));
  await until(() => ids.every((id) => outcomes(id).length === 1), 20000);
  const tokenCalls = provider.received.filter((r) => r.path === "/cgi-bin/stable_token");
  assert.equal(tokenCalls.length, 1);
  assert.deepEqual(tokenCalls[0].event, { grant_type: "client_credential", appid: "wx0123456789abcdef", secret: "wechat-app-secret", force_refresh: false });
  const sends = provider.received.filter((r) => r.path.startsWith("/cgi-bin/message/custom/send"));
  assert.equal(sends.length, 20);
  assert.ok(sends.every((s) => s.path === "/cgi-bin/message/custom/send?access_token=WX_TOKEN_1"));
  assert.ok(ids.every((id) => outcomes(id)[0].event.type === "message.sent"));
  for (const id of ids) assert.ok(!outcomes(id)[0].body.includes("WX_TOKEN_1"));
});

test("sekisho send-message signs and sends one from the command line", async () => {
  const url = `${base}/send/line/acme`;
  const args = ["send-message", "line", url, "--secret", SIGNING_SECRET, "--to-user", LINE_USER, "--text", "from the CLI", "--id", "msg_cli_1"];
  const res = await runCli(args);
  assert.equal(res.code, 0, res.stderr);
  const [, sendId] = res.stdout.match(/^202 \{"send_id":"(snd_[0-9a-f]{32})"\}/) ?? [];
  assert.ok(sendId, res.stdout);
  await until(() => outcomes(sendId).length === 1, 15000);
  assert.equal(pushes("from the CLI").length, 1);
  // The same --id again: the same answer, nothing sent twice.
  const again = await runCli(args);
  assert.equal(again.stdout, res.stdout);
  const wrong = await runCli(["send-message", "line", url, "--secret", "whsec_b3RoZXItc2VjcmV0", "--to-user", LINE_USER, "--text", "x"]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stdout, /^401 \{"error":"invalid_signature"\}/);
  await sleep(1500);
  assert.equal(pushes("from the CLI").length, 1);
});
