//! The audit trail: one entry per change — when, which admin token (by index and fingerprint, never its
//! value), which account, which fields (names only). Kept [`super::AUDIT_RETENTION_BINDING`] days (default
//! [`super::DEFAULT_AUDIT_RETENTION_DAYS`]) through the store's own expiry.

use serde::{Deserialize, Serialize};

use super::record::Change;
use crate::config::Bindings;

/// Which admin token made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminIdentity {
    pub index: usize,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub at_ms: u64,
    pub token: AdminIdentity,
    pub channel: String,
    pub account: String,
    pub action: String,
    pub fields: Vec<String>,
    /// The account's version after the change (absent for a deletion).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl AuditEntry {
    pub fn new(
        now_ms: u64,
        token: &AdminIdentity,
        channel: &str,
        account: &str,
        change: &Change,
        version: Option<u64>,
    ) -> AuditEntry {
        AuditEntry {
            at: crate::datetime::format_rfc3339_ms(now_ms),
            at_ms: now_ms,
            token: token.clone(),
            channel: channel.to_owned(),
            account: account.to_owned(),
            action: change.action.to_owned(),
            fields: change.fields.clone(),
            version,
        }
    }

    /// `l/{inverted time}/{channel}/{account}/{version}`: a prefix list returns the newest first.
    pub fn key(&self) -> String {
        format!(
            "l/{:016}/{}/{}/{}",
            u64::MAX / 1000 - self.at_ms.min(u64::MAX / 1000),
            self.channel,
            self.account,
            self.version.unwrap_or(0)
        )
    }
}

pub const AUDIT_PREFIX: &str = "l/";

/// How long entries are kept, in seconds.
pub fn retention_s(bindings: &dyn Bindings) -> u64 {
    bindings
        .get(super::AUDIT_RETENTION_BINDING)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|days| (1..=3650).contains(days))
        .unwrap_or(super::DEFAULT_AUDIT_RETENTION_DAYS)
        * 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_newest_first_and_name_no_secret() {
        let token = AdminIdentity {
            index: 0,
            fingerprint: "ab12cd34".into(),
        };
        let change = Change {
            action: "add_secret",
            fields: vec!["CHANNEL_SECRET".into()],
        };
        let older = AuditEntry::new(1_000, &token, "line", "acme", &change, Some(2));
        let newer = AuditEntry::new(2_000, &token, "line", "acme", &change, Some(3));
        assert!(newer.key() < older.key());
        assert!(newer.key().starts_with(AUDIT_PREFIX));
        let json = serde_json::to_string(&newer).unwrap();
        assert!(json.contains("\"fields\":[\"CHANNEL_SECRET\"]"));
    }

    #[test]
    fn retention_defaults_to_90_days() {
        let none: std::collections::HashMap<String, String> = Default::default();
        assert_eq!(retention_s(&none), 90 * 86_400);
        let set =
            std::collections::HashMap::from([("AUDIT_RETENTION_DAYS".to_owned(), "7".to_owned())]);
        assert_eq!(retention_s(&set), 7 * 86_400);
    }
}
