// The cost meter of `make bench-cost`: a main module put in front of the built Worker (build/index.js), never
// deployed. It hands Sekisho the same bindings, each wrapped to count the operations Cloudflare bills, and
// subclasses nothing of Sekisho's own: the entry point and the Durable Object classes are the built ones, given
// wrapped `env` and `state` objects.
//
// Counted (all in this isolate, read with GET /__meter, zeroed with POST /__meter/reset):
//   worker.fetch / worker.email / worker.queue_batches  Worker invocations (queue consumer batches included)
//   do.<Class>.requests / do.<Class>.alarms              Durable Object requests per class (alarms are billed as requests)
//   sql.<Class>.rows_read / rows_written                 the SQLite cursors' rowsRead / rowsWritten
//   queue.<name>.writes / reads / deletes                queue operations, one per 64 KB of each message
//   r2.class_a / r2.class_b, kv.reads / kv.writes / kv.lists / kv.deletes
//   outbound.fetch                                      subrequests to the Internet (deliveries, replies, alerts)
//   bytes.queue_written                                 bytes written to the queue (what a queued event keeps)
// and requests per Durable Object (class and name) with GET /__meter/objects.
// The wrapper classes carry the constructor names workers-rs checks (WorkerQueue, DurableObjectNamespace).
import * as Real from "./index.js";

const counts = (globalThis.__sekishoMeter ??= {});
/** Requests per Durable Object (class and name), for the load run across accounts (GET /__meter/objects). */
const objects = (globalThis.__sekishoObjects ??= {});
const add = (name, n = 1) => {
  counts[name] = (counts[name] ?? 0) + n;
};
const encoder = new TextEncoder();
const sizeOf = (body) => (typeof body === "string" ? encoder.encode(body).length : encoder.encode(JSON.stringify(body ?? null)).length);
const chunks = (bytes) => Math.max(1, Math.ceil(bytes / 65536));

// Outbound subrequests: the Wasm calls `globalThis.fetch` (looked up at each call).
const realFetch = globalThis.fetch;
globalThis.fetch = function meteredFetch(...args) {
  add("outbound.fetch");
  return realFetch.apply(this, args);
};

class WorkerQueue {
  constructor(real, name) {
    this.real = real;
    this.name = name;
  }
  send(body, options) {
    const bytes = sizeOf(body);
    add(`queue.${this.name}.writes`, chunks(bytes));
    add("bytes.queue_written", bytes);
    return this.real.send(body, options);
  }
  sendBatch(messages, options) {
    for (const m of messages) {
      const bytes = sizeOf(m.body);
      add(`queue.${this.name}.writes`, chunks(bytes));
      add("bytes.queue_written", bytes);
    }
    return this.real.sendBatch(messages, options);
  }
}

class DurableObjectNamespace {
  constructor(real) {
    this.real = real;
  }
  idFromName(name) {
    return this.real.idFromName(name);
  }
  idFromString(id) {
    return this.real.idFromString(id);
  }
  newUniqueId(options) {
    return this.real.newUniqueId(options);
  }
  get(id, options) {
    return this.real.get(id, options);
  }
  getByName(name, options) {
    return this.real.getByName(name, options);
  }
  jurisdiction(j) {
    return new DurableObjectNamespace(this.real.jurisdiction(j));
  }
}

function meteredBucket(real) {
  const classA = new Set(["put", "delete", "list", "createMultipartUpload", "resumeMultipartUpload"]);
  const classB = new Set(["get", "head"]);
  return new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args) => {
        if (classA.has(prop)) add("r2.class_a");
        else if (classB.has(prop)) add("r2.class_b");
        return value.apply(target, args);
      };
    },
  });
}

function meteredKv(real) {
  const kind = { get: "kv.reads", getWithMetadata: "kv.reads", put: "kv.writes", delete: "kv.deletes", list: "kv.lists" };
  return new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args) => {
        if (kind[prop]) add(kind[prop], prop === "get" && Array.isArray(args[0]) ? args[0].length : 1);
        return value.apply(target, args);
      };
    },
  });
}

