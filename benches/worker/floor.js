// The platform floor of `make bench-worker`: a Worker that does only the IO that any implementation of the
// benchmark's job must do, and none of the job itself. Per request it reads the whole body, answers with the
// same body as Sekisho and the reference, logs one line, and inside ctx.waitUntil sends one POST per event to
// the same backend, one after the other, with the same four headers, the same timeout and no redirects. It
// verifies nothing, decrypts nothing, builds no envelope and signs nothing: the forwarded body is a constant
// string of about an envelope's size, the signature header a constant of a real one's length, the webhook-id a
// counter. The backend (backend.mjs) does not check signatures on its /floor/ path, only that every id is
// distinct.
//
// What it is for: CPU per request of any Worker doing this job is this floor plus the job's own work, so
// `Sekisho / reference` can never be lower than `floor / reference`, and `(Sekisho − floor) / (reference − floor)`
// compares the part an implementation controls. Not a gateway; never deploy it.
//
//   POST /line/{account}     {"accepted":N}, N = the number of "webhookEventId" keys in the body (a byte scan)
//   POST /wechat/{account}   success (one event)
//   GET  /healthz            ok

const ENVELOPE_BYTES = 1100; // the LINE text message's envelope is 1,0xx–1,1xx bytes (backend stats: bytes / received)
const PLACEHOLDER = `{"specversion":"1.0","floor":"${"x".repeat(ENVELOPE_BYTES - 32)}"}`;
const SIGNATURE = `v1,${"A".repeat(43)}= v1,${"B".repeat(43)}=`; // two secrets' worth, as the benchmark configures
const DELIVERY_TIMEOUT_MS = 15000;
let prefix; // random per isolate (not allowed at global scope), so ids stay distinct across restarts
let sequence = 0;

async function forwardAll(url, count) {
  prefix ??= `evt_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  for (let i = 0; i < count; i++) {
    const id = `${prefix}${(sequence++).toString(16).padStart(16, "0")}`;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": id,
          "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
          "webhook-signature": SIGNATURE,
        },
        body: PLACEHOLDER,
        redirect: "manual",
        signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      });
      if (response.status < 200 || response.status > 299) console.error(JSON.stringify({ event: id, error: `destination answered ${response.status}`, level: "error", msg: "forward failed" }));
    } catch (error) {
      console.error(JSON.stringify({ event: id, error: String(error), level: "error", msg: "forward failed" }));
    }
  }
}

function countOf(text, needle) {
  let count = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}

export default {
  async fetch(request, env, ctx) {
    const [channel, account] = new URL(request.url).pathname.slice(1).split("/");
    if (channel === "healthz") return new Response("ok");
    if (request.method !== "POST" || (channel !== "line" && channel !== "wechat")) return new Response("{}", { status: 404 });
    const body = await request.text();
    const events = channel === "line" ? countOf(body, '"webhookEventId"') : 1;
    console.log(JSON.stringify({ channel, account, events, level: "info", msg: "request accepted" }));
    ctx.waitUntil(forwardAll(env.BACKEND_URL, events));
    return channel === "line"
      ? new Response(`{"accepted":${events}}`, { headers: { "content-type": "application/json" } })
      : new Response("success", { headers: { "content-type": "text/plain; charset=utf-8" } });
  },
};
