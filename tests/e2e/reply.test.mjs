// Synchronous replies through the built Worker in workerd, with real crypto: the backend answers the reply call
// in time → the provider's response carries the reply in its own format (WeChat: an encrypted passive reply with
// a valid msg_signature; Slack: the slash command's message; Telegram: a sendMessage call); the backend sleeps
// past the budget → the default answer comes within the budget plus a margin. Either way the event is delivered
// exactly once, after the reply call, with the same webhook-id; reply text cannot inject markup.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from "node:crypto";
import { startBackend, startGateway, durableOptions, until, SIGNING_SECRET } from "./harness.mjs";

const BASE = "https://gateway.test";
const WX_TOKEN = "reply-e2e-token";
const WX_APP_ID = "wx2c2769f8efd9abc2";
const WX_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const TELEGRAM_SECRET = "reply-e2e-secret_token";
const BUDGET_MS = 1500;
// What the gateway itself may add around the budget under test load (verify, claim, enqueue, workerd).
const MARGIN_MS = 1500;
const INJECTION = "ok]]></Content><ToUserName><![CDATA[oVictim]]></ToUserName><Content><![CDATA[<!channel> <@U999> & more";

let backend;
let gateway;

/** The backend's reply endpoint: the text of the event decides what it does. */
function replyTo(entry) {
  if (entry.path !== "/reply") return 204;
  const text = entry.event?.data?.message?.text ?? entry.event?.data?.message?.text ?? "";
  if (text.includes("sleep")) return { status: 200, delayMs: BUDGET_MS + 2500, headers: { "content-type": "application/json" }, body: JSON.stringify({ reply: { text: "too late" } }) };
  if (text.includes("inject")) return json({ reply: { text: INJECTION } });
  if (text.includes("slow")) return { ...json({ reply: { text: `受け付けました: ${text}` } }), delayMs: 800 };
  if (text.includes("raw-setwebhook")) return json({ reply: { raw: { method: "setWebhook", url: "https://attacker.example/hook" } } });
  if (text.includes("raw-elsewhere")) return json({ reply: { raw: { method: "sendMessage", chat_id: 666, text: "raw" } } });
  if (text.includes("fail")) return { status: 500 };
  return json({ reply: { text: `受け付けました: ${text}` } });
}

function json(value) {
  return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(value) };
}

before(async () => {
  backend = await startBackend({ respond: replyTo });
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    REPLY_URL: `${backend.url}/reply`,
    REPLY_TIMEOUT_MS: String(BUDGET_MS),
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    WECHAT_SAFE_TOKEN: WX_TOKEN,
    WECHAT_SAFE_APP_ID: WX_APP_ID,
    WECHAT_SAFE_ENCODING_AES_KEY: WX_AES,
    SLACK_TEAM_SIGNING_SECRET: SLACK_SECRET,
    TELEGRAM_BOT_SECRET_TOKEN: TELEGRAM_SECRET,
  }, durableOptions());
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

// WXBizMsgCrypt: AES-256-CBC, iv = key[0..16], random16 ‖ u32be length ‖ message ‖ receive id, PKCS#7 to 32 bytes.
const aesKey = Buffer.from(WX_AES + "=", "base64");

function wxEncrypt(message) {
  const plain = Buffer.concat([randomBytes(16), Buffer.alloc(4), Buffer.from(message), Buffer.from(WX_APP_ID)]);
  plain.writeUInt32BE(Buffer.byteLength(message), 16);
  const pad = 32 - (plain.length % 32);
  const cipher = createCipheriv("aes-256-cbc", aesKey, aesKey.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), cipher.final()]).toString("base64");
}

function wxDecrypt(encrypt) {
  const decipher = createDecipheriv("aes-256-cbc", aesKey, aesKey.subarray(0, 16)).setAutoPadding(false);
  const padded = Buffer.concat([decipher.update(Buffer.from(encrypt, "base64")), decipher.final()]);
  const plain = padded.subarray(0, padded.length - padded[padded.length - 1]);
  const length = plain.readUInt32BE(16);
  return { message: plain.subarray(20, 20 + length).toString("utf8"), receiveId: plain.subarray(20 + length).toString("utf8") };
}

