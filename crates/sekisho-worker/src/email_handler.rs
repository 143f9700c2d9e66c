//! The e-mail entry point: Cloudflare Email Routing hands a message to the Worker; the core decides between
//! accepting it (attachments stored first), a bounce and a temporary failure.

use wasm_bindgen::JsCast;
use worker::{Context, Env, ForwardableEmailMessage};

use crate::{attachments, charsets, emit, intake, metrics, now_ms, registry, EnvBindings};
use sekisho::config::Bindings;
use sekisho::gateway::Refusal;
use sekisho::log;
use sekisho::mail::{self as email, EmailAnswer};
use sekisho::registry::overlay::RegistryOverlay;

/// Cloudflare Email Routing → `email` handler. Written by hand rather than with `#[event(email)]`, whose glue
/// panics when the handler returns an error: a panic would reset the Wasm instance and fail other requests in
/// flight. The core decides between a bounce (`setReject`) and a temporary failure (a thrown error, which
/// Email Routing answers with a temporary SMTP failure so the sending server retries).
#[wasm_bindgen::prelude::wasm_bindgen]
#[allow(unreachable_pub)] // exported to JavaScript by wasm-bindgen, which requires `pub`
pub async fn email(
    message: ForwardableEmailMessage,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    let ctx = Context::new(ctx);
    let bindings = EnvBindings::of(&env);
    let recording = metrics::RequestMetrics::start(&env, &ctx);
    let envelope_to = message.to();
    let envelope_from = message.from();
    // A recipient address of a registry account: its index entry names the account, read through the seam.
    let registry_account = match registry::address_owner(&env, &bindings, &envelope_to).await {
        Ok(found) => found,
        Err(rejection) => {
            return answer_email(
                &message,
                &Refusal {
                    rejection,
                    channel: Some(email::CHANNEL),
                    account: None,
                },
            )
            .await
        }
    };
    let overlay = registry_account
        .as_ref()
        .map(|found| RegistryOverlay::new(&bindings, &found.account));
    let bindings: &dyn Bindings = match &overlay {
        Some(overlay) => overlay,
        None => &bindings,
    };
    // Refuse on the announced size and the recipient before reading the stream.
    let account = match email::admit(&envelope_to, message.raw_size() as u64, bindings) {
        Ok(account) => account,
        Err(rejection) => {
            return answer_email(
                &message,
                &Refusal {
                    rejection,
                    channel: Some(email::CHANNEL),
                    account: None,
                },
            )
            .await
        }
    };
    let raw = match message.raw_bytes().await {
        Ok(raw) => raw,
        Err(error) => {
            emit(&log::operation_failed(
                "could not read the e-mail stream",
                &error.to_string(),
            ));
            return Err(js_sys::Error::new("temporary failure: could not read the message").into());
        }
    };
    let inbound = email::InboundEmail {
        envelope_from: &envelope_from,
        envelope_to: &envelope_to,
        raw: &raw,
    };
    let bucket = attachments::bucket(&env);
    let presence = match bucket {
        Some(_) => email::Bucket::Present,
        None => email::Bucket::Absent,
    };
    let accepted = match email::accept(
        &inbound,
        &account,
        &bindings,
        now_ms(),
        &charsets::RuntimeCharsets,
        presence,
    ) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            recording.observe_refusal(&refusal);
            return answer_email(&message, &refusal).await;
        }
    };
    let event_id = accepted
        .accepted
        .deliveries
        .first()
        .map(|delivery| delivery.webhook_id.clone())
        .unwrap_or_default();
    if let (Some(bucket), false) = (&bucket, accepted.stored.is_empty()) {
        // Stored before Email Routing gets its answer: a failure is a temporary one, and the sender retries.
        match attachments::put_all(bucket, &accepted.stored).await {
            Ok(already) => emit(&log::attachments_stored(
                &event_id,
                accepted.stored.len().saturating_sub(already),
                already,
            )),
            Err(error) => {
                emit(&log::operation_failed(
                    "could not store the attachments",
                    &error,
                ));
                return Err(js_sys::Error::new(
                    "temporary failure: could not store the attachments",
                )
                .into());
            }
        }
        if let Some(problem) = &accepted.link_problem {
            emit(&log::attachment_links_disabled(problem, &event_id));
        }
    }
    let accepted = accepted.accepted;
    match intake::dispatch(&env, &ctx, &accepted).await {
        Ok(acceptance) => {
            recording.accepted(&accepted, acceptance.duplicate_events);
            Ok(wasm_bindgen::JsValue::UNDEFINED)
        }
        Err(refusal) => {
            recording.observe_refusal(&refusal);
            answer_email(&message, &refusal).await
        }
    }
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The message as seen for `setReject`, keeping what it returns: nothing in production, but a promise when
    /// workerd's local e-mail endpoint (`wrangler dev`) hands the message over RPC, where the rejection only
    /// counts once it settles.
    type RejectableEmail;
    #[wasm_bindgen(method, js_name = "setReject")]
    fn set_reject(this: &RejectableEmail, reason: &str) -> wasm_bindgen::JsValue;
}

async fn answer_email(
    message: &ForwardableEmailMessage,
    refusal: &Refusal,
) -> Result<wasm_bindgen::JsValue, wasm_bindgen::JsValue> {
    emit(&log::request_rejected(refusal));
    match email::answer_for(&refusal.rejection) {
        EmailAnswer::TemporaryFailure(reason) => Err(js_sys::Error::new(&reason).into()),
        EmailAnswer::Bounce(reason) => {
            let returned = message
                .unchecked_ref::<RejectableEmail>()
                .set_reject(&reason);
            wasm_bindgen_futures::JsFuture::from(js_sys::Promise::resolve(&returned))
                .await
                .map(|_| wasm_bindgen::JsValue::UNDEFINED)
        }
    }
}
