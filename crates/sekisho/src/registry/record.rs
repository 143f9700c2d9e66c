//! A registry account as stored (secrets sealed), the writes the admin API makes to it — each a pure function
//! of the current record, the request, the sealing keys, nonces and the time — and the account as answers show
//! it (secrets only by index and fingerprint).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::fields::{self, FieldError, GivenValue, MAX_SECRET_VALUES};
use crate::crypto::seal::{fingerprint, Sealed, SealingKeys, NONCE_BYTES};

/// Where the nonces for sealing come from (the Worker: `crypto.getRandomValues`; tests: a counter).
pub type Nonces<'a> = dyn FnMut() -> [u8; NONCE_BYTES] + 'a;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccount {
    pub channel: String,
    pub account: String,
    pub version: u64,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub fields: BTreeMap<String, StoredField>,
}

/// Externally tagged (`{"secret":{"values":[…]}}`): serde reads it without buffering, unlike an internal tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredField {
    Setting { value: String },
    Secret { values: Vec<StoredSecret> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub fingerprint: String,
    pub sealed: Sealed,
}

/// A write refused: each maps to one status in [`super::api`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("the account does not exist")]
    NotFound,
    #[error("no value of the field has that fingerprint")]
    ValueNotFound,
    #[error("the field's last value cannot be retired; replace it first")]
    LastValue,
    #[error("If-Match does not match the account's version")]
    VersionMismatch,
}

/// What a write changed, for the audit trail: field names only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub action: &'static str,
    pub fields: Vec<String>,
}

/// The additional data a sealed value is bound to: its channel, account and field.
pub fn seal_context(channel: &str, account: &str, field: &str) -> Vec<u8> {
    format!("sekisho/registry/v1/{channel}/{account}/{field}").into_bytes()
}

/// The entity tag of a version: `"v7"`.
pub fn etag(version: u64) -> String {
    format!("\"v{version}\"")
}

/// Whether a write guarded by `If-Match` may go ahead against `current` (the stored version, if any).
pub fn if_match_allows(if_match: Option<&str>, current: Option<u64>) -> bool {
    let Some(header) = if_match.map(str::trim) else {
        return true;
    };
    match current {
        None => false,
        Some(_) if header == "*" => true,
        Some(version) => header
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == etag(version)),
    }
}

fn seal_values(
    channel: &str,
    account: &str,
    field: &str,
    values: &[String],
    keys: &SealingKeys,
    nonces: &mut Nonces<'_>,
) -> Vec<StoredSecret> {
    let context = seal_context(channel, account, field);
    values
        .iter()
        .map(|value| StoredSecret {
            fingerprint: fingerprint(value.as_bytes()),
            sealed: keys.seal(value.as_bytes(), &context, nonces()),
        })
        .collect()
}

/// `PUT`: the whole account from `given` (validated first; nothing is built from a refused write).
pub fn put(
    existing: Option<&StoredAccount>,
    channel: &str,
    account: &str,
    given: &BTreeMap<String, GivenValue>,
    keys: &SealingKeys,
    nonces: &mut Nonces<'_>,
    now_ms: u64,
) -> Result<(StoredAccount, Change), WriteError> {
    let values = fields::validate(channel, given)?;
    let mut stored = BTreeMap::new();
    for (name, values) in &values {
        let secret = fields::field_of(channel, name).is_some_and(|spec| spec.secret);
        let field = if secret {
            StoredField::Secret {
                values: seal_values(channel, account, name, values, keys, nonces),
            }
        } else {
            StoredField::Setting {
                value: values.first().cloned().unwrap_or_default(),
            }
        };
        stored.insert(name.clone(), field);
    }
    let changed = match existing {
        None => stored.keys().cloned().collect(),
        Some(old) => changed_fields(&old.fields, &stored),
    };
    let record = StoredAccount {
        channel: channel.to_owned(),
        account: account.to_owned(),
        version: existing.map_or(1, |old| old.version + 1),
        created_at_ms: existing.map_or(now_ms, |old| old.created_at_ms),
        updated_at_ms: now_ms,
        fields: stored,
    };
    let action = if existing.is_some() {
        "replace"
    } else {
        "create"
    };
    Ok((
        record,
        Change {
            action,
            fields: changed,
        },
    ))
}