const sha1Sorted = (...parts) => createHash("sha1").update(parts.sort().join("")).digest("hex");

/** The text of `<tag>` made of CDATA sections (joined, as an XML parser reads them), or its plain text. */
function elementText(xml, tag) {
  const start = xml.indexOf(`<${tag}>`);
  assert.ok(start >= 0, `<${tag}> in ${xml}`);
  let at = start + tag.length + 2;
  let text = "";
  while (xml.startsWith("<![CDATA[", at)) {
    const end = xml.indexOf("]]>", at);
    text += xml.slice(at + 9, end);
    at = end + 3;
  }
  if (!xml.startsWith(`</${tag}>`, at)) {
    const end = xml.indexOf(`</${tag}>`, at);
    text += xml.slice(at, end);
  }
  return text;
}

async function wechat(text, msgId) {
  const inner = `<xml><ToUserName><![CDATA[gh_reply]]></ToUserName><FromUserName><![CDATA[oCustomer]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[text]]></MsgType>` +
    `<Content><![CDATA[${text}]]></Content><MsgId>${msgId}</MsgId></xml>`;
  const encrypt = wxEncrypt(inner);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(1000 + Math.floor(Math.random() * 1e6));
  const query = `timestamp=${timestamp}&nonce=${nonce}&encrypt_type=aes&msg_signature=${sha1Sorted(WX_TOKEN, timestamp, nonce, encrypt)}`;
  const started = Date.now();
  const res = await gateway.dispatchFetch(`${BASE}/wechat/safe?${query}`, {
    method: "POST", headers: { "content-type": "text/xml" },
    body: `<xml><ToUserName><![CDATA[gh_reply]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
  });
  return { status: res.status, body: await res.text(), elapsed: Date.now() - started, contentType: res.headers.get("content-type") };
}

function openPassiveReply(body) {
  const encrypt = elementText(body, "Encrypt");
  const timestamp = elementText(body, "TimeStamp");
  const nonce = elementText(body, "Nonce");
  assert.equal(elementText(body, "MsgSignature"), sha1Sorted(WX_TOKEN, timestamp, nonce, encrypt), "msg_signature = sha1(sort(token, timestamp, nonce, encrypt))");
  assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 30, "a fresh timestamp");
  const { message, receiveId } = wxDecrypt(encrypt);
  assert.equal(receiveId, WX_APP_ID);
  return message;
}

const deliveries = (id) => backend.received.filter((e) => e.path === "/events" && e.headers["webhook-id"] === id);
const replyCalls = (predicate) => backend.received.filter((e) => e.path === "/reply" && predicate(e));
const textIs = (text) => (e) => e.event?.data?.message?.text === text;

async function deliveredOnceAfterTheCall(text) {
  const [call] = replyCalls(textIs(text));
  assert.ok(call, `a reply call for ${text}`);
  assert.ok(call.verified, `the reply call is signed like a delivery: ${call.verifyError}`);
  assert.ok(Number(call.headers["sekisho-reply-budget-ms"]) > 0 && Number(call.headers["sekisho-reply-budget-ms"]) <= BUDGET_MS);
  const id = call.headers["webhook-id"];
  await until(() => deliveries(id).length >= 1, 20000, `the delivery of ${text}`);
  const [delivery] = deliveries(id);
  assert.ok(delivery.verified);
  assert.equal(delivery.body, call.body, "the same event");
  assert.equal(delivery.headers["sekisho-reply-budget-ms"], undefined, "a delivery is told apart by the missing header");
  assert.ok(delivery.at >= call.at + BUDGET_MS, "the delivery waited for the reply call's budget");
  return { id, call, delivery };
}

test("WeChat safe mode: an in-time reply is an encrypted, signed passive reply to the sender", async () => {
  const res = await wechat("こんにちは", "7100000000000000001");
  assert.equal(res.status, 200, res.body);
  assert.match(res.contentType, /xml/);
  const xml = openPassiveReply(res.body);
  assert.equal(elementText(xml, "ToUserName"), "oCustomer", "To and From swapped");
  assert.equal(elementText(xml, "FromUserName"), "gh_reply");
  assert.equal(elementText(xml, "MsgType"), "text");
  assert.equal(elementText(xml, "Content"), "受け付けました: こんにちは");
  assert.ok(Math.abs(Number(elementText(xml, "CreateTime")) - Date.now() / 1000) < 30);
  const { id } = await deliveredOnceAfterTheCall("こんにちは");
  // A provider retry of the same message is a duplicate: answered with the reply kept for it, without asking
  // the backend again, and delivered once.
  const retry = await wechat("こんにちは", "7100000000000000001");
  assert.equal(elementText(openPassiveReply(retry.body), "Content"), "受け付けました: こんにちは");
  await new Promise((r) => setTimeout(r, BUDGET_MS + 2500));
  assert.equal(deliveries(id).length, 1, "delivered exactly once");
  assert.equal(replyCalls((e) => e.headers["webhook-id"] === id).length, 1);
});

test("WeChat: a backend sleeping past the budget → `success` within the budget, the event still delivered once", async () => {
  const res = await wechat("sleep please", "7100000000000000002");
  assert.equal(res.status, 200);
  assert.equal(res.body, "success");
  assert.ok(res.elapsed < BUDGET_MS + MARGIN_MS, `answered after ${res.elapsed} ms`);
  assert.ok(res.elapsed >= BUDGET_MS - 200, `waited the budget (${res.elapsed} ms)`);
  const { id } = await deliveredOnceAfterTheCall("sleep please");
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(deliveries(id).length, 1);
});

test("WeChat: reply text cannot inject XML elements; a failing backend gets the default answer", async () => {
  const res = await wechat("inject", "7100000000000000003");
  const xml = openPassiveReply(res.body);
  // Outside the CDATA sections (what an XML parser reads as markup) there is one of each element.
  const markup = xml.replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, "");
  assert.deepEqual(markup.match(/<[A-Za-z]+>/g), ["<xml>", "<ToUserName>", "<FromUserName>", "<CreateTime>", "<MsgType>", "<Content>"]);
  assert.equal(elementText(xml, "ToUserName"), "oCustomer");
  assert.equal(elementText(xml, "Content"), INJECTION, "the text, as text");
  const failed = await wechat("fail", "7100000000000000004");
  assert.equal(failed.body, "success");
});

function slackCommand(text, triggerId) {
  const body = new URLSearchParams({
    token: "x", team_id: "T1", team_domain: "acme", channel_id: "C1", channel_name: "general", user_id: "U1",
    user_name: "suzuki", command: "/ticket", text, response_url: "https://hooks.slack.com/commands/T1/1/x", trigger_id: triggerId,
  }).toString();
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = "v0=" + createHmac("sha256", SLACK_SECRET).update(`v0:${timestamp}:${body}`).digest("hex");
  return { body, headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": timestamp, "x-slack-signature": signature } };
}

async function slack(text, triggerId) {
  const { body, headers } = slackCommand(text, triggerId);
  const started = Date.now();
  const res = await gateway.dispatchFetch(`${BASE}/slack/team`, { method: "POST", headers, body });
  return { status: res.status, body: await res.text(), elapsed: Date.now() - started, contentType: res.headers.get("content-type") };
}

test("Slack slash command: the reply is the command's ephemeral message, mentions neutralised; late → empty 200", async () => {
  const res = await slack("order 42", "trigger-reply-1");
  assert.equal(res.status, 200);
  assert.equal(res.contentType, "application/json");
  assert.deepEqual(JSON.parse(res.body), { response_type: "ephemeral", text: "受け付けました: order 42" });
  await deliveredOnceAfterTheCall("order 42");

  const injected = JSON.parse((await slack("inject", "trigger-reply-2")).body);
  assert.ok(!/<!channel>|<@U999>/.test(injected.text), injected.text);
  assert.ok(injected.text.includes("&lt;!channel&gt; &lt;@U999&gt; &amp; more"));

  const late = await slack("sleep now", "trigger-reply-3");
  assert.equal(late.status, 200);
  assert.equal(late.body, "");
  assert.ok(late.elapsed < BUDGET_MS + MARGIN_MS, `answered after ${late.elapsed} ms`);
  await deliveredOnceAfterTheCall("sleep now");
});

test("Slack: one captured slash command replayed five times makes one reply call; every copy gets the same reply", async () => {
  const { body, headers } = slackCommand("replayed order 7", "trigger-replay-1");
  const send = async () => {
    const res = await gateway.dispatchFetch(`${BASE}/slack/team`, { method: "POST", headers, body });
    return [res.status, await res.text()];
  };
  const first = await send();
  assert.deepEqual(JSON.parse(first[1]), { response_type: "ephemeral", text: "受け付けました: replayed order 7" });
  const { id } = await deliveredOnceAfterTheCall("replayed order 7");
  for (let i = 0; i < 5; i++) assert.deepEqual(await send(), first, `replay ${i}`);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(replyCalls((e) => e.headers["webhook-id"] === id).length, 1, "the backend was asked once");
  assert.equal(deliveries(id).length, 1);
});

test("Slack: a copy sent while the first reply call still runs waits for it and gets the same reply; the backend is asked once", async () => {
  const { body, headers } = slackCommand("slow order 8", "trigger-copy-1");
  const send = async () => {
    const res = await gateway.dispatchFetch(`${BASE}/slack/team`, { method: "POST", headers, body });
    return [res.status, await res.text()];
  };
  const first = send();
  await new Promise((r) => setTimeout(r, 300));
  const copy = send();
  const [a, b] = await Promise.all([first, copy]);
  assert.deepEqual(JSON.parse(a[1]), { response_type: "ephemeral", text: "受け付けました: slow order 8" });
  assert.deepEqual(b, a, "the copy is answered with the first reply, not 503");
  const { id } = await deliveredOnceAfterTheCall("slow order 8");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(replyCalls((e) => e.headers["webhook-id"] === id).length, 1, "the backend was asked once");
  assert.equal(deliveries(id).length, 1);
});

async function telegram(text, updateId, chatId = 4242) {
  const body = JSON.stringify({
    update_id: updateId,
    message: { message_id: updateId, date: Math.floor(Date.now() / 1000), chat: { id: chatId, type: "private" }, from: { id: chatId, is_bot: false, first_name: "Ichiro" }, text },
  });
  const started = Date.now();
  const res = await gateway.dispatchFetch(`${BASE}/telegram/bot`, {
    method: "POST", headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET }, body,
  });
  return { status: res.status, body: await res.text(), elapsed: Date.now() - started };
}

test("Telegram: the reply is a sendMessage to the update's chat, never another; late → the usual answer", async () => {
  const res = await telegram("hello bot", 880001);
  assert.equal(res.status, 200);
  assert.deepEqual(JSON.parse(res.body), { method: "sendMessage", chat_id: 4242, text: "受け付けました: hello bot" });
  await deliveredOnceAfterTheCall("hello bot");

  const elsewhere = JSON.parse((await telegram("raw-elsewhere", 880002)).body);
  assert.equal(elsewhere.chat_id, 4242, "a raw reply cannot pick another chat");
  assert.equal(elsewhere.method, "sendMessage");
  assert.equal(JSON.parse((await telegram("inject", 880003)).body).parse_mode, undefined, "no markup mode: text stays text");
  // Only send methods: a raw setWebhook is not passed to Telegram; the update gets the usual answer.
  assert.deepEqual(JSON.parse((await telegram("raw-setwebhook", 880005)).body), { accepted: 1 });

  const late = await telegram("sleep telegram", 880004);
  assert.equal(late.status, 200);
  assert.deepEqual(JSON.parse(late.body), { accepted: 1 });
  assert.ok(late.elapsed < BUDGET_MS + MARGIN_MS, `answered after ${late.elapsed} ms`);
  await deliveredOnceAfterTheCall("sleep telegram");
});
