// The account registry from the admin's side, end to end through workerd: the console in a real browser (the
// distribution's Chromium driven by playwright-core) adds a LINE account through the form, shows its Webhook URL,
// rotates and retires a secret (If-Match from the ETag), shows the audit trail and deletes the account; the
// `sekisho accounts` CLI imports a .dev.vars file and the imported accounts accept signed requests. No secret
// typed or imported appears in the page, the CLI's output or anything the Worker printed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT, startGateway, startBackend, durableOptions, lineBody, lineSign, SIGNING_SECRET, freePort, until, runCli } from "./harness.mjs";

const ADMIN_TOKEN = "registry-console-admin-token-0123456789";
const SEALING_KEY = randomBytes(32).toString("base64");
const ENV_SECRET = randomBytes(16).toString("hex");
const SECRET_1 = randomBytes(16).toString("hex");
const SECRET_2 = randomBytes(16).toString("hex");
const SECRET_3 = randomBytes(16).toString("hex");
const IMPORTED_NEW = randomBytes(16).toString("hex");
const IMPORTED_OLD = randomBytes(16).toString("hex");
const TELEGRAM_SECRET = `tg-${randomBytes(12).toString("hex")}`;
const ACCESS_TOKEN = `access-${randomBytes(16).toString("hex")}`;
const SECRETS = [ENV_SECRET, SECRET_1, SECRET_2, SECRET_3, IMPORTED_NEW, IMPORTED_OLD, TELEGRAM_SECRET, ACCESS_TOKEN, SEALING_KEY];
const ARTIFACTS = join(ROOT, "target", "e2e-artifacts");
const CHROMIUM = process.env.SEKISHO_CHROMIUM || "/usr/bin/chromium";
const fingerprint = (value) => createHash("sha256").update(value).digest("hex").slice(0, 8);

let backend;
let gateway;
let base;
const output = [];

before(async () => {
  backend = await startBackend();
  const port = await freePort();
  const durable = durableOptions();
  gateway = await startGateway(
    {
      BACKEND_URL: `${backend.url}/events`,
      BACKEND_SIGNING_SECRET: SIGNING_SECRET,
      ADMIN_TOKEN,
      ACCOUNTS_SEALING_KEY: SEALING_KEY,
      LINE_SHOP_CHANNEL_SECRET: ENV_SECRET,
    },
    {
      ...durable,
      durableObjects: { ...durable.durableObjects, ACCOUNT_WRITER: { className: "AccountWriter", useSQLite: true } },
      kvNamespaces: ["ACCOUNTS"],
      handleRuntimeStdio(stdout, stderr) {
        stdout.on("data", (d) => output.push(String(d)));
        stderr.on("data", (d) => output.push(String(d)));
      },
      host: "127.0.0.1",
      port,
    },
  );
  base = `http://127.0.0.1:${port}`;
});

after(async () => {
  await gateway?.dispose();
  await backend?.close();
});

