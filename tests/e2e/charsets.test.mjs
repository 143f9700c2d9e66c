// The runtime's TextDecoder, which decodes in the Worker what encoding_rs decodes natively (the CJK and other
// legacy charsets of e-mail, src/edge/charsets.rs): on every vector of tests/vectors/charsets.json (text
// encoded by encoding_rs, the sequences its decoders treat specially, random bytes) workerd must give the text
// encoding_rs gives, decoding the way the Worker asks it to (`ignoreBOM: true`, replacement on errors).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT } from "./harness.mjs";

const vectors = JSON.parse(readFileSync(join(ROOT, "tests", "vectors", "charsets.json"), "utf8"));

test("workerd's TextDecoder decodes every charset vector as encoding_rs does", async () => {
  const script = `export default {
    async fetch(request) {
      const vectors = await request.json();
      return Response.json(vectors.map(({ encoding, hex }) => {
        const bytes = new Uint8Array(hex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
        return new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes);
      }));
    },
  };`;
  const mf = new Miniflare({ modules: true, script, compatibilityDate: "2026-04-01" });
  try {
    const res = await mf.dispatchFetch("http://charsets.test/", { method: "POST", body: JSON.stringify(vectors) });
    const decoded = await res.json();
    const wrong = vectors.flatMap((v, i) => (decoded[i] === v.text ? [] : [{ ...v, workerd: decoded[i] }]));
    assert.deepEqual(wrong, [], `${wrong.length} of ${vectors.length} vectors decode differently`);
  } finally {
    await mf.dispose();
  }
});
