//! The account registry: accounts created, rotated and removed at run time (no deploy), their secrets sealed
//! at rest. Environment-binding accounts keep working as the embedded default; a registry account is read by
//! the channels through the same [`Bindings`](crate::config::Bindings) seam ([`overlay`]).
//!
//! - [`fields`]: what each channel's account may hold, and the checks before anything is stored.
//! - [`record`]: the stored record (secrets sealed), the writes, and the account as the API shows it.
//! - [`overlay`]: a registry account seen as bindings; the registry wins over the environment.
//! - [`cache`]: the per-isolate cache's decisions (freshness, negative entries, refresh after a failed
//!   signature, the bound on memory).
//! - [`api`]: the admin API's routes and answers for accounts, the registry listing and the audit trail.
//! - [`audit`]: the audit trail's entries and keys.

pub mod api;
pub mod audit;
pub mod cache;
pub mod fields;
pub mod listing;
pub mod openapi;
pub mod overlay;
pub mod record;
pub mod writer;

/// The KV namespace holding the records, the e-mail address index and the audit trail.
pub const STORE_BINDING: &str = "ACCOUNTS";
/// The Durable Object namespace that serializes writes per account (one object per channel/account).
pub const WRITER_BINDING: &str = "ACCOUNT_WRITER";
pub const AUDIT_RETENTION_BINDING: &str = "AUDIT_RETENTION_DAYS";
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 90;

/// The KV key of an account's record: `a/{channel}/{account}` (listing by channel is a prefix list).
pub fn record_key(channel: &str, account: &str) -> String {
    format!("a/{channel}/{account}")
}

/// The KV prefix of a channel's records, or of every record.
pub fn record_prefix(channel: Option<&str>) -> String {
    match channel {
        Some(channel) => format!("a/{channel}/"),
        None => "a/".to_owned(),
    }
}

/// The KV key of the e-mail address index: `m/{address}` → the account that owns it.
pub fn address_key(address: &str) -> String {
    format!("m/{}", address.trim().to_ascii_lowercase())
}

/// The Durable Object name of an account's writer.
pub fn writer_name(channel: &str, account: &str) -> String {
    format!("{channel}/{account}")
}

/// The channel and account a webhook path names (`/{channel}/{account}[/…]`), when the registry may hold it.
pub fn account_of_path(path: &str) -> Option<(&'static str, &str)> {
    let mut segments = path.trim_start_matches('/').split('/');
    let channel = crate::channels::find(segments.next()?)?;
    let account = segments.next()?;
    crate::config::is_valid_account(account).then_some((channel.name(), account))
}

/// Whether a refusal may come from a secret rotated in the registry since this isolate read the account: the
/// account is then read again once (at most every 2 s) and the request checked against the new values.
pub fn may_be_stale_secret(rejection: &crate::Rejection) -> bool {
    use crate::Rejection;
    matches!(
        rejection,
        Rejection::InvalidSignature
            | Rejection::VerifyTokenMismatch
            | Rejection::BotIdMismatch
            | Rejection::RouteNotFound
            | Rejection::UnknownAccount
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_paths_name_their_account() {
        assert_eq!(account_of_path("/line/acme"), Some(("line", "acme")));
        assert_eq!(
            account_of_path("/chatplus/inbox/s3cret"),
            Some(("chatplus", "inbox"))
        );
        assert_eq!(account_of_path("/line/Acme"), None);
        assert_eq!(account_of_path("/admin/api"), None);
        assert_eq!(account_of_path("/healthz"), None);
        assert!(may_be_stale_secret(&crate::Rejection::InvalidSignature));
        assert!(!may_be_stale_secret(&crate::Rejection::StaleTimestamp));
    }
}
