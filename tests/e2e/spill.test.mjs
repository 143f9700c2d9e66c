// Queue outage → spill: when EVENTS refuses an accepted event, the provider still gets 200; the de-dup Durable
// Object keeps the event and its alarm sends it again (with backoff while the queue still fails).
// The outage is injected by a wrapped EVENTS binding (queue_wrap.mjs); production code has no test hooks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBackend, startGateway, durableOptions, lineBody, lineSign, until, SIGNING_SECRET } from "./harness.mjs";
import { wrappedQueue, outageMarkers } from "./queue_wrap.mjs";

const BASE = "http://gateway.test";
const SECRET = "spill-line-secret";
let backend;
let gateway;
let calls;
let refuseReplay = false;
const ADMIN_TOKEN = "spill-admin-token-0123456789abcdef-e2e";

before(async () => {
  let acceptReplayed = false;
  backend = await startBackend({
    respond: (entry) => {
      if (entry.event?.data?.message?.text !== "replay while the queue fails") return 204;
      if (!acceptReplayed) {
        acceptReplayed = true; // the first attempt is refused (dead letter), the replay accepted
        return 400;
      }
      return 204;
    },
  });
  const markers = outageMarkers();
  const wrapped = wrappedQueue(durableOptions(), {
    decide: (call) => markers(call) || (refuseReplay && call.bodies.some((b) => b.includes("replay while the queue fails"))),
  });
  calls = wrapped.calls;
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_SPILL_CHANNEL_SECRET: SECRET,
    ADMIN_TOKEN,
    DELIVERY_BASE_DELAY_S: "1",
    DELIVERY_MAX_DELAY_S: "2",
  }, wrapped.options);
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

async function post(id, text) {
  const body = lineBody(id, text);
  const res = await gateway.dispatchFetch(`${BASE}/line/spill`, {
    method: "POST", headers: { "x-line-signature": lineSign(SECRET, body) }, body,
  });
  return { status: res.status, text: await res.text() };
}

const deliveriesOf = (text) => backend.received.filter((d) => d.event?.data?.message?.text === text);
const callsWith = (text) => calls.filter((c) => c.bodies.some((b) => b.includes(text)));

test("the wrapped EVENTS binding works: an event without a marker goes through the wrapper to the real queue and is delivered once", async () => {
  const res = await post("01HSPILLCONTROL00000000000", "through the wrapper");
  assert.equal(res.status, 200, res.text);
  await until(() => deliveriesOf("through the wrapper").length === 1, 20000, "the delivery");
  assert.ok(callsWith("through the wrapper").length >= 1, "the wrapper saw the send");
  assert.ok(callsWith("through the wrapper").every((c) => !c.failed));
  assert.ok(deliveriesOf("through the wrapper")[0].verified);
});

for (const failures of [2, 5]) {
  const text = `queue-outage-${failures}`;
  test(`EVENTS refuses the first ${failures} sends of an event: the provider gets 200 (not 503), the event is delivered later`, async () => {
    const t0 = Date.now();
    const res = await post(`01HSPILL${String(failures).padStart(18, "0")}`, text);
    assert.equal(res.status, 200, `provider answer: ${res.status} ${res.text}`);
    await until(() => deliveriesOf(text).length >= 1, 60000, `the delivery of ${text} (queue calls with it: ${callsWith(text).map((c) => (c.failed ? "failed" : "ok")).join(",")})`);
    const seen = callsWith(text);
    console.log(`${text}: delivered ${Date.now() - t0} ms after the request; queue calls: ${seen.map((c) => `${c.kind}:${c.failed ? "failed" : "ok"}`).join(", ")}`);
    assert.equal(seen.filter((c) => c.failed).length, failures, "the injected failures happened");
    const [delivery] = deliveriesOf(text);
    assert.ok(delivery.verified, delivery.verifyError);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(new Set(deliveriesOf(text).map((d) => d.headers["webhook-id"])).size, 1);
  });
}

async function admin(path, method = "GET") {
  const res = await gateway.dispatchFetch(`${BASE}/admin/${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, json: { unparsed: text } };
  }
}

test("replay while EVENTS refuses: the dead letter stays in the store (deleted only once re-queued); replayed once the queue works", async () => {
  const text = "replay while the queue fails";
  assert.equal((await post("01HSPILLREPLAY000000000000", text)).status, 200);
  let letter;
  await until(async () => {
    const { json } = await admin("dead-letters");
    letter = json.dead_letters?.find((l) => JSON.parse(l.delivery.body).data.message.text === text);
    return letter !== undefined;
  }, 20000, "the dead letter");
  refuseReplay = true;
  const refused = [await admin(`dead-letters/${letter.webhook_id}/replay`, "POST"), await admin("dead-letters/replay", "POST")];
  console.log(`replays while the queue refuses: ${refused.map((r) => `${r.status} ${JSON.stringify(r.json)}`).join(", ")}`);
  for (const r of refused) if (r.status === 200) assert.deepEqual(r.json, { replayed: 0 });
  const still = (await admin("dead-letters")).json.dead_letters ?? [];
  assert.ok(still.some((l) => l.webhook_id === letter.webhook_id), "the letter is still in the store after replays the queue refused");
  refuseReplay = false;
  const replay = await admin(`dead-letters/${letter.webhook_id}/replay`, "POST");
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.json, { replayed: 1 });
  await until(() => deliveriesOf(text).length >= 2, 20000, "the replayed delivery");
  assert.ok(!((await admin("dead-letters")).json.dead_letters ?? []).some((l) => l.webhook_id === letter.webhook_id), "deleted after the replay");
});
