// The built Worker under `wrangler dev` itself (not only Miniflare's API): the admin's local loop. A Japanese
// ISO-2022-JP message goes to wrangler dev's local e-mail endpoint and arrives decoded at the backend, through the
// queue and Durable Objects declared in wrangler.toml; an unknown recipient is rejected with its reason. A message
// with a PDF and a PNG has them stored in the local R2 bucket of wrangler.toml and linked from the event.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, SIGNING_SECRET, startBackend, freePort, until, validateEvent, loadEmailFixtures } from "./harness.mjs";

let backend;
let wrangler;
let port;
let logs = "";
const LINK_SECRET = "e2e-attachment-link-secret-0123456789abcdef";
const OLD_LINK_SECRET = "e2e-older-attachment-link-secret-9876543210";
const scratch = mkdtempSync(join(tmpdir(), "sekisho-wrangler-dev-"));
// wrangler.toml as deployed, minus its [build] step: `make build` has already produced build/ for this run.
const config = join(ROOT, ".wrangler-e2e.toml");

before(async () => {
  backend = await startBackend();
  port = await freePort();
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace(/\n\[build\]\n(?:[^\n[]*\n)*/, "\n");
  assert.doesNotMatch(toml, /\[build\]/);
  writeFileSync(config, toml);
  const vars = {
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    EMAIL_SUPPORT_ADDRESS: "support@example.com, info@example.co.jp",
    ATTACHMENT_URL_SECRET: `${LINK_SECRET},${OLD_LINK_SECRET}`,
    ATTACHMENT_URL_BASE: `http://127.0.0.1:${port}`,
  };
  const args = ["wrangler", "dev", "-c", config, "--ip", "127.0.0.1", "--port", String(port),
    "--persist-to", scratch, "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])];
  wrangler = spawn("npx", args, {
    cwd: ROOT, detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
  wrangler.stdout.on("data", (d) => (logs += d));
  wrangler.stderr.on("data", (d) => (logs += d));
  await until(async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
    } catch {
      return false;
    }
  }, 90000, "wrangler dev to serve /healthz").catch((e) => {
    throw new Error(`${e.message}\n${logs.slice(-3000)}`);
  });
});

after(async () => {
  if (wrangler?.pid) {
    try {
      process.kill(-wrangler.pid, "SIGTERM");
    } catch {}
  }
  await backend?.close();
  rmSync(config, { force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const mail = (from, to, raw) =>
  fetch(`http://127.0.0.1:${port}/cdn-cgi/handler/email?${new URLSearchParams({ from, to })}`, { method: "POST", body: raw });

test("wrangler dev: an ISO-2022-JP message to a configured address arrives decoded and signed", async () => {
  const { fixture, raw } = loadEmailFixtures().find((f) => f.name === "iso2022jp");
  const res = await mail(fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(res.status, 200, await res.text());
  await backend.waitFor(1, 30000);
  const [delivery] = backend.received;
  assert.ok(delivery.verified, delivery.verifyError);
  assert.ok(validateEvent(delivery.event), JSON.stringify(validateEvent.errors));
  assert.equal(delivery.event.data.email.subject, fixture.expect.email.subject);
  assert.equal(delivery.event.data.message.text, fixture.expect.email.text);
});

test("wrangler dev: mail to an unknown recipient is rejected with the reason, nothing forwarded", async () => {
  const { fixture, raw } = loadEmailFixtures().find((f) => f.name === "unknown_recipient");
  const count = backend.received.length;
  const res = await mail(fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(res.status, 400);
  assert.match(await res.text(), /unknown_recipient: no account is configured for this recipient address/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(backend.received.length, count);
});

// The link scheme as docs/channels/email.md states it, written here independently of the Worker's code.
const sign = (secret, key, exp) => createHmac("sha256", secret).update(`${key}\n${exp}`).digest("base64url");

// The object blobs of the local R2 bucket (wrangler dev --persist-to keeps them under v3/r2/<bucket>/blobs/, one
// file per stored object, beside Miniflare's SQLite metadata).
function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [{ path, size: statSync(path).size }];
  });
}
const r2Blobs = () => filesUnder(join(scratch, "v3", "r2", "sekisho-attachments", "blobs"));

test("wrangler dev: a PDF and a PNG are stored in R2 and their links answer the exact bytes, once", async () => {
  const { fixture, raw } = loadEmailFixtures().find((f) => f.name === "attachments");
  const originals = {
    "application/pdf": readFileSync(join(ROOT, "fixtures", "email", "attachments", "quote.pdf")),
    "image/png": readFileSync(join(ROOT, "fixtures", "email", "attachments", "layout.png")),
  };
  const count = backend.received.length;
  const res = await mail(fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(res.status, 200, await res.text());
  await backend.waitFor(count + 1, 30000);
  const { event, verified } = backend.received[count];
  assert.ok(verified);
  assert.ok(validateEvent(event), JSON.stringify(validateEvent.errors));
  const attachments = event.data.message.attachments;
  assert.deepEqual(attachments.map((a) => [a.name, a.content_type]), [["見積書.pdf", "application/pdf"], ["layout.png", "image/png"]]);
  const before = Math.floor(Date.now() / 1000);
  for (const [index, attachment] of attachments.entries()) {
    const url = new URL(attachment.url);
    assert.equal(url.origin, `http://127.0.0.1:${port}`);
    assert.equal(url.pathname, `/attachments/${event.id}/${index}`);
    const exp = Number(url.searchParams.get("exp"));
    // ATTACHMENT_URL_TTL_S defaults to 7 days.
    assert.ok(Math.abs(exp - (before + 7 * 24 * 3600)) < 120, `exp ${exp}`);
    assert.equal(url.searchParams.get("sig"), sign(LINK_SECRET, `${event.id}/${index}`, exp));
    const got = await fetch(url);
    assert.equal(got.status, 200);
    assert.equal(got.headers.get("content-type"), attachment.content_type);
    assert.equal(got.headers.get("x-content-type-options"), "nosniff");
    const bytes = Buffer.from(await got.arrayBuffer());
    assert.ok(bytes.equals(originals[attachment.content_type]), `${attachment.name}: bytes differ`);
    assert.equal(attachment.size, bytes.length);
  }
  assert.equal(
    (await fetch(attachments[0].url)).headers.get("content-disposition"),
    `attachment; filename="___.pdf"; filename*=UTF-8''${encodeURIComponent("見積書")}.pdf`,
  );

  // Tampered, expired, signed by an old secret, or for a key that was never stored.
  const key = `${event.id}/0`;
  const link = (k, exp, sig) => `http://127.0.0.1:${port}/attachments/${k}?exp=${exp}&sig=${sig}`;
  const url = new URL(attachments[0].url);
  const exp = url.searchParams.get("exp");
  const sig = url.searchParams.get("sig");
  const tampered = (sig[0] === "A" ? "B" : "A") + sig.slice(1);
  const refused = async (href) => {
    const answer = await fetch(href);
    return [answer.status, await answer.text()];
  };
  assert.deepEqual(await refused(link(key, exp, tampered)), [403, '{"error":"invalid_link"}']);
  assert.deepEqual(await refused(link(`${event.id}/1`, exp, sig)), [403, '{"error":"invalid_link"}']);
  assert.deepEqual(await refused(link(key, Number(exp) + 1, sig)), [403, '{"error":"invalid_link"}']);
  const unknown = "evt_00000000000000000000000000000000/0";
  assert.deepEqual(await refused(link(unknown, exp, tampered)), [403, '{"error":"invalid_link"}']);
  const past = before - 60;
  assert.deepEqual(await refused(link(key, past, sign(LINK_SECRET, key, past))), [403, '{"error":"link_expired"}']);
  assert.equal((await fetch(link(key, exp, sign(OLD_LINK_SECRET, key, exp)))).status, 200, "rotation");
  assert.equal((await fetch(link(unknown, exp, sign(LINK_SECRET, unknown, exp)))).status, 404);

  // The same message again (an SMTP retry): a duplicate event, and nothing written to R2 a second time.
  const stored = r2Blobs();
  assert.deepEqual(
    stored.map((f) => f.size).sort((a, b) => a - b),
    [originals["image/png"].length, originals["application/pdf"].length],
    "one blob per attachment in local R2",
  );
  const again = await mail(fixture.envelope.from, fixture.envelope.to, raw);
  assert.equal(again.status, 200, await again.text());
  const line = (already, stored) =>
    `"already_stored":${already},"event_id":"${event.id}","level":"info","msg":"attachments stored","stored":${stored}`;
  assert.ok(logs.includes(line(0, 2)), "the first delivery stored both");
  await until(() => logs.includes(line(2, 0)), 15000, "the second delivery's log line: both already stored");
  assert.deepEqual(r2Blobs(), stored, "no object written again");
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(backend.received.length, count + 1, "the duplicate is not forwarded");
});

test("wrangler dev: 480 one-byte attachments: the first 20 are stored and linked, the rest listed without a link", async () => {
  const parts = Array.from({ length: 480 }, (_, i) =>
    `--b\r\nContent-Type: application/octet-stream; name="${i}.bin"\r\nContent-Disposition: attachment; filename="${i}.bin"\r\n\r\n${String.fromCharCode(65 + (i % 26))}\r\n`);
  const raw = `From: many@example.jp\r\nTo: support@example.com\r\nMessage-ID: <many-parts@example.jp>\r\nSubject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nmany parts\r\n${parts.join("")}--b--\r\n`;
  const blobs = r2Blobs().length;
  const count = backend.received.length;
  const res = await mail("many@example.jp", "support@example.com", raw);
  assert.equal(res.status, 200, await res.text());
  await backend.waitFor(count + 1, 30000);
  const { event } = backend.received[count];
  const attachments = event.data.message.attachments;
  assert.equal(attachments.length, 480);
  assert.deepEqual(attachments.map((a) => Boolean(a.url)), attachments.map((_, i) => i < 20));
  assert.equal(r2Blobs().length, blobs + 20, "20 objects written, one each");
  const got = await fetch(attachments[19].url);
  assert.equal(got.status, 200);
  assert.equal(await got.text(), String.fromCharCode(65 + 19));
});
