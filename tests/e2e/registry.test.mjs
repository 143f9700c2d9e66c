// The account registry end to end through workerd: accounts created, rotated, retired and deleted through the
// admin API while signed LINE requests arrive; every KV operation is counted through a wrapped ACCOUNTS binding
// (no test hooks in production code), and everything the Worker printed is searched for every secret set.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, startBackend, durableOptions, lineBody, lineSign, SIGNING_SECRET } from "./harness.mjs";

const ADMIN_TOKEN = "registry-admin-token-0123456789abcdef";
const KEY_OLD = randomBytes(32).toString("base64");
const KEY_NEW = randomBytes(32).toString("base64");
const SECRET_1 = randomBytes(16).toString("hex");
const SECRET_2 = randomBytes(16).toString("hex");
const fingerprint = (value) => createHash("sha256").update(value).digest("hex").slice(0, 8);

const KV_WRAPPER = `
class CountedKv {
  constructor(env) { this.real = env.REAL; this.control = env.CONTROL; }
  async count(op, key) { await this.control.fetch("http://count/", { method: "POST", body: JSON.stringify({ op, key }) }); }
  async get(key, options) { await this.count("get", key); return this.real.get(key, options); }
  async getWithMetadata(key, options) { await this.count("get", key); return this.real.getWithMetadata(key, options); }
  async put(key, value, options) { await this.count("put", key); return this.real.put(key, value, options); }
  async list(options) { await this.count("list", options?.prefix ?? ""); return this.real.list(options); }
  async delete(key) { await this.count("delete", key); return this.real.delete(key); }
}
export default function (env) { return new CountedKv(env); }
`;

/** A gateway with the registry on, KV counted, and its output captured; `setKeys` reconfigures the sealing
 * keys as a deploy with a rotated `ACCOUNTS_SEALING_KEY` would (storage is kept). */
async function gateway(backend, sealingKeys) {
  const ops = [];
  const output = [];
  const durable = durableOptions();
  const build = process.env.SEKISHO_BUILD ?? join(ROOT, "build");
  const options = (keys) => ({
    // Miniflare's local e-mail endpoint (POST /cdn-cgi/handler/email), a shared option in the multi-worker form.
    unsafeTriggerHandlers: true,
    handleRuntimeStdio(stdout, stderr) {
      stdout.on("data", (d) => output.push(String(d)));
      stderr.on("data", (d) => output.push(String(d)));
    },
    workers: [
      {
        name: "sekisho",
        modulesRoot: build,
        modules: [
          { type: "ESModule", path: join(build, "index.js") },
          { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
        ],
        compatibilityDate: "2026-04-01",
        bindings: {
          BACKEND_URL: `${backend.url}/events`,
          BACKEND_SIGNING_SECRET: SIGNING_SECRET,
          ADMIN_TOKEN,
          ACCOUNTS_SEALING_KEY: keys,
          METRICS_FLUSH_SECONDS: "1",
        },
        ...durable,
        durableObjects: { ...durable.durableObjects, ACCOUNT_WRITER: { className: "AccountWriter", useSQLite: true } },
        wrappedBindings: { ACCOUNTS: "kv-count" },
      },
      {
        name: "kv-count",
        modules: true,
        script: KV_WRAPPER,
        kvNamespaces: { REAL: "sekisho-accounts" },
        serviceBindings: {
          async CONTROL(request) {
            ops.push(await request.json());
            return new Response("ok");
          },
        },
      },
    ],
  });
  const mf = new Miniflare(options(sealingKeys));
  await mf.ready;
  return { mf, ops, output, setKeys: (keys) => mf.setOptions(options(keys)) };
}

const admin = (mf) => async (method, path, body, headers = {}) => {
  const res = await mf.dispatchFetch(`http://gate.test/admin/api/${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get("etag"), text, json: text ? JSON.parse(text) : null };
};

const signedLine = (mf) => async (secret, id, account = "acme") => {
  const body = lineBody(id, `registry ${id}`);
  const res = await mf.dispatchFetch(`http://gate.test/line/${account}`, {
    method: "POST", headers: { "x-line-signature": lineSign(secret, body) }, body,
  });
  return { status: res.status, text: await res.text() };
};

