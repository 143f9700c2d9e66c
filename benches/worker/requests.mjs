// The requests of `make bench-worker`, built and signed the way the providers do: LINE (x-line-signature over
// the raw body) and WeChat safe mode (AES-256-CBC with the 32-byte PKCS#7 of WXBizMsgCrypt, msg_signature over
// <Encrypt>, fresh timestamp). Every request of a run is distinct: `tag` (per run) and `n` (per request) are in
// every event id.
import { createHash, createHmac, createCipheriv, randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./workerd-config.mjs";
import { LINE_SECRETS, FIXTURES_LINE_SECRET, WX } from "./settings.mjs";

const lineSign = (secret, body) => createHmac("sha256", secret).update(body).digest("base64");
const fixed = (prefix, n, width) => `${prefix}${String(n).padStart(width - prefix.length, "0")}`;
const hex32 = (seed) => createHash("sha256").update(seed).digest("hex").slice(0, 32);
const NOW_MS = Date.now();

function lineEnvelope(events) {
  return { destination: "U0123456789abcdef0123456789abcdef", events };
}

function lineBase(tag, n, i, type, extra) {
  return {
    type,
    ...extra,
    webhookEventId: fixed(`01J${tag}`, n * 100 + i, 26),
    deliveryContext: { isRedelivery: false },
    timestamp: NOW_MS - 1000 + i,
    source: extra.source ?? { type: "user", userId: `U${hex32(`user${i % 3}`)}` },
    mode: "active",
  };
}

const TEXT = "こんにちは、関所! Order #4521 has shipped; tracking number JP123456789. お問い合わせありがとうございます。";

/** Pads the `text` of the last text message so the body is exactly `bytes` long. */
function padTo(make, bytes) {
  const probe = Buffer.byteLength(JSON.stringify(make("")));
  if (probe > bytes) throw new Error(`body is already ${probe} bytes`);
  const filler = " Lorem ipsum dolor sit amet, consectetur adipiscing elit.".repeat(Math.ceil((bytes - probe) / 40) + 1).slice(0, bytes - probe);
  const body = JSON.stringify(make(filler));
  if (Buffer.byteLength(body) !== bytes) throw new Error("padding miscounted");
  return body;
}

function textEvent(tag, n, i, text) {
  return lineBase(tag, n, i, "message", {
    message: { type: "text", id: fixed("5", n * 100 + i, 18), quoteToken: `q${hex32(`q${n}.${i}`)}${hex32(`r${n}.${i}`)}`, text },
    replyToken: hex32(`reply${n}.${i}`),
  });
}

/** (a) one text message, 767 bytes. */
function lineSmallBody(tag, n) {
  return padTo((pad) => lineEnvelope([textEvent(tag, n, 0, TEXT + pad)]), 767);
}

/** (b) 20 events of the kinds a busy account sees, 16 KiB. */
function lineLargeBody(tag, n) {
  const group = { type: "group", groupId: `C${hex32("group")}`, userId: `U${hex32("user1")}` };
  const make = (pad) => {
    const events = [];
    for (let i = 0; i < 12; i++) events.push(textEvent(tag, n, i, `${TEXT} (${i})${"。".repeat(i * 20)}${i === 11 ? pad : ""}`));
    const id = (i) => fixed("5", n * 100 + i, 18);
    events.push(lineBase(tag, n, 12, "message", { message: { type: "image", id: id(12), contentProvider: { type: "line" }, imageSet: { id: hex32("set"), index: 1, total: 2 } }, replyToken: hex32(`r12.${n}`) }));
    events.push(lineBase(tag, n, 13, "message", { message: { type: "file", id: id(13), fileName: "見積書.pdf", fileSize: 204800 }, replyToken: hex32(`r13.${n}`) }));
    events.push(lineBase(tag, n, 14, "message", { message: { type: "sticker", id: id(14), packageId: "446", stickerId: "1988", stickerResourceType: "STATIC", keywords: ["Happy", "Yay"] }, replyToken: hex32(`r14.${n}`) }));
    events.push(lineBase(tag, n, 15, "message", { message: { type: "location", id: id(15), title: "東京タワー", address: "〒105-0011 東京都港区芝公園4丁目2-8", latitude: 35.65910807942215, longitude: 139.7453054710343 }, replyToken: hex32(`r15.${n}`) }));
    events.push(lineBase(tag, n, 16, "follow", { follow: { isUnblocked: false }, replyToken: hex32(`r16.${n}`) }));
    events.push(lineBase(tag, n, 17, "postback", { postback: { data: "action=buy&itemid=111", params: { datetime: "2026-12-01T10:00" } }, replyToken: hex32(`r17.${n}`) }));
    events.push(lineBase(tag, n, 18, "memberJoined", { source: group, joined: { members: [{ type: "user", userId: `U${hex32("m1")}` }, { type: "user", userId: `U${hex32("m2")}` }] }, replyToken: hex32(`r18.${n}`) }));
    events.push(lineBase(tag, n, 19, "unsend", { source: group, unsend: { messageId: id(3) } }));
    return lineEnvelope(events);
  };
  return padTo(make, 16384);
}

export function lineRequest(kind, tag, n, account = "bench", secret = LINE_SECRETS[0]) {
  const body = kind === "line-1" ? lineSmallBody(tag, n) : lineLargeBody(tag, n);
  return { path: `/line/${account}`, headers: { "content-type": "application/json", "x-line-signature": lineSign(secret, body) }, body };
}

function wxAesKey(encodingAesKey) {
  return Buffer.from(`${encodingAesKey}=`, "base64");
}

function wxEncrypt(encodingAesKey, message, appId) {
  const key = wxAesKey(encodingAesKey);
  const msg = Buffer.from(message);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(msg.length);
  const frame = Buffer.concat([randomBytes(16), length, msg, Buffer.from(appId)]);
  const pad = 32 - (frame.length % 32);
  const cipher = createCipheriv("aes-256-cbc", key, key.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([frame, Buffer.alloc(pad, pad)])), cipher.final()]).toString("base64");
}

