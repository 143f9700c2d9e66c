// A bounded fault-injection run on 127.0.0.1: signed requests over LINE, Telegram and Chatwork (10% of them
// duplicates, i.e. provider retries; a 503 claim_in_progress is retried like a provider would) through the built Worker in workerd on the durable path, while the
// backends misbehave per attempt — 200, 500, 302 (to a trap server that must never be asked), or never
// answering — and one account's backend port refuses connections for the whole run. Settings: 4 attempts,
// 1 s base delay, 2 s max delay, 2 s attempt timeout. When the run is quiet, every accepted event must be
// exactly one of: delivered (a backend answered 2xx) or in the dead-letter store (paged through the admin API).
//   node tests/e2e/faults.mjs [requests=600] [concurrency=16]
import { createHash, createHmac } from "node:crypto";
import {
  startBackend, startGateway, durableOptions, lineBody, lineSign, freePort, allDeadLetters, SIGNING_SECRET,
} from "./harness.mjs";

const LINE_SECRET = "faults-line-secret";
const TELEGRAM_TOKEN = "faults_TELEGRAM-token-0123456789abcdef";
const CHATWORK_TOKEN = Buffer.from("faults-chatwork-token-32bytes-xx").toString("base64");
const ADMIN_TOKEN = "faults-admin-token-0123456789abcdef-e2e";
const SETTINGS = { DELIVERY_MAX_ATTEMPTS: "4", DELIVERY_BASE_DELAY_S: "1", DELIVERY_MAX_DELAY_S: "2", DELIVERY_TIMEOUT_S: "2" };

const keyOf = (text) => /fault:(\d+):/.exec(text ?? "")?.[1];

/** Event n's request: LINE (flapping), Telegram (flapping), Chatwork (flapping) or LINE (refused backend). */
function request(n) {
  const text = `fault:${n}:`;
  switch (n % 4) {
    case 0:
    case 3: {
      const account = n % 4 === 0 ? "flapa" : "refused";
      const body = lineBody(`01HFAULT${String(n).padStart(18, "0")}`, text);
      return { path: `/line/${account}`, headers: { "x-line-signature": lineSign(LINE_SECRET, body) }, body };
    }
    case 1: {
      const body = JSON.stringify({ update_id: 700000 + n, message: { message_id: n, date: 1700000000, chat: { id: 43, type: "private" }, from: { id: 43, is_bot: false, first_name: "F" }, text } });
      return { path: "/telegram/flapb", headers: { "x-telegram-bot-api-secret-token": TELEGRAM_TOKEN }, body };
    }
    default: {
      const body = JSON.stringify({ webhook_setting_id: "78", webhook_event_type: "message_created", webhook_event_time: 1700000000, webhook_event: { message_id: String(6000000 + n), room_id: 10, account_id: 8, body: text, send_time: 1700000000, update_time: 0 } });
      const signature = createHmac("sha256", Buffer.from(CHATWORK_TOKEN, "base64")).update(body).digest("base64");
      return { path: "/chatwork/flapc", headers: { "x-chatworkwebhooksignature": signature }, body };
    }
  }
}

/** The answer to attempt k of an event: deterministic per (webhook-id, k). 40% 200, 25% 500, 20% 302, 15% hang. */
function flap(id, k, trapUrl) {
  const h = createHash("sha256").update(`${id}:${k}`).digest().readUInt32BE(0) % 100;
  if (h < 40) return 200;
  if (h < 65) return 500;
  if (h < 85) return { status: 302, headers: { location: `${trapUrl}/moved/${id}` } };
  return "hang";
}

