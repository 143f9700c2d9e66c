// Chatwork room notifications end to end, through workerd: a SATORI-style form submission on the generic
// channel reaches the backend as an event AND a Chatwork room (a local mock of the Chatwork API) as a message
// rendered from the account's template, both through the durable queue.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import {
  startBackend, startGateway, durableOptions, until, validateEvent, loadEmailFixtures, runCli, SIGNING_SECRET,
} from "./harness.mjs";

const BASE = "http://gateway.test";
const FORM_SECRET = "satori-form-bearer-secret-0123456789";
const CHATWORK_TOKEN = "cw-api-token-for-e2e-only";
const ADMIN_TOKEN = "admin-token-for-e2e-only-0123456789";
let backend;
let gateway;
let chatwork;
let chatworkBusyOnce = false;

/** A stand-in for api.chatwork.com: records each POST /v2/rooms/{id}/messages. */
async function startChatworkMock() {
  const posts = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const match = /^\/v2\/rooms\/(\d+)\/messages$/.exec(req.url);
      const form = new URLSearchParams(body);
      posts.push({ path: req.url, room: match?.[1], headers: req.headers, body: form.get("body"), selfUnread: form.get("self_unread") });
      if (req.headers["x-chatworktoken"] !== CHATWORK_TOKEN) {
        res.writeHead(401, { "content-type": "application/json" });
        return res.end(JSON.stringify({ errors: ["Invalid API token"] }));
      }
      if (form.get("body")?.includes("busy once") && !chatworkBusyOnce) {
        chatworkBusyOnce = true;
        // Chatwork signals its rate limit with X-RateLimit-Reset (unix time), not Retry-After.
        res.writeHead(429, { "content-type": "application/json", "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 1) });
        return res.end(JSON.stringify({ errors: ["Rate limit exceeded"] }));
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ message_id: String(1000 + posts.length) }));
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}`, posts, close: () => new Promise((r) => server.close(r)) };
}

before(async () => {
  backend = await startBackend();
  chatwork = await startChatworkMock();
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    ADMIN_TOKEN,
    DELIVERY_BASE_DELAY_S: "1",
    DELIVERY_MAX_DELAY_S: "2",
    DELIVERY_MAX_ATTEMPTS: "2",
    CHATWORK_API_BASE: chatwork.url,
    CHATWORK_API_TOKEN: CHATWORK_TOKEN,
    // Account `satori`: its own room, template and type filter.
    GENERIC_SATORI_SECRET: FORM_SECRET,
    GENERIC_SATORI_NOTIFY_CHATWORK_ROOM: "271828",
    GENERIC_SATORI_NOTIFY_TEMPLATE: "[info][title]資料請求がありました[/title]{{data.raw.company}} {{data.raw.name}} 様\n{{data.raw.message}}[/info]",
    GENERIC_SATORI_NOTIFY_TYPES: "form.*",
    GENERIC_SATORI_NOTIFY_SELF_UNREAD: "1",
    // Account `acall`: no room of its own → the channel-wide room; the global default template.
    GENERIC_ACALL_SECRET: FORM_SECRET,
    GENERIC_NOTIFY_CHATWORK_ROOM: "314159",
    // Account `broken`: a template with an unknown placeholder.
    GENERIC_BROKEN_SECRET: FORM_SECRET,
    GENERIC_BROKEN_NOTIFY_CHATWORK_ROOM: "161803",
    GENERIC_BROKEN_NOTIFY_TEMPLATE: "{{data.raw.company}} {{data.sender.idd}}",
    // E-mail account `support`: new mail is announced in the support room.
    EMAIL_SUPPORT_ADDRESS: "support@example.com",
    EMAIL_SUPPORT_NOTIFY_CHATWORK_ROOM: "577215",
    EMAIL_SUPPORT_NOTIFY_TEMPLATE: "[info][title]新着メール: {{data.email.subject}}[/title]{{data.sender.name}} <{{data.sender.id}}>\n{{data.message.text}}[/info]",
    // LINE accounts do not notify (no room at any level for `line`).
    NOTIFY_CHATWORK_ROOM: "",
  }, { ...durableOptions(), unsafeTriggerHandlers: true });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  await chatwork?.close();
});

function postForm(account, fields, contentType = "application/x-www-form-urlencoded") {
  return gateway.dispatchFetch(`${BASE}/generic/${account}`, {
    method: "POST",
    headers: { authorization: `Bearer ${FORM_SECRET}`, "content-type": contentType },
    body: new URLSearchParams(fields).toString(),
  });
}

test("a SATORI form submission: event at the backend and the rendered message in the Chatwork room", async () => {
  const fields = {
    company: "株式会社テスト[toall]",
    name: "山田 太郎",
    email: "taro@example.jp",
    message: "資料をお送りください。[To:1234] よろしくお願いします",
  };
  const res = await postForm("satori", fields);
  assert.equal(res.status, 200, await res.text());
  await until(() => chatwork.posts.some((p) => p.room === "271828"), 15000, "Chatwork message");
  await backend.waitFor(1);

  const event = backend.received.find((d) => d.event?.account === "satori")?.event;
  assert.ok(event, "event reached the backend");
  assert.ok(validateEvent(event), JSON.stringify(validateEvent.errors));
  assert.equal(event.type, "form.submitted");
  assert.deepEqual(event.data.raw, fields);

  const posted = chatwork.posts.filter((p) => p.room === "271828");
  assert.equal(posted.length, 1, "exactly one Chatwork message");
  const [post] = posted;
  assert.equal(post.headers["x-chatworktoken"], CHATWORK_TOKEN);
  assert.match(post.headers["content-type"], /^application\/x-www-form-urlencoded/);
  assert.equal(post.selfUnread, "1");
  // The admin's markup is kept; markup typed into the form is neutralised (full-width brackets).
  assert.equal(
    post.body,
    "[info][title]資料請求がありました[/title]株式会社テスト［toall］ 山田 太郎 様\n資料をお送りください。［To:1234］ よろしくお願いします[/info]",
  );
});

test("room falls back to the channel-wide room; the default template renders the event", async () => {
  const res = await postForm("acall", { company: "ACALL受付", name: "来訪者 花子" });
  assert.equal(res.status, 200);
  await until(() => chatwork.posts.some((p) => p.room === "314159"), 15000, "channel-wide room");
  const post = chatwork.posts.find((p) => p.room === "314159");
  assert.match(post.body, /^\[info\]\[title\]form\.submitted: generic\/acall\[\/title\]/);
  assert.equal(post.selfUnread, null, "self_unread not sent unless configured");
});

test("the type filter: a JSON webhook (webhook.received) on the satori account does not notify", async () => {
  const before = chatwork.posts.length;
  const body = JSON.stringify({ type: "ping", id: "p-1" });
  const res = await gateway.dispatchFetch(`${BASE}/generic/satori`, {
    method: "POST",
    headers: { authorization: `Bearer ${FORM_SECRET}`, "content-type": "application/json" },
    body,
  });
  assert.equal(res.status, 200);
  await until(() => backend.received.some((d) => d.event?.type === "webhook.received"), 15000, "backend event");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(chatwork.posts.length, before, "filtered out");
});

test("Chatwork answers 429 once: the notification is retried and delivered once", async () => {
  const res = await postForm("satori", { company: "Retry KK", name: "busy once", message: "busy once" });
  assert.equal(res.status, 200);
  await until(() => chatwork.posts.filter((p) => p.body?.includes("Retry KK")).length >= 2, 20000, "retry");
  await new Promise((r) => setTimeout(r, 1500));
  const posts = chatwork.posts.filter((p) => p.body?.includes("Retry KK"));
  assert.equal(posts.length, 2, "one 429, then one success");
});

test("a broken template: the event still reaches the backend; the notice is retried, then dead-lettered with the reason", async () => {
  const res = await postForm("broken", { company: "Broken Template KK" });
  assert.equal(res.status, 200, "a notification problem never refuses the provider");
  await until(() => backend.received.some((d) => d.event?.account === "broken"), 15000, "backend event");
  const letters = async () => {
    const list = await gateway.dispatchFetch(`${BASE}/admin/dead-letters`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    return (await list.json()).dead_letters.filter((l) => l.webhook_id.endsWith(".chatwork"));
  };
  await until(async () => (await letters()).length === 1, 20000, "dead letter");
  const [letter] = await letters();
  const backendEvent = backend.received.find((d) => d.event?.account === "broken").event;
  assert.equal(letter.webhook_id, `${backendEvent.id}.chatwork`);
  assert.equal(letter.attempts, 2, "retried on the schedule before giving up");
  assert.match(letter.last_error, /GENERIC_BROKEN_NOTIFY_TEMPLATE/);
  assert.match(letter.last_error, /unknown placeholder \{\{data\.sender\.idd\}\}/);
  assert.equal(letter.delivery.target.kind, "chatwork_room");
  assert.equal(chatwork.posts.filter((p) => p.room === "161803").length, 0, "nothing posted");

  // The admin's view through the CLI, against the gateway's real local URL.
  const url = (await gateway.ready).href;
  const wrongToken = await runCli(["dlq", "list", "--url", url, "--token", "wrong"]);
  assert.notEqual(wrongToken.code, 0);
  assert.match(wrongToken.stderr, /401/);
  const listed = await runCli(["dlq", "list", "--url", url, "--token", ADMIN_TOKEN]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(JSON.parse(listed.stdout).dead_letters.some((l) => l.webhook_id === letter.webhook_id));
  // Replaying with the template still broken: the notice goes round the schedule again and comes back.
  const replayed = await runCli(["dlq", "replay", letter.webhook_id, "--url", url, "--token", ADMIN_TOKEN]);
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.deepEqual(JSON.parse(replayed.stdout), { replayed: 1 });
  await until(async () => (await letters()).length === 1 && (await letters())[0].dead_at_ms > letter.dead_at_ms, 20000, "dead-lettered again");
});

test("e-mail: a Japanese (ISO-2022-JP) message is announced in the support room with its decoded subject", async () => {
  const { fixture, raw } = loadEmailFixtures().find((f) => f.name === "iso2022jp");
  const url = `${BASE}/cdn-cgi/handler/email?${new URLSearchParams({ from: fixture.envelope.from, to: fixture.envelope.to })}`;
  const res = await gateway.dispatchFetch(url, { method: "POST", body: raw });
  assert.equal(res.status, 200, await res.text());
  await until(() => chatwork.posts.some((p) => p.room === "577215"), 15000, "Chatwork message for the e-mail");
  const post = chatwork.posts.find((p) => p.room === "577215");
  const expected = fixture.expect.email;
  assert.equal(
    post.body,
    `[info][title]新着メール: ${expected.subject}[/title]${expected.from.name} <${expected.from.address.toLowerCase()}>\n${expected.text}[/info]`,
  );
  await until(() => backend.received.some((d) => d.event?.channel === "email"), 15000, "backend event");
});
