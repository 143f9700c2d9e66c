//! The ids a de-duplication object is taking right now, kept in its memory (a Durable Object is one instance;
//! these marks need no storage because they only ever stand for calls of this instance).
//!
//! An id is *sending* while its accept call waits for the queue, and *held* after an accept call for an event
//! with a reply call: its claim is written later, with the reply rendered for it, by [`super::DedupCall::Commit`]
//! — so the reply and the claim cost one row, not two. A hold ends with that commit, or by itself at its
//! deadline (the Worker died before committing): the id is free again, and a provider retry enqueues the event
//! once more (a duplicate with the same `webhook-id`, never a loss).
//!
//! A copy of a sending event is answered busy at once (the send takes milliseconds, or fails). A copy of a held
//! event waits in the object for the commit ([`InFlight::commit_wait_ms`]) and is then answered with the kept
//! reply: the commit is made after the provider got its answer, off the request's path, and a provider retrying
//! while the first reply call still runs gets that reply rather than a 503.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::CLAIM_LEASE_MS;

/// The longest a copy of a held event waits in the object for its commit before it is answered busy (longer than
/// any reply budget: WeChat's 4.5 s at most, Slack's and Discord's 2.8 s).
pub const COMMIT_WAIT_MAX_MS: u64 = 5_000;

/// The claim of this event is held, not written, by its accept call; the commit writes it with the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: String,
    /// When the hold ends if no commit came.
    pub until_ms: u64,
}

impl Hold {
    /// The hold of an event whose reply call may take `reply_timeout_ms`: the call, and a lease for the
    /// rendering and the commit after it.
    pub fn for_reply(id: &str, reply_timeout_ms: u32, now_ms: u64) -> Hold {
        Hold {
            id: id.to_owned(),
            until_ms: now_ms
                .saturating_add(u64::from(reply_timeout_ms))
                .saturating_add(CLAIM_LEASE_MS),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taking {
    Sending,
    HeldUntil(u64),
}

/// The ids this object's calls are taking.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    ids: HashMap<String, Taking>,
}

impl InFlight {
    /// Whether another call is taking `id` at `now_ms` (a copy of it is answered busy).
    pub fn is_taken(&self, id: &str, now_ms: u64) -> bool {
        match self.ids.get(id) {
            Some(Taking::Sending) => true,
            Some(Taking::HeldUntil(until_ms)) => now_ms < *until_ms,
            None => false,
        }
    }

    /// How long a call carrying `ids` waits for the commit of one another call holds, if one does: until that
    /// hold ends, at most [`COMMIT_WAIT_MAX_MS`]. A sending id is not waited for (its call answers busy).
    pub fn commit_wait_ms<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        now_ms: u64,
    ) -> Option<(String, u64)> {
        ids.into_iter().find_map(|id| match self.ids.get(id) {
            Some(Taking::HeldUntil(until_ms)) if now_ms < *until_ms => {
                Some((id.to_owned(), (until_ms - now_ms).min(COMMIT_WAIT_MAX_MS)))
            }
            _ => None,
        })
    }

    /// An accept call starts sending these ids.
    pub fn sending(&mut self, ids: &[String], now_ms: u64) {
        self.forget_expired(now_ms);
        for id in ids {
            self.ids.insert(id.clone(), Taking::Sending);
        }
    }

    /// The accept call is over: its ids are free, except the one it left held (it was sent and waits for its
    /// commit).
    pub fn finished(&mut self, ids: &[String], held: Option<&Hold>) {
        for id in ids {
            match held {
                Some(hold) if hold.id == *id => {
                    self.ids
                        .insert(id.clone(), Taking::HeldUntil(hold.until_ms));
                }
                _ => {
                    self.ids.remove(id);
                }
            }
        }
    }

    /// The held claim was written.
    pub fn committed(&mut self, id: &str) {
        self.ids.remove(id);
    }

    /// How many ids are marked (bounded: holds are forgotten once they end).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn forget_expired(&mut self, now_ms: u64) {
        self.ids.retain(|_, taking| match taking {
            Taking::Sending => true,
            Taking::HeldUntil(until_ms) => now_ms < *until_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn a_sent_id_is_free_after_its_call_unless_held_until_commit_or_deadline() {
        let mut in_flight = InFlight::default();
        in_flight.sending(&ids(&["a", "b"]), 0);
        assert!(in_flight.is_taken("a", 0) && in_flight.is_taken("b", 0));
        assert!(!in_flight.is_taken("c", 0));
        let hold = Hold::for_reply("b", 3_000, 0);
        assert_eq!(hold.until_ms, 3_000 + CLAIM_LEASE_MS);
        in_flight.finished(&ids(&["a", "b"]), Some(&hold));
        assert!(!in_flight.is_taken("a", 1));
        assert!(in_flight.is_taken("b", 1));
        assert!(in_flight.is_taken("b", hold.until_ms - 1));
        // The Worker never committed: the hold ends by itself, and the next call forgets it.
        assert!(!in_flight.is_taken("b", hold.until_ms));
        in_flight.sending(&ids(&["c"]), hold.until_ms);
        assert_eq!(in_flight.len(), 1);
        in_flight.finished(&ids(&["c"]), None);
        assert!(in_flight.is_empty());
    }

    #[test]
    fn a_copy_waits_for_a_held_commit_but_never_for_a_send() {
        let mut in_flight = InFlight::default();
        in_flight.sending(&ids(&["sent", "held"]), 0);
        assert_eq!(in_flight.commit_wait_ms(["sent"], 0), None);
        let hold = Hold::for_reply("held", 3_000, 0);
        in_flight.finished(&ids(&["sent", "held"]), Some(&hold));
        assert_eq!(
            in_flight.commit_wait_ms(["other", "held"], 1_000),
            Some(("held".to_owned(), COMMIT_WAIT_MAX_MS))
        );
        // Near the hold's end, only what is left of it.
        assert_eq!(
            in_flight.commit_wait_ms(["held"], hold.until_ms - 100),
            Some(("held".to_owned(), 100))
        );
        assert_eq!(in_flight.commit_wait_ms(["held"], hold.until_ms), None);
        in_flight.committed("held");
        assert_eq!(in_flight.commit_wait_ms(["held"], 1_000), None);
    }

    #[test]
    fn a_commit_frees_the_held_id_at_once() {
        let mut in_flight = InFlight::default();
        let hold = Hold::for_reply("b", 3_000, 0);
        in_flight.sending(&ids(&["b"]), 0);
        in_flight.finished(&ids(&["b"]), Some(&hold));
        in_flight.committed("b");
        assert!(!in_flight.is_taken("b", 1));
        assert!(in_flight.is_empty());
    }
}
