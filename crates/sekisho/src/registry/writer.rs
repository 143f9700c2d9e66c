//! The per-account writer (one Durable Object per channel/account, so that two admins' writes to one account
//! are serialized and `If-Match` is exact): the call it receives, what it stores and replicates to the read
//! store (record, e-mail address index, audit entry), and its answer. The object performs; this decides.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{Applied, RegistryError, WriterCall};
use super::audit::{AdminIdentity, AuditEntry};
use super::record::{etag, open, webhook_url, StoredAccount};
use super::{address_key, record_key};
use crate::crypto::seal::SealingKeys;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterRequest {
    pub channel: String,
    pub account: String,
    pub call: WriterCall,
    /// The admin token that made the call (absent for reads).
    pub token: Option<AdminIdentity>,
    /// `PUBLIC_URL`, else the admin request's origin: the base of the account's webhook URL.
    pub origin: String,
}

/// What the Worker answers the admin with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterReply {
    pub status: u16,
    pub body: Value,
    pub etag: Option<String>,
}

impl WriterReply {
    pub fn error(error: &RegistryError) -> WriterReply {
        WriterReply {
            status: error.status().as_u16(),
            body: error.body(),
            etag: None,
        }
    }
}

/// The writes that follow a decision, in order: addresses are checked free before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaPlan {
    /// Address-index keys that must be free or already this account's.
    pub claim_addresses: Vec<String>,
    pub put_record: Option<(String, String)>,
    pub delete_record: Option<String>,
    pub put_addresses: Vec<(String, String)>,
    pub delete_addresses: Vec<String>,
    pub audit: Option<(String, String)>,
}

/// The index value of an address: the account that owns it.
pub fn address_owner(record_channel: &str, account: &str) -> String {
    format!("{record_channel}/{account}")
}

pub fn plan(
    request: &WriterRequest,
    old: Option<&StoredAccount>,
    applied: &Applied,
    now_ms: u64,
) -> ReplicaPlan {
    let mut plan = ReplicaPlan::default();
    let Some(change) = &applied.change else {
        return plan;
    };
    let old_addresses = old.map(StoredAccount::addresses).unwrap_or_default();
    let new_addresses = applied
        .record
        .as_ref()
        .map(StoredAccount::addresses)
        .unwrap_or_default();
    let owner = address_owner(&request.channel, &request.account);
    for address in &new_addresses {
        if !old_addresses.contains(address) {
            plan.claim_addresses.push(address_key(address));
            plan.put_addresses
                .push((address_key(address), owner.clone()));
        }
    }
    plan.delete_addresses = old_addresses
        .iter()
        .filter(|address| !new_addresses.contains(address))
        .map(|address| address_key(address))
        .collect();
    let key = record_key(&request.channel, &request.account);
    match &applied.record {
        Some(record) => {
            plan.put_record = Some((key, serde_json::to_string(record).unwrap_or_default()));
        }
        None => plan.delete_record = Some(key),
    }
    if let Some(token) = &request.token {
        let entry = AuditEntry::new(
            now_ms,
            token,
            &request.channel,
            &request.account,
            change,
            applied.record.as_ref().map(|r| r.version),
        );
        plan.audit = Some((
            entry.key(),
            serde_json::to_string(&entry).unwrap_or_default(),
        ));
    }
    plan
}

/// Whether an address-index entry stops this account from claiming the address.
pub fn address_taken(owner_in_index: Option<&str>, request: &WriterRequest) -> bool {
    owner_in_index.is_some_and(|owner| owner != address_owner(&request.channel, &request.account))
}

/// The account's webhook URL; ChatPlus's carries the newest path secret, opened for the purpose.
pub fn record_webhook_url(record: &StoredAccount, keys: &SealingKeys, origin: &str) -> String {
    let path_secret = (record.channel == "chatplus")
        .then(|| open(record, keys).ok())
        .flatten()
        .and_then(|opened| {
            opened
                .fields
                .into_iter()
                .find(|(name, _)| name == "PATH_SECRET")
                .and_then(|(_, values)| values.into_iter().next())
        });
    webhook_url(
        origin,
        &record.channel,
        &record.account,
        path_secret.as_deref(),
    )
}

