// The JavaScript a user would write instead of Sekisho, for `make bench-worker`: a plain Worker (no libraries,
// WebCrypto only) that does the same work per request as Sekisho's best-effort mode for LINE and WeChat safe
// mode, and answers /healthz. It is meant to be honest: it verifies over the raw bytes with every configured
// secret (rotation), caches imported keys the way a careful Worker does, normalizes into the same envelope v1
// fields (src/envelope.rs, src/channels/line.rs, src/channels/wxxml.rs), signs each forward with Standard
// Webhooks and sends it inside ctx.waitUntil after answering. It is not a second gateway: no queue, no
// de-duplication store, no other channels, no e-mail, no notifications.
//
//   POST /line/{account}     x-line-signature = base64(HMAC-SHA256(channel secret, raw body)) → {"accepted":N}
//   POST /wechat/{account}   safe/compatible mode (msg_signature over <Encrypt>, AES-256-CBC) → success
//   GET  /wechat/{account}   URL-verification handshake (echostr)
//   GET  /healthz            ok
//
// Bindings: as Sekisho's — LINE_{ACCOUNT}_CHANNEL_SECRET, WECHAT_{ACCOUNT}_TOKEN / _ENCODING_AES_KEY / _APP_ID,
// BACKEND_URL (or {CHANNEL}_{ACCOUNT}_BACKEND_URL), BACKEND_SIGNING_SECRET (whsec_…), MAX_BODY_BYTES; several
// values separated by commas or whitespace, newest first.

const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });
const ACCOUNT = /^[a-z0-9-]{1,64}$/;
const DEFAULT_MAX_BODY = 1048576;
const WECHAT_MAX_BODY = 65536;
const DELIVERY_TIMEOUT_MS = 15000;

// ------------------------------------------------------------------------------------------ small helpers

const json = (status, value) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
const text = (body) => new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } });

class Refused extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
    this.reason = reason;
  }
}

function refused(error, channel, account) {
  if (!(error instanceof Refused)) throw error;
  console.warn(JSON.stringify({ channel, account, reason: error.reason, status: error.status, level: "warn", msg: "request rejected" }));
  return json(error.status, { error: error.reason });
}

const values = (raw) => (raw ?? "").split(/[\s,]+/).filter(Boolean);
const bindingName = (channel, account, field) => `${channel}_${account}_${field}`.replaceAll("-", "_").toUpperCase();

function base64ToBytes(b64) {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function bytesToBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
function bytesToHex(buffer, length) {
  const bytes = new Uint8Array(buffer);
  let hex = "";
  for (let i = 0; i < (length ?? bytes.length); i++) hex += HEX[bytes[i]];
  return hex;
}

function equalConstantTime(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// Imported CryptoKeys, cached per isolate: importKey is not free and the secrets rarely change.
const keyCache = new Map();
function cachedKey(kind, secret, make) {
  const id = `${kind}\u0000${secret}`;
  let key = keyCache.get(id);
  if (!key) {
    key = make();
    keyCache.set(id, key);
  }
  return key;
}
const hmacKey = (kind, secret, raw) =>
  cachedKey(kind, secret, () => crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]));

async function readBody(request, limit) {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > limit) throw new Refused(413, "payload_too_large");
  const body = new Uint8Array(await request.arrayBuffer());
  if (body.length > limit) throw new Refused(413, "payload_too_large");
  return body;
}

/** The account's MAX_BODY_BYTES (else the channel's default) capped by the global MAX_BODY_BYTES (1 MiB). */
function bodyLimit(env, channel, account, channelDefault) {
  const number = (raw) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) throw new Refused(500, "misconfigured");
    return n;
  };
  const global = env.MAX_BODY_BYTES === undefined ? DEFAULT_MAX_BODY : number(env.MAX_BODY_BYTES);
  const own = env[bindingName(channel, account, "MAX_BODY_BYTES")];
  const limit = own === undefined ? channelDefault : number(own);
  return limit === undefined ? global : Math.min(limit, global);
}

// --------------------------------------------------------------------------------- envelope and forwarding

async function eventId(channel, account, dedupeKey) {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(`${channel}\n${account}\n${dedupeKey}`));
  return `evt_${bytesToHex(digest, 16)}`;
}

const rfc3339 = (ms) => new Date(Math.min(ms, 253402300799000)).toISOString();

