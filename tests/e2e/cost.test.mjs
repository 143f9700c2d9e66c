// What requests cost, counted through the bindings (benches/cost/meter.js wraps every one of them): a forged
// request costs its own Worker invocation and nothing else — no Durable Object call, no row, no queue, R2, KV
// or outbound operation; its rejection still reaches the console, folded into the isolate's periodic flush. A
// duplicate costs one Durable Object request and writes no row; an accepted event one request and one row, and
// with several queues in EVENT_QUEUES its message goes to one of them.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { startBackend, lineBody, lineSign, freePort, until, SIGNING_SECRET } from "./harness.mjs";
import { startMeteredGateway, readMeter, resetMeter, quietMeter } from "../../benches/cost/metered.mjs";

const SECRET = "cost-e2e-line-secret";
const ADMIN_TOKEN = "cost-e2e-admin-token-0123456789abcdef";
let backend;
let gateway;
let base;

before(async () => {
  backend = await startBackend();
  const port = await freePort();
  gateway = await startMeteredGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_SHOP_CHANNEL_SECRET: SECRET,
    ADMIN_TOKEN,
    METRICS_FLUSH_SECONDS: "2",
  }, { port });
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

async function post(id, secret = SECRET) {
  const body = lineBody(id, `text ${id}`);
  const res = await fetch(`${base}/line/shop`, { method: "POST", headers: { "content-type": "application/json", "x-line-signature": lineSign(secret, body) }, body });
  await res.arrayBuffer();
  return res.status;
}

const sum = (counts, re) => Object.entries(counts).filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);

