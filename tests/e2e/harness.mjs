// Shared pieces of the end-to-end tests: the built Worker in workerd (Miniflare), a recording backend that
// verifies Standard Webhooks signatures with the official library, schema validation, and fixture loading.
import { Miniflare } from "miniflare";
import { createServer } from "node:http";
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";
import { Webhook } from "standardwebhooks";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
export const OLD_SIGNING_SECRET = "whsec_b2xkLWUyZS1zaWduaW5nLXNlY3JldA==";
export const CLI = join(ROOT, "target", "debug", "sekisho");

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
export const validateEvent = ajv.compile(JSON.parse(readFileSync(join(ROOT, "schema", "event-v1.schema.json"), "utf8")));

export function bindingName(channel, account, field) {
  return [channel, account, field].map((p) => p.replaceAll("-", "_").toUpperCase()).join("_");
}

/** Every HTTP fixture as { channel, file, fixture } (e-mail fixtures are raw messages: see loadEmailFixtures). */
export function loadFixtures() {
  const dir = join(ROOT, "fixtures");
  const found = [];
  for (const channel of readdirSync(dir).sort()) {
    if (!statSync(join(dir, channel)).isDirectory() || channel === "email") continue;
    for (const file of readdirSync(join(dir, channel)).sort()) {
      if (!file.endsWith(".json")) continue;
      found.push({ channel, file, fixture: JSON.parse(readFileSync(join(dir, channel, file), "utf8")) });
    }
  }
  return found;
}

/** The bindings of every fixture's account (fixtures of one channel+account share one config). */
export function fixtureBindings(fixtures) {
  const bindings = {};
  for (const { channel, file, fixture } of fixtures) {
    for (const [field, value] of Object.entries(fixture.config)) {
      const name = bindingName(channel, fixture.account, field);
      if (name in bindings && bindings[name] !== value) throw new Error(`${channel}/${file}: ${name} conflicts with another fixture`);
      bindings[name] = value;
    }
  }
  return bindings;
}

/** A backend on 127.0.0.1 that records every delivery and verifies it with the standardwebhooks library.
 * `respond(entry, n)` returns a status, `{ status, headers, body, delayMs }` (answered after `delayMs`), or
 * `"hang"` (keep the connection open, never answer). `close()` also drops connections left hanging. */
export async function startBackend({ secret = SIGNING_SECRET, respond = () => 204 } = {}) {
  const verifier = new Webhook(secret);
  const received = [];
  const waiters = [];
  const sockets = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let verified = false;
      let verifyError = null;
      try {
        verifier.verify(body, req.headers);
        verified = true;
      } catch (e) {
        verifyError = String(e);
      }
      const entry = { method: req.method, path: req.url, headers: req.headers, body, verified, verifyError, event: safeJson(body), at: Date.now() };
      received.push(entry);
      const answer = respond(entry, received.length);
      entry.answer = answer;
      if (answer === "hang") {
        for (const w of [...waiters]) w();
        return;
      }
      const { status, headers = {}, body: answerBody, delayMs = 0 } = typeof answer === "object" && answer !== null ? answer : { status: answer };
      const reply = () => {
        if (res.destroyed) return;
        res.statusCode = status;
        for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        res.end(answerBody);
        entry.answeredAt = Date.now();
        for (const w of [...waiters]) w();
      };
      if (delayMs > 0) setTimeout(reply, delayMs);
      else reply();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    received,
    /** Resolves once `count` deliveries have arrived (rejects after `ms`). */
    waitFor(count, ms = 15000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= count) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            resolve(received);
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`backend received ${received.length} of ${count} deliveries`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    close: () => new Promise((r) => {
      server.close(r);
      for (const socket of sockets) socket.destroy();
    }),
  };
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The built Worker (build/index.js + Wasm) in workerd, with the given bindings. `extra` are further Miniflare
 * options of the Worker; `extra.auxWorkers` (not a Miniflare option) are further Workers, which switches to
 * Miniflare's multi-worker form (the gateway first); `extra.host`/`extra.port` stay shared options. */
export async function startGateway(bindings, extra = {}) {
  const build = process.env.SEKISHO_BUILD ?? join(ROOT, "build"); // another build, for before/after runs
  if (!existsSync(join(build, "index.js"))) throw new Error("build/index.js is missing: run `make build` first");
  const { auxWorkers, host, port, ...workerExtra } = extra;
  const gatewayWorker = {
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: join(build, "index.js") },
      { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
    ],
    compatibilityDate: "2026-04-01",
    bindings,
    ...workerExtra,
  };
  const shared = {};
  if (host !== undefined) shared.host = host;
  if (port !== undefined) shared.port = port;
  const mf = new Miniflare(auxWorkers ? { ...shared, workers: [{ name: "sekisho", ...gatewayWorker }, ...auxWorkers] } : { ...shared, ...gatewayWorker });
  await mf.ready;
  return mf;
}

/** Builds the Request of a fixture for `base` (e.g. http://gateway). */
export function fixtureRequest(base, channel, fixture) {
  const r = fixture.request;
  const path = [channel, fixture.account, ...(r.extra_path ?? [])].join("/");
  const url = `${base}/${path}${r.query ? `?${r.query}` : ""}`;
  const init = { method: r.method, headers: r.headers ?? {} };
  if (r.method !== "GET" && r.method !== "HEAD") init.body = r.body ?? "";
  return [url, init];
}