/** The envelope v1, in the order of Sekisho's fields (absent fields are left out, never null). */
async function envelope(channel, account, parts) {
  const key = parts.data.conversation?.id ?? parts.data.sender?.id ?? "";
  const d = parts.data;
  return {
    specversion: "1.0",
    id: await eventId(channel, account, parts.dedupeKey),
    source: `/${channel}/${account}`,
    type: parts.type,
    time: rfc3339(parts.timeMs),
    datacontenttype: "application/json",
    channel,
    account,
    data: {
      provider_type: d.provider_type,
      conversation: d.conversation,
      sender: d.sender,
      message: d.message,
      postback: d.postback,
      reply: d.reply,
      members: d.members?.length ? d.members : undefined,
      verification: d.verification,
      ordering: { key: `${channel}/${account}/${key}`, sequence: parts.timeMs },
      raw: d.raw,
    },
  };
}

/** BACKEND_URL and the whsec_ keys, checked before the request is accepted (a broken setting is a 500 the
 * provider retries, not a silent loss). */
function backend(env, channel, account) {
  const url = (env[bindingName(channel, account, "BACKEND_URL")] ?? env.BACKEND_URL ?? "").trim();
  if (!url) throw new Refused(500, "misconfigured");
  const secrets = values(env.BACKEND_SIGNING_SECRET);
  if (secrets.length === 0) throw new Refused(500, "misconfigured");
  const keys = secrets.map((secret) => {
    let raw;
    try {
      raw = base64ToBytes(secret.startsWith("whsec_") ? secret.slice(6) : secret);
    } catch {
      throw new Refused(500, "misconfigured");
    }
    if (raw.length === 0) throw new Refused(500, "misconfigured");
    return hmacKey("whsec", secret, raw);
  });
  return { url, keys };
}

/** One Standard Webhooks POST per event: webhook-id = event id, content `${id}.${timestamp}.${body}`. */
async function forward(target, event) {
  const body = JSON.stringify(event);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const content = encoder.encode(`${event.id}.${timestamp}.${body}`);
  const signatures = await Promise.all(target.keys.map(async (key) => `v1,${bytesToBase64(await crypto.subtle.sign("HMAC", await key, content))}`));
  try {
    const response = await fetch(target.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signatures.join(" "),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    if (response.status < 200 || response.status > 299) {
      console.error(JSON.stringify({ event: event.id, type: event.type, error: `destination answered ${response.status}`, level: "error", msg: "forward failed" }));
    }
  } catch (error) {
    console.error(JSON.stringify({ event: event.id, type: event.type, error: String(error), level: "error", msg: "forward failed" }));
  }
}

async function accept(ctx, target, channel, account, partsList, response) {
  const events = await Promise.all(partsList.map((parts) => envelope(channel, account, parts)));
  console.log(JSON.stringify({ channel, account, events: events.map((e) => e.id), level: "info", msg: "request accepted" }));
  // One forward after the other, as Sekisho's best-effort mode does. Promise.all over all of a request's events
  // looks natural but collapsed under load while this benchmark was written: with 20-event requests from 16
  // concurrent clients thousands of forwards ran past their timeout and workerd grew to ~1 GB.
  if (events.length > 0) {
    ctx.waitUntil((async () => {
      for (const event of events) await forward(target, event);
    })());
  }
  return response ?? json(200, { accepted: events.length });
}

// JSON helpers with Sekisho's semantics: ids may be numbers (rendered as text), absent fields stay absent.
const at = (value, path) => path.reduce((v, k) => (v !== null && typeof v === "object" && !Array.isArray(v) ? v[k] : undefined), value);
function textAt(value, path) {
  const v = at(value, path);
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;
}
function u64At(value, path) {
  const v = at(value, path);
  if (typeof v === "number") return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v === "string" && /^\+?\d+$/.test(v)) return Number(v);
  return undefined;
}
function f64At(value, path) {
  const v = at(value, path);
  if (typeof v === "number") return v;
  if (typeof v === "string" && v !== "" && !Number.isNaN(Number(v))) return Number(v);
  return undefined;
}

