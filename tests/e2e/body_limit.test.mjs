// Unbounded bodies: a chunked upload (no content-length) far over MAX_BODY_BYTES is refused as soon as the
// cap is passed, without workerd buffering it; unknown routes and accounts are refused without reading it.
// Talks to workerd's own socket on 127.0.0.1 (no Node-side buffering in between).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import {
  startBackend, startGateway, durableOptions, lineBody, lineSign, freePort, until, workerdRss, SIGNING_SECRET,
} from "./harness.mjs";

const SECRET = "body-limit-line-secret";
const MiB = 1024 * 1024;
const UPLOAD = 64 * MiB;
// The Worker may read up to the 1 MiB cap plus what the sockets buffer; far less than the upload.
const SENT_BEFORE_ANSWER_MAX = 16 * MiB;
let backend;
let gateway;
let port;

before(async () => {
  backend = await startBackend();
  port = await freePort();
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_BIG_CHANNEL_SECRET: SECRET,
    MAX_BODY_BYTES: String(MiB),
  }, { ...durableOptions(), host: "127.0.0.1", port });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

/**
 * POSTs `total` bytes with transfer-encoding chunked on a fresh connection, 64 KiB at a time, honouring
 * backpressure, and stops writing as soon as the response head arrives. At each of `pauses` (bytes written) it
 * stops and waits up to `pauseMs` for an answer before going on: a server that answers and closes without
 * reading the rest resets the connection, and a write into that reset would destroy the socket before the
 * answer is read (a client artefact, not the gateway's). Resolves with the status, the response body, how many
 * bytes had been written when the answer came, and the peak workerd RSS sampled meanwhile. Bounded by `ms`.
 */
function chunkedUploadOnce(path, { total, pauses, pauseMs, headers, ms }) {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 0x61); // "aaaa…": also a LINE body that would not verify
    let sent = 0;
    let answered = false;
    let peakRss = 0;
    const sample = () => {
      try {
        peakRss = Math.max(peakRss, workerdRss());
      } catch {
        // between processes
      }
    };
    const sampler = setInterval(sample, 50);
    const finish = (fn, value) => {
      clearInterval(sampler);
      clearTimeout(timer);
      fn(value);
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish(reject, new Error(`no answer within ${ms} ms (${sent} bytes written)`));
    }, ms);
    const req = httpRequest({
      host: "127.0.0.1", port, path, method: "POST", agent: false,
      headers: { "content-type": "application/json", "transfer-encoding": "chunked", ...headers },
    });
    let waitForAnswer = () => {};
    req.on("response", (res) => {
      answered = true;
      waitForAnswer();
      sample();
      const sentAtAnswer = sent;
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        req.destroy();
        finish(resolve, { status: res.statusCode, body: Buffer.concat(chunks).toString("utf8"), sentAtAnswer, sentTotal: sent, peakRss });
      });
      res.on("error", (e) => finish(reject, e));
    });
    req.on("error", (e) => {
      if (!answered) finish(reject, Object.assign(new Error(`upload failed after ${sent} bytes without an answer: ${e.message}`), { reset: true, sent }));
    });
    (async () => {
      const pending = [...pauses];
      while (sent < total && !answered && !req.destroyed) {
        if (pending.length && sent >= pending[0]) {
          pending.shift();
          await new Promise((r) => {
            const t = setTimeout(r, pauseMs);
            waitForAnswer = () => {
              clearTimeout(t);
              r();
            };
          });
          continue;
        }
        const ok = req.write(chunk);
        sent += chunk.length;
        if (!ok) {
          await new Promise((r) => {
            const done = () => {
              req.off("drain", done);
              clearInterval(poll);
              r();
            };
            req.on("drain", done);
            const poll = setInterval(() => (answered || req.destroyed) && done(), 20);
          });
        }
      }
      if (!answered && !req.destroyed) req.end();
    })();
  });
}

/** chunkedUploadOnce, again on a fresh connection (up to 3 tries) when the connection was reset before the
 * answer could be read; every reset is kept in `resets` (bytes written until then). */
