// The local backend of `make bench-worker`, in a process of its own (so it takes no CPU from the load
// generator's event loop): answers every POST 204 and counts, per first path segment (/sekisho/…,
// /reference/…), the forwards received, the distinct webhook-ids, and those whose Standard Webhooks signature
// does not verify (HMAC-SHA256 with the base64-decoded whsec_ key over `${id}.${timestamp}.${body}`). Bodies
// of paths containing /check/ are kept for the driver to compare. The platform floor (floor.js, path /floor/…)
// signs nothing, so its forwards are counted without a signature check (bad_signature stays 0 there).
//   GET /stats → {"sekisho":{"received":N,"distinct":N,"bad_signature":N,"bytes":N,"last_at":ms},…}   GET /checked → [{path,id,body}]
//   node benches/worker/backend.mjs <port> <whsec_…>      prints "listening <port>" once ready
import { createServer } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";

const [port = "0", secret] = process.argv.slice(2);
const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
const stats = {};
const checked = [];

function verified(id, timestamp, signatures, body) {
  if (!id || !timestamp || !signatures) return false;
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
  return signatures.split(" ").some((s) => {
    const [version, b64] = s.split(",", 2);
    const tag = Buffer.from(b64 ?? "", "base64");
    return version === "v1" && tag.length === expected.length && timingSafeEqual(tag, expected);
  });
}

const server = createServer((req, res) => {
  if (req.method === "GET") {
    res.setHeader("content-type", "application/json");
    if (req.url === "/stats") {
      const out = {};
      for (const [name, s] of Object.entries(stats)) out[name] = { received: s.received, distinct: s.ids.size, bad_signature: s.bad, bytes: s.bytes, last_at: s.lastAt };
      res.end(JSON.stringify(out));
    } else if (req.url === "/checked") {
      res.end(JSON.stringify(checked));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const name = req.url.split("/")[1] || "-";
    const s = (stats[name] ??= { received: 0, ids: new Set(), bad: 0, bytes: 0, lastAt: 0 });
    const id = req.headers["webhook-id"];
    s.received++;
    s.lastAt = Date.now();
    s.bytes += body.length;
    s.ids.add(id);
    if (name !== "floor" && !verified(id, req.headers["webhook-timestamp"], req.headers["webhook-signature"], body)) s.bad++;
    if (req.url.includes("/check/")) checked.push({ path: req.url, id, body: body.toString("utf8") });
    res.statusCode = 204;
    res.end();
  });
});
server.keepAliveTimeout = 60000;
server.listen(Number(port), "127.0.0.1", () => console.log(`listening ${server.address().port}`));
process.on("SIGTERM", () => process.exit(0));
