// Slack and generic Standard Webhooks through the built Worker. Both sign a timestamp, so the fixture bodies are
// re-signed fresh by `sekisho send` (the fixtures themselves, with their fixed clocks, run natively).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ROOT, startBackend, startGateway, durableOptions, freePort, until, validateEvent, runCli, SIGNING_SECRET,
} from "./harness.mjs";

const SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const GENERIC_SECRET = "whsec_c2VuZGVyLXNpZGUtc2VjcmV0LWZvci1lMmU=";
let backend;
let gateway;
let base;
const scratch = mkdtempSync(join(tmpdir(), "sekisho-slack-"));

before(async () => {
  backend = await startBackend();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  gateway = await startGateway({
    BACKEND_URL: `${backend.url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_WORKSPACE_SIGNING_SECRET: SLACK_SECRET,
    GENERIC_PARTNER_SECRET: GENERIC_SECRET,
  }, { ...durableOptions(), host: "127.0.0.1", port });
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
  rmSync(scratch, { recursive: true, force: true });
});

/** A fixture's raw body, written to a file for `sekisho send --body`. */
function bodyFile(channel, name) {
  const fixture = JSON.parse(readFileSync(join(ROOT, "fixtures", channel, `${name}.json`), "utf8"));
  const path = join(scratch, `${channel}-${name}.body`);
  writeFileSync(path, fixture.request.body);
  return { path, fixture };
}

test("Slack: url_verification answers the challenge; nothing is forwarded", async () => {
  const { path, fixture } = bodyFile("slack", "url-verification");
  const res = await runCli(["send", "slack", `${base}/slack/workspace`, "--secret", SLACK_SECRET, "--body", path]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `200 ${JSON.parse(fixture.request.body).challenge}\n`);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(backend.received.length, 0);
});

test("Slack: a channel message and a slash command arrive as schema-valid events; a wrong secret is refused", async () => {
  const message = bodyFile("slack", "message-channel");
  const command = bodyFile("slack", "vector-slash-command");
  for (const { path } of [message, command]) {
    const res = await runCli(["send", "slack", `${base}/slack/workspace`, "--secret", SLACK_SECRET, "--body", path]);
    assert.equal(res.code, 0, res.stderr);
  }
  await until(() => backend.received.filter((d) => d.event?.channel === "slack").length >= 2, 20000, "two Slack events");
  for (const d of backend.received.filter((e) => e.event?.channel === "slack")) {
    assert.ok(d.verified, d.verifyError);
    assert.ok(validateEvent(d.event), JSON.stringify(validateEvent.errors));
  }
  const types = backend.received.filter((d) => d.event?.channel === "slack").map((d) => d.event.type).sort();
  assert.deepEqual(types, [...message.fixture.expect.events, ...command.fixture.expect.events].map((e) => e.type).sort());

  const forged = await runCli(["send", "slack", `${base}/slack/workspace`, "--secret", "not-the-secret", "--body", message.path]);
  assert.notEqual(forged.code, 0);
  assert.match(forged.stdout + forged.stderr, /401/);
});

test("generic Standard Webhooks: delivered once per webhook-id, verified end to end; a wrong key is refused", async () => {
  const path = join(scratch, "partner.json");
  writeFileSync(path, JSON.stringify({ type: "invoice.paid", data: { invoice: "INV-2026-0042", amount: 12000 } }));
  for (let i = 0; i < 2; i++) {
    const res = await runCli(["send", "generic", `${base}/generic/partner`, "--secret", GENERIC_SECRET, "--body", path, "--webhook-id", "msg_e2e_partner_1"]);
    assert.equal(res.code, 0, res.stderr);
  }
  await until(() => backend.received.some((d) => d.event?.channel === "generic"), 20000, "the generic event");
  await new Promise((r) => setTimeout(r, 1000));
  const generic = backend.received.filter((d) => d.event?.channel === "generic");
  assert.equal(generic.length, 1, "the sender's retry with the same webhook-id is not forwarded twice");
  assert.ok(generic[0].verified, generic[0].verifyError);
  assert.ok(validateEvent(generic[0].event));
  assert.equal(generic[0].event.type, "webhook.received");
  assert.equal(generic[0].event.data.provider_type, "invoice.paid");
  assert.equal(generic[0].event.data.verification.scheme, "standard-webhooks");

  const wrong = await runCli(["send", "generic", `${base}/generic/partner`, "--secret", "whsec_d3Jvbmcta2V5", "--body", path]);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stdout + wrong.stderr, /401/);
});
