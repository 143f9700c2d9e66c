// Sending through Twilio, Discord and the WhatsApp Cloud API, through the built Worker in workerd: the backend's
// signed send → 202 → the local mock of the provider's API receives exactly one request (method, path, auth,
// body as the providers document them) → `message.sent` at the backend with the provider's message id; a
// permanent refusal → `message.send_failed` with the provider's own error code. Discord's 429 is retried after
// the `retry_after` its body asks for.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { startBackend, startGateway, durableOptions, until, validateEvent, SIGNING_SECRET } from "./harness.mjs";

const BASE = "https://gateway.test";
const signer = new Webhook(SIGNING_SECRET);

const TWILIO_SID = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN = "0123456789abcdef0123456789abcdef";
const DISCORD_TOKEN = "MTA0NjM1MDUxOTEzMzA2MTE5Mw.Gx9aBc.e2e-bot-token-0123456789abcdef";
const DISCORD_CHANNEL = "1046350519133061193";
const WA_TOKEN = "EAAJB3e2eAccessToken0123456789";
const WA_PHONE_NUMBER_ID = "106540352242922";

let backend;
let provider;
let gateway;

const rateLimitedOnce = new Set();
/** One mock for the three APIs, told apart by path. */
function providerAnswer(entry) {
  const json = (status, body, headers = {}) => ({ status, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  if (entry.path === `/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`) {
    const form = new URLSearchParams(entry.body);
    if (form.get("To") === "+15005550001") {
      return json(400, { code: 21211, message: "Invalid 'To' Phone Number: +15005550001", more_info: "https://www.twilio.com/docs/errors/21211", status: 400 });
    }
    return json(201, { sid: `SM${String(entry.at).padStart(32, "0")}`, status: "queued", to: form.get("To"), from: form.get("From"), body: form.get("Body") });
  }
  if (entry.path === `/api/v10/channels/${DISCORD_CHANNEL}/messages`) {
    const content = entry.event?.content ?? "";
    if (content === "rate" && !rateLimitedOnce.has(content)) {
      rateLimitedOnce.add(content);
      // The body's wait (2.5 s, rounded up to 3) is longer than the header's whole seconds: the body wins.
      return json(429, { message: "You are being rate limited.", retry_after: 2.5, global: false }, { "retry-after": "1", "x-ratelimit-reset-after": "2.5" });
    }
    if (content === "forbidden") return json(403, { message: "Missing Permissions", code: 50013 });
    return json(200, { id: `10463506114326${String(entry.at).slice(-5)}`, channel_id: DISCORD_CHANNEL, content, type: 0 });
  }
  if (entry.path === `/v24.0/${WA_PHONE_NUMBER_ID}/messages`) {
    if (entry.event?.to === "16505550000") {
      return json(400, {
        error: {
          message: "(#131047) Re-engagement message",
          type: "OAuthException",
          code: 131047,
          error_data: { messaging_product: "whatsapp", details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
          fbtrace_id: "Az8or2yhqkZfEZ-_4Qn_Bam",
        },
      });
    }
    return json(200, { messaging_product: "whatsapp", contacts: [{ input: entry.event?.to, wa_id: entry.event?.to }], messages: [{ id: `wamid.e2e${entry.at}` }] });
  }
  return 404;
}

before(async () => {
  backend = await startBackend();
  provider = await startBackend({ respond: providerAnswer });
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    DELIVERY_BASE_DELAY_S: "1",
    TWILIO_ACME_AUTH_TOKEN: TWILIO_TOKEN,
    TWILIO_ACME_ACCOUNT_SID: TWILIO_SID,
    TWILIO_ACME_FROM: "+15017122661",
    TWILIO_API_BASE: provider.url,
    DISCORD_ACME_PUBLIC_KEY: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    DISCORD_ACME_BOT_TOKEN: DISCORD_TOKEN,
    DISCORD_API_BASE: provider.url,
    WHATSAPP_ACME_APP_SECRET: "0123456789abcdef0123456789abcdef",
    WHATSAPP_ACME_PHONE_NUMBER_ID: WA_PHONE_NUMBER_ID,
    WHATSAPP_ACME_ACCESS_TOKEN: WA_TOKEN,
    META_API_BASE: provider.url,
  }, durableOptions());
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  await provider?.close();
});

async function send(channel, body) {
  const id = `msg_${Math.random().toString(36).slice(2)}`;
  const at = new Date();
  const payload = JSON.stringify(body);
  const res = await gateway.dispatchFetch(`${BASE}/send/${channel}/acme`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": signer.sign(id, at, payload),
    },
    body: payload,
  });
  assert.equal(res.status, 202, await res.clone().text());
  return (await res.json()).send_id;
}

const outcome = async (sendId) => {
  await until(() => backend.received.some((r) => r.event?.data?.send_id === sendId), 20000);
  const found = backend.received.filter((r) => r.event?.data?.send_id === sendId);
  assert.equal(found.length, 1);
  const [delivery] = found;
  assert.equal(delivery.verified, true, delivery.verifyError);
  assert.ok(validateEvent(delivery.event), JSON.stringify(validateEvent.errors));
  return delivery;
};
const calls = (path, match) => provider.received.filter((r) => r.path === path && match(r));

