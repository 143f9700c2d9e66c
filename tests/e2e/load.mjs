// A bounded load run on 127.0.0.1: signed requests across several channels (10% of them duplicates) through
// the built Worker in workerd with the durable path (queue + de-dup), C at a time. Checks zero 5xx and that the
// backend receives exactly the set of distinct events (a duplicate answered 503 claim_in_progress while its
// original is being accepted is retried, as a provider would); reports requests/s and acknowledgement latency.
//   node tests/e2e/load.mjs [requests=2000] [concurrency=32]
import { createHmac } from "node:crypto";
import { startBackend, startGateway, durableOptions, lineBody, lineSign, freePort, until, SIGNING_SECRET } from "./harness.mjs";

const LINE_SECRET = "load-line-secret";
const TELEGRAM_TOKEN = "load_TELEGRAM-token-0123456789abcdef";
const CHATWORK_TOKEN = Buffer.from("load-chatwork-token-bytes-32byte").toString("base64");

function request(n) {
  switch (n % 3) {
    case 0: {
      const body = lineBody(`01HLOAD${String(n).padStart(19, "0")}`, `line ${n}`);
      return { path: "/line/load", headers: { "x-line-signature": lineSign(LINE_SECRET, body) }, body };
    }
    case 1: {
      const body = JSON.stringify({ update_id: 900000 + n, message: { message_id: n, date: 1700000000, chat: { id: 42, type: "private" }, from: { id: 42, is_bot: false, first_name: "L" }, text: `telegram ${n}` } });
      return { path: "/telegram/load", headers: { "x-telegram-bot-api-secret-token": TELEGRAM_TOKEN }, body };
    }
    default: {
      const body = JSON.stringify({ webhook_setting_id: "77", webhook_event_type: "message_created", webhook_event_time: 1700000000, webhook_event: { message_id: String(5000000 + n), room_id: 9, account_id: 7, body: `chatwork ${n}`, send_time: 1700000000, update_time: 0 } });
      const signature = createHmac("sha256", Buffer.from(CHATWORK_TOKEN, "base64")).update(body).digest("base64");
      return { path: "/chatwork/load", headers: { "x-chatworkwebhooksignature": signature }, body };
    }
  }
}

export async function runLoad({ requests = 2000, concurrency = 32, log = console.log } = {}) {
  const backend = await startBackend();
  const port = await freePort();
  const gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_LOAD_CHANNEL_SECRET: LINE_SECRET,
    TELEGRAM_LOAD_SECRET_TOKEN: TELEGRAM_TOKEN,
    CHATWORK_LOAD_WEBHOOK_TOKEN: CHATWORK_TOKEN,
  }, { ...durableOptions(), host: "127.0.0.1", port });
  try {
    const distinct = Math.round(requests * 0.9);
    // Request i sends event i for i < distinct; the rest repeat earlier events (provider retries).
    const plan = Array.from({ length: requests }, (_, i) => (i < distinct ? i : (i * 7919) % distinct));
    for (let i = plan.length - 1; i > 0; i--) {
      const j = (i * 2654435761) % (i + 1);
      [plan[i], plan[j]] = [plan[j], plan[i]];
    }
    const latencies = [];
    const statuses = new Map();
    let claimRetries = 0;
    let next = 0;
    const started = performance.now();
    async function worker() {
      while (next < plan.length) {
        const { path, headers, body } = request(plan[next++]);
        // A duplicate racing its original may get 503 claim_in_progress; like a provider, retry it shortly.
        let res;
        for (let tries = 0; ; tries++) {
          const t0 = performance.now();
          res = await fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
          const text = await res.text();
          latencies.push(performance.now() - t0);
          if (res.status !== 503 || !text.includes("claim_in_progress") || tries === 5) break;
          claimRetries++;
          await new Promise((r) => setTimeout(r, 200));
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - started) / 1000;
    await until(() => new Set(backend.received.map((d) => d.headers["webhook-id"])).size >= distinct, 60000, `${distinct} distinct events`);
    await new Promise((r) => setTimeout(r, 1000));
    latencies.sort((a, b) => a - b);
    const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
    const ids = backend.received.map((d) => d.headers["webhook-id"]);
    const result = {
      requests, concurrency, distinct,
      statuses: Object.fromEntries(statuses),
      claim_in_progress_retries: claimRetries,
      server_errors: [...statuses].filter(([s]) => s >= 500).reduce((a, [, n]) => a + n, 0),
      received: ids.length,
      received_distinct: new Set(ids).size,
      unverified: backend.received.filter((d) => !d.verified).length,
      requests_per_s: Math.round(requests / elapsed),
      ack_p50_ms: Number(pct(50).toFixed(1)),
      ack_p99_ms: Number(pct(99).toFixed(1)),
    };
    log(`load: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await gateway.dispose();
    await backend.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runLoad({ requests: Number(process.argv[2] ?? 2000), concurrency: Number(process.argv[3] ?? 32) });
  const ok = result.server_errors === 0 && result.received_distinct === result.distinct && result.unverified === 0;
  process.exit(ok ? 0 : 1);
}
