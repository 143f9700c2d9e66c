//! The registry's admin API (Bearer `ADMIN_TOKEN`, JSON), free of IO: routes, request bodies, the writes the
//! per-account writer performs ([`WriterCall`] → [`apply`]), and one error enum mapped to status and body.
//!
//! | request | answer |
//! |---|---|
//! | `PUT /admin/api/accounts/{channel}/{account}` `{"fields":{…}}` | 201 created / 200 replaced, the account |
//! | `GET /admin/api/accounts/{channel}/{account}` | the account, or 404 |
//! | `POST …/{account}/secrets/{FIELD}` `{"value":"…"}` | prepends a value → the account |
//! | `DELETE …/{account}/secrets/{FIELD}/{fingerprint}` | retires that value → the account; 409 if last |
//! | `DELETE /admin/api/accounts/{channel}/{account}` | `{"deleted":true}` |
//! | `GET /admin/api/registry?channel=&limit=&cursor=` | every account, registry and environment |
//! | `GET /admin/api/audit?limit=&cursor=` | the audit trail, newest first |
//! | `POST /admin/api/registry/reseal?cursor=` | re-seals up to a page of records under the newest key |
//! | `GET /admin/api/channels` | each channel's field declarations (the console's forms) |

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::fields::{self, FieldError, GivenValue};
use super::record::{self, Change, OpenFailure, StoredAccount, WriteError};
use crate::config::is_valid_account;
use crate::crypto::seal::SealingKeys;
use crate::query::Query;

pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPath {
    pub channel: &'static str,
    pub account: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAction {
    Get(AccountPath),
    Put(AccountPath),
    AddSecret(AccountPath, String),
    RetireSecret(AccountPath, String, String),
    Delete(AccountPath),
    List {
        channel: Option<&'static str>,
        limit: usize,
        cursor: Option<String>,
    },
    Audit {
        limit: usize,
        cursor: Option<String>,
    },
    Reseal {
        cursor: Option<String>,
    },
    Channels,
}

impl RegistryAction {
    /// Whether the action writes (its body is read, and `If-Match` applies).
    pub fn writes(&self) -> bool {
        matches!(
            self,
            RegistryAction::Put(_)
                | RegistryAction::AddSecret(..)
                | RegistryAction::RetireSecret(..)
                | RegistryAction::Delete(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("no such channel or account name")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    InvalidField(#[from] FieldError),
    #[error("the request body is not the documented JSON")]
    InvalidBody,
    #[error("parameter `{0}` is not valid")]
    InvalidParameter(&'static str),
    #[error("If-Match does not match the account's version")]
    PreconditionFailed,
    #[error("the field's last value cannot be retired")]
    LastValue,
    #[error("the address {address} already belongs to {owner}")]
    AddressTaken { address: String, owner: String },
    #[error("binding `{0}` is missing or invalid")]
    Misconfigured(String),
    #[error(transparent)]
    Unopenable(#[from] OpenFailure),
    #[error("the registry store is unavailable")]
    Unavailable,
}

impl RegistryError {
    pub fn status(&self) -> StatusCode {
        match self {
            RegistryError::NotFound => StatusCode::NOT_FOUND,
            RegistryError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::InvalidField(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RegistryError::InvalidBody | RegistryError::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            RegistryError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            RegistryError::LastValue | RegistryError::AddressTaken { .. } => StatusCode::CONFLICT,
            RegistryError::Misconfigured(_) | RegistryError::Unopenable(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            RegistryError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            RegistryError::NotFound => json!({"error": "not_found"}),
            RegistryError::MethodNotAllowed => json!({"error": "method_not_allowed"}),
            RegistryError::InvalidField(error) => {
                json!({"error": "invalid_field", "field": error.field, "problem": error.problem})
            }
            RegistryError::InvalidBody => json!({"error": "invalid_body"}),
            RegistryError::InvalidParameter(name) => {
                json!({"error": "invalid_parameter", "parameter": name})
            }
            RegistryError::PreconditionFailed => json!({"error": "precondition_failed"}),
            RegistryError::LastValue => json!({"error": "last_value"}),
            RegistryError::AddressTaken { address, owner } => {
                json!({"error": "address_taken", "address": address, "owner": owner})
            }
            RegistryError::Misconfigured(binding) => {
                json!({"error": "misconfigured", "binding": binding})
            }
            RegistryError::Unopenable(failure) => json!({
                "error": "misconfigured",
                "binding": crate::crypto::seal::SEALING_KEY_BINDING,
                "account": format!("{}/{}", failure.channel, failure.account),
            }),
            RegistryError::Unavailable => json!({"error": "unavailable"}),
        }
    }
}

impl From<WriteError> for RegistryError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::InvalidField(field) => RegistryError::InvalidField(field),
            WriteError::NotFound | WriteError::ValueNotFound => RegistryError::NotFound,
            WriteError::LastValue => RegistryError::LastValue,
            WriteError::VersionMismatch => RegistryError::PreconditionFailed,
        }
    }
}

fn account_path(channel: &str, account: &str) -> Result<AccountPath, RegistryError> {
    let channel = fields::channel_names()
        .find(|name| *name == channel)
        .ok_or(RegistryError::NotFound)?;
    if !is_valid_account(account) {
        return Err(RegistryError::NotFound);
    }
    Ok(AccountPath {
        channel,
        account: account.to_owned(),
    })
}

fn limit(query: &Query) -> Result<usize, RegistryError> {
    match query.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or(RegistryError::InvalidParameter("limit")),
    }
}

fn cursor(query: &Query) -> Result<Option<String>, RegistryError> {
    match query.get("cursor") {
        None | Some("") => Ok(None),
        Some(raw) if raw.len() <= 1024 && raw.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Some(raw.to_owned()))
        }
        Some(_) => Err(RegistryError::InvalidParameter("cursor")),
    }
}

/// The segments after `/admin/api/`; `None` when they are not the registry's.
pub fn route(
    method: &Method,
    segments: &[&str],
    query: &Query,
) -> Option<Result<RegistryAction, RegistryError>> {
    let action = match segments {
        ["accounts", channel, account] => {
            account_path(channel, account).and_then(|path| match *method {
                Method::GET => Ok(RegistryAction::Get(path)),
                Method::PUT => Ok(RegistryAction::Put(path)),
                Method::DELETE => Ok(RegistryAction::Delete(path)),
                _ => Err(RegistryError::MethodNotAllowed),
            })
        }
        ["accounts", channel, account, "secrets", field] => account_path(channel, account)
            .and_then(|path| match *method {
                Method::POST => Ok(RegistryAction::AddSecret(path, (*field).to_owned())),
                _ => Err(RegistryError::MethodNotAllowed),
            }),
        ["accounts", channel, account, "secrets", field, print] => account_path(channel, account)
            .and_then(|path| match *method {
                Method::DELETE => Ok(RegistryAction::RetireSecret(
                    path,
                    (*field).to_owned(),
                    (*print).to_owned(),
                )),
                _ => Err(RegistryError::MethodNotAllowed),
            }),
        ["registry"] => match *method {
            Method::GET => (|| {
                let channel = match query.get("channel") {
                    None | Some("") => None,
                    Some(name) => Some(
                        fields::channel_names()
                            .find(|known| *known == name)
                            .ok_or(RegistryError::InvalidParameter("channel"))?,
                    ),
                };
                Ok(RegistryAction::List {
                    channel,
                    limit: limit(query)?,
                    cursor: cursor(query)?,
                })
            })(),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        ["registry", "reseal"] => match *method {
            Method::POST => cursor(query).map(|cursor| RegistryAction::Reseal { cursor }),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        ["audit"] => match *method {
            Method::GET => limit(query).and_then(|limit| {
                Ok(RegistryAction::Audit {
                    limit,
                    cursor: cursor(query)?,
                })
            }),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        ["channels"] => match *method {
            Method::GET => Ok(RegistryAction::Channels),
            _ => Err(RegistryError::MethodNotAllowed),
        },
        _ => return None,
    };
    Some(action)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    /// A string, or an array of strings (a secret's values, newest first): read as JSON values and checked
    /// here (an untagged enum would cost the Worker serde's buffering machinery).
    fields: BTreeMap<String, Value>,
}

fn given_values(value: Value) -> Result<Vec<String>, RegistryError> {
    match value {
        Value::String(one) => Ok(vec![one]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                _ => Err(RegistryError::InvalidBody),
            })
            .collect(),
        _ => Err(RegistryError::InvalidBody),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretBody {
    value: String,
}

/// A write as the per-account writer performs it, after routing and body parsing in the Worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterCall {
    Get,
    Put {
        fields: BTreeMap<String, Vec<String>>,
        if_match: Option<String>,
    },
    AddSecret {
        field: String,
        value: String,
        if_match: Option<String>,
    },
    RetireSecret {
        field: String,
        fingerprint: String,
        if_match: Option<String>,
    },
    Delete {
        if_match: Option<String>,
    },
    Reseal,
}

impl WriterCall {
    /// The writer call for a write action and its body (JSON, already capped by the Worker).
    pub fn from_request(
        action: &RegistryAction,
        body: &[u8],
        if_match: Option<&str>,
    ) -> Result<WriterCall, RegistryError> {
        let if_match = if_match.map(str::to_owned);
        match action {
            RegistryAction::Put(_) => {
                let body: PutBody =
                    serde_json::from_slice(body).map_err(|_| RegistryError::InvalidBody)?;
                let fields = body
                    .fields
                    .into_iter()
                    .map(|(name, given)| Ok((name, given_values(given)?)))
                    .collect::<Result<_, RegistryError>>()?;
                Ok(WriterCall::Put { fields, if_match })
            }
            RegistryAction::AddSecret(_, field) => {
                let body: SecretBody =
                    serde_json::from_slice(body).map_err(|_| RegistryError::InvalidBody)?;
                Ok(WriterCall::AddSecret {
                    field: field.clone(),
                    value: body.value,
                    if_match,
                })
            }
            RegistryAction::RetireSecret(_, field, fingerprint) => Ok(WriterCall::RetireSecret {
                field: field.clone(),
                fingerprint: fingerprint.clone(),
                if_match,
            }),
            RegistryAction::Delete(_) => Ok(WriterCall::Delete { if_match }),
            _ => Ok(WriterCall::Get),
        }
    }

    fn if_match(&self) -> Option<&str> {
        match self {
            WriterCall::Put { if_match, .. }
            | WriterCall::AddSecret { if_match, .. }
            | WriterCall::RetireSecret { if_match, .. }
            | WriterCall::Delete { if_match } => if_match.as_deref(),
            WriterCall::Get | WriterCall::Reseal => None,
        }
    }
}

/// What a write did: the record to store (`None`: deleted), and the change for the audit trail (`None`:
/// nothing changed, e.g. a re-seal with nothing stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub record: Option<StoredAccount>,
    pub change: Option<Change>,
    pub created: bool,
}

/// The writer's decision for one call against the record it holds.
pub fn apply(
    path: &AccountPath,
    existing: Option<&StoredAccount>,
    call: &WriterCall,
    keys: &SealingKeys,
    nonces: &mut record::Nonces<'_>,
    now_ms: u64,
) -> Result<Applied, RegistryError> {
    if !record::if_match_allows(call.if_match(), existing.map(|r| r.version)) {
        return Err(RegistryError::PreconditionFailed);
    }
    let found = || existing.ok_or(RegistryError::NotFound);
    let (record, change) = match call {
        WriterCall::Get => {
            return Ok(Applied {
                record: Some(found()?.clone()),
                change: None,
                created: false,
            })
        }
        WriterCall::Put { fields, .. } => {
            let given = fields
                .iter()
                .map(|(name, values)| {
                    let value = match values.as_slice() {
                        [one] => GivenValue::One(one.clone()),
                        _ => GivenValue::Several(values.clone()),
                    };
                    (name.clone(), value)
                })
                .collect();
            record::put(
                existing,
                path.channel,
                &path.account,
                &given,
                keys,
                nonces,
                now_ms,
            )?
        }
        WriterCall::AddSecret { field, value, .. } => {
            record::add_secret(found()?, field, value, keys, nonces, now_ms)?
        }
        WriterCall::RetireSecret {
            field, fingerprint, ..
        } => record::retire_secret(found()?, field, fingerprint, now_ms)?,
        WriterCall::Delete { .. } => {
            let old = found()?;
            let change = Change {
                action: "delete",
                fields: old.fields.keys().cloned().collect(),
            };
            return Ok(Applied {
                record: None,
                change: Some(change),
                created: false,
            });
        }
        WriterCall::Reseal => {
            let old = found()?;
            return Ok(match record::reseal(old, keys, nonces)? {
                Some(record) => Applied {
                    record: Some(record),
                    change: Some(Change {
                        action: "reseal",
                        fields: Vec::new(),
                    }),
                    created: false,
                },
                None => Applied {
                    record: Some(old.clone()),
                    change: None,
                    created: false,
                },
            });
        }
    };
    Ok(Applied {
        record: Some(record),
        change: Some(change),
        created: existing.is_none(),
    })
}

#[cfg(test)]
mod tests;