const sha1Sorted = (...parts) => createHash("sha1").update(parts.sort().join("")).digest("hex");

/** A safe-mode push as WeChat sends it (query signature + msg_signature over <Encrypt>), fresh timestamp. */
export function wechatRequest(tag, n, account = "bench", xml = null) {
  const from = `oBenchUser${String(n % 97).padStart(18, "0")}`;
  const createTime = Math.floor(NOW_MS / 1000) - 1;
  const plain = xml ?? `<xml><ToUserName><![CDATA[${WX.toUser}]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName><CreateTime>${createTime}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好, Sekisho! 注文番号 ${n} の配送状況を教えてください。]]></Content><MsgId>24${String(parseInt(tag, 36)).padStart(4, "0")}${String(n).padStart(11, "0")}</MsgId></xml>`;
  const encrypt = wxEncrypt(WX.aesKeys[0], plain, WX.appId);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(1000000000 + ((n * 7919) % 999999999));
  const query = new URLSearchParams({
    signature: sha1Sorted(WX.token, timestamp, nonce),
    timestamp,
    nonce,
    openid: from,
    encrypt_type: "aes",
    msg_signature: sha1Sorted(WX.token, timestamp, nonce, encrypt),
  });
  const body = `<xml><ToUserName><![CDATA[${WX.toUser}]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`;
  return { path: `/wechat/${account}?${query}`, headers: { "content-type": "text/xml" }, body };
}

/** The LINE fixtures that are accepted, for the envelope check (account `fixtures`). */
export function lineFixtureRequests() {
  const dir = join(ROOT, "fixtures", "line");
  return readdirSync(dir).filter((f) => f.endsWith(".json")).sort().map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")))
    .filter((f) => f.expect?.status === 200 && f.config?.CHANNEL_SECRET === FIXTURES_LINE_SECRET)
    .map((f) => ({ path: "/line/fixtures", headers: f.request.headers, body: f.request.body }));
}

/** WeChat messages and events of several kinds, for the envelope check. */
export function wechatCheckRequests() {
  const ts = Math.floor(NOW_MS / 1000) - 5;
  const xml = (fields) => `<xml>${Object.entries(fields).map(([k, v]) => (typeof v === "number" ? `<${k}>${v}</${k}>` : `<${k}><![CDATA[${v}]]></${k}>`)).join("")}</xml>`;
  const base = { ToUserName: WX.toUser, FromUserName: "oCheckUser0000000000000001", CreateTime: ts };
  return [
    wechatRequest("ck", 1, "check"),
    wechatRequest("ck", 2, "check", xml({ ...base, MsgType: "image", PicUrl: "https://mmbiz.example/pic.jpg", MediaId: "media-1", MsgId: 24000000000000002 })),
    wechatRequest("ck", 3, "check", xml({ ...base, MsgType: "location", Location_X: "35.6591", Location_Y: "139.7453", Scale: 15, Label: "東京タワー", MsgId: 24000000000000003 })),
    wechatRequest("ck", 4, "check", xml({ ...base, MsgType: "event", Event: "subscribe", EventKey: "qrscene_123", Ticket: "TICKET" })),
    wechatRequest("ck", 5, "check", xml({ ...base, MsgType: "event", Event: "CLICK", EventKey: "MENU_1" })),
    wechatRequest("ck", 6, "check", xml({ ...base, MsgType: "event", Event: "LOCATION", Latitude: "23.137466", Longitude: "113.352425", Precision: "119.385040" })),
  ];
}

