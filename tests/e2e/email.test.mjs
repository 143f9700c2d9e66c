// E-mail intake end to end: every message under fixtures/email/ is handed to the built Worker's `email`
// handler through workerd's local e-mail endpoint (POST /cdn-cgi/handler/email?from=…&to=…, the endpoint
// `wrangler dev` serves), then travels the durable path (de-duplication object, queue) to the backend.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startBackend, startGateway, durableOptions, until, validateEvent, loadEmailFixtures, emailBindings, SIGNING_SECRET,
} from "./harness.mjs";

const BASE = "http://gateway.test";
let backend;
let gateway;
// workerd's local endpoint refuses a message without Message-ID before the Worker sees it (a check of the local
// tooling, not of Email Routing); that fixture is replayed natively in tests/email.rs. It also parses the message
// itself with postal-mime, whose TextDecoder throws on a body charset WHATWG does not list (`cp932`,
// `ISO-2022-JP-MS`): Email Routing delivers those, and tests/email.rs replays them natively (the Worker hands
// TextDecoder the same WHATWG names for them as for `Windows-31J` and `ISO-2022-JP`, which are replayed here).
const LOCAL_ENDPOINT_REFUSES = new Set(["no_message_id", "ja_label_cp932", "ja_label_iso_2022_jp_ms"]);
const fixtures = loadEmailFixtures().filter((f) => !LOCAL_ENDPOINT_REFUSES.has(f.name));

before(async () => {
  backend = await startBackend();
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    ...emailBindings(fixtures),
  }, { ...durableOptions(), unsafeTriggerHandlers: true });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

async function sendMail(gw, from, to, raw) {
  const url = `${BASE}/cdn-cgi/handler/email?${new URLSearchParams({ from, to })}`;
  const res = await gw.dispatchFetch(url, { method: "POST", body: raw });
  return { status: res.status, text: await res.text() };
}

const eventsFor = (messageId) => backend.received.filter((d) => d.event?.data?.email?.message_id === messageId);

test("every e-mail fixture: accepted ones arrive decoded and schema-valid, the rest are rejected with a reason", async () => {
  const accepted = [];
  for (const { name, fixture, raw } of fixtures) {
    const res = await sendMail(gateway, fixture.envelope.from, fixture.envelope.to, raw);
    if (fixture.expect.reason) {
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.match(res.text, new RegExp(`rejected email with the following reason: ${fixture.expect.reason}: `), name);
    } else {
      assert.equal(res.status, 200, `${name}: ${res.text}`);
      accepted.push({ name, fixture, raw });
    }
  }
  await backend.waitFor(accepted.length, 20000);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(backend.received.length, accepted.length, "one event per accepted message, nothing for rejected ones");
  for (const { name, fixture, raw } of accepted) {
    const expected = fixture.expect.email;
    const delivery = backend.received.find((d) => d.event?.data?.email?.message_id === expected.message_id);
    assert.ok(delivery, `${name}: no event`);
    assert.ok(delivery.verified, `${name}: ${delivery.verifyError}`);
    const event = delivery.event;
    assert.ok(validateEvent(event), `${name}: ${JSON.stringify(validateEvent.errors)}`);
    assert.equal(event.channel, "email");
    assert.equal(event.type, "message.received");
    assert.equal(event.data.email.envelope.to, fixture.envelope.to);
    if (expected.subject) assert.equal(event.data.email.subject, expected.subject, `${name}: subject`);
    if (expected.text) assert.equal(event.data.message.text, expected.text, `${name}: text`);
    if (expected.from?.address) assert.equal(event.data.sender.id, expected.from.address.toLowerCase(), `${name}: sender`);
    if (expected.conversation_id) assert.equal(event.data.conversation.id, `${event.data.sender.id} ${expected.conversation_id}`, `${name}: thread`);
    if (Array.isArray(expected.attachments)) {
      assert.deepEqual(
        (event.data.message.attachments ?? []).map((a) => [a.name, a.content_type, a.size]),
        expected.attachments.map((a) => [a.name, a.content_type, a.size]),
        `${name}: attachments`,
      );
    }
  }
});

test("the same message delivered again (an MTA retry, or To + Cc to two addresses of the account) is forwarded once", async () => {
  const { fixture, raw } = fixtures.find((f) => f.name === "plain_ascii");
  const before = eventsFor(fixture.expect.email.message_id).length;
  assert.equal(before, 1);
  const again = await sendMail(gateway, fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(again.status, 200);
  const other = await sendMail(gateway, fixture.envelope.from, "info@example.co.jp", raw);
  assert.equal(other.status, 200);
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(eventsFor(fixture.expect.email.message_id).length, 1, "de-duplicated on Message-ID");
});

test("a reply lands in its thread's conversation", async () => {
  const reply = fixtures.find((f) => f.name === "thread_reply").fixture.expect.email;
  const event = eventsFor(reply.message_id)[0].event;
  // The thread's root, within the sender's address: another sender naming the same root is another thread.
  const thread = `${reply.from.address.toLowerCase()} ${reply.references[0]}`;
  assert.equal(event.data.conversation.id, thread);
  assert.equal(event.data.ordering.key, `email/support/${thread}`);
});

test("a message over EMAIL_MAX_BYTES is rejected with the limit, before anything is forwarded", async () => {
  const small = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    EMAIL_MAX_BYTES: "2048",
    ...emailBindings(fixtures),
  }, { ...durableOptions(), unsafeTriggerHandlers: true });
  try {
    const { fixture, raw } = fixtures.find((f) => f.name === "attachments");
    assert.ok(raw.length > 2048);
    const count = backend.received.length;
    const res = await sendMail(small, fixture.envelope.from, fixture.envelope.to, raw);
    assert.equal(res.status, 400);
    assert.match(res.text, /payload_too_large: body exceeds the limit of 2048 bytes/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(backend.received.length, count);
  } finally {
    await small.dispose();
  }
});

test("no backend configured: a temporary failure (the sender retries), never a bounce or a silent drop", async () => {
  const broken = await startGateway({ ...emailBindings(fixtures) }, { ...durableOptions(), unsafeTriggerHandlers: true });
  try {
    const { fixture, raw } = fixtures.find((f) => f.name === "iso2022jp");
    const res = await sendMail(broken, fixture.envelope.from, fixture.envelope.to, raw);
    assert.equal(res.status, 500, res.text);
    assert.doesNotMatch(res.text, /rejected email/);
  } finally {
    await broken.dispose();
  }
});

test("HTML-only mail: the text derived from the HTML has its character references decoded in the Worker too", async () => {
  const raw = "From: a@example.jp\r\nTo: support@example.com\r\nMessage-ID: <entities@example.jp>\r\n" +
    "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
    "<p>A &amp; B &lt;b&gt; &copy; &nbsp;x &#12354; &hellip; &yen;100 &amp;lt;</p>\r\n";
  const res = await sendMail(gateway, "a@example.jp", "support@example.com", raw);
  assert.equal(res.status, 200, res.text);
  await until(() => eventsFor("entities@example.jp").length === 1, 20000, "the event");
  assert.equal(eventsFor("entities@example.jp")[0].event.data.message.text, "A & B <b> © \u00a0x あ … ¥100 &lt;");
});