/// The answer to a successful call.
pub fn answer(request: &WriterRequest, applied: &Applied, keys: &SealingKeys) -> WriterReply {
    match &applied.record {
        None => WriterReply {
            status: 200,
            body: json!({"deleted": true}),
            etag: None,
        },
        Some(record) => {
            if matches!(request.call, WriterCall::Reseal) {
                return WriterReply {
                    status: 200,
                    body: json!({"resealed": applied.change.is_some()}),
                    etag: Some(etag(record.version)),
                };
            }
            WriterReply {
                status: if applied.created { 201 } else { 200 },
                body: record.view(&record_webhook_url(record, keys, &request.origin)),
                etag: Some(etag(record.version)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::registry::api::{apply, AccountPath};

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn request(channel: &'static str, account: &str, call: WriterCall) -> WriterRequest {
        WriterRequest {
            channel: channel.into(),
            account: account.into(),
            call,
            token: Some(AdminIdentity {
                index: 0,
                fingerprint: "ab12cd34".into(),
            }),
            origin: "https://gate.example".into(),
        }
    }

    fn run(request: &WriterRequest, old: Option<&StoredAccount>) -> (Applied, ReplicaPlan) {
        let keys = SealingKeys::parse(KEY).unwrap();
        let path = AccountPath {
            channel: super::super::fields::channel_names()
                .find(|c| *c == request.channel)
                .unwrap(),
            account: request.account.clone(),
        };
        let mut n = 0u8;
        let applied = apply(
            &path,
            old,
            &request.call,
            &keys,
            &mut || {
                n += 1;
                [n; 12]
            },
            9_000,
        )
        .unwrap();
        let plan = plan(request, old, &applied, 9_000);
        (applied, plan)
    }

    fn put(fields: &[(&str, &str)]) -> WriterCall {
        WriterCall::Put {
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
                .collect::<BTreeMap<_, _>>(),
            if_match: None,
        }
    }

    #[test]
    fn an_email_account_claims_its_addresses_and_releases_the_ones_it_drops() {
        let first = request(
            "email",
            "support",
            put(&[("ADDRESS", "a@example.com,b@example.com")]),
        );
        let (applied, plan) = run(&first, None);
        assert_eq!(plan.claim_addresses, ["m/a@example.com", "m/b@example.com"]);
        assert_eq!(
            plan.put_addresses[0],
            ("m/a@example.com".into(), "email/support".into())
        );
        let old = applied.record.unwrap();
        let second = request(
            "email",
            "support",
            put(&[("ADDRESS", "b@example.com,c@example.com")]),
        );
        let (_, plan) = run(&second, Some(&old));
        assert_eq!(plan.claim_addresses, ["m/c@example.com"]);
        assert_eq!(plan.delete_addresses, ["m/a@example.com"]);
        assert!(address_taken(Some("email/other"), &second));
        assert!(!address_taken(Some("email/support"), &second));
        assert!(!address_taken(None, &second));
    }

    #[test]
    fn a_write_is_stored_replicated_and_audited_without_the_secret() {
        let secret = "0123456789abcdef0123456789abcdef";
        let call = request("line", "acme", put(&[("CHANNEL_SECRET", secret)]));
        let (applied, plan) = run(&call, None);
        let (key, stored) = plan.put_record.clone().unwrap();
        assert_eq!(key, "a/line/acme");
        assert!(!stored.contains(secret));
        let (audit_key, audit) = plan.audit.clone().unwrap();
        assert!(audit_key.starts_with("l/"));
        assert!(audit.contains("CHANNEL_SECRET") && !audit.contains(secret));
        let keys = SealingKeys::parse(KEY).unwrap();
        let reply = answer(&call, &applied, &keys);
        assert_eq!(reply.status, 201);
        assert_eq!(reply.etag.as_deref(), Some("\"v1\""));
        assert_eq!(reply.body["webhook_url"], "https://gate.example/line/acme");
        assert!(!reply.body.to_string().contains(secret));
        let deleted = request("line", "acme", WriterCall::Delete { if_match: None });
        let (gone, plan) = run(&deleted, applied.record.as_ref());
        assert_eq!(plan.delete_record.as_deref(), Some("a/line/acme"));
        assert_eq!(
            answer(&deleted, &gone, &keys).body,
            json!({"deleted": true})
        );
    }

    #[test]
    fn chatplus_webhook_url_carries_the_path_secret() {
        let secret = "0123456789abcdef0123456789abcdef0123";
        let call = request("chatplus", "inbox", put(&[("PATH_SECRET", secret)]));
        let (applied, _) = run(&call, None);
        let keys = SealingKeys::parse(KEY).unwrap();
        assert_eq!(
            answer(&call, &applied, &keys).body["webhook_url"],
            format!("https://gate.example/chatplus/inbox/{secret}")
        );
    }
}