/** Every key of `expected` equals the same key of `actual`; arrays have the same length. */
export function assertSubset(expected, actual, path = "") {
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object") throw new Error(`${path}: expected object/array, got ${JSON.stringify(actual)}`);
    if (Array.isArray(expected)) {
      if (!Array.isArray(actual) || actual.length !== expected.length) throw new Error(`${path}: array length ${actual?.length} != ${expected.length}`);
      expected.forEach((e, i) => assertSubset(e, actual[i], `${path}[${i}]`));
    } else {
      for (const [k, v] of Object.entries(expected)) assertSubset(v, actual[k], `${path}.${k}`);
    }
  } else if (expected !== actual) {
    throw new Error(`${path}: ${JSON.stringify(actual)} != expected ${JSON.stringify(expected)}`);
  }
}

/** Runs the sekisho CLI; resolves with { code, stdout, stderr }. */
export function runCli(args) {
  return new Promise((resolve) => {
    const child = spawn(CLI, args, { cwd: ROOT });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Miniflare options for the durable path, mirroring wrangler.toml: the `EVENTS` producer, the consumer of
 * `sekisho-events` with its dead-letter queue `sekisho-events-dlq` (consumed by the same Worker, which writes
 * what arrives into the dead-letter store), and the Durable Objects (`metrics: false` leaves out `METRICS`). */
export function durableOptions({ dedup = true, metrics = true } = {}) {
  const durableObjects = {
    DEAD_LETTERS: { className: "DeadLetters", useSQLite: true },
    PROVIDER_TOKENS: { className: "ProviderTokens", useSQLite: true },
  };
  if (dedup) durableObjects.DEDUP = { className: "Deduper", useSQLite: true };
  if (metrics) durableObjects.METRICS = { className: "Metrics", useSQLite: true };
  return {
    queueProducers: { EVENTS: { queueName: "sekisho-events" } },
    queueConsumers: {
      "sekisho-events": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 10, deadLetterQueue: "sekisho-events-dlq" },
      "sekisho-events-dlq": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 100 },
    },
    durableObjects,
  };
}

export function lineSign(secret, body) {
  return createHmacBase64(secret, body);
}

import { createHmac } from "node:crypto";
function createHmacBase64(secret, body) {
  return createHmac("sha256", secret).update(body).digest("base64");
}

export function lineBody(id, text, extra = {}) {
  return JSON.stringify({
    destination: "U0123456789abcdef0123456789abcdef",
    events: [{
      type: "message", mode: "active", timestamp: 1700000000000, webhookEventId: id,
      deliveryContext: { isRedelivery: false }, source: { type: "user", userId: "U1" }, replyToken: "rt",
      message: { id: `m-${id}`, type: "text", text }, ...extra,
    }],
  });
}

export async function freePort() {
  const { createServer: createNetServer } = await import("node:net");
  const server = createNetServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** Polls `predicate` until true (rejects after `ms`). */
export async function until(predicate, ms = 20000, what = "condition") {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every e-mail fixture as { name, fixture, raw } (raw: the .eml bytes as a Buffer). */
export function loadEmailFixtures() {
  const dir = join(ROOT, "fixtures", "email");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((file) => {
      const fixture = JSON.parse(readFileSync(join(dir, file), "utf8"));
      return { name: file.replace(/\.json$/, ""), fixture, raw: readFileSync(join(dir, fixture.eml)) };
    });
}

/** The EMAIL_{ACCOUNT}_{FIELD} bindings of the e-mail fixtures. */
export function emailBindings(fixtures) {
  const bindings = {};
  for (const { fixture } of fixtures) {
    for (const [field, value] of Object.entries(fixture.config)) bindings[bindingName("email", fixture.account, field)] = value;
  }
  return bindings;
}

/** Resident memory (VmRSS, bytes) of every `workerd` process below this Node process, summed. */
export function workerdRss() {
  const parents = new Map();
  const names = new Map();
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      names.set(pid, /^Name:\s*(\S+)/m.exec(status)?.[1]);
      parents.set(pid, /^PPid:\s*(\d+)/m.exec(status)?.[1]);
    } catch {
      // gone meanwhile
    }
  }
  const below = (pid) => {
    for (let p = parents.get(pid); p && p !== "0"; p = parents.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  let total = 0;
  let count = 0;
  for (const [pid, name] of names) {
    if (name !== "workerd" || !below(pid)) continue;
    try {
      const kb = Number(/^VmRSS:\s*(\d+)\s*kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      total += kb * 1024;
      count++;
    } catch {
      // gone meanwhile
    }
  }
  if (count === 0) throw new Error("no workerd process found below this process");
  return total;
}

/** Every dead letter, paging through `GET /admin/dead-letters?limit=&cursor=` until `next_cursor` is null.
 * `fetchJson(path)` → `{ status, json }`. Returns `{ letters, totals, pages }` (`totals`: each page's `total`). */
export async function allDeadLetters(fetchJson, { limit = 50, maxPages = 1000 } = {}) {
  const letters = [];
  const totals = [];
  let cursor = null;
  let pages = 0;
  do {
    const query = `limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const { status, json } = await fetchJson(`dead-letters?${query}`);
    if (status !== 200) throw new Error(`GET /admin/dead-letters?${query}: ${status} ${JSON.stringify(json)}`);
    if (!Array.isArray(json.dead_letters) || !("next_cursor" in json) || !("total" in json)) {
      throw new Error(`GET /admin/dead-letters: not the paged shape {dead_letters,total,next_cursor}: ${JSON.stringify(json).slice(0, 300)}`);
    }
    letters.push(...json.dead_letters);
    totals.push(json.total);
    cursor = json.next_cursor;
    if (++pages > maxPages) throw new Error(`more than ${maxPages} pages of dead letters`);
  } while (cursor !== null);
  return { letters, totals, pages };
}
