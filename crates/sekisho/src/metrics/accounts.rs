//! The configured accounts, found from the binding names: `{CHANNEL}_{ACCOUNT}_{FIELD}` where `FIELD` is the
//! channel's secret field ([`crate::channels::Channel::account_field`]), and `EMAIL_{ACCOUNT}_ADDRESS`.
//!
//! A binding name cannot tell `-` from `_` (both are `_`), and account names match `[a-z0-9-]`, so an `_` in
//! a binding name is read as `-`: `LINE_ACME_JP_CHANNEL_SECRET` is the account `acme-jp`.

use serde::Serialize;

use crate::channels;
use crate::config::{is_valid_account, Bindings};
use crate::mail as email;

const EMAIL_FIELD: &str = "ADDRESS";

/// One configured channel/account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ConfiguredAccount {
    pub channel: &'static str,
    pub account: String,
}

/// The binding field whose values are the account's secrets (its rotation), or the e-mail address field.
pub fn secret_field(channel: &str) -> Option<&'static str> {
    if channel == email::CHANNEL {
        return None;
    }
    channels::find(channel).map(|c| c.account_field())
}

fn upper(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// The account named by `binding` for a channel whose bindings start with `prefix` and end with `_{field}`.
fn account_in(binding: &str, prefix: &str, field: &str) -> Option<String> {
    let middle = binding
        .strip_prefix(prefix)?
        .strip_prefix('_')?
        .strip_suffix(field)?
        .strip_suffix('_')?;
    let account = middle.to_ascii_lowercase().replace('_', "-");
    is_valid_account(&account).then_some(account)
}

/// Every configured account, sorted by channel and account.
pub fn configured(bindings: &dyn Bindings) -> Vec<ConfiguredAccount> {
    let names = bindings.names();
    let mut found = Vec::new();
    for channel in channels::CHANNELS {
        let prefix = upper(channel.name());
        for name in &names {
            if let Some(account) = account_in(name, &prefix, channel.account_field()) {
                found.push(ConfiguredAccount {
                    channel: channel.name(),
                    account,
                });
            }
        }
    }
    let email_prefix = upper(email::CHANNEL);
    for name in &names {
        if let Some(account) = account_in(name, &email_prefix, EMAIL_FIELD) {
            found.push(ConfiguredAccount {
                channel: email::CHANNEL,
                account,
            });
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Whether the channel/account is configured: only those are recorded, so a caller probing random account
/// names cannot grow the store.
pub fn is_configured(channel: &str, account: &str, bindings: &dyn Bindings) -> bool {
    let field = match secret_field(channel) {
        Some(field) => field,
        None if channel == email::CHANNEL => EMAIL_FIELD,
        None => return false,
    };
    is_valid_account(account)
        && bindings
            .get(&crate::config::binding_name(channel, account, field))
            .is_some()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn bindings(names: &[&str]) -> HashMap<String, String> {
        names
            .iter()
            .map(|n| ((*n).to_owned(), "x".to_owned()))
            .collect()
    }

    #[test]
    fn accounts_come_from_the_secret_binding_of_each_channel_and_email_addresses() {
        let b = bindings(&[
            "LINE_ACME_JP_CHANNEL_SECRET",
            "LINE_ACME_JP_BACKEND_URL",
            "LINEWORKS_DESK_BOT_SECRET",
            "LINEWORKS_DESK_BOT_ID",
            "TELEGRAM_BOT1_SECRET_TOKEN",
            "GENERIC_HOOKS_SECRET",
            "WHATSAPP_SHOP_APP_SECRET",
            "EMAIL_SUPPORT_ADDRESS",
            "EMAIL_MAX_BYTES",
            "BACKEND_URL",
            "ADMIN_TOKEN",
            "LINE__CHANNEL_SECRET",
            "LINE_CHANNEL_SECRET",
        ]);
        let found: Vec<(&str, String)> = configured(&b)
            .into_iter()
            .map(|a| (a.channel, a.account))
            .collect();
        assert_eq!(
            found,
            vec![
                ("email", "support".to_owned()),
                ("generic", "hooks".to_owned()),
                ("line", "acme-jp".to_owned()),
                ("lineworks", "desk".to_owned()),
                ("telegram", "bot1".to_owned()),
                ("whatsapp", "shop".to_owned()),
            ]
        );
    }

    #[test]
    fn only_configured_accounts_are_recorded() {
        let b = bindings(&["LINE_ACME_JP_CHANNEL_SECRET", "EMAIL_SUPPORT_ADDRESS"]);
        assert!(is_configured("line", "acme-jp", &b));
        assert!(is_configured("email", "support", &b));
        assert!(!is_configured("line", "other", &b));
        assert!(!is_configured("nochannel", "acme-jp", &b));
        assert!(!is_configured("line", "ACME_JP", &b));
    }
}