/** Canonical JSON (keys sorted), for events without a provider id. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// ------------------------------------------------------------------------------------------------ LINE

const LINE_TYPES = {
  message: "message.received", unsend: "message.unsent", messageEdited: "message.edited", follow: "follow",
  unfollow: "unfollow", join: "conversation.joined", leave: "conversation.left", memberJoined: "member.joined",
  memberLeft: "member.left", postback: "postback", videoPlayComplete: "video.play_completed", beacon: "beacon",
  accountLink: "account.linked", things: "device.things", module: "module.action", activated: "module.activated",
  deactivated: "module.deactivated", botSuspended: "bot.suspended", botResumed: "bot.resumed",
  delivery: "notification.delivered", membership: "membership.changed",
};
const CONVERSATION_KINDS = { user: ["direct", "userId"], group: ["group", "groupId"], room: ["room", "roomId"] };

function lineMessage(message) {
  const kind = textAt(message, ["type"]) ?? "unknown";
  const id = textAt(message, ["id"]);
  const normalized = { id, kind, text: undefined, attachments: undefined, location: undefined, sticker: undefined };
  switch (kind) {
    case "text":
      normalized.text = textAt(message, ["text"]);
      break;
    case "image":
    case "video":
    case "audio":
    case "file":
      normalized.attachments = [{
        kind,
        id,
        url: textAt(message, ["contentProvider", "originalContentUrl"]),
        name: textAt(message, ["fileName"]),
        size: u64At(message, ["fileSize"]),
        duration_ms: u64At(message, ["duration"]),
      }];
      break;
    case "location": {
      const title = textAt(message, ["title"]);
      const address = textAt(message, ["address"]);
      normalized.text = title ?? address;
      const latitude = f64At(message, ["latitude"]);
      const longitude = f64At(message, ["longitude"]);
      if (latitude !== undefined && longitude !== undefined) normalized.location = { latitude, longitude, title, address };
      break;
    }
    case "sticker": {
      const stickerId = textAt(message, ["stickerId"]);
      if (stickerId !== undefined) normalized.sticker = { package_id: textAt(message, ["packageId"]), sticker_id: stickerId };
      break;
    }
  }
  return normalized;
}

async function lineEvent(raw, verification, nowMs) {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new Refused(400, "malformed_body");
  const lineType = textAt(raw, ["type"]) ?? "";
  const source = raw.source;
  const kind = CONVERSATION_KINDS[textAt(source, ["type"])];
  const conversationId = kind && textAt(source, [kind[1]]);
  const userId = textAt(raw, ["source", "userId"]);
  let message;
  if (lineType === "message" || lineType === "messageEdited") {
    if (raw.message !== undefined) message = lineMessage(raw.message);
  } else if (lineType === "unsend") {
    message = { id: textAt(raw, ["unsend", "messageId"]), kind: "unsent" };
  }
  let postback;
  const postbackData = raw.postback !== undefined ? textAt(raw.postback, ["data"]) : undefined;
  if (postbackData !== undefined) postback = { data: postbackData, params: raw.postback.params };
  const container = lineType === "memberJoined" ? "joined" : lineType === "memberLeft" ? "left" : null;
  const memberList = container ? at(raw, [container, "members"]) : undefined;
  const members = Array.isArray(memberList)
    ? memberList.map((m) => textAt(m, ["userId"])).filter((id) => id !== undefined).map((id) => ({ id }))
    : [];
  const replyToken = textAt(raw, ["replyToken"]);
  let dedupeKey = textAt(raw, ["webhookEventId"]);
  if (dedupeKey === undefined) {
    const digest = await crypto.subtle.digest("SHA-256", encoder.encode(canonical(raw)));
    dedupeKey = `sha256:${bytesToHex(digest)}`;
  }
  return {
    dedupeKey,
    type: LINE_TYPES[lineType] ?? "unrecognized",
    timeMs: u64At(raw, ["timestamp"]) ?? nowMs,
    data: {
      provider_type: lineType,
      conversation: conversationId !== undefined && kind ? { id: conversationId, kind: kind[0] } : undefined,
      sender: userId !== undefined ? { id: userId } : undefined,
      message,
      postback,
      reply: replyToken !== undefined ? { token: replyToken } : undefined,
      members,
      verification,
      raw,
    },
  };
}

async function line(request, env, ctx, account) {
  if (request.method !== "POST") throw new Refused(405, "method_not_allowed");
  const secrets = values(env[bindingName("line", account, "CHANNEL_SECRET")]);
  const limit = bodyLimit(env, "line", account, undefined);
  const body = await readBody(request, limit);
  const header = request.headers.get("x-line-signature");
  if (header === null) throw new Refused(401, "missing_signature");
  let signature;
  try {
    signature = base64ToBytes(header);
  } catch {
    throw new Refused(401, "invalid_signature");
  }
  let keyIndex = -1;
  for (let i = 0; i < secrets.length && keyIndex < 0; i++) {
    const key = await hmacKey("line", secrets[i], encoder.encode(secrets[i]));
    if (await crypto.subtle.verify("HMAC", key, signature, body)) keyIndex = i;
  }
  if (keyIndex < 0) throw new Refused(401, "invalid_signature");
  let payload;
  try {
    payload = JSON.parse(utf8.decode(body));
  } catch {
    throw new Refused(400, "malformed_body");
  }
  if (payload === null || typeof payload !== "object" || !Array.isArray(payload.events)) throw new Refused(400, "malformed_body");
  const verification = { scheme: "line-hmac-sha256", key_index: keyIndex };
  const nowMs = Date.now();
  const parts = await Promise.all(payload.events.map((raw) => lineEvent(raw, verification, nowMs)));
  const target = parts.length > 0 ? backend(env, "line", account) : null;
  return accept(ctx, target, "line", account, parts);
}

// ----------------------------------------------------------------------------------------- WeChat (safe mode)

/** A small XML reader for WeChat's flat messages: elements, CDATA, the five entities and numeric references;
 * repeated elements become arrays, elements with children objects, leaves strings. No DOCTYPE, no attributes
 * kept. Returns the root element's fields. */
