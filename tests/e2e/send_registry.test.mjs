// A send for a registry account whose credential was replaced while this isolate still caches the old value:
// LINE refuses the old channel access token (401), the consumer reads the account again (as the webhook path does
// after a failed signature) and sends once more with the new token → one `message.sent`. The replacement is
// written through a second Worker of the same script ("admin", sharing the ACCOUNTS namespace and the
// AccountWriter objects), so the sending isolate is not the one that wrote it and keeps its cached copy.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { ROOT, startBackend, startGateway, durableOptions, until, SIGNING_SECRET } from "./harness.mjs";

const ADMIN_TOKEN = "send-registry-admin-token-0123456789abcdef";
const SEALING_KEY = randomBytes(32).toString("base64");
const OLD_TOKEN = "line-channel-access-token-OLD-0123";
const NEW_TOKEN = "line-channel-access-token-NEW-4567";
const LINE_USER = "U0123456789abcdef0123456789abcdef";
const signer = new Webhook(SIGNING_SECRET);

let backend;
let provider;
let gateway;

before(async () => {
  backend = await startBackend();
  provider = await startBackend({
    respond: (entry) => entry.headers.authorization === `Bearer ${NEW_TOKEN}`
      ? { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ sentMessages: [{ id: `m-${entry.at}` }] }) }
      : { status: 401, headers: { "content-type": "application/json" }, body: JSON.stringify({ message: "Authentication failed. Confirm that the access token in the authorization header is valid." }) },
  });
  const build = process.env.SEKISHO_BUILD ?? join(ROOT, "build");
  const bindings = {
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    DELIVERY_BASE_DELAY_S: "1",
    ADMIN_TOKEN,
    ACCOUNTS_SEALING_KEY: SEALING_KEY,
    LINE_API_BASE: provider.url,
  };
  const durable = durableOptions();
  gateway = await startGateway(bindings, {
    ...durable,
    durableObjects: { ...durable.durableObjects, ACCOUNT_WRITER: { className: "AccountWriter", useSQLite: true } },
    kvNamespaces: { ACCOUNTS: "sekisho-accounts" },
    auxWorkers: [{
      name: "admin",
      modulesRoot: build,
      modules: [
        { type: "ESModule", path: join(build, "index.js") },
        { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
      ],
      compatibilityDate: "2026-04-01",
      bindings,
      kvNamespaces: { ACCOUNTS: "sekisho-accounts" },
      durableObjects: { ACCOUNT_WRITER: { className: "AccountWriter", scriptName: "sekisho", useSQLite: true } },
    }],
  });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  await provider?.close();
});

async function admin(method, path, body, headers = {}) {
  const worker = await gateway.getWorker("admin");
  const res = await worker.fetch(`http://gate.test/admin/api/${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get("etag"), text };
}

async function send(text) {
  const id = `msg_${Math.random().toString(36).slice(2)}`;
  const payload = JSON.stringify({ to: { user: LINE_USER }, message: { text } });
  const at = new Date();
  const res = await gateway.dispatchFetch("http://gate.test/send/line/tenant", {
    method: "POST",
    headers: { "content-type": "application/json", "webhook-id": id, "webhook-timestamp": String(Math.floor(at.getTime() / 1000)), "webhook-signature": signer.sign(id, at, payload) },
    body: payload,
  });
  assert.equal(res.status, 202, await res.clone().text());
  const { send_id } = await res.json();
  await until(() => backend.received.some((r) => r.event?.data?.send_id === send_id), 20000, `the outcome of ${text}`);
  return backend.received.find((r) => r.event?.data?.send_id === send_id).event;
}

const pushes = (text) => provider.received.filter((r) => r.event?.messages?.[0]?.text === text);

test("a refused credential reads the cached registry account again and sends with its new value, once", async () => {
  const created = await admin("PUT", "accounts/line/tenant", { fields: { CHANNEL_SECRET: "0123456789abcdef0123456789abcdef", CHANNEL_ACCESS_TOKEN: OLD_TOKEN } });
  assert.equal(created.status, 201, created.text);
  // The old token: LINE refuses it, and the registry holds nothing newer — message.send_failed.
  const failed = await send("with the old token");
  assert.equal(failed.type, "message.send_failed");
  assert.equal(failed.data.error.code, "401");
  assert.ok(pushes("with the old token").every((p) => p.headers.authorization === `Bearer ${OLD_TOKEN}`));

  // Replaced through the other Worker: this isolate still caches the old token.
  const replaced = await admin("POST", "accounts/line/tenant/secrets/CHANNEL_ACCESS_TOKEN", { value: NEW_TOKEN }, { "if-match": created.etag });
  assert.equal(replaced.status, 200, replaced.text);
  // The old value retired, so the account holds only the new one.
  const oldFingerprint = createHash("sha256").update(OLD_TOKEN).digest("hex").slice(0, 8);
  const retired = await admin("DELETE", `accounts/line/tenant/secrets/CHANNEL_ACCESS_TOKEN/${oldFingerprint}`, undefined, { "if-match": replaced.etag });
  assert.ok([200, 204].includes(retired.status), retired.text);
  await new Promise((r) => setTimeout(r, 2100)); // the re-read is allowed every 2 s per account

  const sent = await send("after the rotation");
  assert.equal(sent.type, "message.sent");
  const attempts = pushes("after the rotation");
  assert.deepEqual(attempts.map((p) => [p.headers.authorization, p.answer.status]), [
    [`Bearer ${OLD_TOKEN}`, 401],
    [`Bearer ${NEW_TOKEN}`, 200],
  ]);
});