/** Polls `check` until it holds, at most `ms` (the documented bound), and returns how long it took. */
async function within(ms, check) {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test("a tenant's account: created, verified, rotated, retired and deleted at run time", async () => {
  const backend = await startBackend();
  const { mf, ops, output } = await gateway(backend, KEY_NEW);
  const api = admin(mf);
  const line = signedLine(mf);
  const answers = [];
  try {
    // Created by API; the first signed request (the provider's Verify) is accepted at once.
    const created = await api("PUT", "accounts/line/acme", { fields: { CHANNEL_SECRET: SECRET_1, BACKEND_URL: `${backend.url}/acme` } });
    answers.push(created.text);
    assert.equal(created.status, 201, created.text);
    assert.equal(created.etag, '"v1"');
    assert.equal(created.json.source, "registry");
    assert.equal(created.json.webhook_url, "http://gate.test/line/acme");
    assert.deepEqual(created.json.fields.CHANNEL_SECRET, { secret: true, values: [{ index: 0, fingerprint: fingerprint(SECRET_1) }] });
    const first = await line(SECRET_1, "01HREG0001");
    assert.equal(first.status, 200, first.text);

    // A second value: both accepted, key_index 0 (newest) and 1.
    const rotated = await api("POST", "accounts/line/acme/secrets/CHANNEL_SECRET", { value: SECRET_2 }, { "if-match": created.etag });
    answers.push(rotated.text);
    assert.equal(rotated.status, 200, rotated.text);
    assert.equal(rotated.json.version, 2);
    assert.equal((await line(SECRET_2, "01HREG0002")).status, 200);
    assert.equal((await line(SECRET_1, "01HREG0003")).status, 200);
    await backend.waitFor(3);
    const byId = Object.fromEntries(backend.received.map((d) => [d.event.data.message?.id ?? d.event.id, d]));
    assert.ok(backend.received.every((d) => d.verified && d.path === "/acme"), "delivered signed, to the account's own backend");
    assert.equal(byId["m-01HREG0002"].event.data.verification.key_index, 0);
    assert.equal(byId["m-01HREG0003"].event.data.verification.key_index, 1);

    // Metrics and rotation status treat a registry account as an environment one: both values, by fingerprint,
    // each with its matches (the isolate flushes within a second).
    await within(15_000, async () => {
      const table = await api("GET", "accounts?window=1h");
      const row = table.json?.accounts?.find((a) => a.channel === "line" && a.account === "acme");
      return row?.keys?.length === 2 && row.keys.every((k) => k.matched >= 1) && row.events >= 3;
    });

    // A stale If-Match is refused and changes nothing.
    const stale = await api("POST", "accounts/line/acme/secrets/CHANNEL_SECRET", { value: randomBytes(16).toString("hex") }, { "if-match": created.etag });
    assert.equal(stale.status, 412, stale.text);

    // Retire the old value: refused within the documented bound (60 s).
    const retired = await api("DELETE", `accounts/line/acme/secrets/CHANNEL_SECRET/${fingerprint(SECRET_1)}`);
    answers.push(retired.text);
    assert.equal(retired.status, 200, retired.text);
    let n = 0;
    await within(60_000, async () => (await line(SECRET_1, `01HREG01${n++}`)).status === 401);
    assert.equal((await line(SECRET_2, "01HREG0004")).status, 200);
    const last = await api("DELETE", `accounts/line/acme/secrets/CHANNEL_SECRET/${fingerprint(SECRET_2)}`);
    assert.equal(last.status, 409, last.text);

    // The audit trail, newest first: names only, the token by fingerprint.
    const audit = await api("GET", "audit?limit=10");
    answers.push(audit.text);
    assert.equal(audit.status, 200, audit.text);
    assert.deepEqual(audit.json.entries.map((e) => e.action), ["retire_secret", "add_secret", "create"]);
    assert.deepEqual(audit.json.entries[0].fields, ["CHANNEL_SECRET"]);
    assert.equal(audit.json.entries[0].token.fingerprint, fingerprint(ADMIN_TOKEN));

    // Listed with the environment's accounts; GET shows it.
    const listed = await api("GET", "registry?channel=line");
    answers.push(listed.text);
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.json.accounts.map((a) => `${a.source}:${a.account}`), ["registry:acme"]);
    const got = await api("GET", "accounts/line/acme");
    answers.push(got.text);
    assert.equal(got.json.version, 3);

    // Deleted: refused within the bound; events already accepted were delivered.
    const deleted = await api("DELETE", "accounts/line/acme");
    assert.deepEqual(deleted.json, { deleted: true });
    let m = 0;
    await within(60_000, async () => (await line(SECRET_2, `01HREG02${m++}`)).status === 404);
    assert.equal((await api("GET", "accounts/line/acme")).status, 404);
    await backend.waitFor(4);

    // Nothing the gateway answered or printed holds a secret value.
    const everything = answers.join("\n") + output.join("");
    for (const secret of [SECRET_1, SECRET_2, KEY_NEW, ADMIN_TOKEN]) {
      assert.ok(!everything.includes(secret), "a secret value leaked into an answer or the log");
    }
    assert.ok(ops.length > 0, "KV was used through the counted binding");
  } finally {
    await mf.dispose();
    await backend.close();
  }
});