function parseXml(xml) {
  const bad = () => new Refused(400, "malformed_body");
  const entities = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
  const unescape = (s) =>
    s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (m, ref) => {
      if (ref === undefined) throw bad();
      if (ref[0] === "#") return String.fromCodePoint(ref[1] === "x" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10));
      if (!(ref in entities)) throw bad();
      return entities[ref];
    });
  const stack = [];
  let root = null;
  let i = 0;
  const put = (fields, name, value) => {
    if (!(name in fields)) fields[name] = value;
    else if (Array.isArray(fields[name])) fields[name].push(value);
    else fields[name] = [fields[name], value];
  };
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const chunk = xml.slice(i, lt < 0 ? xml.length : lt);
    if (chunk) {
      if (stack.length) stack[stack.length - 1].text += unescape(chunk);
      else if (chunk.trim()) throw bad();
    }
    if (lt < 0) break;
    if (xml.startsWith("<![CDATA[", lt)) {
      const end = xml.indexOf("]]>", lt + 9);
      if (end < 0 || !stack.length) throw bad();
      stack[stack.length - 1].text += xml.slice(lt + 9, end);
      i = end + 3;
    } else if (xml.startsWith("<!--", lt)) {
      const end = xml.indexOf("-->", lt + 4);
      if (end < 0) throw bad();
      i = end + 3;
    } else if (xml.startsWith("<?", lt)) {
      const end = xml.indexOf("?>", lt + 2);
      if (end < 0) throw bad();
      i = end + 2;
    } else if (xml.startsWith("<!", lt)) {
      throw bad();
    } else {
      const gt = xml.indexOf(">", lt);
      if (gt < 0) throw bad();
      const tag = xml.slice(lt + 1, gt);
      i = gt + 1;
      if (tag[0] === "/") {
        const frame = stack.pop();
        if (!frame || frame.name !== tag.slice(1).trim()) throw bad();
        const value = frame.hasChildren ? frame.fields : frame.text;
        if (stack.length) {
          stack[stack.length - 1].hasChildren = true;
          put(stack[stack.length - 1].fields, frame.name, value);
        } else {
          root = frame.fields;
        }
        continue;
      }
      const empty = tag.endsWith("/");
      const name = (empty ? tag.slice(0, -1) : tag).trim().split(/\s/, 1)[0];
      if (!name || (root !== null && !stack.length)) throw bad();
      if (empty) {
        if (stack.length) {
          stack[stack.length - 1].hasChildren = true;
          put(stack[stack.length - 1].fields, name, "");
        } else {
          root = {};
        }
      } else {
        if (stack.length >= 32) throw bad();
        stack.push({ name, fields: {}, text: "", hasChildren: false });
      }
    }
  }
  if (root === null || stack.length) throw bad();
  return root;
}