/// Field names whose values differ (by fingerprint for secrets: re-sealing alone is no change).
fn changed_fields(
    old: &BTreeMap<String, StoredField>,
    new: &BTreeMap<String, StoredField>,
) -> Vec<String> {
    let prints = |field: Option<&StoredField>| -> Option<Vec<String>> {
        field.map(|field| match field {
            StoredField::Setting { value } => vec![value.clone()],
            StoredField::Secret { values } => {
                values.iter().map(|v| v.fingerprint.clone()).collect()
            }
        })
    };
    old.keys()
        .chain(new.keys())
        .filter(|name| prints(old.get(*name)) != prints(new.get(*name)))
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `POST …/secrets/{FIELD}`: prepends a value (rotation step 1).
pub fn add_secret(
    existing: &StoredAccount,
    field: &str,
    value: &str,
    keys: &SealingKeys,
    nonces: &mut Nonces<'_>,
    now_ms: u64,
) -> Result<(StoredAccount, Change), WriteError> {
    let spec = fields::field_of(&existing.channel, field)
        .filter(|spec| spec.secret)
        .ok_or_else(|| FieldError::new(field, "is not a secret field of this channel"))?;
    let mut record = existing.clone();
    let current: Vec<StoredSecret> = match record.fields.get(field) {
        Some(StoredField::Secret { values }) => values.clone(),
        _ => Vec::new(),
    };
    let value = fields::check_value(spec, &GivenValue::One(value.to_owned()))?
        .into_iter()
        .next()
        .unwrap_or_default();
    if current
        .iter()
        .any(|stored| stored.fingerprint == fingerprint(value.as_bytes()))
    {
        return Err(FieldError::new(field, "already holds this value").into());
    }
    if current.len() >= MAX_SECRET_VALUES {
        return Err(
            FieldError::new(field, "has too many values (at most 5); retire one first").into(),
        );
    }
    let mut values = seal_values(
        &existing.channel,
        &existing.account,
        field,
        &[value],
        keys,
        nonces,
    );
    values.extend(current);
    record
        .fields
        .insert(field.to_owned(), StoredField::Secret { values });
    Ok(bump(record, now_ms, "add_secret", field))
}

/// `DELETE …/secrets/{FIELD}/{fingerprint}`: retires one value; never the field's last.
pub fn retire_secret(
    existing: &StoredAccount,
    field: &str,
    value_fingerprint: &str,
    now_ms: u64,
) -> Result<(StoredAccount, Change), WriteError> {
    let mut record = existing.clone();
    let Some(StoredField::Secret { values }) = record.fields.get_mut(field) else {
        return Err(WriteError::ValueNotFound);
    };
    let position = values
        .iter()
        .position(|stored| stored.fingerprint == value_fingerprint)
        .ok_or(WriteError::ValueNotFound)?;
    if values.len() == 1 {
        return Err(WriteError::LastValue);
    }
    values.remove(position);
    Ok(bump(record, now_ms, "retire_secret", field))
}

fn bump(
    mut record: StoredAccount,
    now_ms: u64,
    action: &'static str,
    field: &str,
) -> (StoredAccount, Change) {
    record.version += 1;
    record.updated_at_ms = now_ms;
    (
        record,
        Change {
            action,
            fields: vec![field.to_owned()],
        },
    )
}

/// Re-seals every value not sealed under the newest key. `Ok(None)`: nothing to do. A value no configured key
/// opens is an error naming the account: it is never skipped.
pub fn reseal(
    existing: &StoredAccount,
    keys: &SealingKeys,
    nonces: &mut Nonces<'_>,
) -> Result<Option<StoredAccount>, OpenFailure> {
    let mut record = existing.clone();
    let mut changed = false;
    for (name, field) in record.fields.iter_mut() {
        let StoredField::Secret { values } = field else {
            continue;
        };
        let context = seal_context(&existing.channel, &existing.account, name);
        for stored in values.iter_mut() {
            if !keys.is_stale(&stored.sealed.key) {
                continue;
            }
            let plain = keys
                .open(&stored.sealed, &context)
                .map_err(|_| OpenFailure::of(existing))?;
            stored.sealed = keys.seal(&plain, &context, nonces());
            changed = true;
        }
    }
    Ok(changed.then_some(record))
}

/// A record no configured sealing key opens: refused as `misconfigured`, naming the account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no configured ACCOUNTS_SEALING_KEY opens the registry account {channel}/{account}")]
pub struct OpenFailure {
    pub channel: String,
    pub account: String,
}

impl OpenFailure {
    fn of(record: &StoredAccount) -> OpenFailure {
        OpenFailure {
            channel: record.channel.clone(),
            account: record.account.clone(),
        }
    }
}

/// A registry account with its secrets opened, held in the isolate's cache and read by the channels through
/// [`super::overlay`]. Each field's values newest first.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedAccount {
    pub channel: String,
    pub account: String,
    pub version: u64,
    pub fields: Vec<(String, Vec<String>)>,
}

