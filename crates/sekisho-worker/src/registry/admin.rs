//! The registry's admin API: routes decided by [`sekisho::registry::api`], writes performed by the account's
//! writer, listings read from KV.

use futures_util::future::join_all;
use serde_json::{json, Value};
use worker::{Env, Headers, ObjectNamespace, Request, Response};

use super::{call_writer, forget, store};
use crate::{binding, emit, EnvBindings};
use sekisho::admin::identify;
use sekisho::crypto::seal::SealingKeys;
use sekisho::log;
use sekisho::registry::api::{AccountPath, RegistryAction, RegistryError, WriterCall};
use sekisho::registry::audit::AUDIT_PREFIX;
use sekisho::registry::fields::{channel_names, fields_of};
use sekisho::registry::listing::{env_accounts, env_page, env_view, ListCursor};
use sekisho::registry::record::{etag, StoredAccount};
use sekisho::registry::writer::{record_webhook_url, WriterReply, WriterRequest};
use sekisho::registry::{record_prefix, WRITER_BINDING};

/// The largest admin request body read (a PEM private key and a dozen fields fit many times over).
const MAX_ADMIN_BODY: usize = 64 * 1024;
/// Records re-sealed per `POST /admin/api/registry/reseal` call (each is one KV read and one writer call).
const RESEAL_PAGE: u64 = 50;

/// `PUBLIC_URL`, else the origin the admin called: the base of every webhook URL shown.
fn public_origin(bindings: &EnvBindings, request_origin: &str) -> String {
    sekisho::metrics::alert::console_origin(bindings).unwrap_or_else(|| request_origin.to_owned())
}

fn json_response(status: u16, body: &Value, etag: Option<&str>) -> worker::Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "no-store")?;
    if let Some(etag) = etag {
        headers.set("etag", etag)?;
    }
    Ok(Response::from_bytes(body.to_string().into_bytes())?
        .with_status(status)
        .with_headers(headers))
}

fn error_response(error: &RegistryError) -> worker::Result<Response> {
    json_response(error.status().as_u16(), &error.body(), None)
}

pub(crate) async fn run(
    action: RegistryAction,
    req: &mut Request,
    env: &Env,
    request_origin: &str,
) -> worker::Result<Response> {
    let bindings = EnvBindings::of(env);
    let origin = public_origin(&bindings, request_origin);
    if let RegistryAction::Channels = action {
        return json_response(200, &channels(), None);
    }
    let (Some(_), Some(writers)) = (store(env), binding::<ObjectNamespace>(env, WRITER_BINDING))
    else {
        return error_response(&RegistryError::Misconfigured(
            sekisho::registry::STORE_BINDING.to_owned(),
        ));
    };
    let result = match action {
        RegistryAction::Get(path) => get(&writers, &bindings, &path, &origin).await,
        RegistryAction::List {
            channel,
            limit,
            cursor,
        } => list(env, &bindings, channel, limit, cursor.as_deref(), &origin).await,
        RegistryAction::Audit { limit, cursor } => audit(env, limit, cursor).await,
        RegistryAction::Reseal { cursor } => reseal(env, &writers, cursor).await,
        RegistryAction::Channels => Ok(WriterReply {
            status: 200,
            body: channels(),
            etag: None,
        }),
        write => {
            let authorization = req.headers().get("authorization").ok().flatten();
            let token = identify(authorization.as_deref(), &bindings).ok();
            let if_match = req.headers().get("if-match").ok().flatten();
            let body = match req.bytes().await {
                Ok(body) if body.len() <= MAX_ADMIN_BODY => body,
                Ok(_) => return error_response(&RegistryError::InvalidBody),
                Err(_) => return error_response(&RegistryError::InvalidBody),
            };
            perform(&writers, &write, &body, if_match.as_deref(), token, &origin).await
        }
    };
    match result {
        Ok(reply) => json_response(reply.status, &reply.body, reply.etag.as_deref()),
        Err(error) => error_response(&error),
    }
}