const WECHAT_MESSAGES = new Set(["text", "image", "voice", "video", "shortvideo", "location", "link", "file"]);
const WECHAT_EVENTS = {
  subscribe: "follow", unsubscribe: "unfollow", scan: "qr.scanned", location: "location.reported", click: "menu.clicked",
  view: "menu.viewed", view_miniprogram: "menu.viewed", scancode_push: "menu.scanned", scancode_waitmsg: "menu.scanned",
  pic_sysphoto: "menu.photo", pic_photo_or_album: "menu.photo", pic_weixin: "menu.photo",
  location_select: "menu.location_selected", enter_agent: "agent.entered", change_contact: "contact.changed",
  change_external_contact: "external_contact.changed", template_card_event: "postback",
};
const POSTBACK_EVENTS = new Set(["scan", "click", "view", "view_miniprogram", "scancode_push", "scancode_waitmsg", "pic_sysphoto",
  "pic_photo_or_album", "pic_weixin", "location_select", "template_card_event"]);
const EVENT_KEY_FIELDS = ["EventKey", "MsgID", "ChangeType", "UserID", "ExternalUserID", "TaskId"];

const wxText = (raw, key) => {
  const v = textAt(raw, [key]);
  return v === "" ? undefined : v;
};
function wxNumber(raw, key) {
  const v = wxText(raw, key)?.trim();
  return v && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) ? Number(v) : undefined;
}
function wxLocation(raw, latitudeKey, longitudeKey, address) {
  const latitude = wxNumber(raw, latitudeKey);
  const longitude = wxNumber(raw, longitudeKey);
  return latitude === undefined || longitude === undefined ? undefined : { latitude, longitude, title: undefined, address };
}

function wxMessage(msgType, raw) {
  const message = { id: wxText(raw, "MsgId"), kind: msgType, text: undefined, attachments: undefined, location: undefined };
  const attachment = (kind, idKey, extra = {}) => ({ kind, id: wxText(raw, idKey), ...extra });
  switch (msgType) {
    case "text":
      message.text = textAt(raw, ["Content"]);
      break;
    case "image":
      message.attachments = [{ kind: "image", id: wxText(raw, "MediaId"), url: wxText(raw, "PicUrl") }];
      break;
    case "voice":
      message.kind = "audio";
      message.text = wxText(raw, "Recognition");
      message.attachments = [attachment("audio", "MediaId")];
      break;
    case "video":
    case "shortvideo":
      message.kind = "video";
      message.attachments = [attachment("video", "MediaId")];
      break;
    case "location":
      message.text = wxText(raw, "Label");
      message.location = wxLocation(raw, "Location_X", "Location_Y", wxText(raw, "Label"));
      break;
    case "link":
      message.text = wxText(raw, "Title");
      message.attachments = [{ kind: "link", url: wxText(raw, "Url"), name: wxText(raw, "Title") }];
      break;
    case "file": {
      const size = wxText(raw, "FileTotalLen");
      message.attachments = [{ kind: "file", id: wxText(raw, "FileKey"), name: wxText(raw, "Title"), size: size && /^\+?\d+$/.test(size) ? Number(size) : undefined }];
      break;
    }
  }
  return message;
}

/** Keys sorted, as Sekisho renders decrypted XML into data.raw. */
function sortedFields(value) {
  if (Array.isArray(value)) return value.map(sortedFields);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortedFields(value[key]);
    return out;
  }
  return value;
}

function wechatEvent(fields, verification, nowMs) {
  const raw = sortedFields(fields);
  const msgType = wxText(raw, "MsgType") ?? "";
  const event = wxText(raw, "Event");
  let providerType;
  let type;
  if (msgType === "event") {
    providerType = event ?? msgType;
    type = event ? WECHAT_EVENTS[event.toLowerCase()] ?? "unrecognized" : "unrecognized";
  } else {
    providerType = msgType;
    type = WECHAT_MESSAGES.has(msgType) ? "message.received" : "unrecognized";
  }
  const from = wxText(raw, "FromUserName");
  const createTime = wxText(raw, "CreateTime");
  const msgId = wxText(raw, "MsgId");
  const dedupeKey = msgId !== undefined
    ? JSON.stringify(["MsgId", from ?? "", msgId])
    : JSON.stringify(["event", from ?? "", createTime ?? "", providerType,
      ...EVENT_KEY_FIELDS.filter((f) => wxText(raw, f) !== undefined).map((f) => [f, wxText(raw, f)])]);
  let message;
  if (msgType !== "event") message = wxMessage(msgType, raw);
  else if (providerType.toLowerCase() === "location") {
    const location = wxLocation(raw, "Latitude", "Longitude", undefined);
    if (location) message = { kind: "location", location };
  }
  let postback;
  const eventKey = wxText(raw, "EventKey");
  const lower = providerType.toLowerCase();
  if (eventKey !== undefined && (lower === "subscribe" || POSTBACK_EVENTS.has(lower))) {
    const ticket = wxText(raw, "Ticket");
    postback = {
      data: lower === "subscribe" && eventKey.startsWith("qrscene_") ? eventKey.slice(8) : eventKey,
      params: ticket !== undefined ? { ticket } : undefined,
    };
  }
  const userId = wxText(raw, "UserID");
  return {
    dedupeKey,
    type,
    timeMs: createTime && /^\+?\d+$/.test(createTime) ? Number(createTime) * 1000 : nowMs,
    data: {
      provider_type: providerType,
      conversation: from !== undefined ? { id: from, kind: "direct" } : undefined,
      sender: from !== undefined ? { id: from } : undefined,
      message,
      postback,
      members: userId !== undefined && type === "contact.changed" ? [{ id: userId }] : [],
      verification,
      raw,
    },
  };
}

