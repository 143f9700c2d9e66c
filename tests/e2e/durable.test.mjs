// Durable delivery end to end: queue, retries, dead letters, admin API, de-duplication, through workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import {
  startBackend, startGateway, durableOptions, lineBody, lineSign, freePort, until, validateEvent, allDeadLetters, SIGNING_SECRET,
} from "./harness.mjs";

const BASE = "http://gateway.test";
const SECRET = "durable-line-secret";
// At least 32 characters: a shorter ADMIN_TOKEN makes the admin API answer 500 misconfigured.
const ADMIN_TOKEN = "admin-token-for-e2e-only-0123456789abcdef";
let backend;
let gateway;
let downPort;
const attemptsById = new Map();
let acceptRejected = false;

before(async () => {
  // The backend's behaviour is chosen by the message text of each event.
  backend = await startBackend({
    respond: (entry) => {
      const id = entry.headers["webhook-id"];
      const n = (attemptsById.get(id) ?? 0) + 1;
      attemptsById.set(id, n);
      const text = entry.event?.data?.message?.text ?? "";
      if (text === "fail twice" && n <= 2) return 500;
      if (text === "reject" && !acceptRejected) return 400;
      if (text.startsWith("page-reject")) return 400;
      return 204;
    },
  });
  downPort = await freePort();
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    LINE_DOWN_BACKEND_URL: `http://127.0.0.1:${downPort}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_DURABLE_CHANNEL_SECRET: SECRET,
    LINE_DOWN_CHANNEL_SECRET: SECRET,
    ADMIN_TOKEN,
    DELIVERY_BASE_DELAY_S: "1",
    DELIVERY_MAX_DELAY_S: "2",
  }, durableOptions());
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

async function post(account, body) {
  const res = await gateway.dispatchFetch(`${BASE}/line/${account}`, {
    method: "POST", headers: { "x-line-signature": lineSign(SECRET, body) }, body,
  });
  return { status: res.status, text: await res.text() };
}

const deliveriesOf = (text) => backend.received.filter((d) => d.event?.data?.message?.text === text);

test("backend answers 500 twice, then 200: delivered once, same webhook-id and a valid signature on every attempt", async () => {
  const res = await post("durable", lineBody("01HFAILTWICE00000000000000", "fail twice"));
  assert.equal(res.status, 200);
  await until(() => deliveriesOf("fail twice").length >= 3, 20000, "three attempts");
  const attempts = deliveriesOf("fail twice");
  assert.equal(attempts.length, 3);
  assert.equal(new Set(attempts.map((d) => d.headers["webhook-id"])).size, 1, "stable webhook-id");
  for (const d of attempts) {
    assert.ok(d.verified, d.verifyError);
    assert.ok(validateEvent(d.event));
  }
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(deliveriesOf("fail twice").length, 3, "no attempt after the 2xx");
});

test("backend down (connection refused), then up: nothing lost", async () => {
  const res = await post("down", lineBody("01HBACKENDDOWN000000000000", "while down"));
  assert.equal(res.status, 200);
  await new Promise((r) => setTimeout(r, 2500)); // at least one refused attempt
  const arrived = [];
  const late = createServer((req, resp) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      arrived.push({ id: req.headers["webhook-id"], event: JSON.parse(body) });
      resp.statusCode = 200;
      resp.end();
    });
  });
  await new Promise((r) => late.listen(downPort, "127.0.0.1", r));
  try {
    await until(() => arrived.length >= 1, 20000, "delivery after the backend came up");
    assert.equal(arrived[0].event.data.message.text, "while down");
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(arrived.length, 1);
  } finally {
    await new Promise((r) => late.close(r));
  }
});

async function adminOf(mf, path, { method = "GET", token = ADMIN_TOKEN } = {}) {
  const headers = token === null ? {} : { authorization: `Bearer ${token}` };
  const res = await mf.dispatchFetch(`${BASE}/admin/${path}`, { method, headers });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { unparsed: text };
  }
  return { status: res.status, json };
}
const admin = (path, options) => adminOf(gateway, path, options);

test("backend answers 400: dead-lettered at once, listed by the admin API, replayed once the backend accepts", async () => {
  const res = await post("durable", lineBody("01HREJECTED000000000000000", "reject"));
  assert.equal(res.status, 200);
  let listed;
  await until(async () => {
    listed = await admin("dead-letters");
    return listed.json.dead_letters?.some((l) => l.last_status === 400);
  }, 20000, "the dead letter");
  const letter = listed.json.dead_letters.find((l) => l.last_status === 400);
  assert.equal(letter.attempts, 1, "a 400 is not retried");
  assert.equal(letter.delivery.webhook_id, letter.webhook_id);
  assert.equal(deliveriesOf("reject").length, 1);

  assert.equal((await admin("dead-letters", { token: "wrong" })).status, 401);
  assert.equal((await admin("dead-letters", { token: null })).status, 401);
  assert.deepEqual((await admin("dead-letters", { token: null })).json, { error: "unauthorized" });

  acceptRejected = true;
  const replay = await admin(`dead-letters/${letter.webhook_id}/replay`, { method: "POST" });
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.json, { replayed: 1 });
  await until(() => deliveriesOf("reject").length >= 2, 20000, "the replayed delivery");
  const [first, replayed] = deliveriesOf("reject");
  assert.equal(first.headers["webhook-id"], replayed.headers["webhook-id"]);
  assert.ok(replayed.verified);
  assert.deepEqual((await admin("dead-letters")).json, { dead_letters: [], total: 0, next_cursor: null });
});

test("the same provider request twice (a retry or redelivery): the backend receives one event", async () => {
  const body = lineBody("01HDUPLICATE00000000000000", "only once");
  assert.equal((await post("durable", body)).status, 200);
  assert.equal((await post("durable", body)).status, 200);
  const redelivery = body.replace('"isRedelivery":false', '"isRedelivery":true');
  assert.equal((await post("durable", redelivery)).status, 200);
  // A later event proves the queue has moved past them.
  assert.equal((await post("durable", lineBody("01HAFTERDUPLICATE000000000", "after duplicates"))).status, 200);
  await until(() => deliveriesOf("after duplicates").length === 1, 20000, "the later event");
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(deliveriesOf("only once").length, 1);
});

// Every admin path and method, known or not.
const ADMIN_PROBES = [
  ["GET", "dead-letters"], ["POST", "dead-letters"], ["DELETE", "dead-letters"], ["PUT", "dead-letters"],
  ["GET", "dead-letters?limit=2"], ["POST", "dead-letters/replay"], ["GET", "dead-letters/replay"],
  ["POST", "dead-letters/evt_0123/replay"], ["GET", "dead-letters/evt_0123/replay"],
  ["DELETE", "dead-letters/evt_0123"], ["GET", "dead-letters/evt_0123"], ["PATCH", "dead-letters/evt_0123"],
  ["GET", "other"], ["DELETE", "other"], ["GET", ""],
];

test("without ADMIN_TOKEN every /admin path and method answers 404 not_found (never 405 or 401)", async () => {
  const bare = await startGateway({ BACKEND_URL: backend.url, BACKEND_SIGNING_SECRET: SIGNING_SECRET }, durableOptions());
  try {
    const answers = [];
    for (const [method, path] of ADMIN_PROBES) {
      for (const token of ["x", null]) {
        const { status, json } = await adminOf(bare, path, { method, token });
        answers.push(`${method} /admin/${path}${token === null ? "" : " (bearer)"} → ${status} ${JSON.stringify(json)}`);
      }
    }
    const wrong = answers.filter((a) => !a.endsWith('→ 404 {"error":"not_found"}'));
    assert.deepEqual(wrong, [], "admin answers that are not 404 not_found");
  } finally {
    await bare.dispose();
  }
});

test("an ADMIN_TOKEN shorter than 32 characters: every admin request answers 500 misconfigured, even with that token", async () => {
  const short = "admin-token-for-e2e-only"; // 24 characters
  const weak = await startGateway({ BACKEND_URL: backend.url, BACKEND_SIGNING_SECRET: SIGNING_SECRET, ADMIN_TOKEN: short }, durableOptions());
  try {
    const answers = [];
    for (const [method, path] of [["GET", "dead-letters"], ["POST", "dead-letters/replay"], ["DELETE", "dead-letters/evt_0123"], ["POST", "dead-letters/evt_0123/replay"]]) {
      for (const token of [short, "wrong", null]) {
        const { status, json } = await adminOf(weak, path, { method, token });
        answers.push(`${method} /admin/${path} with ${token === null ? "no token" : token === short ? "the short token" : "a wrong token"} → ${status} ${JSON.stringify(json)}`);
      }
    }
    const wrong = answers.filter((a) => !a.endsWith('→ 500 {"error":"misconfigured"}'));
    assert.deepEqual(wrong, [], "admin answers that are not 500 misconfigured");
  } finally {
    await weak.dispose();
  }
});

test("dead-letter paging: 5 letters, limit=2 → pages of 2, 2, 1, oldest first, total 5 on every page, no id twice, next_cursor null at the end", async () => {
  const before = await allDeadLetters(admin);
  assert.equal(before.letters.length, 0, `the store is empty before: ${before.letters.map((l) => l.webhook_id)}`);
  for (let i = 0; i < 5; i++) {
    // One request each, apart, so their dead_at times are ordered.
    assert.equal((await post("durable", lineBody(`01HPAGE${String(i).padStart(19, "0")}`, `page-reject ${i}`))).status, 200);
    await until(async () => (await admin("dead-letters?limit=10")).json.total === i + 1, 20000, `dead letter ${i}`);
  }
  const pages = [];
  let cursor = null;
  do {
    const { status, json } = await admin(`dead-letters?limit=2${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`);
    assert.equal(status, 200, JSON.stringify(json));
    assert.deepEqual(Object.keys(json).sort(), ["dead_letters", "next_cursor", "total"]);
    pages.push(json);
    cursor = json.next_cursor;
    assert.ok(pages.length <= 5, "paging terminates");
  } while (cursor !== null);
  assert.deepEqual(pages.map((p) => p.dead_letters.length), [2, 2, 1]);
  assert.deepEqual(pages.map((p) => p.total), [5, 5, 5]);
  const letters = pages.flatMap((p) => p.dead_letters);
  assert.equal(new Set(letters.map((l) => l.webhook_id)).size, 5, "no id twice");
  assert.deepEqual(letters.map((l) => JSON.parse(l.delivery.body).data.message.text), [0, 1, 2, 3, 4].map((i) => `page-reject ${i}`), "oldest first");
  for (const l of letters) {
    assert.equal(l.last_status, 400);
    assert.equal(l.attempts, 1);
  }
  const all = await allDeadLetters(admin, { limit: 3 });
  assert.equal(all.letters.length, 5);
  // A cursor time past 2^53 is the caller's mistake (a JavaScript number could not hold it), not the store's.
  for (const at of ["9007199254740993", "18446744073709551615"]) {
    const { status, json } = await admin(`dead-letters?cursor=${at}%3Aevt_a`);
    assert.deepEqual([status, json], [400, { error: "invalid_parameter" }], at);
  }
  assert.deepEqual(all.letters.map((l) => l.webhook_id), letters.map((l) => l.webhook_id));
});

test("DELETE /admin/dead-letters/{id}: {\"deleted\":1}, then 404 not_found; unknown ids 404; the rest stay listed", async () => {
  for (const i of [0, 1]) assert.equal((await post("durable", lineBody(`01HDELETE${String(i).padStart(17, "0")}`, `page-reject delete ${i}`))).status, 200);
  await until(async () => ["page-reject delete 0", "page-reject delete 1"].every((t) => deliveriesOf(t).length === 1), 20000, "two rejected deliveries");
  let letters;
  await until(async () => {
    ({ letters } = await allDeadLetters(admin));
    return ["page-reject delete 0", "page-reject delete 1"].every((t) => letters.some((l) => JSON.parse(l.delivery.body).data.message.text === t));
  }, 20000, "two dead letters");
  const [victim, ...rest] = letters;
  const del = await admin(`dead-letters/${victim.webhook_id}`, { method: "DELETE" });
  assert.equal(del.status, 200, JSON.stringify(del.json));
  assert.deepEqual(del.json, { deleted: 1 });
  const again = await admin(`dead-letters/${victim.webhook_id}`, { method: "DELETE" });
  assert.equal(again.status, 404);
  assert.deepEqual(again.json, { error: "not_found" });
  const unknown = await admin("dead-letters/evt_00000000000000000000000000000000", { method: "DELETE" });
  assert.equal(unknown.status, 404);
  assert.deepEqual(unknown.json, { error: "not_found" });
  assert.equal((await admin(`dead-letters/${victim.webhook_id}`, { method: "DELETE", token: "wrong" })).status, 401);
  const after = await allDeadLetters(admin);
  assert.deepEqual(after.letters.map((l) => l.webhook_id), rest.map((l) => l.webhook_id));
  assert.equal(after.totals[0], rest.length);
  // Clean up for the tests after this one.
  for (const l of rest) assert.deepEqual((await admin(`dead-letters/${l.webhook_id}`, { method: "DELETE" })).json, { deleted: 1 });
  assert.deepEqual((await admin("dead-letters")).json, { dead_letters: [], total: 0, next_cursor: null });
});

test("one request with 150 events of 2 KB (over the queue's 100-message and 288 KB batch limits): all delivered once", async () => {
  const events = Array.from({ length: 150 }, (_, i) => {
    const id = `01HBATCH${String(i).padStart(18, "0")}`;
    return {
      type: "message", mode: "active", timestamp: 1700000000000 + i, webhookEventId: id,
      deliveryContext: { isRedelivery: false }, source: { type: "user", userId: "U-batch" }, replyToken: "rt",
      message: { id: `m-${id}`, type: "text", text: `batch ${i} ${"あ".repeat(700)}` },
    };
  });
  const body = JSON.stringify({ destination: "U0123456789abcdef0123456789abcdef", events });
  assert.ok(body.length > 288_000 / 3 && Buffer.byteLength(body) > 288_000);
  const res = await post("durable", body);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, '{"accepted":150}');
  const batchOf = () => backend.received.filter((d) => d.event?.data?.sender?.id === "U-batch");
  await until(() => batchOf().length >= 150, 30000, "150 deliveries");
  await new Promise((r) => setTimeout(r, 1000));
  const texts = new Set(batchOf().map((d) => d.event.data.message.text.split(" ").slice(0, 2).join(" ")));
  assert.equal(batchOf().length, 150, "each once");
  assert.equal(texts.size, 150);
});

test("an event too large for a queue message: 413 event_too_large, nothing queued (not a 503 the provider retries forever)", async () => {
  const body = lineBody("01HTOOLARGE000000000000000", "x".repeat(130_000));
  const res = await post("durable", body);
  assert.equal(res.status, 413);
  assert.deepEqual(JSON.parse(res.text), { error: "event_too_large" });
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(backend.received.filter((d) => d.event?.data?.message?.text?.startsWith("xxxx")).length, 0);
});

test("an event just under the queue budget (50 KB of text, twice in the event: message.text and raw) is queued and delivered", async () => {
  const text = `near-limit ${"y".repeat(55_000)}`;
  const res = await post("durable", lineBody("01HNEARLIMIT00000000000000", text));
  assert.equal(res.status, 200, res.text);
  await until(() => deliveriesOf(text).length === 1, 20000, "the large event");
});

test("a request whose 20 events fall into many de-dup shards: each event delivered once, a resend all duplicates, a half-new resend only the new half", async () => {
  const event = (n) => ({
    type: "message", mode: "active", timestamp: 1700000000000, webhookEventId: `01HSHARD${String(n).padStart(18, "0")}`,
    source: { type: "user", userId: "U1" }, replyToken: "rt", message: { id: `ms-${n}`, type: "text", text: `shard ${n}` },
  });
  const batch = (from, to) => JSON.stringify({ destination: "Ux", events: Array.from({ length: to - from }, (_, i) => event(from + i)) });
  const first = await post("durable", batch(0, 20));
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(JSON.parse(first.text), { accepted: 20 });
  const texts = (from, to) => Array.from({ length: to - from }, (_, i) => `shard ${from + i}`);
  await until(() => texts(0, 20).every((t) => deliveriesOf(t).length === 1), 20_000);
  // A resend while an object is still sending is told to come back (503 claim_in_progress).
  let again;
  for (let tries = 0; tries < 50; tries++) {
    again = await post("durable", batch(0, 20));
    if (again.status !== 503) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(again.status, 200, again.text);
  let mixed;
  for (let tries = 0; tries < 50; tries++) {
    mixed = await post("durable", batch(10, 30));
    if (mixed.status !== 503) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(mixed.status, 200, mixed.text);
  await until(() => texts(20, 30).every((t) => deliveriesOf(t).length === 1), 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  for (const text of texts(0, 30)) assert.equal(deliveriesOf(text).length, 1, `${text} delivered exactly once`);
});

test("a request that repeats one event (the same webhookEventId twice): answered 200, delivered once", async () => {
  const event = { type: "message", mode: "active", timestamp: 1700000000000, webhookEventId: "01HTWICE000000000000000001", source: { type: "user", userId: "U1" }, replyToken: "rt", message: { id: "ms-twice", type: "text", text: "twice in one request" } };
  const res = await post("durable", JSON.stringify({ destination: "Ux", events: [event, event] }));
  assert.equal(res.status, 200, res.text);
  await until(() => deliveriesOf("twice in one request").length >= 1, 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(deliveriesOf("twice in one request").length, 1, "one delivery for the repeated event");
});
