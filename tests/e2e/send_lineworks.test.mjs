// LINE WORKS sending through the built Worker in workerd, against local mocks of both LINE WORKS hosts: the auth
// server (`POST /oauth2/v2.0/token`, LINEWORKS_AUTH_BASE) and the API (`/v1.0/bots/…/messages`,
// LINEWORKS_API_BASE). A signed send → 202 → one token request carrying a service-account JWT (its RS256
// signature verified here with the test key's public half, node:crypto) → one bot message with that token →
// `message.sent` at the backend. The token is cached (a second send fetches none); an API 401 drops it and
// fetches a new one, once; a 1:1 conversation id (a user id) is sent to the user after the channel endpoint's 404.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createPublicKey, verify } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { ROOT, startBackend, startGateway, durableOptions, until, validateEvent, SIGNING_SECRET } from "./harness.mjs";

const BASE = "https://gateway.test";
// fixtures/lineworks/keys: a test key of no LINE WORKS app.
const PRIVATE_KEY = readFileSync(join(ROOT, "fixtures/lineworks/keys/test-private-key.pem"), "utf8");
const PUBLIC_KEY = createPublicKey(readFileSync(join(ROOT, "fixtures/lineworks/keys/test-public-key.pem"), "utf8"));
const CLIENT_ID = "XN3ffPU1bYkcL4PJzPlz";
const CLIENT_SECRET = "lineworks-client-secret-0123";
const SERVICE_ACCOUNT = "1a2b3.serviceaccount@example.co.jp";
const BOT_ID = "2000001";
const USER = "f4e7b8ed-8e1f-4ba1-1dd4-03f7ec0bd3a0";
const CHANNEL = "c8a6f0e2-4b1d-4f3a-9c5e-7b2d0a4f6c8e";
const signer = new Webhook(SIGNING_SECRET);

let backend;
let auth;
let api;
let gateway;
let issued = 0;
const revoked = new Set();

const json = (status, body) => ({ status, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

function authAnswer(entry) {
  if (entry.path !== "/oauth2/v2.0/token") return 404;
  issued += 1;
  return json(200, { access_token: `kr1AT${issued}`, refresh_token: `kr1RT${issued}`, scope: "bot", token_type: "Bearer", expires_in: "86400" });
}

function apiAnswer(entry) {
  const token = (entry.headers.authorization ?? "").replace(/^Bearer /, "");
  const text = entry.event?.content?.text ?? "";
  if (text === "expire the token" && !revoked.has(token) && revoked.size === 0) revoked.add(token);
  if (revoked.has(token)) return json(401, { code: "UNAUTHORIZED", description: "Authentication failed" });
  if (entry.path === `/v1.0/bots/${BOT_ID}/channels/${USER}/messages`) return json(404, { code: "NOT_FOUND", description: "channel not found" });
  if (entry.path.startsWith(`/v1.0/bots/${BOT_ID}/`) && entry.path.endsWith("/messages")) return { status: 201, body: "" };
  return 404;
}

before(async () => {
  backend = await startBackend();
  auth = await startBackend({ respond: authAnswer });
  api = await startBackend({ respond: apiAnswer });
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    DELIVERY_BASE_DELAY_S: "1",
    LINEWORKS_ACME_BOT_SECRET: "lineworks-bot-secret",
    LINEWORKS_ACME_BOT_ID: BOT_ID,
    LINEWORKS_ACME_CLIENT_ID: CLIENT_ID,
    LINEWORKS_ACME_CLIENT_SECRET: CLIENT_SECRET,
    LINEWORKS_ACME_SERVICE_ACCOUNT: SERVICE_ACCOUNT,
    LINEWORKS_ACME_PRIVATE_KEY: PRIVATE_KEY,
    LINEWORKS_BARE_BOT_SECRET: "lineworks-bot-secret",
    LINEWORKS_BARE_BOT_ID: BOT_ID,
    LINEWORKS_BARE_CLIENT_ID: CLIENT_ID,
    LINEWORKS_API_BASE: api.url,
    LINEWORKS_AUTH_BASE: auth.url,
  }, durableOptions());
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  await auth?.close();
  await api?.close();
});

function send(account, body, id = `msg_${Math.random().toString(36).slice(2)}`) {
  const payload = JSON.stringify(body);
  const at = new Date();
  return gateway.dispatchFetch(`${BASE}/send/lineworks/${account}`, {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signer.sign(id, at, payload) },
    body: payload,
  });
}

const outcomes = (sendId) => backend.received.filter((r) => r.event?.data?.send_id === sendId);
const messages = (text) => api.received.filter((r) => r.event?.content?.text === text);
const tokenCalls = () => auth.received.filter((r) => r.path === "/oauth2/v2.0/token");
const form = (entry) => Object.fromEntries(new URLSearchParams(entry.body));

/** The JWT's header and claims, once its RS256 signature verifies with the test public key. */
function verifiedJwt(jwt) {
  const [header, claims, signature] = jwt.split(".");
  const valid = verify("RSA-SHA256", Buffer.from(`${header}.${claims}`), PUBLIC_KEY, Buffer.from(signature, "base64url"));
  assert.ok(valid, "the assertion's signature verifies with the public key");
  const decode = (part) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
  return { header: decode(header), claims: decode(claims) };
}

async function sentOnce(account, body) {
  const res = await send(account, body);
  assert.equal(res.status, 202, await res.clone().text());
  const { send_id } = await res.json();
  await until(() => outcomes(send_id).length === 1, 15000);
  return outcomes(send_id)[0];
}