async function postLine(account, secret, id) {
  const body = lineBody(id, `hello ${id}`);
  const res = await fetch(`${base}/line/${account}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-line-signature": lineSign(secret, body) },
    body,
  });
  await res.arrayBuffer();
  return res.status;
}

async function adminApi(method, path, body) {
  const res = await fetch(`${base}/admin/api/${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

function assertNoSecret(text, where) {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${where} shows a secret (${fingerprint(secret)})`);
}

test("in Chromium: add a LINE account through the form, copy its Webhook URL, rotate, retire, audit, delete", async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const problems = [];
  try {
    const context = await browser.newContext({ locale: "ja-JP", viewport: { width: 1200, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    const page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
    page.on("dialog", (dialog) => dialog.accept());
    await page.goto(`${base}/admin`);
    await page.getByLabel("管理トークン").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "サインイン" }).click();
    await page.getByRole("link", { name: "レジストリ", exact: true }).click();
    await page.getByRole("heading", { name: "アカウント登録" }).waitFor();
    const envRow = page.getByRole("row", { name: /line\/shop/ });
    assert.match(await envRow.textContent(), /環境バインディング/);

    // The form, built from GET /admin/api/channels: help texts, secrets as password inputs.
    await page.getByLabel("追加先のチャネル").selectOption("line");
    await page.getByRole("button", { name: "アカウントを追加" }).click();
    await page.getByRole("heading", { name: "アカウントを追加: line" }).waitFor();
    assert.match(await page.locator("#view").textContent(), /LINE Developers → チャネル → チャネル基本設定 → チャネルシークレット/);
    const secretInput = page.locator("#new-CHANNEL_SECRET");
    assert.equal(await secretInput.getAttribute("type"), "password");
    assert.equal(await page.locator("#new-CHANNEL_ACCESS_TOKEN").getAttribute("type"), "password");
    assert.equal(await page.locator("#new-CHANNEL_ID").getAttribute("type"), "text");

    // Validation as you type.
    await page.locator("#new-account").fill("Acme!");
    assert.match(await page.locator("#new-account-problem").textContent(), /英小文字・数字・-/);
    await page.locator("#new-account").fill("acme");
    assert.equal(await page.locator("#new-account-problem").textContent(), "");
    await secretInput.fill(SECRET_1.slice(0, 10));
    assert.match(await page.locator("#new-CHANNEL_SECRET-problem").textContent(), /16 進数 32 桁.*現在 10 文字/);
    assert.equal(await secretInput.getAttribute("aria-invalid"), "true");
    await page.getByText("任意の設定").click();
    await page.locator("#new-CHANNEL_ID").fill("12ab");
    assert.match(await page.locator("#new-CHANNEL_ID-problem").textContent(), /整数/);
    await page.locator("#new-BACKEND_URL").fill("http://backend.example/events");
    assert.match(await page.locator("#new-BACKEND_URL-problem").textContent(), /https の URL/);
    await page.screenshot({ path: join(ARTIFACTS, "registry-form-invalid.png"), fullPage: true });
    // Saving with problems sends nothing.
    await page.getByRole("button", { name: "保存" }).click();
    await page.getByRole("alert").filter({ hasText: "印の付いたフィールドを確認してください" }).waitFor();
    assert.equal((await adminApi("GET", "accounts/line/acme")).status, 404);

    await secretInput.fill(SECRET_1);
    assert.equal(await page.locator("#new-CHANNEL_SECRET-problem").textContent(), "");
    assert.equal(await secretInput.getAttribute("aria-invalid"), "false");
    await page.locator("#new-CHANNEL_ACCESS_TOKEN").fill(ACCESS_TOKEN);
    await page.locator("#new-CHANNEL_ID").fill("1234567890");
    await page.locator("#new-BACKEND_URL").fill(`${backend.url}/events`);
    assert.equal(await page.locator("#new-BACKEND_URL-problem").textContent(), "");

    // The gateway's own 422 is shown next to its field: the request is altered on its way (CHANNEL_ID 0 passes
    // no client check, so it is made here), and the gateway refuses it.
    await page.route(`${base}/admin/api/accounts/line/acme`, async (route) => {
      const request = route.request();
      if (request.method() !== "PUT") return route.continue();
      const body = JSON.parse(request.postData());
      body.fields.CHANNEL_ID = "0";
      return route.continue({ postData: JSON.stringify(body) });
    });
    await page.getByRole("button", { name: "保存" }).click();
    await page.locator("#new-CHANNEL_ID-problem").filter({ hasText: "ゲートウェイが拒否" }).waitFor();
    assert.match(await page.locator("#new-CHANNEL_ID-problem").textContent(), /must be a whole number/);
    assert.match(await page.getByRole("alert").textContent(), /\(422 invalid_field\): CHANNEL_ID must be a whole number/);
    await page.unroute(`${base}/admin/api/accounts/line/acme`);
    assert.equal((await adminApi("GET", "accounts/line/acme")).status, 404, "nothing stored");

    await page.getByRole("button", { name: "保存" }).click();
    await page.getByRole("heading", { name: "line/acme" }).waitFor();
    assert.match(await page.getByRole("status").filter({ hasText: "作成しました" }).textContent(), /Webhook URL/);
    assert.equal(await page.locator("#webhook-url").textContent(), `${base}/line/acme`);
    await page.getByRole("button", { name: "コピー" }).click();
    await page.getByText("コピーしました。").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${base}/line/acme`);
    await page.screenshot({ path: join(ARTIFACTS, "registry-created.png"), fullPage: true });
    // Nothing typed into a secret field is left in the page: not in its markup, not in any control's value.
    const dom = async () => (await page.content()) + JSON.stringify(await page.evaluate(() => [...document.querySelectorAll("input,textarea,select")].map((e) => e.value)));
    assertNoSecret(await dom(), "the page after saving");
    assert.match(await page.locator("#view").textContent(), new RegExp(`index 0.*${fingerprint(SECRET_1)}`));
    assert.match(await page.locator("#view").textContent(), /レジストリ/);

    // The first signed request is accepted at once.
    assert.equal(await postLine("acme", SECRET_1, "first"), 200);

    // Rotation step 1: a second value, added through the page (validated as typed).
    const rotateInput = page.locator("#rotate-CHANNEL_SECRET");
    assert.equal(await rotateInput.getAttribute("type"), "password");
    await rotateInput.fill("not-hex");
    assert.match(await page.locator("#rotate-CHANNEL_SECRET-problem").textContent(), /16 進数/);
    await rotateInput.fill(SECRET_2);
    await page.getByRole("button", { name: "値を追加" }).click();
    await page.getByRole("status").filter({ hasText: "新しい値を追加しました: CHANNEL_SECRET" }).waitFor();
    const values = page.locator("tr", { has: page.locator("th code", { hasText: "CHANNEL_SECRET" }) }).locator("ul.values li");
    await until(async () => (await values.count()) === 2, 10000, "two values shown");
    assert.match(await values.nth(0).textContent(), new RegExp(`index 0.*${fingerprint(SECRET_2)}`));
    assert.match(await values.nth(1).textContent(), new RegExp(`index 1.*${fingerprint(SECRET_1)}`));
    assertNoSecret(await dom(), "the page after rotating");
    await until(async () => (await postLine("acme", SECRET_2, "second")) === 200, 10000, "the new value accepted");
    assert.equal(await postLine("acme", SECRET_1, "old-still"), 200);

    // If-Match from the page's ETag: a change behind the page's back makes its next write refused (412), and
    // the page shows the account again with the conflict explained.
    const behind = await adminApi("POST", "accounts/line/acme/secrets/CHANNEL_SECRET", { value: SECRET_3 });
    assert.equal(behind.status, 200);
    await page.getByRole("button", { name: `廃止 CHANNEL_SECRET ${fingerprint(SECRET_1)}` }).click();
    await page.getByRole("status").filter({ hasText: "If-Match" }).waitFor();
    await until(async () => (await values.count()) === 3, 10000, "the page reloaded with three values");
    assert.equal((await adminApi("GET", "accounts/line/acme")).json.fields.CHANNEL_SECRET.values.length, 3, "nothing retired");

    // Retire the old value for real (the page now holds the current ETag), then the one added behind its back.
    for (const retired of [SECRET_1, SECRET_3]) {
      await page.getByRole("button", { name: `廃止 CHANNEL_SECRET ${fingerprint(retired)}` }).click();
      await page.getByRole("status").filter({ hasText: `廃止しました: ${fingerprint(retired)}` }).waitFor();
    }
    await until(async () => (await values.count()) === 1, 10000, "one value left");
    assert.equal(await page.getByRole("button", { name: /^廃止 / }).count(), 0, "the last value cannot be retired");
    await until(async () => (await postLine("acme", SECRET_1, `retired-${Date.now()}`)) === 401, 65000, "the retired value refused within the bound");
    assert.equal(await postLine("acme", SECRET_2, "after-retire"), 200);

    // The audit trail: every change, newest first, fields by name and the token by fingerprint.
    await page.reload();
    await page.getByRole("heading", { name: "line/acme" }).waitFor();
    const trail = page.getByRole("region", { name: "監査ログ" }).locator("tbody tr");
    await until(async () => (await trail.count()) === 5, 10000, "five audit entries");
    const actions = await trail.evaluateAll((rows) => rows.map((r) => r.children[1].textContent));
    assert.deepEqual(actions, ["retire_secret", "retire_secret", "add_secret", "add_secret", "create"]);
    assert.match(await trail.nth(4).textContent(), /BACKEND_URL.*CHANNEL_ACCESS_TOKEN.*CHANNEL_ID.*CHANNEL_SECRET/);
    assert.match(await trail.nth(0).textContent(), /index 0/);
    await page.screenshot({ path: join(ARTIFACTS, "registry-account.png"), fullPage: true });

    await page.getByRole("button", { name: "English" }).click();
    await page.getByRole("heading", { name: "Webhook URL" }).waitFor();
    assert.match(await page.locator("#view").textContent(), /Audit trail/);
    await page.screenshot({ path: join(ARTIFACTS, "registry-account-en.png"), fullPage: true });

    // The list, then the account deleted from its page.
    await page.getByRole("link", { name: "Registry", exact: true }).click();
    const row = page.getByRole("row", { name: /line\/acme/ });
    await row.waitFor();
    assert.match(await row.textContent(), /registry\s*v5/);
    await page.screenshot({ path: join(ARTIFACTS, "registry-list.png"), fullPage: true });
    await row.getByRole("link").click();
    await page.getByRole("button", { name: "Delete this account" }).click();
    await page.getByRole("heading", { name: "Accounts registry" }).waitFor();
    await page.getByRole("status").filter({ hasText: "Deleted: line/acme" }).waitFor();
    assert.equal(await page.getByRole("row", { name: /line\/acme/ }).count(), 0);
    await until(async () => (await postLine("acme", SECRET_2, `deleted-${Date.now()}`)) === 404, 65000, "the deleted account refused within the bound");

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/admin#registry-new/line`);
    await page.getByRole("heading", { name: "Add account: line" }).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "registry-form-phone.png"), fullPage: true });
    assertNoSecret(await dom(), "the page");
    // The browser logs every answer ≥ 400: the 404s of the page checking that a new account's name is free, and
    // the 412 and 422 the test provoked. Nothing else, and no script error.
    assert.deepEqual(problems.filter((p) => !/^console: Failed to load resource: .* (404|412|422) /.test(p)), [], "no console errors");
    assert.equal(problems.filter((p) => / 404 /.test(p)).length, 2, "one name check per save");
  } finally {
    await browser.close();
  }
  assertNoSecret(output.join(""), "the Worker's output");
});

