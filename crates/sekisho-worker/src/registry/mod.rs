//! The account registry's IO: the hot-path look-up (isolate cache → KV → the account's writer), the admin API
//! ([`admin`]) and the per-account writer Durable Object ([`writer`]). Decisions are
//! [`sekisho::registry`]'s.

pub(crate) mod admin;
pub(crate) mod writer;

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Env, ObjectNamespace};

use super::{binding, call_object, emit, now_ms};
use sekisho::config::Bindings;
use sekisho::crypto::seal::{SealingKeys, SEALING_KEY_BINDING};
use sekisho::log;
use sekisho::registry::api::WriterCall;
use sekisho::registry::cache::{AccountCache, CachePolicy, Lookup};
use sekisho::registry::record::{self, OpenedAccount, StoredAccount};
use sekisho::registry::writer::{WriterReply, WriterRequest};
use sekisho::registry::{record_key, writer_name, STORE_BINDING, WRITER_BINDING};
use sekisho::Rejection;

/// How long the KV edge cache may serve a record (its minimum): with the isolate's 30 s, a retired value or a
/// deleted account stops being accepted within 60 s.
pub(crate) const KV_CACHE_TTL_S: u64 = 30;

thread_local! {
    static CACHE: RefCell<AccountCache<Rc<OpenedAccount>>> =
        RefCell::new(AccountCache::new(CachePolicy::default()));
}

/// A registry account found for a request.
pub(crate) struct Found {
    pub(crate) account: Rc<OpenedAccount>,
    /// Served from the isolate's memory (a failed signature may then read it again).
    pub(crate) cached: bool,
}

/// The `ACCOUNTS` KV namespace, or `None` when it is not bound (the registry is then off).
pub(crate) fn store(env: &Env) -> Option<worker::kv::KvStore> {
    let value = js_sys::Reflect::get(env, &STORE_BINDING.into()).ok()?;
    if value.is_undefined() {
        return None;
    }
    worker::kv::KvStore::from_this(env, STORE_BINDING).ok()
}

/// The registry account `channel/account`, if the registry has one. No `ACCOUNTS` binding: the registry is off
/// and this costs nothing. `force`: skip the isolate's cache (after a failed signature, when allowed).
pub(crate) async fn lookup(
    env: &Env,
    bindings: &dyn Bindings,
    channel: &str,
    account: &str,
    force: bool,
) -> Result<Option<Found>, Rejection> {
    let Some(kv) = store(env) else {
        return Ok(None);
    };
    let key = writer_name(channel, account);
    let now = now_ms();
    if !force {
        let cached = CACHE.with(|cache| match cache.borrow_mut().lookup(&key, now) {
            Lookup::Present(found) => Some(Ok(Some(found.clone()))),
            Lookup::Absent => Some(Ok(None)),
            Lookup::OverBudget => Some(Err(Rejection::RegistryBusy)),
            Lookup::Read => None,
        });
        if let Some(answer) = cached {
            return answer.map(|found| {
                found.map(|account| Found {
                    account,
                    cached: true,
                })
            });
        }
    }
    let stored = read_record(env, &kv, channel, account).await?;
    let opened = match stored {
        None => None,
        Some(record) => Some(Rc::new(open(&record, bindings)?)),
    };
    CACHE.with(|cache| {
        let weight = opened.as_ref().map_or(0, |account| account.weight());
        cache.borrow_mut().insert(&key, opened.clone(), weight, now);
    });
    Ok(opened.map(|account| Found {
        account,
        cached: false,
    }))
}

/// The registry e-mail account that owns `address` (through the address index: one read, not a scan).
pub(crate) async fn address_owner(
    env: &Env,
    bindings: &dyn Bindings,
    address: &str,
) -> Result<Option<Found>, Rejection> {
    let Some(kv) = store(env) else {
        return Ok(None);
    };
    let owner = kv
        .get(&sekisho::registry::address_key(address))
        .cache_ttl(KV_CACHE_TTL_S)
        .text()
        .await
        .map_err(|error| unavailable("registry address read failed", &error.to_string()))?;
    let Some((channel, account)) = owner.as_deref().and_then(|owner| owner.split_once('/')) else {
        return Ok(None);
    };
    lookup(env, bindings, channel, account, false).await
}

