// Fault injection for the EVENTS queue producer without test hooks in production code: the gateway's EVENTS
// binding is a Miniflare wrapped binding whose object is a `WorkerQueue` (the constructor name workers-rs
// checks) forwarding send/sendBatch to the real queue producer, after asking Node (a service binding) whether
// this call should fail. Used by spill.test.mjs and faults.mjs.

const WRAPPER = `
class WorkerQueue {
  constructor(env) {
    this.real = env.REAL;
    this.control = env.CONTROL;
  }
  async gate(kind, bodies) {
    const res = await this.control.fetch("http://queue-control/", {
      method: "POST",
      body: JSON.stringify({ kind, bodies: bodies.map((b) => (typeof b === "string" ? b : JSON.stringify(b))) }),
    });
    if (res.status !== 200) throw new Error("injected queue outage: " + (await res.text()));
  }
  async send(body, options) {
    await this.gate("send", [body]);
    return this.real.send(body, options);
  }
  async sendBatch(messages, options) {
    await this.gate("sendBatch", messages.map((m) => m.body));
    return this.real.sendBatch(messages, options);
  }
}
export default function (env) {
  return new WorkerQueue(env);
}
`;

/**
 * Gateway options (merge over durableOptions()) that wrap EVENTS. `decide({ kind, bodies, n })` → true to fail
 * the call (n counts calls from 1). The default fails the first N calls whose bodies contain `queue-outage-N`.
 * Returns { options, calls } where `calls` records { kind, bodies, failed }.
 */
/** Fails the first N calls whose bodies contain `queue-outage-N` (per distinct marker). */
export function outageMarkers() {
  const failedByMarker = new Map();
  return ({ bodies }) => {
    for (const body of bodies) {
      for (const [marker, n] of body.matchAll(/queue-outage-(\d+)/g)) {
        const failed = failedByMarker.get(marker) ?? 0;
        if (failed < Number(n)) {
          failedByMarker.set(marker, failed + 1);
          return true;
        }
      }
    }
    return false;
  };
}

export function wrappedQueue(durable, { decide } = {}) {
  const calls = [];
  const choose = decide ?? outageMarkers();
  const { queueProducers, ...rest } = durable;
  const options = {
    ...rest,
    wrappedBindings: { EVENTS: "queue-wrap" },
    auxWorkers: [{
      name: "queue-wrap",
      modules: true,
      script: WRAPPER,
      queueProducers: { REAL: queueProducers.EVENTS },
      serviceBindings: {
        async CONTROL(request) {
          const { kind, bodies } = await request.json();
          const call = { kind, bodies, failed: false, at: Date.now() };
          calls.push(call);
          call.failed = Boolean(choose({ kind, bodies, n: calls.length }));
          return new Response(call.failed ? "refused" : "ok", { status: call.failed ? 503 : 200 });
        },
      },
    }],
  };
  return { options, calls };
}