export async function runFaults({ requests = 600, concurrency = 16, settleMs, quietMs = 20000, log = console.log } = {}) {
  // The drain is slow by design (hangs hold an attempt for 2 s): allow 0.5 s per request, and stop early once
  // everything is accounted for, or once nothing has happened for `quietMs` (then what is missing is lost).
  settleMs ??= 60000 + requests * 500;
  const trap = await startBackend({ respond: () => 200 });
  const attemptsOf = new Map();
  const backend = await startBackend({
    respond: (entry) => {
      const id = entry.headers["webhook-id"];
      const k = (attemptsOf.get(id) ?? 0) + 1;
      attemptsOf.set(id, k);
      return flap(id, k, trap.url);
    },
  });
  const refusedPort = await freePort();
  const port = await freePort();
  const gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    LINE_REFUSED_BACKEND_URL: `http://127.0.0.1:${refusedPort}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_FLAPA_CHANNEL_SECRET: LINE_SECRET,
    LINE_REFUSED_CHANNEL_SECRET: LINE_SECRET,
    TELEGRAM_FLAPB_SECRET_TOKEN: TELEGRAM_TOKEN,
    CHATWORK_FLAPC_WEBHOOK_TOKEN: CHATWORK_TOKEN,
    ADMIN_TOKEN,
    ...SETTINGS,
  }, { ...durableOptions(), host: "127.0.0.1", port });
  const admin = async (path) => {
    const res = await fetch(`http://127.0.0.1:${port}/admin/${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await res.text();
    try {
      return { status: res.status, json: JSON.parse(text) };
    } catch {
      return { status: res.status, json: { unparsed: text } };
    }
  };
  try {
    const distinct = Math.round(requests * 0.9);
    const plan = Array.from({ length: requests }, (_, i) => (i < distinct ? i : (i * 7919) % distinct));
    for (let i = plan.length - 1; i > 0; i--) {
      const j = (i * 2654435761) % (i + 1);
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    const latencies = [];
    const statuses = new Map();
    let claimRetries = 0;
    const accepted = new Set(); // event keys whose request was answered 2xx at least once
    let next = 0;
    const started = performance.now();
    async function worker() {
      while (next < plan.length) {
        const n = plan[next++];
        const { path, headers, body } = request(n);
        const t0 = performance.now();
        let status;
        // A duplicate racing its original may get 503 claim_in_progress; like a provider, retry it shortly.
        for (let tries = 0; ; tries++) {
          let text = "";
          try {
            const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body, signal: AbortSignal.timeout(30000) });
            text = await res.text();
            status = res.status;
          } catch (e) {
            status = `error:${e.name}`;
          }
          if (status !== 503 || !text.includes("claim_in_progress") || tries === 5) break;
          claimRetries++;
          await new Promise((r) => setTimeout(r, 200));
        }
        latencies.push(performance.now() - t0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (typeof status === "number" && status >= 200 && status < 300) accepted.add(String(n));
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - started) / 1000;

    // What has become of each event: 2xx answers by the backend, and the dead-letter store.
    const acks = () => {
      const byKey = new Map();
      for (const d of backend.received) {
        const ok = typeof d.answer === "number" && d.answer >= 200 && d.answer < 300;
        if (!ok) continue;
        const key = keyOf(d.event?.data?.message?.text);
        byKey.set(key, (byKey.get(key) ?? 0) + 1);
      }
      return byKey;
    };
    let dead = new Map(); // key → letter
    let deadError = null;
    const readDead = async () => {
      try {
        const { letters } = await allDeadLetters(admin, { limit: 100 });
        dead = new Map();
        for (const letter of letters) dead.set(keyOf(JSON.stringify(letter)), letter);
        deadError = null;
      } catch (e) {
        deadError = String(e.message ?? e);
      }
    };
    const settleStart = performance.now();
    let lastChange = Date.now();
    let lastSignature = "";
    let stopped;
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      await readDead();
      const delivered = acks();
      const signature = `${backend.received.length}/${dead.size}/${trap.received.length}`;
      if (signature !== lastSignature) {
        lastSignature = signature;
        lastChange = Date.now();
      }
      const covered = [...accepted].every((k) => delivered.has(k) || dead.has(k));
      if (covered && Date.now() - lastChange >= 3000) {
        stopped = "accounted_for";
        break;
      }
      if (Date.now() - lastChange >= quietMs) {
        stopped = `quiet_${quietMs / 1000}s`;
        break;
      }
      if (performance.now() - settleStart > settleMs) {
        stopped = "deadline";
        break;
      }
    }
    const settleS = (performance.now() - settleStart) / 1000;
    await readDead();
    const delivered = acks();
    const deliveredKeys = new Set([...delivered.keys()].filter((k) => accepted.has(k)));
    const deadKeys = new Set([...dead.keys()].filter((k) => accepted.has(k)));
    const missing = [...accepted].filter((k) => !deliveredKeys.has(k) && !deadKeys.has(k));
    const both = [...deliveredKeys].filter((k) => deadKeys.has(k));
    const unexpected = [...new Set([...delivered.keys(), ...dead.keys()])].filter((k) => !accepted.has(k));
    // One webhook-id per event, wherever it shows up.
    const idsOf = new Map();
    const noteId = (key, id) => idsOf.set(key, new Set([...(idsOf.get(key) ?? []), id]));
    for (const d of backend.received) noteId(keyOf(d.event?.data?.message?.text), d.headers["webhook-id"]);
    for (const [key, letter] of dead) noteId(key, letter.webhook_id);
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
    const answers = { 200: 0, 500: 0, 302: 0, hang: 0 };
    for (const d of backend.received) answers[typeof d.answer === "object" ? d.answer.status : d.answer]++;
    const result = {
      requests, concurrency, distinct,
      statuses: Object.fromEntries(statuses),
      claim_in_progress_retries: claimRetries,
      accepted: accepted.size,
      delivered: deliveredKeys.size,
      dead: deadKeys.size,
      missing: missing.length,
      delivered_and_dead: both.length,
      unexpected: unexpected.length,
      acked_more_than_once: [...delivered.values()].filter((n) => n > 1).length,
      attempts: backend.received.length,
      answers,
      redirects_followed: trap.received.length,
      unverified: backend.received.filter((d) => !d.verified).length,
      ids_not_unique: [...idsOf.values()].filter((s) => s.size > 1).length,
      dead_by_status: Object.fromEntries([...dead.values()].reduce((m, l) => m.set(String(l.last_status ?? "none"), (m.get(String(l.last_status ?? "none")) ?? 0) + 1), new Map())),
      dead_letter_error: deadError,
      settle_s: Number(settleS.toFixed(1)),
      stopped,
      last_activity_s_ago: Number(((Date.now() - lastChange) / 1000).toFixed(1)),
      requests_per_s: Math.round(requests / elapsed),
      ack_p50_ms: Number(pct(50).toFixed(1)),
      ack_p99_ms: Number(pct(99).toFixed(1)),
      missing_sample: missing.slice(0, 10).map(Number),
      both_sample: both.slice(0, 10).map(Number),
    };
    log(`faults: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await gateway.dispose();
    await backend.close();
    await trap.close();
  }
}

export function faultsOk(r) {
  return r.missing === 0 && r.delivered_and_dead === 0 && r.unexpected === 0 && r.delivered + r.dead === r.accepted
    && r.accepted === r.distinct && r.redirects_followed === 0 && r.unverified === 0 && r.ids_not_unique === 0
    && r.dead_letter_error === null;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runFaults({ requests: Number(process.argv[2] ?? 600), concurrency: Number(process.argv[3] ?? 16) });
  process.exit(faultsOk(result) ? 0 : 1);
}