const wrappedEnvs = new WeakMap();
/** The same `env` object for the same real one (Sekisho snapshots string bindings per `env` identity). */
function meterEnv(env) {
  let wrapped = wrappedEnvs.get(env);
  if (wrapped) return wrapped;
  wrapped = {};
  for (const [name, value] of Object.entries(env)) {
    const kind = value?.constructor?.name;
    if (kind === "WorkerQueue" || (typeof value?.sendBatch === "function" && typeof value?.send === "function")) wrapped[name] = new WorkerQueue(value, name);
    else if (kind === "DurableObjectNamespace" || typeof value?.idFromName === "function") wrapped[name] = new DurableObjectNamespace(value);
    else if (kind === "R2Bucket" || (typeof value?.put === "function" && typeof value?.head === "function")) wrapped[name] = meteredBucket(value);
    else if (kind === "KvNamespace" || (typeof value?.getWithMetadata === "function" && typeof value?.list === "function")) wrapped[name] = meteredKv(value);
    else wrapped[name] = value;
  }
  wrappedEnvs.set(env, wrapped);
  return wrapped;
}

/** `state` whose SQL cursors are remembered, so their rowsRead/rowsWritten are counted after the call. */
function meterState(state, cursors) {
  const bind = (target, value) => (typeof value === "function" ? value.bind(target) : value);
  const sql = (real) => new Proxy(real, {
    get(target, prop) {
      if (prop === "exec") {
        return (...args) => {
          const cursor = target.exec(...args);
          cursors.push(cursor);
          return cursor;
        };
      }
      return bind(target, Reflect.get(target, prop, target));
    },
  });
  const storage = (real) => new Proxy(real, {
    get(target, prop) {
      if (prop === "sql") return sql(target.sql);
      if (prop === "setAlarm") add("storage.set_alarm");
      return bind(target, Reflect.get(target, prop, target));
    },
  });
  return new Proxy(state, {
    get(target, prop) {
      if (prop === "storage") return storage(target.storage);
      return bind(target, Reflect.get(target, prop, target));
    },
  });
}

function meteredObject(Class, name) {
  return class {
    constructor(state, env) {
      this.cursors = [];
      this.key = `${name} ${state.id?.name ?? state.id?.toString()}`;
      this.inner = new Class(meterState(state, this.cursors), meterEnv(env));
    }
    tally() {
      for (const cursor of this.cursors.splice(0)) {
        add(`sql.${name}.rows_read`, cursor.rowsRead ?? 0);
        add(`sql.${name}.rows_written`, cursor.rowsWritten ?? 0);
      }
    }
    async fetch(request) {
      add(`do.${name}.requests`);
      objects[this.key] = (objects[this.key] ?? 0) + 1;
      try {
        return await this.inner.fetch(request);
      } finally {
        this.tally();
      }
    }
    async alarm(info) {
      add(`do.${name}.alarms`);
      try {
        return await this.inner.alarm(info);
      } finally {
        this.tally();
      }
    }
  };
}

export const Deduper = meteredObject(Real.Deduper, "Deduper");
export const DeadLetters = meteredObject(Real.DeadLetters, "DeadLetters");
export const Metrics = meteredObject(Real.Metrics, "Metrics");

function meteredBatch(batch) {
  const queue = batch.queue;
  add("worker.queue_batches");
  const messages = batch.messages.map((message) => {
    add(`queue.${queue}.reads`, chunks(sizeOf(message.body)));
    return new Proxy(message, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (prop === "ack") {
          return () => {
            add(`queue.${queue}.deletes`, chunks(sizeOf(target.body)));
            return value.call(target);
          };
        }
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  });
  return new Proxy(batch, {
    get(target, prop) {
      if (prop === "messages") return messages;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

const Entry = Real.default;
export default class MeteredGateway extends Entry {
  constructor(ctx, env) {
    super(ctx, meterEnv(env));
  }
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/__meter") return Response.json(counts);
    if (path === "/__meter/objects") return Response.json(objects);
    if (path === "/__meter/reset") {
      for (const key of Object.keys(counts)) delete counts[key];
      for (const key of Object.keys(objects)) delete objects[key];
      return Response.json({});
    }
    add("worker.fetch");
    return super.fetch(request);
  }
  async queue(batch) {
    return super.queue(meteredBatch(batch));
  }
  async email(message) {
    add("worker.email");
    return super.email(message);
  }
}
