// A local stand-in for LINE's push API, for `make dev`'s send walk-through (the gateway's LINE_API_BASE points
// here): `POST /v2/bot/message/push` with the expected channel access token answers 200 with a message id, as
// LINE does, and prints what it received; anything else is LINE's 401 or 404. Bound to 127.0.0.1 only.
//
//   node scripts/mock-line-api.mjs --port 8789 --token demo-line-channel-access-token-2026
import { createServer } from "node:http";

const option = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback;
};
const port = Number(option("port", "8789"));
const token = option("token", "demo-line-channel-access-token-2026");
let sent = 0;

const answer = (res, status, body) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size <= 1 << 20) chunks.push(chunk);
  });
  req.on("end", () => {
    if (req.method !== "POST" || req.url !== "/v2/bot/message/push") return answer(res, 404, { message: "Not found" });
    if (req.headers.authorization !== `Bearer ${token}`) {
      return answer(res, 401, { message: "Authentication failed. Confirm that the access token in the authorization header is valid." });
    }
    let push;
    try {
      push = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return answer(res, 400, { message: "The request body could not be parsed as JSON" });
    }
    sent += 1;
    const id = `${Date.now()}${String(sent).padStart(4, "0")}`;
    const texts = (push.messages ?? []).map((m) => m.text ?? `[${m.type}]`).join(" / ");
    console.log(`mock LINE API: push ${id} to ${push.to}: ${texts} (retry key ${req.headers["x-line-retry-key"]})`);
    answer(res, 200, { sentMessages: [{ id, quoteToken: `q${sent}` }] });
  });
});

server.listen(port, "127.0.0.1", () => console.log(`mock LINE API: http://127.0.0.1:${port} (LINE_API_BASE)`));
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));
