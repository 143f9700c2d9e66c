// The runtime's TextDecoder, which decodes in the Worker what encoding_rs decodes natively (the CJK and other
// legacy charsets of e-mail, crates/sekisho-worker/src/charsets.rs): on every vector of crates/sekisho/tests/vectors/charsets.json (text
// encoded by encoding_rs, the sequences its decoders treat specially, random bytes) workerd must give the text
// encoding_rs gives, decoding the way the Worker asks it to (`ignoreBOM: true`, replacement on errors).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, loadEmailFixtures } from "./harness.mjs";

const vectors = JSON.parse(readFileSync(join(ROOT, "crates", "sekisho", "tests", "vectors", "charsets.json"), "utf8"));

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

// The two Japanese fixtures the local e-mail endpoint refuses (its own parser's TextDecoder does not know the labels
// `cp932` and `ISO-2022-JP-MS`, see email.test.mjs): the Worker decodes them by handing workerd's TextDecoder the
// WHATWG name the core maps the label to (src/channels/email/charset.rs, JAPANESE_LABELS). Here workerd decodes
// their body and subject bytes under those names, and must give the fixture's expected text, NEC row 13 and
// NEC-selected IBM extensions included.
const CORE_NAME_OF = { cp932: "shift_jis", "iso-2022-jp-ms": "iso-2022-jp" };

test("workerd's TextDecoder reads the cp932 and ISO-2022-JP-MS fixtures under the names the core maps them to", async () => {
  const cases = loadEmailFixtures()
    .filter(({ name }) => name === "ja_label_cp932" || name === "ja_label_iso_2022_jp_ms")
    .map(({ name, fixture, raw }) => {
      const split = raw.indexOf("\r\n\r\n");
      const head = raw.subarray(0, split).toString("latin1");
      const label = /charset=([^\s;]+)/.exec(head)[1].toLowerCase();
      const word = /^Subject: =\?[^?]+\?B\?([^?]+)\?=/m.exec(head)[1];
      return {
        name,
        encoding: CORE_NAME_OF[label],
        body: raw.subarray(split + 4).toString("hex"),
        subject: Buffer.from(word, "base64").toString("hex"),
        expected: fixture.expect.email,
      };
    });
  assert.equal(cases.length, 2);
  const script = `export default {
    async fetch(request) {
      const cases = await request.json();
      const bytes = (hex) => new Uint8Array(hex.match(/../g).map((h) => parseInt(h, 16)));
      return Response.json(cases.map(({ encoding, body, subject }) => [
        new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes(body)),
        new TextDecoder(encoding, { ignoreBOM: true }).decode(bytes(subject)),
      ]));
    },
  };`;
  const mf = new Miniflare({ modules: true, script, compatibilityDate: "2026-04-01" });
  try {
    const res = await mf.dispatchFetch("http://charsets.test/", { method: "POST", body: JSON.stringify(cases) });
    const decoded = await res.json();
    for (const [i, { name, expected }] of cases.entries()) {
      assert.equal(decoded[i][0].replace(/\r\n/g, "\n").trimEnd(), expected.text, `${name}: body`);
      assert.equal(decoded[i][1], expected.subject, `${name}: subject`);
      assert.match(decoded[i][0], /①②③ ㈱鈴木製作所 髙橋 﨑山/, name);
    }
  } finally {
    await mf.dispose();
  }
});