/// Whether an account whose signature failed may be read again now.
pub(crate) fn may_refresh(channel: &str, account: &str) -> bool {
    let key = writer_name(channel, account);
    CACHE.with(|cache| cache.borrow().may_refresh_after_failure(&key, now_ms()))
}

/// Drops an account from this isolate's cache (after this isolate wrote it).
pub(crate) fn forget(channel: &str, account: &str) {
    CACHE.with(|cache| cache.borrow_mut().forget(&writer_name(channel, account)));
}

/// KV first (the edge-cached replica); on a miss the account's writer, which holds the newest version: a new
/// account answers its first request at once, wherever KV has not caught up yet.
async fn read_record(
    env: &Env,
    kv: &worker::kv::KvStore,
    channel: &str,
    account: &str,
) -> Result<Option<StoredAccount>, Rejection> {
    let text = kv
        .get(&record_key(channel, account))
        .cache_ttl(KV_CACHE_TTL_S)
        .text()
        .await
        .map_err(|error| unavailable("registry read failed", &error.to_string()))?;
    if let Some(text) = text {
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|error| unavailable("registry record unreadable", &error.to_string()));
    }
    let Some(namespace) = binding::<ObjectNamespace>(env, WRITER_BINDING) else {
        return Ok(None);
    };
    let request = WriterRequest {
        channel: channel.to_owned(),
        account: account.to_owned(),
        call: WriterCall::Get,
        token: None,
        origin: String::new(),
    };
    let reply: WriterReply = call_writer(&namespace, &request)
        .await
        .map_err(|error| unavailable("registry writer unreachable", &error.to_string()))?;
    Ok(reply
        .body
        .get("record")
        .and_then(|record| serde_json::from_value(record.clone()).ok()))
}

pub(crate) async fn call_writer(
    namespace: &ObjectNamespace,
    request: &WriterRequest,
) -> worker::Result<WriterReply> {
    let stub = namespace
        .id_from_name(&writer_name(&request.channel, &request.account))?
        .get_stub()?;
    call_object(&stub, request).await
}

fn open(record: &StoredAccount, bindings: &dyn Bindings) -> Result<OpenedAccount, Rejection> {
    let keys = SealingKeys::from_bindings(bindings).map_err(|error| {
        emit(&log::operation_failed(
            "registry sealing key",
            &error.to_string(),
        ));
        Rejection::misconfigured(SEALING_KEY_BINDING)
    })?;
    record::open(record, &keys).map_err(|failure| {
        emit(&log::operation_failed(
            "registry record",
            &failure.to_string(),
        ));
        Rejection::misconfigured(format!(
            "{SEALING_KEY_BINDING} (registry account {}/{})",
            failure.channel, failure.account
        ))
    })
}

fn unavailable(what: &str, error: &str) -> Rejection {
    emit(&log::operation_failed(what, error));
    Rejection::RegistryUnavailable
}

/// 96 random bits for a sealing nonce, from the runtime's `crypto.getRandomValues`; `None` if it failed (the
/// write is then refused: a repeated nonce would break AES-GCM).
pub(crate) fn random_nonce() -> Option<[u8; 12]> {
    let mut nonce = [0u8; 12];
    let array = js_sys::Uint8Array::new_with_length(12);
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into()).ok();
    let get_random = crypto
        .as_ref()
        .and_then(|crypto| js_sys::Reflect::get(crypto, &"getRandomValues".into()).ok())
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let (Some(crypto), Some(get_random)) = (crypto, get_random) {
        if get_random.call1(&crypto, &array).is_ok() {
            array.copy_to(&mut nonce);
            return Some(nonce);
        }
    }
    None
}

use wasm_bindgen::JsCast;