async fn perform(
    writers: &ObjectNamespace,
    action: &RegistryAction,
    body: &[u8],
    if_match: Option<&str>,
    token: Option<sekisho::registry::audit::AdminIdentity>,
    origin: &str,
) -> Result<WriterReply, RegistryError> {
    let path = match action {
        RegistryAction::Put(path)
        | RegistryAction::AddSecret(path, _)
        | RegistryAction::RetireSecret(path, _, _)
        | RegistryAction::Delete(path) => path,
        _ => return Err(RegistryError::NotFound),
    };
    let call = WriterCall::from_request(action, body, if_match)?;
    let request = WriterRequest {
        channel: path.channel.to_owned(),
        account: path.account.clone(),
        call,
        token,
        origin: origin.to_owned(),
    };
    let reply = call_writer(writers, &request).await.map_err(|error| {
        emit(&log::operation_failed(
            "registry writer",
            &error.to_string(),
        ));
        RegistryError::Unavailable
    })?;
    forget(path.channel, &path.account);
    Ok(reply)
}

async fn stored(
    writers: &ObjectNamespace,
    path: &AccountPath,
) -> Result<Option<StoredAccount>, RegistryError> {
    let request = WriterRequest {
        channel: path.channel.to_owned(),
        account: path.account.clone(),
        call: WriterCall::Get,
        token: None,
        origin: String::new(),
    };
    let reply = call_writer(writers, &request)
        .await
        .map_err(|_| RegistryError::Unavailable)?;
    Ok(reply
        .body
        .get("record")
        .and_then(|record| serde_json::from_value(record.clone()).ok()))
}

async fn get(
    writers: &ObjectNamespace,
    bindings: &EnvBindings,
    path: &AccountPath,
    origin: &str,
) -> Result<WriterReply, RegistryError> {
    if let Some(record) = stored(writers, path).await? {
        let keys = SealingKeys::from_bindings(bindings).ok();
        let url = match &keys {
            Some(keys) => record_webhook_url(&record, keys, origin),
            None => {
                sekisho::registry::record::webhook_url(origin, path.channel, &path.account, None)
            }
        };
        return Ok(WriterReply {
            status: 200,
            body: record.view(&url),
            etag: Some(etag(record.version)),
        });
    }
    let in_env = env_accounts(bindings, Some(path.channel))
        .iter()
        .any(|account| account.account == path.account);
    if in_env {
        return Ok(WriterReply {
            status: 200,
            body: env_view(bindings, path.channel, &path.account, origin),
            etag: None,
        });
    }
    Err(RegistryError::NotFound)
}

async fn list(
    env: &Env,
    bindings: &EnvBindings,
    channel: Option<&'static str>,
    limit: usize,
    cursor: Option<&str>,
    origin: &str,
) -> Result<WriterReply, RegistryError> {
    let limit = limit.min(100);
    let mut accounts: Vec<Value> = Vec::new();
    let mut next = ListCursor::parse(cursor)?;
    if let ListCursor::Env(offset) = next {
        let all = env_accounts(bindings, channel);
        let (page, after) = env_page(&all, offset, limit);
        accounts.extend(
            page.iter()
                .map(|a| env_view(bindings, a.channel, &a.account, origin)),
        );
        next = after;
    }
    let mut next_cursor = None;
    if let ListCursor::Store(store_cursor) = next {
        let remaining = limit.saturating_sub(accounts.len());
        if remaining == 0 {
            next_cursor = Some(ListCursor::Store(store_cursor).encode());
        } else {
            let kv = store(env).ok_or(RegistryError::Unavailable)?;
            let mut listing = kv
                .list()
                .prefix(record_prefix(channel))
                .limit(remaining as u64);
            if let Some(store_cursor) = store_cursor {
                listing = listing.cursor(store_cursor);
            }
            let page = listing
                .execute()
                .await
                .map_err(|_| RegistryError::Unavailable)?;
            let keys = SealingKeys::from_bindings(bindings).ok();
            let records = join_all(page.keys.iter().map(|key| kv.get(&key.name).text())).await;
            for record in records.into_iter().flatten().flatten() {
                let Ok(record) = serde_json::from_str::<StoredAccount>(&record) else {
                    continue;
                };
                let url = match &keys {
                    Some(keys) => record_webhook_url(&record, keys, origin),
                    None => sekisho::registry::record::webhook_url(
                        origin,
                        &record.channel,
                        &record.account,
                        None,
                    ),
                };
                accounts.push(record.view(&url));
            }
            if !page.list_complete {
                next_cursor = page.cursor.map(|c| ListCursor::Store(Some(c)).encode());
            }
        }
    } else {
        next_cursor = Some(next.encode());
    }
    Ok(WriterReply {
        status: 200,
        body: json!({"accounts": accounts, "next_cursor": next_cursor}),
        etag: None,
    })
}

