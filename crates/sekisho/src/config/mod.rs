//! Configuration from environment bindings named `{CHANNEL}_{ACCOUNT}_{FIELD}`.

use std::collections::HashMap;

use crate::Rejection;

pub mod field;

/// Read access to the Worker's environment bindings (vars and secrets). The edge implements it over
/// `worker::Env`; tests and the CLI over a map.
pub trait Bindings {
    fn get(&self, name: &str) -> Option<String>;

    /// The names of all bindings, for configuration that is found by value rather than by name (an e-mail
    /// recipient address → its account).
    fn names(&self) -> Vec<String>;
}

impl Bindings for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl<B: Bindings + ?Sized> Bindings for &B {
    fn get(&self, name: &str) -> Option<String> {
        (**self).get(name)
    }

    fn names(&self) -> Vec<String> {
        (**self).names()
    }
}

/// `line` + `acme-jp` + `CHANNEL_SECRET` → `LINE_ACME_JP_CHANNEL_SECRET`.
pub fn binding_name(channel: &str, account: &str, field: &str) -> String {
    let mut name = String::with_capacity(channel.len() + account.len() + field.len() + 2);
    for part in [channel, account, field] {
        if !name.is_empty() {
            name.push('_');
        }
        name.extend(part.chars().map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        }));
    }
    name
}

/// A binding may hold several values separated by commas or whitespace, newest first (secret rotation).
pub fn split_values(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `account` segments are `[a-z0-9-]{1,64}`.
pub fn is_valid_account(account: &str) -> bool {
    (1..=64).contains(&account.len())
        && account
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// One account's view of the bindings.
pub struct Account<'a> {
    pub channel: &'static str,
    pub name: &'a str,
    bindings: &'a dyn Bindings,
}

impl<'a> Account<'a> {
    pub fn new(channel: &'static str, name: &'a str, bindings: &'a dyn Bindings) -> Self {
        Account {
            channel,
            name,
            bindings,
        }
    }

    pub fn binding_name(&self, field: &str) -> String {
        binding_name(self.channel, self.name, field)
    }

    /// The raw value of `{CHANNEL}_{ACCOUNT}_{FIELD}`, trimmed; `None` when unset or blank.
    pub fn field(&self, field: &str) -> Option<String> {
        self.bindings
            .get(&self.binding_name(field))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// All values of a rotating field, newest first; empty when unset.
    pub fn values(&self, field: &str) -> Vec<String> {
        self.field(field)
            .map(|v| split_values(&v))
            .unwrap_or_default()
    }

    /// All values of a field the channel cannot work without.
    pub fn required_values(&self, field: &str) -> Result<Vec<String>, Rejection> {
        let values = self.values(field);
        if values.is_empty() {
            return Err(Rejection::misconfigured(self.binding_name(field)));
        }
        Ok(values)
    }

    pub fn required_field(&self, field: &str) -> Result<String, Rejection> {
        self.field(field)
            .ok_or_else(|| Rejection::misconfigured(self.binding_name(field)))
    }

    /// A gateway-wide binding (e.g. `BACKEND_URL`), with the account's own override taking precedence.
    pub fn field_or_global(&self, field: &str) -> Option<String> {
        self.field(field).or_else(|| {
            self.bindings
                .get(field)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
    }

    pub fn bindings(&self) -> &'a dyn Bindings {
        self.bindings
    }
}

/// Default body limit: 1 MiB, overridable with `MAX_BODY_BYTES`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn max_body_bytes(bindings: &dyn Bindings) -> usize {
    bindings
        .get("MAX_BODY_BYTES")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_MAX_BODY_BYTES)
}

/// An account's body limit: its own `{CHANNEL}_{ACCOUNT}_MAX_BODY_BYTES`, else the channel's default, never above
/// the gateway-wide [`max_body_bytes`].
pub fn body_limit(
    account: &Account<'_>,
    channel_default: Option<usize>,
) -> Result<usize, Rejection> {
    let global = max_body_bytes(account.bindings());
    let own = match account.field("MAX_BODY_BYTES") {
        Some(value) => Some(
            value
                .parse::<usize>()
                .map_err(|_| Rejection::misconfigured(account.binding_name("MAX_BODY_BYTES")))?,
        ),
        None => channel_default,
    };
    Ok(own.map_or(global, |own| own.min(global)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_limits_per_account_channel_and_gateway() {
        let bindings = HashMap::from([
            ("WECHAT_A_MAX_BODY_BYTES".to_owned(), "1000".to_owned()),
            ("WECHAT_B_MAX_BODY_BYTES".to_owned(), "lots".to_owned()),
            ("MAX_BODY_BYTES".to_owned(), "50000".to_owned()),
        ]);
        let account = |name| Account::new("wechat", name, &bindings);
        assert_eq!(body_limit(&account("a"), Some(65536)), Ok(1000));
        assert_eq!(body_limit(&account("c"), Some(65536)), Ok(50000));
        assert_eq!(body_limit(&account("c"), Some(100)), Ok(100));
        assert_eq!(body_limit(&account("c"), None), Ok(50000));
        assert_eq!(
            body_limit(&account("b"), None),
            Err(Rejection::misconfigured("WECHAT_B_MAX_BODY_BYTES"))
        );
    }

    use super::*;

    #[test]
    fn binding_names_upper_case_and_replace_dashes() {
        assert_eq!(
            binding_name("line", "acme-jp", "CHANNEL_SECRET"),
            "LINE_ACME_JP_CHANNEL_SECRET"
        );
    }

    #[test]
    fn rotation_values_split_on_commas_and_whitespace() {
        assert_eq!(
            split_values(" new, old\n older ,,"),
            vec!["new", "old", "older"]
        );
    }

    #[test]
    fn account_names_are_restricted() {
        assert!(is_valid_account("acme-01"));
        assert!(!is_valid_account("Acme"));
        assert!(!is_valid_account(""));
        assert!(!is_valid_account(&"a".repeat(65)));
        assert!(!is_valid_account("a_b"));
    }
}