async function chunkedUpload(path, { total = UPLOAD, pauses = [64 * 1024, 2 * MiB], pauseMs = 2000, headers = {}, ms = 90000 } = {}) {
  const resets = [];
  for (let i = 0; ; i++) {
    try {
      return { ...(await chunkedUploadOnce(path, { total, pauses, pauseMs, headers, ms })), resets };
    } catch (e) {
      if (!e.reset || i === 2) throw new Error(`${e.message}; earlier resets after ${resets.join(", ") || "none"} bytes`);
      resets.push(e.sent);
    }
  }
}

async function signedLine(id, text) {
  const body = lineBody(id, text);
  const res = await fetch(`http://127.0.0.1:${port}/line/big`, {
    method: "POST", headers: { "content-type": "application/json", "x-line-signature": lineSign(SECRET, body) }, body,
  });
  return { status: res.status, text: await res.text() };
}

test("64 MiB chunked upload (no content-length) to a known account: 413 payload_too_large once the 1 MiB cap is passed, workerd RSS grows < 100 MiB, the Worker still serves", async () => {
  // Warm up the isolate (Wasm instantiated) so the baseline is not the cold process.
  assert.equal((await signedLine("01HBODYWARMUP0000000000000", "warm up")).status, 200);
  const before = workerdRss();
  const result = await chunkedUpload("/line/big");
  const end = workerdRss();
  const growth = (end - before) / MiB;
  const diag = `sent ${(result.sentAtAnswer / MiB).toFixed(1)} MiB before the answer, RSS ${(before / MiB).toFixed(0)} → ${(end / MiB).toFixed(0)} MiB (peak ${(result.peakRss / MiB).toFixed(0)} MiB)${result.resets.length ? `, connection resets before an answer after ${result.resets} bytes` : ""}`;
  console.log(`chunked upload to /line/big: ${result.status} ${result.body}; ${diag}`);
  assert.equal(result.status, 413, diag);
  assert.deepEqual(JSON.parse(result.body), { error: "payload_too_large" });
  assert.ok(growth < 100, `workerd RSS grew by ${growth.toFixed(0)} MiB (limit 100 MiB); ${diag}`);
  assert.ok(result.sentAtAnswer <= SENT_BEFORE_ANSWER_MAX,
    `answered only after ${(result.sentAtAnswer / MiB).toFixed(1)} MiB of the ${UPLOAD / MiB} MiB upload (expected ≤ ${SENT_BEFORE_ANSWER_MAX / MiB} MiB: refused once the cap is passed); ${diag}`);

  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), "ok");
  const after = await signedLine("01HBODYAFTERUPLOAD00000000", "after the big upload");
  assert.equal(after.status, 200, after.text);
  await until(() => backend.received.some((d) => d.event?.data?.message?.text === "after the big upload"), 20000, "the event after the upload");
});

for (const [what, path] of [["an unknown route", "/nope/x"], ["an unknown account", "/line/nobody"]]) {
  test(`64 MiB chunked upload to ${what} (${path}): 404 not_found without the body being read`, async () => {
    const result = await chunkedUpload(path);
    const diag = `sent ${(result.sentAtAnswer / MiB).toFixed(1)} MiB before the answer${result.resets.length ? `, connection resets before an answer after ${result.resets} bytes` : ""}`;
    console.log(`chunked upload to ${path}: ${result.status} ${result.body}; ${diag}`);
    assert.equal(result.status, 404, diag);
    assert.deepEqual(JSON.parse(result.body), { error: "not_found" });
    assert.ok(result.sentAtAnswer <= SENT_BEFORE_ANSWER_MAX,
      `answered only after ${(result.sentAtAnswer / MiB).toFixed(1)} MiB of the ${UPLOAD / MiB} MiB upload: the body was read (expected ≤ ${SENT_BEFORE_ANSWER_MAX / MiB} MiB)`);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
  });
}