test("200 forged requests: 200 Worker invocations, no call of their own; their rejections reach the console in one flush", async () => {
  // Warm: the objects exist, the isolate has flushed once.
  assert.equal(await post("warm-1"), 200);
  await backend.waitFor(1);
  await quietMeter(base, 3000);
  await resetMeter(base);
  for (let i = 0; i < 200; i++) assert.equal(await post(`forged-${i}`, "not-the-secret"), 401);
  const during = await readMeter(base);
  assert.equal(during["worker.fetch"], 200);
  const counts = await quietMeter(base, 3000);
  assert.equal(counts["worker.fetch"], 200);
  assert.equal(sum(counts, /^do\.Deduper|^do\.DeadLetters|^queue\.|^r2\.|^kv\.|^outbound\./), 0, JSON.stringify(counts));
  // The isolate's aggregate: a flush per interval, not per request (the run takes a few seconds).
  assert.ok((counts["do.Metrics.requests"] ?? 0) <= 4, `Metrics calls for 200 forged requests: ${counts["do.Metrics.requests"]}`);
  // A flush writes its counters (a 5-minute and an hourly row) and its rejections as one row of the ring (whose
  // table the first makes: two rows).
  assert.ok((counts["sql.Metrics.rows_written"] ?? 0) <= 2 + 3 * counts["do.Metrics.requests"], `rows written: ${counts["sql.Metrics.rows_written"]}`);
  const res = await fetch(`${base}/admin/api/accounts?window=1h`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const shop = (await res.json()).accounts.find((a) => a.account === "shop");
  assert.equal(shop.rejected_by_reason.invalid_signature, 200, "every rejection counted");
  const recent = await (await fetch(`${base}/admin/api/rejections`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  assert.ok(recent.rejections.length >= 20 && recent.rejections.every((r) => r.reason === "invalid_signature"));
});

test("a duplicate costs one Durable Object request and no row written", async () => {
  assert.equal(await post("dup-1"), 200);
  await backend.waitFor(2);
  await quietMeter(base, 3000);
  await resetMeter(base);
  for (let i = 0; i < 10; i++) assert.equal(await post("dup-1"), 200);
  const counts = await quietMeter(base, 3000);
  assert.equal(counts["worker.fetch"], 10);
  assert.equal(counts["do.Deduper.requests"], 10, JSON.stringify(counts));
  assert.equal(counts["sql.Deduper.rows_written"] ?? 0, 0);
  assert.equal(sum(counts, /^queue\.|^r2\.|^kv\.|^outbound\.|^do\.DeadLetters/), 0, JSON.stringify(counts));
  await until(async () => {
    const res = await fetch(`${base}/admin/api/accounts?window=1h`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    return (await res.json()).accounts.find((a) => a.account === "shop").duplicates === 10;
  }, 10000, "the duplicates counted");
  assert.equal(new Set(backend.received.map((d) => d.headers["webhook-id"])).size, 2, "delivered once");
});

test("an accepted event costs one Durable Object request and one row; with EVENT_QUEUES the events spread over both queues, each delivered once", async () => {
  const backend2 = await startBackend();
  const port = await freePort();
  const gateway2 = await startMeteredGateway({
    BACKEND_URL: `${backend2.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_SHOP_CHANNEL_SECRET: SECRET,
    EVENT_QUEUES: "EVENTS, EVENTS_2",
    METRICS_FLUSH_SECONDS: "2",
  }, { port, queues: ["EVENTS", "EVENTS_2"] });
  const base2 = `http://127.0.0.1:${port}`;
  try {
    const postTo = async (id) => {
      const body = lineBody(id, `text ${id}`);
      const res = await fetch(`${base2}/line/shop`, { method: "POST", headers: { "content-type": "application/json", "x-line-signature": lineSign(SECRET, body) }, body });
      await res.arrayBuffer();
      return res.status;
    };
    // Warm: the first events make the shards' claims tables (two rows each, once per table).
    for (let i = 0; i < 64; i++) assert.equal(await postTo(`queues-warm-${i}`), 200);
    await backend2.waitFor(64);
    await quietMeter(base2, 3000);
    await resetMeter(base2);
    for (let i = 0; i < 60; i++) assert.equal(await postTo(`queues-${i}`), 200);
    await backend2.waitFor(124);
    const counts = await quietMeter(base2, 3000);
    assert.equal(counts["do.Deduper.requests"], 60, JSON.stringify(counts));
    // One row per claim, plus two for each claims table a shard the warm-up missed had to make.
    const extra = (counts["sql.Deduper.rows_written"] ?? 0) - 60;
    assert.ok(extra >= 0 && extra <= 2 * 16 && extra % 2 === 0, `rows written: ${counts["sql.Deduper.rows_written"]}`);
    const first = counts["queue.EVENTS.writes"] ?? 0;
    const second = counts["queue.EVENTS_2.writes"] ?? 0;
    assert.equal(first + second, 60);
    assert.ok(first >= 15 && second >= 15, `spread: ${first} / ${second}`);
    assert.equal((counts["queue.sekisho-events.reads"] ?? 0) + (counts["queue.sekisho-events-2.reads"] ?? 0), 60, "both queues consumed");
    const ids = backend2.received.map((d) => d.headers["webhook-id"]);
    assert.equal(ids.length, 124, "each event delivered once");
    assert.equal(new Set(ids).size, 124);
  } finally {
    await gateway2.dispose();
    await backend2.close();
  }
});

test("a Slack command with a reply costs two Durable Object requests and one row (claim and reply together); its duplicate one request, no row, and the same reply", async () => {
  const SLACK_SECRET = "cost-e2e-slack-signing-secret";
  const backend4 = await startBackend({
    respond: (entry) => (entry.path === "/reply"
      ? { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ reply: { text: `受け付けました ${entry.headers["webhook-id"]}` } }) }
      : 204),
  });
  const port = await freePort();
  const gateway4 = await startMeteredGateway({
    BACKEND_URL: `${backend4.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    REPLY_URL: `${backend4.url}/reply`,
    SLACK_TEAM_SIGNING_SECRET: SLACK_SECRET,
    METRICS_FLUSH_SECONDS: "2",
  }, { port });
  const base4 = `http://127.0.0.1:${port}`;
  const command = (i) => {
    const body = new URLSearchParams({ token: "x", team_id: "T1", channel_id: "C1", user_id: "U1", user_name: "suzuki", command: "/ticket", text: `order ${i}`, trigger_id: `trigger-${i}`, response_url: "https://hooks.slack.com/commands/T1/1/x" }).toString();
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = "v0=" + createHmac("sha256", SLACK_SECRET).update(`v0:${timestamp}:${body}`).digest("hex");
    return { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp, "x-slack-signature": signature }, body };
  };
  const send = async (request) => {
    const res = await fetch(`${base4}/slack/team`, request);
    return { status: res.status, body: await res.text() };
  };
  const deliveries = () => backend4.received.filter((d) => d.path === "/events").length;
  try {
    // Warm: the first commands make the shards' claims tables (two rows each, once per table).
    for (let i = 0; i < 48; i++) assert.equal((await send(command(`warm-${i}`))).status, 200);
    await until(async () => deliveries() === 48, 20000, "the warm-up delivered");
    await quietMeter(base4, 3000);
    await resetMeter(base4);
    const requests = Array.from({ length: 30 }, (_, i) => command(i));
    const answers = [];
    for (const request of requests) answers.push(await send(request));
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.match(JSON.parse(answer.body).text, /^受け付けました evt_[0-9a-f]{32}$/, answer.body);
    }
    assert.equal(new Set(answers.map((a) => a.body)).size, 30, "each command its own reply");
    await until(async () => deliveries() === 78, 20000, "delivered");
    let counts = await quietMeter(base4, 3000);
    // The accept call, and the commit after the reply call.
    assert.equal(counts["do.Deduper.requests"], 60, JSON.stringify(counts));
    // One row per event (its claim and its reply), plus two for each shard the warm-up left without a table.
    const shardOf = (id) => createHash("sha256").update(id).digest().readUInt16BE(0) % 16;
    const ids = backend4.received.filter((d) => d.path === "/events").map((d) => d.headers["webhook-id"]);
    const warm = new Set(ids.slice(0, 48).map(shardOf));
    const newShards = new Set(ids.slice(48).map(shardOf).filter((shard) => !warm.has(shard)));
    assert.equal(counts["sql.Deduper.rows_written"], 30 + 2 * newShards.size, JSON.stringify(counts));

    // Replays of captured commands: the accept call answers them with the kept reply; no reply call, no row.
    await resetMeter(base4);
    const replies = backend4.received.filter((d) => d.path === "/reply").length;
    for (const i of [0, 7, 29]) assert.deepEqual(await send(requests[i]), answers[i]);
    counts = await quietMeter(base4, 3000);
    assert.equal(counts["do.Deduper.requests"], 3, JSON.stringify(counts));
    assert.equal(counts["sql.Deduper.rows_written"] ?? 0, 0);
    assert.equal(backend4.received.filter((d) => d.path === "/reply").length, replies, "no reply call for a duplicate");
    assert.equal(deliveries(), 78, "nothing delivered twice");
  } finally {
    await gateway4.dispose();
    await backend4.close();
  }
});

test("a WeChat plaintext message: its replay guard and its event in parallel, three Durable Object requests and two rows (guard, claim); a replay with another body takes nothing", async () => {
  const TOKEN = "cost-e2e-plain-token";
  const backend5 = await startBackend();
  const port = await freePort();
  const gateway5 = await startMeteredGateway({
    BACKEND_URL: `${backend5.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    WECHAT_PLAIN_TOKEN: TOKEN,
    WECHAT_PLAIN_APP_ID: "wx0000000000000001",
    METRICS_FLUSH_SECONDS: "2",
  }, { port });
  const base5 = `http://127.0.0.1:${port}`;
  const signedQuery = (nonce) => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHash("sha1").update([TOKEN, timestamp, nonce].sort().join("")).digest("hex");
    return `signature=${signature}&timestamp=${timestamp}&nonce=${nonce}&openid=oUser`;
  };
  const message = (text, msgId) => `<xml><ToUserName><![CDATA[gh_cost]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>` +
    `<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${text}]]></Content><MsgId>${msgId}</MsgId></xml>`;
  const post = async (query, body) => {
    const res = await fetch(`${base5}/wechat/plain?${query}`, { method: "POST", headers: { "content-type": "text/xml" }, body });
    return { status: res.status, text: await res.text() };
  };
  try {
    // Warm: every shard's claims and guards tables exist.
    const warmQueries = Array.from({ length: 64 }, (_, i) => signedQuery(`warm-${i}`));
    for (const [i, query] of warmQueries.entries()) {
      const warm = await post(query, message(`warm ${i}`, 8100000000000000000n + BigInt(i)));
      assert.equal(warm.status, 200, warm.text);
    }
    await backend5.waitFor(64);
    await quietMeter(base5, 3000);
    await resetMeter(base5);
    const queries = Array.from({ length: 20 }, (_, i) => signedQuery(`cost-${i}`));
    for (const [i, query] of queries.entries()) {
      const res = await post(query, message(`text ${i}`, 8200000000000000000n + BigInt(i)));
      assert.equal(res.status, 200, res.text);
    }
    await backend5.waitFor(84);
    let counts = await quietMeter(base5, 3000);
    // The guard, the held event and the commit; the Worker itself sends the event.
    assert.equal(counts["do.Deduper.requests"], 60, JSON.stringify(counts));
    assert.equal(counts["queue.EVENTS.writes"], 20);
    // A guard row and a claim row per message (WITHOUT ROWID: one row each), plus two for each table a shard the
    // warm-up missed had to make (the guards table of a guard's shard, the claims table of an event's).
    const sha = (text) => createHash("sha256").update(text).digest();
    const shardOf = (key) => sha(key).readUInt16BE(0) % 16;
    const guardShard = (query) => {
      const q = new URLSearchParams(query);
      return shardOf(sha(`${q.get("timestamp")}\n${q.get("nonce")}\n${q.get("signature")}`).toString("hex"));
    };
    const ids = backend5.received.map((d) => d.headers["webhook-id"]);
    const warmGuards = new Set(warmQueries.map(guardShard));
    const warmEvents = new Set(ids.slice(0, 64).map(shardOf));
    const newGuardTables = new Set(queries.map(guardShard).filter((shard) => !warmGuards.has(shard)));
    const newClaimTables = new Set(ids.slice(64).map(shardOf).filter((shard) => !warmEvents.has(shard)));
    assert.equal(counts["sql.Deduper.rows_written"], 40 + 2 * (newGuardTables.size + newClaimTables.size), JSON.stringify(counts));

    await resetMeter(base5);
    const replay = await post(queries[3], message("forged by someone who saw the URL", 8300000000000000000n));
    assert.equal(replay.status, 401);
    counts = await quietMeter(base5, 3000);
    assert.equal(counts["queue.EVENTS.writes"] ?? 0, 0, "nothing queued");
    assert.equal(counts["sql.Deduper.rows_written"] ?? 0, 0, "nothing claimed or remembered");
    assert.equal(backend5.received.length, 84);
  } finally {
    await gateway5.dispose();
    await backend5.close();
  }
});

test("sparse traffic: 40 accounts with one event each write few Metrics rows per event", async () => {
  const backend3 = await startBackend();
  const port = await freePort();
  const accounts = Array.from({ length: 40 }, (_, i) => `tenant${i}`);
  const secrets = Object.fromEntries(accounts.map((a) => [`LINE_${a.toUpperCase()}_CHANNEL_SECRET`, `${SECRET}-${a}`]));
  const gateway3 = await startMeteredGateway({
    BACKEND_URL: `${backend3.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_SHOP_CHANNEL_SECRET: SECRET,
    ...secrets,
    ADMIN_TOKEN,
    METRICS_FLUSH_SECONDS: "2",
  }, { port });
  const base3 = `http://127.0.0.1:${port}`;
  const postAs = async (account, id) => {
    const body = lineBody(id, `text ${id}`);
    const res = await fetch(`${base3}/line/${account}`, { method: "POST", headers: { "content-type": "application/json", "x-line-signature": lineSign(account === "shop" ? SECRET : `${SECRET}-${account}`, body) }, body });
    await res.arrayBuffer();
    return res.status;
  };
  try {
    // Warm: every tenant's first event makes the shards' objects and tables (once per object, and per day for
    // the counters' tables); what is measured is each tenant's next event, the deployment's steady state.
    for (const account of accounts) assert.equal(await postAs(account, `sparse-warm-${account}`), 200);
    await backend3.waitFor(40);
    await quietMeter(base3, 3000);
    await resetMeter(base3);
    for (const account of accounts) assert.equal(await postAs(account, `sparse-${account}`), 200);
    await backend3.waitFor(80);
    const counts = await quietMeter(base3, 3000);
    const rows = counts["sql.Metrics.rows_written"] ?? 0;
    console.log(`sparse: ${rows} Metrics rows for ${accounts.length} events (${(rows / accounts.length).toFixed(2)} per event), ${counts["do.Metrics.requests"]} Metrics calls`);
    assert.ok(rows / accounts.length <= 6, `Metrics rows per sparse event: ${rows / accounts.length}`);
    // Unchanged output: every tenant shows its event and its delivery.
    const res = await fetch(`${base3}/admin/api/accounts?window=1h`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const listed = (await res.json()).accounts;
    for (const account of accounts) {
      const row = listed.find((a) => a.account === account);
      assert.ok(row, `${account} listed`);
      assert.equal(row.events, 2, JSON.stringify(row));
      assert.equal(row.requests, 2, JSON.stringify(row));
      assert.equal(row.delivered, 2, JSON.stringify(row));
    }
  } finally {
    await gateway3.dispose();
    await backend3.close();
  }
});

test("a new deployment: reading the console across every shard writes no row; a shard makes only the tables it fills; the rejection ring keeps the latest 200", async () => {
  const port = await freePort();
  const gateway4 = await startMeteredGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_SHOP_CHANNEL_SECRET: SECRET,
    ADMIN_TOKEN,
    METRICS_FLUSH_SECONDS: "1",
  }, { port });
  const base4 = `http://127.0.0.1:${port}`;
  const admin = async (path) => (await fetch(`${base4}${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const forge = async (id, signed = true) => {
    const body = lineBody(id, `text ${id}`);
    const headers = { "content-type": "application/json" };
    if (signed) headers["x-line-signature"] = lineSign("not-the-secret", body);
    const res = await fetch(`${base4}/line/shop`, { method: "POST", headers, body });
    await res.arrayBuffer();
    return res.status;
  };
  try {
    await resetMeter(base4);
    assert.deepEqual((await admin("/admin/api/accounts?window=1h")).accounts.filter((a) => a.requests), []);
    assert.deepEqual((await admin("/admin/api/rejections")).rejections, []);
    let counts = await quietMeter(base4, 1500);
    assert.equal(counts["do.Metrics.requests"], 32, JSON.stringify(counts));
    assert.equal(counts["sql.Metrics.rows_written"] ?? 0, 0, "reads make no table");

    // Rejections only: the two counter tables and the ring (two rows each to make), then per flush two counter
    // rows and one ring row. No key, last-event, failing or alert table.
    await resetMeter(base4);
    for (let i = 0; i < 20; i++) assert.equal(await forge(`ring-first-${i}`), 401);
    counts = await quietMeter(base4, 2500);
    const flushes = counts["do.Metrics.requests"];
    assert.ok(flushes >= 1 && flushes <= 3, JSON.stringify(counts));
    assert.equal(counts["sql.Metrics.rows_written"], 3 * 2 + 3 * flushes, JSON.stringify(counts));

    // Past the ring: 12 rounds of 20 (each round its own flush or more), then 20 without a signature.
    for (let round = 0; round < 12; round++) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => forge(`ring-${round}-${i}`)));
      await new Promise((r) => setTimeout(r, 1100));
    }
    for (let i = 0; i < 20; i++) assert.equal(await forge(`ring-last-${i}`, false), 401);
    await until(async () => (await admin("/admin/api/rejections")).rejections.filter((r) => r.reason === "missing_signature").length === 20, 10000, "the last rejections listed");
    await resetMeter(base4);
    const { rejections } = await admin("/admin/api/rejections");
    assert.equal(rejections.length, 200);
    assert.deepEqual(rejections.slice(0, 20).map((r) => r.reason), Array(20).fill("missing_signature"));
    assert.ok(rejections.slice(20).every((r) => r.reason === "invalid_signature"));
    assert.ok(rejections.every((r, i) => i === 0 || rejections[i - 1].at_ms >= r.at_ms), "newest first");
    const shop = (await admin("/admin/api/accounts?window=1h")).accounts.find((a) => a.account === "shop");
    assert.equal(shop.rejected_by_reason.invalid_signature, 260, "every rejection counted");
    // The ring stays bounded: fewer than 200 + 20 stored (each read row is a batch of at most 20).
    counts = await readMeter(base4);
    assert.equal(counts["sql.Metrics.rows_written"] ?? 0, 0);
  } finally {
    await gateway4.dispose();
  }
});