test("a signed send: one JWT grant, one bot message with its token, message.sent", async () => {
  const before = Math.floor(Date.now() / 1000);
  const outcome = await sentOnce("acme", { to: { conversation: CHANNEL }, message: { text: "こんにちは <m userId=\"all\">" } });
  assert.equal(tokenCalls().length, 1);
  const [grant] = tokenCalls();
  assert.equal(grant.method, "POST");
  assert.match(grant.headers["content-type"], /^application\/x-www-form-urlencoded/);
  const fields = form(grant);
  assert.deepEqual(Object.keys(fields).sort(), ["assertion", "client_id", "client_secret", "grant_type", "scope"]);
  assert.equal(fields.grant_type, "urn:ietf:params:oauth:grant-type:jwt-bearer");
  assert.equal(fields.client_id, CLIENT_ID);
  assert.equal(fields.client_secret, CLIENT_SECRET);
  assert.equal(fields.scope, "bot");
  const { header, claims } = verifiedJwt(fields.assertion);
  assert.deepEqual(header, { alg: "RS256", typ: "JWT" });
  assert.equal(claims.iss, CLIENT_ID);
  assert.equal(claims.sub, SERVICE_ACCOUNT);
  assert.ok(claims.iat >= before - 1 && claims.iat <= Math.floor(Date.now() / 1000) + 1, JSON.stringify(claims));
  assert.equal(claims.exp - claims.iat, 3600);

  const sent = messages("こんにちは ＜m userId=\"all\"＞");
  assert.equal(sent.length, 1);
  assert.equal(sent[0].method, "POST");
  assert.equal(sent[0].path, `/v1.0/bots/${BOT_ID}/channels/${CHANNEL}/messages`);
  assert.equal(sent[0].headers.authorization, "Bearer kr1AT1");
  assert.deepEqual(sent[0].event, { content: { type: "text", text: "こんにちは ＜m userId=\"all\"＞" } });
  assert.equal(outcome.verified, true, outcome.verifyError);
  assert.equal(outcome.event.type, "message.sent");
  assert.equal(outcome.event.source, "/lineworks/acme");
  assert.deepEqual(outcome.event.data.recipient, { conversation: CHANNEL });
  assert.ok(validateEvent(outcome.event), JSON.stringify(validateEvent.errors));
  for (const secret of ["kr1AT1", "kr1RT1", CLIENT_SECRET, "PRIVATE KEY"]) assert.ok(!outcome.body.includes(secret), secret);

  // The token is cached: a second send fetches none.
  await sentOnce("acme", { to: { user: USER }, message: { text: "second" } });
  assert.equal(tokenCalls().length, 1);
  assert.equal(messages("second")[0].path, `/v1.0/bots/${BOT_ID}/users/${USER}/messages`);
  assert.equal(messages("second")[0].headers.authorization, "Bearer kr1AT1");
});

test("an API 401 drops the token and fetches a new one, once", async () => {
  const grantsBefore = tokenCalls().length;
  const outcome = await sentOnce("acme", { to: { user: USER }, message: { text: "expire the token" } });
  assert.equal(outcome.event.type, "message.sent");
  const attempts = messages("expire the token");
  assert.equal(attempts.length, 2);
  assert.equal(attempts[0].answer.status, 401);
  assert.equal(attempts[1].answer.status, 201);
  assert.notEqual(attempts[0].headers.authorization, attempts[1].headers.authorization);
  const grants = tokenCalls().slice(grantsBefore);
  assert.equal(grants.length, 1);
  // The rejected token is replaced through the full grant, with a new JWT.
  assert.equal(form(grants[0]).grant_type, "urn:ietf:params:oauth:grant-type:jwt-bearer");
  verifiedJwt(form(grants[0]).assertion);
  assert.equal(attempts[1].headers.authorization, `Bearer kr1AT${issued}`);
});

test("a 1:1 conversation id is the user's: sent to the user after the channel endpoint's 404", async () => {
  const outcome = await sentOnce("acme", { to: { conversation: USER }, message: { text: "one to one" } });
  assert.equal(outcome.event.type, "message.sent");
  const attempts = messages("one to one");
  assert.deepEqual(attempts.map((a) => [a.path, a.answer.status ?? a.answer]), [
    [`/v1.0/bots/${BOT_ID}/channels/${USER}/messages`, 404],
    [`/v1.0/bots/${BOT_ID}/users/${USER}/messages`, 201],
  ]);
  assert.deepEqual(outcome.event.data.recipient, { conversation: USER });
});

test("what LINE WORKS can never take is 422 and reaches neither host", async () => {
  const [authBefore, apiBefore] = [auth.received.length, api.received.length];
  const long = await send("acme", { to: { user: USER }, message: { text: "字".repeat(2001) } });
  assert.equal(long.status, 422);
  assert.deepEqual(await long.json(), { error: "text_too_long", limit: 2000, unit: "characters" });
  const bare = await send("bare", { to: { user: USER }, message: { text: "x" } });
  assert.equal(bare.status, 422);
  assert.deepEqual(await bare.json(), { error: "not_configured", field: "CLIENT_SECRET" });
  const path = await send("acme", { to: { user: "../../x" }, message: { text: "x" } });
  assert.equal(path.status, 422);
  assert.deepEqual(await path.json(), { error: "invalid_recipient" });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(auth.received.length, authBefore);
  assert.equal(api.received.length, apiBefore);
});