impl std::fmt::Debug for OpenedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OpenedAccount({}/{} v{}, redacted)",
            self.channel, self.account, self.version
        )
    }
}

impl OpenedAccount {
    /// Rough bytes held, for the cache's memory bound.
    pub fn weight(&self) -> usize {
        64 + self.channel.len()
            + self.account.len()
            + self
                .fields
                .iter()
                .map(|(name, values)| {
                    name.len() + values.iter().map(|v| v.len() + 24).sum::<usize>()
                })
                .sum::<usize>()
    }
}

pub fn open(record: &StoredAccount, keys: &SealingKeys) -> Result<OpenedAccount, OpenFailure> {
    let mut fields = Vec::with_capacity(record.fields.len());
    for (name, field) in &record.fields {
        let values = match field {
            StoredField::Setting { value } => vec![value.clone()],
            StoredField::Secret { values } => {
                let context = seal_context(&record.channel, &record.account, name);
                values
                    .iter()
                    .map(|stored| {
                        keys.open(&stored.sealed, &context)
                            .ok()
                            .and_then(|plain| String::from_utf8(plain).ok())
                            .ok_or_else(|| OpenFailure::of(record))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        fields.push((name.clone(), values));
    }
    Ok(OpenedAccount {
        channel: record.channel.clone(),
        account: record.account.clone(),
        version: record.version,
        fields,
    })
}

/// The URL the provider must call for this account: `{origin}/{channel}/{account}`; ChatPlus's carries its path
/// secret (the newest value) as the last segment, because ChatPlus cannot sign.
pub fn webhook_url(
    origin: &str,
    channel: &str,
    account: &str,
    path_secret: Option<&str>,
) -> String {
    let origin = origin.trim_end_matches('/');
    match path_secret {
        Some(secret) => format!("{origin}/{channel}/{account}/{secret}"),
        None => format!("{origin}/{channel}/{account}"),
    }
}

/// The `fields` object of an answer: secrets by index and fingerprint, settings by value.
pub fn fields_view<'a>(fields: impl Iterator<Item = (&'a str, FieldShown<'a>)>) -> Value {
    let mut out = Map::new();
    for (name, shown) in fields {
        let value = match shown {
            FieldShown::Setting(value) => json!({"secret": false, "value": value}),
            FieldShown::Secret(prints) => json!({
                "secret": true,
                "values": prints
                    .iter()
                    .enumerate()
                    .map(|(index, print)| json!({"index": index, "fingerprint": print}))
                    .collect::<Vec<_>>(),
            }),
        };
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

pub enum FieldShown<'a> {
    Setting(&'a str),
    Secret(Vec<String>),
}

impl StoredAccount {
    /// The account as the API answers it.
    pub fn view(&self, webhook_url: &str) -> Value {
        let fields = self.fields.iter().map(|(name, field)| {
            let shown = match field {
                StoredField::Setting { value } => FieldShown::Setting(value),
                StoredField::Secret { values } => {
                    FieldShown::Secret(values.iter().map(|v| v.fingerprint.clone()).collect())
                }
            };
            (name.as_str(), shown)
        });
        json!({
            "channel": self.channel,
            "account": self.account,
            "source": "registry",
            "webhook_url": webhook_url,
            "fields": fields_view(fields),
            "created_at": crate::datetime::format_rfc3339_ms(self.created_at_ms),
            "updated_at": crate::datetime::format_rfc3339_ms(self.updated_at_ms),
            "version": self.version,
        })
    }

    /// The e-mail addresses this (e-mail) account claims, lower-cased.
    pub fn addresses(&self) -> Vec<String> {
        match self.fields.get(crate::mail::ADDRESS_FIELD) {
            Some(StoredField::Setting { value }) if self.channel == crate::mail::CHANNEL => value
                .split(',')
                .map(|a| a.trim().to_ascii_lowercase())
                .filter(|a| !a.is_empty())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether any value is sealed under a key other than the newest.
    pub fn needs_reseal(&self, keys: &SealingKeys) -> bool {
        self.fields.values().any(|field| match field {
            StoredField::Secret { values } => values.iter().any(|v| keys.is_stale(&v.sealed.key)),
            StoredField::Setting { .. } => false,
        })
    }
}

#[cfg(test)]
mod tests;