async function sha1Hex(parts) {
  return bytesToHex(await crypto.subtle.digest("SHA-1", encoder.encode([...parts].sort().join(""))));
}

/** The index of the first token whose signature over the sorted parts equals `presented` (hex). */
async function matchingToken(tokens, parts, presented) {
  const wanted = encoder.encode((presented ?? "").toLowerCase());
  for (let i = 0; i < tokens.length; i++) {
    if (equalConstantTime(encoder.encode(await sha1Hex([tokens[i], ...parts])), wanted)) return i;
  }
  return -1;
}

const PAD_BLOCK_16 = new Uint8Array(16).fill(16);

/** AES-256-CBC with WeChat's 32-byte PKCS#7. WebCrypto only knows 16-byte PKCS#7, so one extra block is
 * appended that decrypts to a full 16-byte pad (E(C_n ⊕ 0x10…) — computed with WebCrypto itself) and the
 * 32-byte padding is removed by hand. Frame: random(16) ‖ length(4, BE) ‖ message ‖ AppID. */
async function wechatDecrypt(aesKey, encrypt, appId) {
  let cipher;
  try {
    cipher = base64ToBytes(encrypt.trim());
  } catch {
    throw new Refused(400, "ciphertext_not_base64");
  }
  if (cipher.length === 0 || cipher.length % 16 !== 0) throw new Refused(400, "bad_ciphertext_length");
  const { key, iv } = await aesKey;
  const last = cipher.subarray(cipher.length - 16);
  const extra = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-CBC", iv: last }, key, PAD_BLOCK_16)).subarray(0, 16);
  const extended = new Uint8Array(cipher.length + 16);
  extended.set(cipher);
  extended.set(extra, cipher.length);
  const plain = new Uint8Array(await crypto.subtle.decrypt({ name: "AES-CBC", iv }, key, extended));
  const pad = plain[plain.length - 1];
  if (pad < 1 || pad > 32 || pad > plain.length) throw new Refused(400, "bad_padding");
  for (let i = plain.length - pad; i < plain.length; i++) if (plain[i] !== pad) throw new Refused(400, "bad_padding");
  const content = plain.subarray(0, plain.length - pad);
  if (content.length < 20) throw new Refused(400, "length_out_of_range");
  const length = new DataView(content.buffer, content.byteOffset + 16, 4).getUint32(0);
  if (20 + length > content.length) throw new Refused(400, "length_out_of_range");
  if (!equalConstantTime(content.subarray(20 + length), encoder.encode(appId))) throw new Refused(400, "receive_id_mismatch");
  try {
    return utf8.decode(content.subarray(20, 20 + length));
  } catch {
    throw new Refused(400, "invalid_utf8");
  }
}

function wechatKeys(env, account) {
  return values(env[bindingName("wechat", account, "ENCODING_AES_KEY")]).map((value) => {
    if (value.length !== 43) throw new Refused(500, "misconfigured");
    return cachedKey("wechat-aes", value, async () => {
      let raw;
      try {
        raw = base64ToBytes(`${value}=`);
      } catch {
        throw new Refused(500, "misconfigured");
      }
      if (raw.length !== 32) throw new Refused(500, "misconfigured");
      const key = await crypto.subtle.importKey("raw", raw, { name: "AES-CBC" }, false, ["encrypt", "decrypt"]);
      return { key, iv: raw.slice(0, 16) };
    });
  });
}