test("sekisho accounts import: a .dev.vars file with two accounts (one rotating) becomes registry accounts that accept signed requests", async () => {
  const dir = join(tmpdir(), `sekisho-import-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, ".dev.vars");
  writeFileSync(file, [
    "# gateway-wide: ignored by the import",
    `ADMIN_TOKEN=${ADMIN_TOKEN}`,
    `BACKEND_URL=${backend.url}/events`,
    "# rotating: newest first",
    `LINE_IMPORTED_CHANNEL_SECRET="${IMPORTED_NEW}, ${IMPORTED_OLD}"`,
    "LINE_IMPORTED_CHANNEL_ID=1234567890",
    `TELEGRAM_DESK_SECRET_TOKEN=${TELEGRAM_SECRET} # setWebhook's secret_token`,
    "",
  ].join("\n"));
  const imported = await runCli(["accounts", "import", file, "--url", base, "--token", ADMIN_TOKEN]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.equal(imported.stdout, [
    "created line/imported (version 1): CHANNEL_ID, CHANNEL_SECRET[2]",
    "created telegram/desk (version 1): SECRET_TOKEN",
    "imported 2 accounts",
    "",
  ].join("\n"));
  assertNoSecret(imported.stdout + imported.stderr, "the import's output");

  assert.equal(await postLine("imported", IMPORTED_NEW, "imp-new"), 200);
  assert.equal(await postLine("imported", IMPORTED_OLD, "imp-old"), 200);
  // Both values verify, each by its index: newest first, as in the binding.
  const received = async (text) => {
    let found;
    await until(() => (found = backend.received.find((d) => d.event?.data?.message?.text === text)), 20000, text);
    return found.event.data.verification;
  };
  assert.deepEqual(await received("hello imp-new"), { scheme: "line-hmac-sha256", key_index: 0 });
  assert.deepEqual(await received("hello imp-old"), { scheme: "line-hmac-sha256", key_index: 1 });
  const telegram = await fetch(`${base}/telegram/desk`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": TELEGRAM_SECRET },
    body: JSON.stringify({ update_id: 1, message: { message_id: 1, date: 1700000000, chat: { id: 1, type: "private" }, text: "hi" } }),
  });
  assert.equal(telegram.status, 200);

  const got = await runCli(["accounts", "get", "line", "imported", "--url", base, "--token", ADMIN_TOKEN]);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, new RegExp(`secret \\[0\\] ${fingerprint(IMPORTED_NEW)}, \\[1\\] ${fingerprint(IMPORTED_OLD)}`));
  assert.match(got.stdout, /webhook URL: http:\/\/127\.0\.0\.1:\d+\/line\/imported/);
  const listed = await runCli(["accounts", "list", "--url", base, "--token", ADMIN_TOKEN]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /line\/shop\s+env/);
  assert.match(listed.stdout, /line\/imported\s+registry\s+v1/);
  const resealed = await runCli(["accounts", "reseal", "--url", base, "--token", ADMIN_TOKEN]);
  assert.equal(resealed.code, 0, resealed.stderr);
  assert.match(resealed.stdout, /^re-sealed 0 of \d+ records\n$/);
  const audit = await runCli(["accounts", "audit", "--channel", "telegram", "--url", base, "--token", ADMIN_TOKEN]);
  assert.match(audit.stdout, /telegram\/desk create \[SECRET_TOKEN\] by token 0/);
  // Imported again: replaced, version 2; a stale If-Match is refused with exit code 1.
  const again = await runCli(["accounts", "import", file, "--url", base, "--token", ADMIN_TOKEN]);
  assert.match(again.stdout, /^replaced line\/imported \(version 2\)/m);
  const stale = await runCli(["accounts", "delete", "line", "imported", "--if-match", "v1", "--url", base, "--token", ADMIN_TOKEN]);
  assert.equal(stale.code, 1);
  assert.match(stale.stderr, /412 precondition_failed/);
  for (const run of [got, listed, resealed, audit, again, stale]) assertNoSecret(run.stdout + run.stderr, "the CLI's output");
  assertNoSecret(output.join(""), "the Worker's output");
});