async fn audit(
    env: &Env,
    limit: usize,
    cursor: Option<String>,
) -> Result<WriterReply, RegistryError> {
    let kv = store(env).ok_or(RegistryError::Unavailable)?;
    let mut listing = kv
        .list()
        .prefix(AUDIT_PREFIX.to_owned())
        .limit(limit as u64);
    if let Some(cursor) = cursor {
        listing = listing.cursor(cursor);
    }
    let page = listing
        .execute()
        .await
        .map_err(|_| RegistryError::Unavailable)?;
    // Each entry is also the key's metadata: one list call reads a whole page.
    let entries: Vec<Value> = page
        .keys
        .iter()
        .filter_map(|key| key.metadata.clone())
        .collect();
    let next_cursor = if page.list_complete {
        None
    } else {
        page.cursor
    };
    Ok(WriterReply {
        status: 200,
        body: json!({"entries": entries, "next_cursor": next_cursor}),
        etag: None,
    })
}

async fn reseal(
    env: &Env,
    writers: &ObjectNamespace,
    cursor: Option<String>,
) -> Result<WriterReply, RegistryError> {
    let kv = store(env).ok_or(RegistryError::Unavailable)?;
    let bindings = EnvBindings::of(env);
    let keys = SealingKeys::from_bindings(&bindings).map_err(|_| {
        RegistryError::Misconfigured(sekisho::crypto::seal::SEALING_KEY_BINDING.to_owned())
    })?;
    let mut listing = kv.list().prefix(record_prefix(None)).limit(RESEAL_PAGE);
    if let Some(cursor) = cursor {
        listing = listing.cursor(cursor);
    }
    let page = listing
        .execute()
        .await
        .map_err(|_| RegistryError::Unavailable)?;
    let (mut resealed, mut scanned) = (0u64, 0u64);
    for key in &page.keys {
        let Ok(Some(text)) = kv.get(&key.name).text().await else {
            continue;
        };
        let Ok(record) = serde_json::from_str::<StoredAccount>(&text) else {
            continue;
        };
        scanned += 1;
        if !record.needs_reseal(&keys) {
            continue;
        }
        let request = WriterRequest {
            channel: record.channel.clone(),
            account: record.account.clone(),
            call: WriterCall::Reseal,
            token: None,
            origin: String::new(),
        };
        let reply = call_writer(writers, &request)
            .await
            .map_err(|_| RegistryError::Unavailable)?;
        match reply.status {
            200 if reply
                .body
                .get("resealed")
                .and_then(serde_json::Value::as_bool)
                == Some(true) =>
            {
                resealed += 1
            }
            200 => {}
            _ => return Ok(reply),
        }
    }
    let next_cursor = if page.list_complete {
        None
    } else {
        page.cursor
    };
    Ok(WriterReply {
        status: 200,
        body: json!({"resealed": resealed, "scanned": scanned, "next_cursor": next_cursor}),
        etag: None,
    })
}

/// Each channel's fields, for the console's forms.
fn channels() -> Value {
    let channels: Vec<Value> = channel_names()
        .map(|name| json!({"channel": name, "fields": fields_of(name).unwrap_or_default()}))
        .collect();
    json!({ "channels": channels })
}