test("Twilio: one form-encoded Messages API call with Basic auth → message.sent with the message sid", async () => {
  const path = `/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`;
  const sendId = await send("twilio", { to: { conversation: "whatsapp:+819012345678" }, message: { text: "ご予約を承りました" } });
  const sent = await outcome(sendId);
  const made = calls(path, (r) => new URLSearchParams(r.body).get("Body") === "ご予約を承りました");
  assert.equal(made.length, 1);
  const [call] = made;
  assert.equal(call.method, "POST");
  assert.equal(call.headers.authorization, `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString("base64")}`);
  assert.equal(call.headers["content-type"], "application/x-www-form-urlencoded");
  assert.deepEqual([...new URLSearchParams(call.body)], [["To", "whatsapp:+819012345678"], ["Body", "ご予約を承りました"], ["From", "whatsapp:+15017122661"]]);
  assert.equal(sent.event.type, "message.sent");
  assert.equal(sent.event.source, "/twilio/acme");
  assert.equal(sent.event.data.message.id, `SM${String(call.at).padStart(32, "0")}`);
  assert.ok(!sent.body.includes(TWILIO_TOKEN));

  const failedId = await send("twilio", { to: { user: "+15005550001" }, message: { text: "never delivered" } });
  const failed = await outcome(failedId);
  assert.equal(failed.event.type, "message.send_failed");
  assert.deepEqual(failed.event.data.error, { code: "21211", message: "Invalid 'To' Phone Number: +15005550001" });
  assert.equal(calls(path, (r) => new URLSearchParams(r.body).get("To") === "+15005550001").length, 1);
});

test("Discord: one Create Message call with the bot token, mentioning nobody → message.sent; 50013 → send_failed", async () => {
  const path = `/api/v10/channels/${DISCORD_CHANNEL}/messages`;
  const sendId = await send("discord", { to: { conversation: DISCORD_CHANNEL }, message: { text: "@everyone 対応しました" } });
  const sent = await outcome(sendId);
  const made = calls(path, (r) => r.event?.content === "@everyone 対応しました");
  assert.equal(made.length, 1);
  const [call] = made;
  assert.equal(call.method, "POST");
  assert.equal(call.headers.authorization, `Bot ${DISCORD_TOKEN}`);
  assert.deepEqual(call.event, { content: "@everyone 対応しました", allowed_mentions: { parse: [] }, nonce: sendId.slice(4, 29), enforce_nonce: true });
  assert.equal(sent.event.type, "message.sent");
  assert.equal(sent.event.data.message.id, `10463506114326${String(call.at).slice(-5)}`);
  assert.ok(!sent.body.includes(DISCORD_TOKEN));

  const failed = await outcome(await send("discord", { to: { conversation: DISCORD_CHANNEL }, message: { text: "forbidden" } }));
  assert.equal(failed.event.type, "message.send_failed");
  assert.deepEqual(failed.event.data.error, { code: "50013", message: "Missing Permissions" });
  assert.equal(calls(path, (r) => r.event?.content === "forbidden").length, 1);

  const user = await gateway.dispatchFetch(`${BASE}/send/discord/acme`, { method: "POST", body: "{}" });
  assert.equal(user.status, 401);
});

test("Discord: a 429 is retried after the body's retry_after: one message", async () => {
  const path = `/api/v10/channels/${DISCORD_CHANNEL}/messages`;
  const sent = await outcome(await send("discord", { to: { conversation: DISCORD_CHANNEL }, message: { text: "rate" } }));
  const attempts = calls(path, (r) => r.event?.content === "rate");
  assert.equal(attempts.length, 2);
  assert.equal(attempts[0].answer.status, 429);
  assert.equal(attempts[1].answer.status, 200);
  assert.ok(attempts[1].at - attempts[0].at >= 2500, `retried after ${attempts[1].at - attempts[0].at} ms`);
  assert.equal(attempts[0].event.nonce, attempts[1].event.nonce);
  assert.equal(sent.event.type, "message.sent");
});

test("WhatsApp Cloud API: one text message with the bearer token → message.sent; 131047 → send_failed", async () => {
  const path = `/v24.0/${WA_PHONE_NUMBER_ID}/messages`;
  const sendId = await send("whatsapp", { to: { conversation: "16505551234" }, message: { text: "Your order https://example.com/o/1 has shipped" } });
  const sent = await outcome(sendId);
  const made = calls(path, (r) => r.event?.to === "16505551234");
  assert.equal(made.length, 1);
  const [call] = made;
  assert.equal(call.method, "POST");
  assert.equal(call.headers.authorization, `Bearer ${WA_TOKEN}`);
  assert.deepEqual(call.event, {
    messaging_product: "whatsapp",
    recipient_type: "individual",
    to: "16505551234",
    type: "text",
    text: { preview_url: false, body: "Your order https://example.com/o/1 has shipped" },
  });
  assert.equal(sent.event.type, "message.sent");
  assert.equal(sent.event.data.message.id, `wamid.e2e${call.at}`);
  assert.ok(!sent.body.includes(WA_TOKEN));

  const failed = await outcome(await send("whatsapp", { to: { user: "16505550000" }, message: { text: "too late" } }));
  assert.equal(failed.event.type, "message.send_failed");
  assert.equal(failed.event.data.error.code, "131047");
  assert.match(failed.event.data.error.message, /^\(#131047\) Re-engagement message: Message failed to send because more than 24 hours/);
  assert.equal(calls(path, (r) => r.event?.to === "16505550000").length, 1);
});
