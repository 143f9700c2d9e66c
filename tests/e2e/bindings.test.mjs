// A secret rotated with `wrangler secret put` reaches the Worker as new bindings: the new secret must be used on
// the next request and the old one refused, in the same Miniflare instance (the runtime is reconfigured, as a
// deploy does). It guards any caching of configuration: a cache that outlived its `env` would fail here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, startBackend, lineBody, lineSign, SIGNING_SECRET } from "./harness.mjs";

function options(bindings) {
  const build = join(ROOT, "build");
  return {
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: join(build, "index.js") },
      { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
    ],
    compatibilityDate: "2026-04-01",
    bindings,
  };
}

test("a rotated channel secret is used on the next request; the replaced one is refused", async () => {
  const backend = await startBackend();
  const base = { BACKEND_URL: `${backend.url}/events`, BACKEND_SIGNING_SECRET: SIGNING_SECRET };
  const mf = new Miniflare(options({ ...base, LINE_ROT_CHANNEL_SECRET: "first-secret" }));
  try {
    const post = async (secret, id) => {
      const body = lineBody(id, `rotation ${id}`);
      const res = await mf.dispatchFetch("http://gateway.test/line/rot", {
        method: "POST", headers: { "x-line-signature": lineSign(secret, body) }, body,
      });
      return { status: res.status, text: await res.text() };
    };
    // Several requests first, so anything cached is warm.
    for (let i = 0; i < 3; i++) assert.equal((await post("first-secret", `01HROT00${i}`)).status, 200);
    assert.equal((await post("second-secret", "01HROTX1")).status, 401);

    await mf.setOptions(options({ ...base, LINE_ROT_CHANNEL_SECRET: "second-secret" }));
    const rotated = await post("second-secret", "01HROT100");
    assert.equal(rotated.status, 200, rotated.text);
    const old = await post("first-secret", "01HROT101");
    assert.equal(old.status, 401, old.text);
    assert.match(old.text, /invalid_signature/);

    // A binding added later (a new account) exists from the next request on.
    await mf.setOptions(options({ ...base, LINE_ROT_CHANNEL_SECRET: "second-secret", LINE_NEW_CHANNEL_SECRET: "new-secret" }));
    const body = lineBody("01HROTNEW", "new account");
    const res = await mf.dispatchFetch("http://gateway.test/line/new", {
      method: "POST", headers: { "x-line-signature": lineSign("new-secret", body) }, body,
    });
    assert.equal(res.status, 200, await res.text());
  } finally {
    await mf.dispose();
    await backend.close();
  }
});
