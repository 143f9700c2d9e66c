//! E-mail attachments in the `ATTACHMENTS` R2 bucket: put before the message is acknowledged, got for a link
//! the core has verified ([`sekisho::attachments`] decides keys, caps, links and headers). The bucket is called
//! through its JavaScript API directly (two methods), which keeps `worker`'s R2 wrappers out of the Wasm.

use std::sync::atomic::{AtomicBool, Ordering};

use js_sys::{Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Env, Headers, Response};

use sekisho::attachments::{self, Fetch, StoredPart};
use sekisho::gateway::Refusal;
use sekisho::{log, Rejection};

use super::emit;

#[wasm_bindgen]
extern "C" {
    pub(super) type R2Bucket;
    #[wasm_bindgen(method, catch)]
    fn put(
        this: &R2Bucket,
        key: &str,
        value: &Uint8Array,
        options: &Object,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(method, catch)]
    fn get(this: &R2Bucket, key: &str) -> Result<Promise, JsValue>;

    type R2ObjectBody;
    #[wasm_bindgen(method, getter, js_name = httpMetadata)]
    fn http_metadata(this: &R2ObjectBody) -> JsValue;
    #[wasm_bindgen(method, getter, js_name = customMetadata)]
    fn custom_metadata(this: &R2ObjectBody) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn body(this: &R2ObjectBody) -> worker::worker_sys::web_sys::ReadableStream;
}

static ABSENCE_LOGGED: AtomicBool = AtomicBool::new(false);

fn binding(env: &Env) -> Option<R2Bucket> {
    let value = Reflect::get(
        env.unchecked_ref::<Object>(),
        &attachments::BUCKET_BINDING.into(),
    )
    .ok()?;
    (value.is_object() && Reflect::has(&value, &"put".into()).unwrap_or(false))
        .then(|| value.unchecked_into())
}

/// The bucket, or `None` (logged once per isolate: the gateway then behaves as without attachments).
pub(super) fn bucket(env: &Env) -> Option<R2Bucket> {
    let bucket = binding(env);
    if bucket.is_none() && !ABSENCE_LOGGED.swap(true, Ordering::Relaxed) {
        emit(&log::no_attachment_bucket());
    }
    bucket
}

async fn wait(promise: Result<Promise, JsValue>) -> Result<JsValue, String> {
    let promise = promise.map_err(|error| format!("{error:?}"))?;
    JsFuture::from(promise)
        .await
        .map_err(|error| format!("{error:?}"))
}

fn string_of(object: &JsValue, field: &str) -> Option<String> {
    Reflect::get(object, &field.into()).ok()?.as_string()
}

/// Puts every part not yet in the bucket, one write each: the put is conditional (`If-None-Match: *`), so a
/// part already stored (a message delivered again) is not written again, and R2 answers `null` for it. Returns
/// how many were already there.
pub(super) async fn put_all(bucket: &R2Bucket, parts: &[StoredPart]) -> Result<usize, String> {
    let mut already = 0;
    for part in parts {
        let set = |object: &Object, field: &str, value: &JsValue| {
            Reflect::set(object, &field.into(), value).map_err(|error| format!("{error:?}"))
        };
        let http_metadata = Object::new();
        set(
            &http_metadata,
            "contentType",
            &part.content_type.as_str().into(),
        )?;
        let custom_metadata = Object::new();
        if let Some(name) = &part.filename {
            set(&custom_metadata, "filename", &name.as_str().into())?;
        }
        let only_if = Object::new();
        set(&only_if, "etagDoesNotMatch", &"*".into())?;
        let options = Object::new();
        set(&options, "httpMetadata", &http_metadata)?;
        set(&options, "customMetadata", &custom_metadata)?;
        set(&options, "onlyIf", &only_if)?;
        let bytes = Uint8Array::from(part.bytes.as_slice());
        if wait(bucket.put(&part.key, &bytes, &options))
            .await?
            .is_null()
        {
            already += 1;
        }
    }
    Ok(already)
}

/// The stored bytes with their type and file name, or 404 when the object is gone (retention). The object's body
/// is streamed to the response; it never passes through Wasm memory.
pub(super) async fn serve(env: &Env, fetch: &Fetch) -> worker::Result<Response> {
    let Some(bucket) = binding(env) else {
        return super::respond_refused(&not_found());
    };
    let object = wait(bucket.get(&fetch.key))
        .await
        .map_err(worker::Error::RustError)?;
    if object.is_null() || object.is_undefined() {
        return super::respond_refused(&not_found());
    }
    let object: R2ObjectBody = object.unchecked_into();
    let content_type = string_of(&object.http_metadata(), "contentType");
    let filename = string_of(&object.custom_metadata(), "filename");
    let headers = Headers::new();
    headers.set(
        "content-type",
        &attachments::served_content_type(content_type.as_deref()),
    )?;
    for (name, value) in attachments::response_headers(filename.as_deref()) {
        headers.set(name, &value)?;
    }
    Ok(Response::builder()
        .with_headers(headers)
        .stream(object.body()))
}

fn not_found() -> Refusal {
    Refusal {
        rejection: Rejection::RouteNotFound,
        channel: None,
        account: None,
    }
}
