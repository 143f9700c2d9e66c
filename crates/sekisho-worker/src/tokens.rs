//! `ProviderTokens`, one Durable Object per channel/account (`{channel}/{account}`): the account's provider
//! access token, cached in memory and in storage, refreshed ahead of expiry ([`sekisho::send::tokens`]
//! decides; a LINE WORKS JWT is signed here, only when a fetch is due). One fetch at a time: sends that arrive while a fetch is under way wait for it and share its token.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::outbound::provider_fetch;
use sekisho::send::tokens::{self, CachedToken, TokenCall, TokenDecision, TokenReply};
use sekisho::send::Failure;

const STORAGE_KEY: &str = "token";
/// A token fetch gets this long before it counts as failed.
const FETCH_TIMEOUT_S: u32 = 15;

type Fetch = Shared<LocalBoxFuture<'static, std::result::Result<CachedToken, Failure>>>;

#[durable_object]
pub struct ProviderTokens {
    state: State,
    cached: RefCell<Option<CachedToken>>,
    loaded: RefCell<bool>,
    /// The fetch under way, with its number (so only that fetch's waiters clear it).
    inflight: Rc<RefCell<Option<(u64, Fetch)>>>,
    fetches: RefCell<u64>,
}

impl DurableObject for ProviderTokens {
    fn new(state: State, _env: Env) -> Self {
        ProviderTokens {
            state,
            cached: RefCell::new(None),
            loaded: RefCell::new(false),
            inflight: Rc::new(RefCell::new(None)),
            fetches: RefCell::new(0),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let TokenCall {
            kind: _,
            grant,
            rejected,
            now_ms,
        } = req.json().await?;
        if !*self.loaded.borrow() {
            let stored: Option<CachedToken> =
                self.state.storage().get(STORAGE_KEY).await.unwrap_or(None);
            if self.cached.borrow().is_none() {
                *self.cached.borrow_mut() = stored;
            }
            *self.loaded.borrow_mut() = true;
        }
        let decision = tokens::decide(self.cached.borrow().as_ref(), rejected.as_deref(), now_ms);
        if let TokenDecision::Use(token) = decision {
            return Response::from_json(&TokenReply::Token { token });
        }
        let steps = tokens::fetch_steps(&decision, &grant);
        let existing = self.inflight.borrow().clone();
        let (number, fetch) = match existing {
            Some(inflight) => inflight,
            None => {
                let number = {
                    let mut fetches = self.fetches.borrow_mut();
                    *fetches += 1;
                    *fetches
                };
                let fetch: Fetch = async move {
                    let mut fetched = Err(Failure::new("token", "nothing to fetch"));
                    for step in &steps {
                        fetched = match tokens::step_request(&grant, step, now_ms) {
                            Ok(request) => match provider_fetch(&request, FETCH_TIMEOUT_S).await {
                                Ok(answer) => tokens::read_step_answer(
                                    step,
                                    answer.status,
                                    &answer.body,
                                    now_ms,
                                ),
                                Err(failure) => Err(failure),
                            },
                            Err(failure) => Err(failure),
                        };
                        if fetched.is_ok() {
                            break;
                        }
                    }
                    fetched
                }
                .boxed_local()
                .shared();
                *self.inflight.borrow_mut() = Some((number, fetch.clone()));
                (number, fetch)
            }
        };
        let fetched = fetch.await;
        {
            let mut inflight = self.inflight.borrow_mut();
            if inflight.as_ref().is_some_and(|(n, _)| *n == number) {
                *inflight = None;
            }
        }
        let reply = match fetched {
            Ok(token) => {
                let fresh = self.cached.borrow().as_ref() != Some(&token);
                if fresh {
                    *self.cached.borrow_mut() = Some(token.clone());
                    // Kept across evictions: WeChat counts token calls per day.
                    let _ = self.state.storage().put(STORAGE_KEY, &token).await;
                }
                TokenReply::Token { token: token.token }
            }
            Err(failure) => TokenReply::Failed { failure },
        };
        Response::from_json(&reply)
    }
}
