//! A registry account seen through the [`Bindings`] seam: the channel asks for `LINE_ACME_CHANNEL_SECRET`
//! exactly as it would of the environment, and gets the registry's values (several joined with commas, newest
//! first, as a rotating binding holds them).
//!
//! **The registry wins.** When an account exists in the registry, every one of its declared fields is read from
//! the registry — an environment binding of the same account is not consulted, not even for a field the
//! registry record leaves unset — so an account's configuration always comes from one place. Gateway-wide
//! bindings (`BACKEND_URL`, `BACKEND_SIGNING_SECRET`, …) still come from the environment. This makes the move
//! from environment bindings to the registry seamless: `sekisho accounts import` creates the registry copy,
//! which takes over on the next read; the environment bindings can then be removed at leisure.

use super::fields;
use super::record::OpenedAccount;
use crate::config::{binding_name, Bindings};

pub struct RegistryOverlay<'a> {
    env: &'a dyn Bindings,
    /// `(binding name, value)` of every field the registry account holds.
    values: Vec<(String, String)>,
    /// The binding names of every declared field of this channel/account: the environment's are hidden.
    shadowed: Vec<String>,
}

impl<'a> RegistryOverlay<'a> {
    pub fn new(env: &'a dyn Bindings, account: &OpenedAccount) -> RegistryOverlay<'a> {
        RegistryOverlay::of_accounts(env, std::iter::once(account))
    }

    /// Several registry accounts over the environment at once (the console's accounts table).
    pub fn of_accounts<'b>(
        env: &'a dyn Bindings,
        accounts: impl IntoIterator<Item = &'b OpenedAccount>,
    ) -> RegistryOverlay<'a> {
        let mut values = Vec::new();
        let mut shadowed = Vec::new();
        for account in accounts {
            let binding = |field: &str| binding_name(&account.channel, &account.account, field);
            values.extend(
                account
                    .fields
                    .iter()
                    .map(|(field, values)| (binding(field), values.join(","))),
            );
            shadowed.extend(
                fields::fields_of(&account.channel)
                    .unwrap_or_default()
                    .iter()
                    .map(|spec| binding(spec.name)),
            );
        }
        RegistryOverlay {
            env,
            values,
            shadowed,
        }
    }
}

impl Bindings for RegistryOverlay<'_> {
    fn get(&self, name: &str) -> Option<String> {
        if let Some((_, value)) = self.values.iter().find(|(binding, _)| binding == name) {
            return Some(value.clone());
        }
        if self.shadowed.iter().any(|binding| binding == name) {
            return None;
        }
        self.env.get(name)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .env
            .names()
            .into_iter()
            .filter(|name| !self.shadowed.contains(name))
            .collect();
        names.extend(self.values.iter().map(|(binding, _)| binding.clone()));
        names
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::channels;
    use crate::config::Account;

    fn opened(fields: &[(&str, &[&str])]) -> OpenedAccount {
        OpenedAccount {
            channel: "line".into(),
            account: "acme".into(),
            version: 3,
            fields: fields
                .iter()
                .map(|(name, values)| {
                    (
                        (*name).to_owned(),
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_channel_reads_a_registry_account_as_it_reads_bindings() {
        let env: HashMap<String, String> =
            HashMap::from([("BACKEND_URL".into(), "https://b.example".into())]);
        let account = opened(&[("CHANNEL_SECRET", &["new", "old"])]);
        let overlay = RegistryOverlay::new(&env, &account);
        let view = Account::new("line", "acme", &overlay);
        assert_eq!(view.values("CHANNEL_SECRET"), ["new", "old"]);
        assert_eq!(
            view.field_or_global("BACKEND_URL").as_deref(),
            Some("https://b.example")
        );
        assert!(channels::find("line").is_some_and(|c| c.account_field() == "CHANNEL_SECRET"));
    }

    #[test]
    fn the_registry_wins_over_the_environment_field_by_field_and_for_unset_fields() {
        let env: HashMap<String, String> = HashMap::from([
            ("LINE_ACME_CHANNEL_SECRET".into(), "env-secret".into()),
            ("LINE_ACME_BACKEND_URL".into(), "https://env.example".into()),
            ("LINE_OTHER_CHANNEL_SECRET".into(), "other".into()),
        ]);
        let account = opened(&[("CHANNEL_SECRET", &["registry-secret"])]);
        let overlay = RegistryOverlay::new(&env, &account);
        assert_eq!(
            overlay.get("LINE_ACME_CHANNEL_SECRET").as_deref(),
            Some("registry-secret")
        );
        // Declared but unset in the registry: the environment's value is not used.
        assert_eq!(overlay.get("LINE_ACME_BACKEND_URL"), None);
        // Another account's bindings are untouched.
        assert_eq!(
            overlay.get("LINE_OTHER_CHANNEL_SECRET").as_deref(),
            Some("other")
        );
        let names = overlay.names();
        assert!(names.contains(&"LINE_ACME_CHANNEL_SECRET".to_owned()));
        assert!(!names.contains(&"LINE_ACME_BACKEND_URL".to_owned()));
        assert_eq!(
            names
                .iter()
                .filter(|n| *n == "LINE_ACME_CHANNEL_SECRET")
                .count(),
            1
        );
    }

    #[test]
    fn several_registry_accounts_are_found_as_configured_accounts() {
        let env: HashMap<String, String> =
            HashMap::from([("SLACK_ENVONLY_SIGNING_SECRET".into(), "s".into())]);
        let one = opened(&[("CHANNEL_SECRET", &["a"])]);
        let mut two = opened(&[("CHANNEL_SECRET", &["b"])]);
        two.account = "beta".into();
        let overlay = RegistryOverlay::of_accounts(&env, [&one, &two]);
        let found: Vec<String> = crate::metrics::accounts::configured(&overlay)
            .into_iter()
            .map(|a| format!("{}/{}", a.channel, a.account))
            .collect();
        assert_eq!(found, ["line/acme", "line/beta", "slack/envonly"]);
    }
}
