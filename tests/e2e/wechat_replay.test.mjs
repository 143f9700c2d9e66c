// WeChat's plaintext-mode signature covers token, timestamp and nonce — never the body. Through the built Worker
// (replay guards kept in the de-duplication Durable Object): a signed query is bound to the first body it came
// with; with an EncodingAESKey configured, plaintext is refused outright.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startBackend, startGateway, durableOptions, until, SIGNING_SECRET } from "./harness.mjs";

const BASE = "http://gateway.test";
const TOKEN = "plaintext-e2e-token";
let backend;
let gateway;

before(async () => {
  backend = await startBackend();
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    WECHAT_PLAIN_TOKEN: TOKEN,
    WECHAT_PLAIN_APP_ID: "wx0000000000000001",
    WECHAT_KEYED_TOKEN: TOKEN,
    WECHAT_KEYED_APP_ID: "wx2c2769f8efd9abc2",
    WECHAT_KEYED_ENCODING_AES_KEY: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
  }, durableOptions());
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

function signedQuery(nonce) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHash("sha1").update([TOKEN, timestamp, nonce].sort().join("")).digest("hex");
  return `signature=${signature}&timestamp=${timestamp}&nonce=${nonce}&openid=oUser`;
}

function message(from, text, msgId) {
  return `<xml><ToUserName><![CDATA[gh_e2e]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName>` +
    `<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${text}]]></Content>` +
    `<MsgId>${msgId}</MsgId></xml>`;
}

async function post(account, query, body) {
  const res = await gateway.dispatchFetch(`${BASE}/wechat/${account}?${query}`, {
    method: "POST", headers: { "content-type": "text/xml" }, body,
  });
  return { status: res.status, text: await res.text() };
}

const arrived = (text) => backend.received.filter((d) => d.event?.data?.message?.text === text);

test("plaintext mode: a signed query is bound to its first body; a retry with the same body stays a duplicate", async () => {
  const query = signedQuery("nonce-bind-1");
  const first = await post("plain", query, message("oUser", "original", "7000000000000000001"));
  assert.equal(first.status, 200, first.text);
  assert.equal(first.text, "success");

  const forged = await post("plain", query, message("oVictim", "forged by someone who saw the URL", "7000000000000000002"));
  assert.equal(forged.status, 401);
  assert.deepEqual(JSON.parse(forged.text), { error: "replayed_signature" });

  const retry = await post("plain", query, message("oUser", "original", "7000000000000000001"));
  assert.equal(retry.status, 200, retry.text);

  await until(() => arrived("original").length === 1, 15000, "the original event");
  // A later event proves the queue has moved past the others.
  assert.equal((await post("plain", signedQuery("nonce-bind-2"), message("oUser", "later", "7000000000000000003"))).status, 200);
  await until(() => arrived("later").length === 1, 15000, "the later event");
  assert.equal(arrived("original").length, 1, "the retry was a duplicate");
  assert.equal(arrived("forged by someone who saw the URL").length, 0, "the forged body was never forwarded");
});

test("plaintext mode: a handshake URL cannot be reused to post a message", async () => {
  const query = signedQuery("nonce-handshake");
  const handshake = await gateway.dispatchFetch(`${BASE}/wechat/plain?${query}&echostr=12345`);
  assert.equal(handshake.status, 200);
  assert.equal(await handshake.text(), "12345");
  const reuse = await post("plain", query, message("oVictim", "posted with a handshake URL", "7000000000000000004"));
  assert.equal(reuse.status, 401, reuse.text);
  assert.deepEqual(JSON.parse(reuse.text), { error: "replayed_signature" });
});

test("with an EncodingAESKey configured, a plaintext POST is refused as encryption_required and nothing is forwarded", async () => {
  const res = await post("keyed", signedQuery("nonce-downgrade"), message("oVictim", "downgrade attempt", "7000000000000000005"));
  assert.equal(res.status, 401, res.text);
  assert.deepEqual(JSON.parse(res.text), { error: "encryption_required" });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(arrived("downgrade attempt").length, 0);
});
