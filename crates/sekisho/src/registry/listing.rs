//! `GET /admin/api/registry`: every account, environment first then registry, one cursor across both; and the
//! environment account as the API shows it (its fields read from the bindings, secrets by fingerprint).

use serde_json::{json, Value};

use super::api::RegistryError;
use super::fields;
use super::record::{fields_view, webhook_url, FieldShown};
use crate::config::{binding_name, split_values, Bindings};
use crate::crypto::seal::fingerprint;
use crate::metrics::accounts::{configured, ConfiguredAccount};

/// Where a page starts: at an offset among the environment accounts, or at the store's own cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListCursor {
    Env(usize),
    Store(Option<String>),
}

impl ListCursor {
    pub fn parse(raw: Option<&str>) -> Result<ListCursor, RegistryError> {
        let bad = RegistryError::InvalidParameter("cursor");
        match raw {
            None => Ok(ListCursor::Env(0)),
            Some(raw) => match raw.split_at_checked(2) {
                Some(("e.", offset)) => offset.parse().map(ListCursor::Env).map_err(|_| bad),
                Some(("s.", "")) => Ok(ListCursor::Store(None)),
                Some(("s.", store)) => Ok(ListCursor::Store(Some(store.to_owned()))),
                _ => Err(bad),
            },
        }
    }

    pub fn encode(&self) -> String {
        match self {
            ListCursor::Env(offset) => format!("e.{offset}"),
            ListCursor::Store(cursor) => format!("s.{}", cursor.as_deref().unwrap_or_default()),
        }
    }
}

/// The environment accounts of `channel` (or all), sorted.
pub fn env_accounts(bindings: &dyn Bindings, channel: Option<&str>) -> Vec<ConfiguredAccount> {
    configured(bindings)
        .into_iter()
        .filter(|account| channel.is_none_or(|c| account.channel == c))
        .collect()
}

/// One page of the environment accounts from `offset`, and where the next page starts: more environment
/// accounts, or the store's first page.
pub fn env_page(
    accounts: &[ConfiguredAccount],
    offset: usize,
    limit: usize,
) -> (&[ConfiguredAccount], ListCursor) {
    let page = accounts.get(offset..).unwrap_or_default();
    let page = page.get(..limit.min(page.len())).unwrap_or_default();
    let next = if offset + page.len() < accounts.len() {
        ListCursor::Env(offset + page.len())
    } else {
        ListCursor::Store(None)
    };
    (page, next)
}

/// An environment account as the API shows it.
pub fn env_view(bindings: &dyn Bindings, channel: &str, account: &str, origin: &str) -> Value {
    let specs = fields::fields_of(channel).unwrap_or_default();
    let mut path_secret = None;
    let shown: Vec<(&str, FieldShown<'_>, String)> = specs
        .iter()
        .filter_map(|spec| {
            let raw = bindings.get(&binding_name(channel, account, spec.name))?;
            let raw = raw.trim().to_owned();
            if raw.is_empty() {
                return None;
            }
            Some((spec.name, spec.secret, raw))
        })
        .map(|(name, secret, raw)| {
            if secret {
                let values = split_values(&raw);
                if channel == "chatplus" && name == "PATH_SECRET" {
                    path_secret = values.first().cloned();
                }
                let prints = values.iter().map(|v| fingerprint(v.as_bytes())).collect();
                (name, FieldShown::Secret(prints), String::new())
            } else {
                (name, FieldShown::Setting(""), raw)
            }
        })
        .collect();
    let fields = fields_view(shown.iter().map(|(name, shown, raw)| {
        let shown = match shown {
            FieldShown::Secret(prints) => FieldShown::Secret(prints.clone()),
            FieldShown::Setting(_) => FieldShown::Setting(raw.as_str()),
        };
        (*name, shown)
    }));
    json!({
        "channel": channel,
        "account": account,
        "source": "env",
        "webhook_url": webhook_url(origin, channel, account, path_secret.as_deref()),
        "fields": fields,
        "created_at": null,
        "updated_at": null,
        "version": null,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        for cursor in [
            ListCursor::Env(0),
            ListCursor::Env(40),
            ListCursor::Store(None),
            ListCursor::Store(Some("AAEC".into())),
        ] {
            assert_eq!(ListCursor::parse(Some(&cursor.encode())).unwrap(), cursor);
        }
        assert_eq!(ListCursor::parse(None).unwrap(), ListCursor::Env(0));
        assert!(ListCursor::parse(Some("x")).is_err());
        assert!(ListCursor::parse(Some("e.x")).is_err());
    }

    #[test]
    fn env_pages_then_the_store() {
        let accounts: Vec<ConfiguredAccount> = (0..5)
            .map(|i| ConfiguredAccount {
                channel: "line",
                account: format!("a{i}"),
            })
            .collect();
        let (page, next) = env_page(&accounts, 0, 2);
        assert_eq!(page.len(), 2);
        assert_eq!(next, ListCursor::Env(2));
        let (page, next) = env_page(&accounts, 4, 2);
        assert_eq!(page.len(), 1);
        assert_eq!(next, ListCursor::Store(None));
        let (page, _) = env_page(&accounts, 9, 2);
        assert!(page.is_empty());
    }

    #[test]
    fn an_env_account_shows_settings_and_secret_fingerprints_only() {
        let bindings: HashMap<String, String> = HashMap::from([
            (
                "LINE_ACME_CHANNEL_SECRET".into(),
                "new-secret-value, old-secret-value".into(),
            ),
            (
                "LINE_ACME_BACKEND_URL".into(),
                "https://b.example/in".into(),
            ),
        ]);
        let view = env_view(&bindings, "line", "acme", "https://gate.example");
        let text = view.to_string();
        assert!(!text.contains("new-secret-value") && !text.contains("old-secret-value"));
        assert_eq!(view["source"], "env");
        assert_eq!(view["webhook_url"], "https://gate.example/line/acme");
        assert_eq!(
            view["fields"]["BACKEND_URL"]["value"],
            "https://b.example/in"
        );
        assert_eq!(
            view["fields"]["CHANNEL_SECRET"]["values"][1]["fingerprint"],
            fingerprint(b"old-secret-value")
        );
        assert_eq!(env_accounts(&bindings, Some("line")).len(), 1);
        assert!(env_accounts(&bindings, Some("slack")).is_empty());
    }
}