test("validation: one refusal per kind of field, and nothing is stored", async () => {
  const backend = await startBackend();
  const { mf, ops } = await gateway(backend, KEY_NEW);
  const api = admin(mf);
  try {
    const cases = [
      ["line", { CHANNEL_SECRET: "xyz" }, "CHANNEL_SECRET"],
      ["line", { BACKEND_URL: "https://b.example" }, "CHANNEL_SECRET"],
      ["line", { CHANNEL_SECRET: SECRET_1, NOPE: "x" }, "NOPE"],
      ["line", { CHANNEL_SECRET: SECRET_1, BACKEND_URL: "http://evil.example/" }, "BACKEND_URL"],
      ["wechat", { TOKEN: "tok123", APP_ID: "wx1234567890", ENCODING_AES_KEY: "short" }, "ENCODING_AES_KEY"],
      ["discord", { PUBLIC_KEY: "12ab" }, "PUBLIC_KEY"],
      ["line", { CHANNEL_SECRET: SECRET_1, REPLY_TIMEOUT_MS: "-1" }, "REPLY_TIMEOUT_MS"],
      ["wecom", { TOKEN: "tok123", ENCODING_AES_KEY: "a".repeat(43), MODE: "robot" }, "MODE"],
      ["email", { ADDRESS: "not-an-address" }, "ADDRESS"],
    ];
    for (const [channel, fields, field] of cases) {
      const res = await api("PUT", `accounts/${channel}/acme`, { fields });
      assert.equal(res.status, 422, `${channel} ${JSON.stringify(fields)}: ${res.text}`);
      assert.equal(res.json.error, "invalid_field");
      assert.equal(res.json.field, field);
      assert.ok(res.json.problem.length > 0);
    }
    assert.equal(ops.filter((o) => o.op === "put").length, 0, "nothing stored");
    assert.equal((await api("PUT", "accounts/nope/acme", { fields: {} })).status, 404);
    assert.equal((await api("PUT", "accounts/line/ACME", { fields: {} })).status, 404);
    assert.equal((await api("PUT", "accounts/line/acme", { other: 1 })).status, 400);
    const unauthorized = await mf.dispatchFetch("http://gate.test/admin/api/accounts/line/acme", { method: "PUT", body: "{}" });
    assert.equal(unauthorized.status, 401);
  } finally {
    await mf.dispose();
    await backend.close();
  }
});

test("unknown-account floods cost no storage read after the first per isolate", async () => {
  const backend = await startBackend();
  const { mf, ops } = await gateway(backend, KEY_NEW);
  const line = signedLine(mf);
  try {
    for (let i = 0; i < 40; i++) {
      const res = await line(SECRET_1, `01HFLOOD${i}`, "nobody");
      assert.equal(res.status, 404, res.text);
    }
    const reads = ops.filter((o) => o.op === "get" && o.key === "a/line/nobody").length;
    assert.equal(reads, 1, `${reads} KV reads for 40 requests to one unknown account`);
    // Random names: bounded by the isolate's budget for unknown names (50 reads a second), never one read
    // each past it: the requests past the budget are refused without a read (503 registry_busy).
    const before = ops.length;
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => line(SECRET_1, `01HRAND${i}`, `random-${i}`).then((r) => r.status)),
    );
    const seconds = Math.ceil((Date.now() - started) / 1000) + 1;
    const randomReads = ops.slice(before).filter((o) => o.op === "get").length;
    assert.ok(randomReads <= 50 * seconds, `${randomReads} reads for 200 random names in ${seconds} s`);
    assert.ok(randomReads < 200, `${randomReads} reads for 200 random names`);
    assert.ok(statuses.every((s) => s === 404 || s === 503), statuses.join(","));
    assert.ok(statuses.includes(503), "past the budget: refused without a read");
  } finally {
    await mf.dispose();
    await backend.close();
  }
});

