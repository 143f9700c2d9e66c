//! Which account a message is for: the recipient address (SMTP `RCPT TO`) against `EMAIL_{ACCOUNT}_ADDRESS`.

use crate::config::{self, Bindings};
use crate::{ConfigProblem, Rejection};

use super::{ADDRESS_FIELD, CHANNEL};

/// The account whose `EMAIL_{ACCOUNT}_ADDRESS` lists `recipient`. Addresses compare case-insensitively; a
/// sub-address (`support+urgent@…`) also matches its base address (`support@…`) when it is not configured
/// itself. The same address under two accounts is a configuration error, never a guess.
pub fn account_for_recipient(
    recipient: &str,
    bindings: &dyn Bindings,
) -> Result<String, Rejection> {
    let recipient = recipient
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let wanted = recipient.to_lowercase();
    let base = base_address(&wanted);
    let mut exact: Vec<(String, String)> = Vec::new();
    let mut by_base: Vec<(String, String)> = Vec::new();
    let mut names = bindings.names();
    names.sort();
    for name in names {
        let Some(account) = account_of_binding(&name) else {
            continue;
        };
        let Some(value) = bindings.get(&name) else {
            continue;
        };
        for address in config::split_values(&value) {
            let address = address.to_lowercase();
            if address == wanted {
                exact.push((account.clone(), name.clone()));
            } else if base.as_deref() == Some(address.as_str()) {
                by_base.push((account.clone(), name.clone()));
            }
        }
    }
    let found = if exact.is_empty() { by_base } else { exact };
    match found.as_slice() {
        [] => Err(Rejection::UnknownRecipient),
        [(account, _)] => Ok(account.clone()),
        [(first, first_binding), rest @ ..] => {
            if rest.iter().all(|(account, _)| account == first) {
                return Ok(first.clone());
            }
            let bindings: Vec<&str> = std::iter::once(first_binding.as_str())
                .chain(rest.iter().map(|(_, binding)| binding.as_str()))
                .collect();
            Err(Rejection::misconfigured_because(
                bindings.join(", "),
                ConfigProblem::AddressInSeveralAccounts,
            ))
        }
    }
}

/// `EMAIL_ACME_JP_ADDRESS` → `acme-jp`.
fn account_of_binding(name: &str) -> Option<String> {
    let middle = name.strip_prefix("EMAIL_")?.strip_suffix("_ADDRESS")?;
    let account = middle.replace('_', "-").to_ascii_lowercase();
    // Only names that map back exactly: `EMAIL_Acme_ADDRESS` is not `EMAIL_ACME_ADDRESS`.
    (config::is_valid_account(&account)
        && config::binding_name(CHANNEL, &account, ADDRESS_FIELD) == name)
        .then_some(account)
}

fn base_address(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let (base, _tag) = local.split_once('+')?;
    Some(format!("{base}@{domain}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn recipients_map_to_accounts_case_insensitively_with_several_addresses() {
        let b = bindings(&[
            (
                "EMAIL_SUPPORT_ADDRESS",
                "support@example.com, info@Example.co.jp",
            ),
            ("EMAIL_ACME_JP_ADDRESS", "acme@example.com"),
            ("LINE_SUPPORT_CHANNEL_SECRET", "x"),
        ]);
        assert_eq!(
            account_for_recipient("support@example.com", &b).unwrap(),
            "support"
        );
        assert_eq!(
            account_for_recipient("INFO@EXAMPLE.CO.JP", &b).unwrap(),
            "support"
        );
        assert_eq!(
            account_for_recipient("<acme@example.com>", &b).unwrap(),
            "acme-jp"
        );
        assert_eq!(
            account_for_recipient("nobody@example.com", &b),
            Err(Rejection::UnknownRecipient)
        );
        assert_eq!(
            account_for_recipient("", &b),
            Err(Rejection::UnknownRecipient)
        );
    }

    #[test]
    fn sub_addresses_fall_back_to_their_base_unless_configured_themselves() {
        let b = bindings(&[
            ("EMAIL_SUPPORT_ADDRESS", "support@example.com"),
            ("EMAIL_URGENT_ADDRESS", "support+urgent@example.com"),
        ]);
        assert_eq!(
            account_for_recipient("support+tag@example.com", &b).unwrap(),
            "support"
        );
        assert_eq!(
            account_for_recipient("support+urgent@example.com", &b).unwrap(),
            "urgent"
        );
    }

    #[test]
    fn one_address_in_two_accounts_is_a_configuration_error_naming_both_bindings() {
        let b = bindings(&[
            ("EMAIL_A_ADDRESS", "shared@example.com"),
            ("EMAIL_B_ADDRESS", "Shared@example.com"),
        ]);
        match account_for_recipient("shared@example.com", &b) {
            Err(Rejection::Misconfigured { binding, .. }) => {
                assert!(binding.contains("EMAIL_A_ADDRESS") && binding.contains("EMAIL_B_ADDRESS"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binding_names_that_do_not_map_back_exactly_are_ignored() {
        let b = bindings(&[
            ("EMAIL_Acme_ADDRESS", "a@example.com"),
            ("EMAIL__ADDRESS", "b@example.com"),
            ("EMAIL_X-Y_ADDRESS", "c@example.com"),
        ]);
        for address in ["a@example.com", "b@example.com", "c@example.com"] {
            assert_eq!(
                account_for_recipient(address, &b),
                Err(Rejection::UnknownRecipient)
            );
        }
    }
}
