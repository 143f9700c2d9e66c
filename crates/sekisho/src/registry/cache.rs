//! The per-isolate cache of registry accounts: what a warm isolate answers from memory, when it must read the
//! store again, and how much memory it may hold. Time is passed in; the Worker keeps one [`AccountCache`] per
//! isolate and performs the reads it asks for.
//!
//! Bounds (documented in the README):
//! - a known account is served from memory for [`CachePolicy::fresh_ms`] (30 s) after it was read; with the
//!   store's own edge cache (`cacheTtl` 30 s) a retired value or a deleted account stops being accepted within
//!   60 s;
//! - an account that does not exist is remembered as absent for [`CachePolicy::absent_ms`] (5 s), so a flood
//!   for one unknown name costs one read per isolate per 5 s, and a new account is visible at once unless
//!   that very name was asked for in the 5 s before it was created;
//! - reads for names not in the cache are limited per isolate ([`CachePolicy::unknown_reads_per_s`]): a flood
//!   of random names costs at most that many reads per second per isolate; past it the request is refused
//!   without a read (`503 registry_busy`, the provider retries);
//! - after a signature fails against a cached account, the account is read again at most once per
//!   [`CachePolicy::refresh_after_failure_ms`] (2 s): a newly added secret is accepted within seconds;
//! - at most [`CachePolicy::max_entries`] accounts and [`CachePolicy::max_bytes`] bytes are held; the oldest
//!   read goes first.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub fresh_ms: u64,
    pub absent_ms: u64,
    pub refresh_after_failure_ms: u64,
    pub unknown_reads_per_s: u32,
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            fresh_ms: 30_000,
            absent_ms: 5_000,
            refresh_after_failure_ms: 2_000,
            unknown_reads_per_s: 50,
            max_entries: 20_000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What the cache says about one account.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, V> {
    /// Known and fresh: no read.
    Present(&'a V),
    /// Known not to exist (recently read as absent): no read.
    Absent,
    /// Read the store, then [`AccountCache::insert`] what it said.
    Read,
    /// Not in the cache and the isolate's read budget for such names is spent: refuse without a read.
    OverBudget,
}

struct Entry<V> {
    value: Option<V>,
    read_at_ms: u64,
    weight: usize,
}

pub struct AccountCache<V> {
    policy: CachePolicy,
    entries: HashMap<String, Entry<V>>,
    /// Keys in the order they were (re)read: the front is evicted first.
    order: VecDeque<String>,
    bytes: usize,
    budget_second: u64,
    budget_used: u32,
}

impl<V> AccountCache<V> {
    pub fn new(policy: CachePolicy) -> Self {
        AccountCache {
            policy,
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            budget_second: 0,
            budget_used: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn lookup(&mut self, key: &str, now_ms: u64) -> Lookup<'_, V> {
        let known = self.entries.get(key).map(|entry| {
            let age = now_ms.saturating_sub(entry.read_at_ms);
            match entry.value {
                Some(_) => age < self.policy.fresh_ms,
                None => age < self.policy.absent_ms,
            }
        });
        match known {
            Some(true) => match self.entries.get(key).and_then(|e| e.value.as_ref()) {
                Some(value) => Lookup::Present(value),
                None => Lookup::Absent,
            },
            // Known but stale: re-reading a name that existed is not charged to the unknown-name budget.
            Some(false) => Lookup::Read,
            None if self.take_budget(now_ms) => Lookup::Read,
            None => Lookup::OverBudget,
        }
    }

    fn take_budget(&mut self, now_ms: u64) -> bool {
        let second = now_ms / 1000;
        if second != self.budget_second {
            self.budget_second = second;
            self.budget_used = 0;
        }
        if self.budget_used >= self.policy.unknown_reads_per_s {
            return false;
        }
        self.budget_used += 1;
        true
    }

    /// Whether an account whose signature just failed may be read again now (it was read long enough ago).
    pub fn may_refresh_after_failure(&self, key: &str, now_ms: u64) -> bool {
        self.entries.get(key).is_none_or(|entry| {
            now_ms.saturating_sub(entry.read_at_ms) >= self.policy.refresh_after_failure_ms
        })
    }

    /// Records what the store said (`None`: no such account), evicting the oldest reads past the bounds.
    pub fn insert(&mut self, key: &str, value: Option<V>, weight: usize, now_ms: u64) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(old.weight);
            self.order.retain(|k| k != key);
        }
        let weight = weight + key.len();
        self.entries.insert(
            key.to_owned(),
            Entry {
                value,
                read_at_ms: now_ms,
                weight,
            },
        );
        self.order.push_back(key.to_owned());
        self.bytes += weight;
        while self.entries.len() > self.policy.max_entries || self.bytes > self.policy.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes = self.bytes.saturating_sub(entry.weight);
            }
        }
    }

    /// Drops one account (after this isolate wrote it: the next request reads the new version).
    pub fn forget(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(old.weight);
            self.order.retain(|k| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> AccountCache<String> {
        AccountCache::new(CachePolicy {
            max_entries: 3,
            max_bytes: 1_000,
            unknown_reads_per_s: 2,
            ..CachePolicy::default()
        })
    }

    #[test]
    fn a_read_account_is_served_from_memory_until_it_is_30_s_old() {
        let mut cache = cache();
        assert_eq!(cache.lookup("line/acme", 0), Lookup::Read);
        cache.insert("line/acme", Some("v1".to_owned()), 10, 0);
        assert_eq!(
            cache.lookup("line/acme", 29_999),
            Lookup::Present(&"v1".to_owned())
        );
        assert_eq!(cache.lookup("line/acme", 30_000), Lookup::Read);
    }

    #[test]
    fn an_absent_account_is_remembered_for_5_s() {
        let mut cache = cache();
        assert_eq!(cache.lookup("line/nobody", 0), Lookup::Read);
        cache.insert("line/nobody", None, 0, 0);
        assert_eq!(cache.lookup("line/nobody", 4_999), Lookup::Absent);
        assert_eq!(cache.lookup("line/nobody", 5_000), Lookup::Read);
    }

    #[test]
    fn unknown_names_past_the_budget_are_refused_without_a_read_and_the_budget_refills() {
        let mut cache = cache();
        assert_eq!(cache.lookup("line/a", 1_000), Lookup::Read);
        assert_eq!(cache.lookup("line/b", 1_100), Lookup::Read);
        assert_eq!(cache.lookup("line/c", 1_200), Lookup::OverBudget);
        assert_eq!(cache.lookup("line/c", 2_000), Lookup::Read);
        // A stale known name is re-read whatever the budget.
        cache.insert("line/a", Some("x".into()), 1, 2_000);
        assert_eq!(cache.lookup("line/d", 2_100), Lookup::Read);
        assert_eq!(cache.lookup("line/e", 2_200), Lookup::OverBudget);
        assert_eq!(cache.lookup("line/a", 40_000), Lookup::Read);
    }

    #[test]
    fn a_failed_signature_refreshes_at_most_every_2_s() {
        let mut cache = cache();
        cache.insert("line/acme", Some("v1".into()), 1, 10_000);
        assert!(!cache.may_refresh_after_failure("line/acme", 11_999));
        assert!(cache.may_refresh_after_failure("line/acme", 12_000));
        assert!(cache.may_refresh_after_failure("line/unknown", 0));
    }

    #[test]
    fn memory_is_bounded_by_count_and_bytes_oldest_first() {
        let mut cache = cache();
        for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
            cache.insert(key, Some((*key).to_owned()), 10, i as u64);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.lookup("b", 5), Lookup::Present(&"b".to_owned()));
        assert!(matches!(
            cache.lookup("a", 5),
            Lookup::Read | Lookup::OverBudget
        ));
        cache.insert("huge", Some("h".into()), 995, 6);
        assert!(cache.bytes() <= 1_000);
        assert_eq!(cache.len(), 1);
        cache.forget("huge");
        assert!(cache.is_empty());
        assert_eq!(cache.bytes(), 0);
    }
}