test("sealing-key rotation: re-seal reports what it re-sealed; a record no key opens is misconfigured", async () => {
  const backend = await startBackend();
  const { mf, setKeys } = await gateway(backend, KEY_OLD);
  const api = admin(mf);
  const line = signedLine(mf);
  try {
    for (const account of ["one", "two"]) {
      assert.equal((await api("PUT", `accounts/line/${account}`, { fields: { CHANNEL_SECRET: SECRET_1 } })).status, 201);
    }
    // Rotate the root of trust: the new key first, the old still opens.
    await setKeys(`${KEY_NEW},${KEY_OLD}`);
    assert.equal((await line(SECRET_1, "01HSEAL01", "one")).status, 200);
    const resealed = await api("POST", "registry/reseal");
    assert.equal(resealed.status, 200, resealed.text);
    assert.equal(resealed.json.resealed, 2);
    assert.equal((await api("POST", "registry/reseal")).json.resealed, 0);
    // The old key removed: everything opens under the new one.
    await setKeys(KEY_NEW);
    assert.equal((await line(SECRET_1, "01HSEAL02", "two")).status, 200);
    // A key that opens nothing: refused as misconfigured, never skipped.
    await setKeys(randomBytes(32).toString("base64"));
    const refused = await line(SECRET_1, "01HSEAL03", "one");
    assert.equal(refused.status, 500, refused.text);
    assert.match(refused.text, /misconfigured/);
    // A malformed key value names the binding.
    await setKeys("c2hvcnQ=");
    const malformed = await api("PUT", "accounts/line/three", { fields: { CHANNEL_SECRET: SECRET_1 } });
    assert.equal(malformed.status, 500);
    assert.equal(malformed.json.binding, "ACCOUNTS_SEALING_KEY");
  } finally {
    await mf.dispose();
    await backend.close();
  }
});

test("e-mail addresses: resolved through an index, a second claim is 409", async () => {
  const backend = await startBackend();
  const { mf } = await gateway(backend, KEY_NEW);
  const api = admin(mf);
  try {
    const first = await api("PUT", "accounts/email/support", { fields: { ADDRESS: "Support@Example.com" } });
    assert.equal(first.status, 201, first.text);
    const taken = await api("PUT", "accounts/email/other", { fields: { ADDRESS: "support@example.com" } });
    assert.equal(taken.status, 409, taken.text);
    assert.equal(taken.json.error, "address_taken");
    assert.equal(taken.json.owner, "email/support");
    // Inbound mail to the address is resolved through the index to the registry account and delivered to its
    // own backend.
    const raw = readFileSync(join(ROOT, "fixtures", "email", "iso2022jp.eml"));
    const inbound = await mf.dispatchFetch(
      `http://gate.test/cdn-cgi/handler/email?${new URLSearchParams({ from: "ichiro.suzuki@example.co.jp", to: "support@example.com" })}`,
      { method: "POST", body: raw },
    );
    assert.equal(inbound.status, 200, await inbound.text());
    const [mail] = await backend.waitFor(1);
    assert.equal(mail.event.channel, "email");
    assert.equal(mail.event.source, "/email/support");
    assert.ok(mail.verified);
    // Released when the owner drops it.
    assert.equal((await api("PUT", "accounts/email/support", { fields: { ADDRESS: "help@example.com" } })).status, 200);
    assert.equal((await api("PUT", "accounts/email/other", { fields: { ADDRESS: "support@example.com" } })).status, 201);
  } finally {
    await mf.dispose();
    await backend.close();
  }
});
