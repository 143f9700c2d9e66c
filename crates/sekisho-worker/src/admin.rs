//! The admin API's IO over the dead-letter stores (sharded by webhook id, plus the single store of earlier
//! versions; [`sekisho::delivery::dead_letter`] decides which, and merges their pages). Replays re-queue first
//! and delete after, so a failed re-queue never loses a letter.

use futures_util::future::join_all;
use worker::{Env, Response};

use super::consumer::dead_letter_stub;
use super::durable::{DeadLetterCall, Deleted};
use super::{call_object, emit, queue_message, respond_refused, to_response, QUEUE_BINDING};
use sekisho::admin::AdminAction;
use sekisho::channels::EdgeResponse;
use sekisho::delivery::dead_letter::{self, Cursor, MAX_PAGE_SIZE};
use sekisho::delivery::{batches, DeadLetter, Page, PageRequest};
use sekisho::gateway::Refusal;
use sekisho::log;
use sekisho::Rejection;

/// One replay-all call handles at most this many pages of [`MAX_PAGE_SIZE`]; the answer says how many are
/// left, so a very large store is replayed in several calls.
const REPLAY_MAX_PAGES: usize = 20;

pub(super) async fn run(action: AdminAction, env: &Env) -> worker::Result<Response> {
    let result = match action {
        AdminAction::Console
        | AdminAction::Accounts(_)
        | AdminAction::Metrics { .. }
        | AdminAction::Rejections => return super::metrics::answer(action, env).await,
        // Dispatched by the fetch handler, which holds the request they read.
        AdminAction::Registry(_) | AdminAction::OpenApi => return not_found(),
        AdminAction::ListDeadLetters(page) => list(env, page)
            .await
            .map(|page| serde_json::to_value(page).unwrap_or_default()),
        AdminAction::ReplayAll => replay_all(env).await,
        AdminAction::ReplayOne(id) => match get(env, &id).await {
            Ok(letters) if letters.is_empty() => return not_found(),
            Ok(letters) => replay(env, letters)
                .await
                .map(|replayed| serde_json::json!({ "replayed": replayed })),
            Err(error) => Err(error),
        },
        AdminAction::DeleteOne(id) => {
            let call = DeadLetterCall::DeleteId {
                webhook_id: id.clone(),
            };
            match in_each::<Deleted>(env, &dead_letter::objects_for(&id), &call).await {
                Ok(answers) => match answers.iter().map(|d| d.deleted).sum::<u64>() {
                    0 => return not_found(),
                    deleted => Ok(serde_json::json!({ "deleted": deleted })),
                },
                Err(error) => Err(error),
            }
        }
    };
    match result {
        Ok(body) => to_response(&EdgeResponse::json(200, body.to_string())),
        Err(error) => {
            emit(&log::operation_failed(
                "admin action failed",
                &error.to_string(),
            ));
            to_response(&EdgeResponse::json(
                503,
                "{\"error\":\"unavailable\"}".to_owned(),
            ))
        }
    }
}

fn not_found() -> worker::Result<Response> {
    respond_refused(&Refusal {
        rejection: Rejection::RouteNotFound,
        channel: None,
        account: None,
    })
}

/// The same call to each of these stores, in parallel.
async fn in_each<R: serde::de::DeserializeOwned>(
    env: &Env,
    objects: &[String],
    call: &DeadLetterCall,
) -> worker::Result<Vec<R>> {
    let answers = join_all(objects.iter().map(|object| async move {
        call_object::<_, R>(&dead_letter_stub(env, object)?, call).await
    }))
    .await;
    answers.into_iter().collect()
}

async fn list(env: &Env, page: PageRequest) -> worker::Result<Page> {
    let limit = page.limit;
    let pages = in_each::<Page>(
        env,
        &dead_letter::all_objects(),
        &DeadLetterCall::Page { page },
    )
    .await?;
    Ok(Page::merge(pages, limit))
}

async fn get(env: &Env, id: &str) -> worker::Result<Vec<DeadLetter>> {
    let call = DeadLetterCall::Get {
        webhook_id: id.to_owned(),
    };
    let found = in_each::<Vec<DeadLetter>>(env, &dead_letter::objects_for(id), &call).await?;
    Ok(found.into_iter().flatten().collect())
}

/// Re-queues the letters, then deletes exactly those that were re-queued. Returns how many.
async fn replay(env: &Env, letters: Vec<DeadLetter>) -> worker::Result<usize> {
    let queue = env.queue(QUEUE_BINDING)?;
    let mut replayed = 0;
    let mut remaining = letters.into_iter();
    let messages: Vec<String> = remaining
        .as_slice()
        .iter()
        .map(DeadLetter::replay_message)
        .collect();
    for batch in batches(messages) {
        let letters: Vec<DeadLetter> = remaining.by_ref().take(batch.len()).collect();
        let batch: Vec<_> = batch.into_iter().map(|m| queue_message(m, None)).collect();
        queue.send_batch(batch).await?;
        let sent: Vec<Cursor> = letters.iter().map(DeadLetter::cursor).collect();
        replayed += sent.len();
        // Each letter is deleted where it may be: its shard, or the store of earlier versions.
        let mut objects: Vec<String> = sent
            .iter()
            .flat_map(|cursor| dead_letter::objects_for(&cursor.webhook_id))
            .collect();
        objects.sort();
        objects.dedup();
        in_each::<Deleted>(env, &objects, &DeadLetterCall::Delete { letters: sent }).await?;
    }
    Ok(replayed)
}

async fn replay_all(env: &Env) -> worker::Result<serde_json::Value> {
    let mut replayed = 0;
    let mut after: Option<Cursor> = None;
    for _ in 0..REPLAY_MAX_PAGES {
        let page = list(
            env,
            PageRequest {
                limit: MAX_PAGE_SIZE,
                after: after.clone(),
            },
        )
        .await?;
        after = page.dead_letters.last().map(DeadLetter::cursor);
        let more = page.next_cursor.is_some();
        replayed += replay(env, page.dead_letters).await?;
        if !more {
            break;
        }
    }
    let left = list(
        env,
        PageRequest {
            limit: 1,
            after: None,
        },
    )
    .await?
    .total;
    Ok(serde_json::json!({ "replayed": replayed, "remaining": left }))
}