function checkTimestamp(timestamp, skewS) {
  if (!/^\+?\d+$/.test(timestamp)) throw new Refused(401, "stale_timestamp");
  if (Math.abs(Number(timestamp) * 1000 - Date.now()) > skewS * 1000) throw new Refused(401, "stale_timestamp");
}

async function wechat(request, env, ctx, account) {
  const tokens = values(env[bindingName("wechat", account, "TOKEN")]);
  const keys = wechatKeys(env, account);
  if (keys.length === 0) throw new Refused(500, "misconfigured"); // this reference implements safe mode only
  const skewRaw = env[bindingName("wechat", account, "TIMESTAMP_SKEW_S")];
  const skewS = skewRaw === undefined ? 300 : Number(skewRaw);
  if (!Number.isSafeInteger(skewS) || skewS < 0) throw new Refused(500, "misconfigured");
  const query = new URL(request.url).searchParams;
  const param = (name) => {
    const value = query.get(name);
    if (value === null) throw new Refused(400, "missing_parameter");
    return value;
  };
  if (request.method === "GET") {
    if (!query.has("signature")) throw new Refused(401, "missing_signature");
    const echostr = param("echostr");
    const timestamp = param("timestamp");
    if ((await matchingToken(tokens, [timestamp, param("nonce")], query.get("signature"))) < 0) throw new Refused(401, "invalid_signature");
    checkTimestamp(timestamp, skewS);
    return text(echostr);
  }
  if (request.method !== "POST") throw new Refused(405, "method_not_allowed");
  const body = await readBody(request, bodyLimit(env, "wechat", account, WECHAT_MAX_BODY));
  if (!query.has("msg_signature")) {
    if ((query.get("encrypt_type") ?? "").toLowerCase() !== "aes") throw new Refused(401, "encryption_required");
    throw new Refused(401, "missing_signature");
  }
  const timestamp = param("timestamp");
  const nonce = param("nonce");
  const appId = env[bindingName("wechat", account, "APP_ID")];
  if (!appId) throw new Refused(500, "misconfigured");
  let outer;
  try {
    outer = parseXml(utf8.decode(body));
  } catch (error) {
    if (error instanceof Refused) throw error;
    throw new Refused(400, "malformed_body");
  }
  const encrypt = outer.Encrypt;
  if (typeof encrypt !== "string" || encrypt === "") throw new Refused(400, typeof encrypt === "object" ? "malformed_body" : "missing_parameter");
  const tokenIndex = await matchingToken(tokens, [timestamp, nonce, encrypt], query.get("msg_signature"));
  if (tokenIndex < 0) throw new Refused(401, "invalid_signature");
  checkTimestamp(timestamp, skewS);
  let decrypted;
  let keyIndex = -1;
  let firstError;
  for (let i = 0; i < keys.length && keyIndex < 0; i++) {
    try {
      decrypted = await wechatDecrypt(keys[i], encrypt, appId);
      keyIndex = i;
    } catch (error) {
      if (!(error instanceof Refused) && !(error instanceof DOMException)) throw error;
      firstError ??= error instanceof Refused ? error : new Refused(400, "bad_padding");
    }
  }
  if (keyIndex < 0) throw firstError;
  const fields = parseXml(decrypted);
  const verification = { scheme: "wechat-aes", key_index: Math.max(tokenIndex, keyIndex) };
  const parts = [wechatEvent(fields, verification, Date.now())];
  return accept(ctx, backend(env, "wechat", account), "wechat", account, parts, text("success"));
}

// -------------------------------------------------------------------------------------------------- routes

export default {
  async fetch(request, env, ctx) {
    const [channel, account, ...rest] = new URL(request.url).pathname.slice(1).split("/");
    if (channel === "healthz" && account === undefined) return text("ok");
    const handler = channel === "line" ? line : channel === "wechat" ? wechat : null;
    if (!handler || !ACCOUNT.test(account ?? "") || rest.length > 0) return json(404, { error: "not_found" });
    const field = channel === "line" ? "CHANNEL_SECRET" : "TOKEN";
    if (env[bindingName(channel, account, field)] === undefined) return json(404, { error: "not_found" });
    try {
      return await handler(request, env, ctx, account);
    } catch (error) {
      return refused(error, channel, account);
    }
  },
};
