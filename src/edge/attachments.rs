//! E-mail attachments in the `ATTACHMENTS` R2 bucket: put before the message is acknowledged, got for a link
//! the core has verified ([`crate::attachments`] decides keys, caps, links and headers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use worker::{Bucket, Env, Headers, HttpMetadata, Response};

use crate::attachments::{self, Fetch, StoredPart};
use crate::log;

use super::emit;

static ABSENCE_LOGGED: AtomicBool = AtomicBool::new(false);

/// The bucket, or `None` (logged once per isolate: the gateway then behaves as without attachments).
pub(super) fn bucket(env: &Env) -> Option<Bucket> {
    let bucket = env.bucket(attachments::BUCKET_BINDING).ok();
    if bucket.is_none() && !ABSENCE_LOGGED.swap(true, Ordering::Relaxed) {
        emit(&log::no_attachment_bucket());
    }
    bucket
}

/// Puts every part not yet in the bucket; the number already there (a message delivered again).
pub(super) async fn put_all(bucket: &Bucket, parts: &[StoredPart]) -> worker::Result<usize> {
    let mut already = 0;
    for part in parts {
        if bucket.head(part.key.as_str()).await?.is_some() {
            already += 1;
            continue;
        }
        let metadata = HttpMetadata {
            content_type: Some(part.content_type.clone()),
            ..HttpMetadata::default()
        };
        let mut custom = HashMap::new();
        if let Some(name) = &part.filename {
            custom.insert("filename".to_owned(), name.clone());
        }
        bucket
            .put(part.key.as_str(), part.bytes.clone())
            .http_metadata(metadata)
            .custom_metadata(custom)
            .execute()
            .await?;
    }
    Ok(already)
}

/// The stored bytes with their type and file name, or 404 when the object is gone (retention).
pub(super) async fn serve(env: &Env, fetch: &Fetch) -> worker::Result<Response> {
    let Ok(bucket) = env.bucket(attachments::BUCKET_BINDING) else {
        return super::respond_refused(&not_found());
    };
    let Some(object) = bucket.get(fetch.key.as_str()).execute().await? else {
        return super::respond_refused(&not_found());
    };
    let content_type =
        attachments::served_content_type(object.http_metadata().content_type.as_deref());
    let filename = object.custom_metadata()?.remove("filename");
    let bytes = match object.body() {
        Some(body) => body.bytes().await?,
        None => Vec::new(),
    };
    let headers = Headers::new();
    headers.set("content-type", &content_type)?;
    for (name, value) in attachments::response_headers(filename.as_deref()) {
        headers.set(name, &value)?;
    }
    Ok(Response::from_bytes(bytes)?.with_headers(headers))
}

fn not_found() -> crate::gateway::Refusal {
    crate::gateway::Refusal {
        rejection: crate::Rejection::RouteNotFound,
        channel: None,
        account: None,
    }
}
