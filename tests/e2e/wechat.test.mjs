// WeChat Official Account and WeCom through the built Worker: requests made fresh (current timestamp, real
// AES) by `sekisho send`, since signatures cover the time. Keys are the official samples' public ones.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBackend, startGateway, durableOptions, freePort, until, validateEvent, runCli, SIGNING_SECRET } from "./harness.mjs";

const OA = { token: "spamtest", key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", appId: "wx2c2769f8efd9abc2" };
const WECOM = { token: "QDG6eK", key: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", corpId: "wx5823bf96d3bd56c7" };
let backend;
let gateway;
let base;

before(async () => {
  backend = await startBackend();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    WECHAT_ZOHO_TOKEN: OA.token,
    WECHAT_ZOHO_ENCODING_AES_KEY: OA.key,
    WECHAT_ZOHO_APP_ID: OA.appId,
    WECOM_CORP_TOKEN: WECOM.token,
    WECOM_CORP_ENCODING_AES_KEY: WECOM.key,
    WECOM_CORP_CORP_ID: WECOM.corpId,
  }, { ...durableOptions(), host: "127.0.0.1", port });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

const oaArgs = ["--token", OA.token, "--aes-key", OA.key, "--app-id", OA.appId];
const wecomArgs = ["--token", WECOM.token, "--aes-key", WECOM.key, "--corp-id", WECOM.corpId];

test("WeChat OA URL verification answers echostr verbatim", async () => {
  const res = await runCli(["send", "wechat", `${base}/wechat/zoho`, "--token", OA.token, "--method", "GET", "--echostr", "5927782489442352469"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, "200 5927782489442352469\n");
});

test("WeCom URL verification decrypts the echostr and answers the plaintext", async () => {
  const res = await runCli(["send", "wecom", `${base}/wecom/corp`, ...wecomArgs, "--method", "GET", "--echostr", "1616140317555161061"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, "200 1616140317555161061\n");
});

test("a safe-mode OA message and a WeCom message arrive as schema-valid events; tampered requests are refused", async () => {
  const oa = await runCli(["send", "wechat", `${base}/wechat/zoho`, ...oaArgs, "--mode", "safe", "--body", "examples/wechat-text.xml"]);
  assert.equal(oa.code, 0, oa.stderr);
  assert.equal(oa.stdout, "200 success\n");
  const wecom = await runCli(["send", "wecom", `${base}/wecom/corp`, ...wecomArgs, "--body", "examples/wecom-text.xml"]);
  assert.equal(wecom.code, 0, wecom.stderr);
  await until(() => backend.received.length >= 2, 20000, "both events");
  const byChannel = Object.fromEntries(backend.received.map((d) => [d.event.channel, d]));
  for (const d of Object.values(byChannel)) {
    assert.ok(d.verified, d.verifyError);
    assert.ok(validateEvent(d.event), JSON.stringify(validateEvent.errors));
  }
  assert.equal(byChannel.wechat.event.data.message.text, "你好,关所");
  assert.equal(byChannel.wechat.event.data.sender.id, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
  assert.equal(byChannel.wecom.event.data.message.text, "hello from WeCom");

  const forged = await runCli(["send", "wechat", `${base}/wechat/zoho`, "--token", "not-the-token", "--aes-key", OA.key, "--app-id", OA.appId, "--body", "examples/wechat-text.xml"]);
  assert.notEqual(forged.code, 0);
  assert.match(forged.stdout, /^401 /);
  const wrongAppId = await runCli(["send", "wechat", `${base}/wechat/zoho`, "--token", OA.token, "--aes-key", OA.key, "--app-id", "wx0000000000000000", "--body", "examples/wecom-text.xml"]);
  assert.notEqual(wrongAppId.code, 0);
  assert.match(wrongAppId.stdout, /^4\d\d \{"error":"receive_id_mismatch"\}/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(backend.received.length, 2, "nothing of the refused requests was forwarded");
});
