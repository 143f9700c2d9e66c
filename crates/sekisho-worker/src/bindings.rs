//! The Worker's bindings: string bindings (`[vars]` and secrets) read once per `env` object, and typed
//! bindings (queues, Durable Object namespaces, buckets) looked up without formatting errors.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use worker::Env;

use sekisho::config::Bindings;

/// The Worker's string bindings (`[vars]` and secrets), read from the runtime's `env` once per `env` object
/// and kept for the isolate's life: a request's dozen or more look-ups (most of them settings left unset) are
/// then map look-ups instead of three calls across the JS boundary each.
///
/// Trade, and why it keeps rotation working: the runtime hands every request of an isolate the same `env`
/// object, and a changed secret or variable is a new deployment version whose isolates get a new one (locally:
/// a Worker restarted by `wrangler dev` or Miniflare's `setOptions`). The snapshot is taken per object identity,
/// so a new `env` is read afresh on its first request; `tests/e2e/bindings.test.mjs` rotates a secret after
/// warm requests and checks that the next request sees it. A value changed inside the same object would not be seen;
/// the runtime does not do that.
pub(crate) struct EnvBindings(Rc<StringBindings>);

/// Sorted by name for a binary search: as fast as hashing for the few dozen to few hundred bindings of a
/// deployment, for 1.4 KB less gzipped Wasm than a `HashMap`.
type StringBindings = Vec<(String, String)>;

/// A few `env` objects at once: the fetch handler's and each Durable Object class's may differ in one isolate.
const SNAPSHOTS: usize = 4;

thread_local! {
    static SNAPSHOT: RefCell<Vec<(wasm_bindgen::JsValue, Rc<StringBindings>)>> =
        const { RefCell::new(Vec::new()) };
}

impl EnvBindings {
    pub(crate) fn of(env: &Env) -> Self {
        let env: &wasm_bindgen::JsValue = env.as_ref();
        SNAPSHOT.with(|cell| {
            let mut snapshots = cell.borrow_mut();
            if let Some((_, values)) = snapshots
                .iter()
                .find(|(seen, _)| js_sys::Object::is(seen, env))
            {
                return EnvBindings(values.clone());
            }
            let values = Rc::new(string_bindings(env));
            if snapshots.len() == SNAPSHOTS {
                snapshots.remove(0);
            }
            snapshots.push((env.clone(), values.clone()));
            EnvBindings(values)
        })
    }
}

/// Every own property of `env` whose value is a string; queues, Durable Object namespaces and buckets are
/// objects and read with [`binding`].
fn string_bindings(env: &wasm_bindgen::JsValue) -> StringBindings {
    let mut bindings: StringBindings =
        js_sys::Object::entries(env.unchecked_ref::<js_sys::Object>())
            .iter()
            .filter_map(|entry| {
                let pair = entry.unchecked_into::<js_sys::Array>();
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect();
    // Property names are unique, so the order is total.
    bindings.sort_unstable_by(|(a, _), (b, _)| a.cmp(b));
    bindings
}

impl Bindings for EnvBindings {
    fn get(&self, name: &str) -> Option<String> {
        let index = self
            .0
            .binary_search_by(|(binding, _)| binding.as_str().cmp(name))
            .ok()?;
        self.0.get(index).map(|(_, value)| value.clone())
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(binding, _)| binding.clone()).collect()
    }
}

/// The binding `name` of type `T`, or `None` when there is none (or it has another type): what
/// `Env::get_binding` decides, without formatting an error message for the binding that is not configured —
/// the usual case on the request path (no queue in best-effort mode, no metrics object).
pub(crate) fn binding<T: worker::EnvBinding>(env: &Env, name: &str) -> Option<T> {
    let value = js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name)).ok()?;
    if value.is_undefined() {
        return None;
    }
    T::get(value).ok()
}
