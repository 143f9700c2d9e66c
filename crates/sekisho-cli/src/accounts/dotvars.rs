//! `sekisho accounts import FILE`: a bindings file in `.dev.vars` form read into the registry accounts it
//! describes, so a deployment moves from environment bindings to the registry.
//!
//! The file: `NAME=value` lines; `#` starts a comment line (or, after whitespace, ends an unquoted value);
//! `export ` before a name is allowed; values may be in single quotes (taken as they are) or double quotes
//! (`\n` is a line break, and the value may span lines, as a PEM key does).

use std::collections::{BTreeMap, HashMap};

use sekisho::config::{binding_name, split_values};
use sekisho::metrics::accounts::configured;
use sekisho::registry::fields::{fields_of, Format};
use serde_json::Value;

/// A line that is not `NAME=value`: its number only (the line may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotVarsError {
    #[error("line {0} is not NAME=value")]
    NotAssignment(usize),
    #[error("the quote opened on line {0} is not closed")]
    Unclosed(usize),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The bindings a `.dev.vars` file sets (a later line wins, as in the file's readers).
pub fn parse(text: &str) -> Result<HashMap<String, String>, DotVarsError> {
    let mut out = HashMap::new();
    let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
    while let Some((number, line)) = lines.next() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, rest) = line
            .split_once('=')
            .ok_or(DotVarsError::NotAssignment(number))?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(DotVarsError::NotAssignment(number));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let mut body = rest.get(1..).unwrap_or_default().to_owned();
                loop {
                    if let Some(end) = body.find(quote) {
                        body.truncate(end);
                        break;
                    }
                    let (_, next) = lines.next().ok_or(DotVarsError::Unclosed(number))?;
                    body.push('\n');
                    body.push_str(next);
                }
                if quote == '"' {
                    body.replace("\\n", "\n")
                } else {
                    body
                }
            }
            _ => {
                let end = rest.find(" #").unwrap_or(rest.len());
                rest.get(..end).unwrap_or_default().trim().to_owned()
            }
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// One registry account to create: its channel, its name, and the PUT body's `fields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub channel: &'static str,
    pub account: String,
    pub fields: BTreeMap<String, Value>,
}

impl Planned {
    /// The fields and how many values each holds: `CHANNEL_SECRET[2], CHANNEL_ID` (names only).
    pub fn summary(&self) -> String {
        self.fields
            .iter()
            .map(|(name, value)| match value {
                Value::Array(values) => format!("{name}[{}]", values.len()),
                _ => name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The accounts the bindings describe (found by their secret binding, or `EMAIL_{ACCOUNT}_ADDRESS`), each with
/// every declared field `{CHANNEL}_{ACCOUNT}_{FIELD}` that is set. A rotating secret's values (commas or
/// whitespace, newest first) become a list; a PEM key stays one value.
pub fn plan(bindings: &HashMap<String, String>) -> Vec<Planned> {
    configured(bindings)
        .into_iter()
        .map(|found| {
            let mut fields = BTreeMap::new();
            for spec in fields_of(found.channel).unwrap_or_default() {
                let Some(raw) =
                    bindings.get(&binding_name(found.channel, &found.account, spec.name))
                else {
                    continue;
                };
                let raw = raw.trim();
                if raw.is_empty() {
                    continue;
                }
                let value = if spec.secret && !matches!(spec.format, Format::Pem) {
                    let mut values = split_values(raw);
                    if values.len() == 1 {
                        Value::from(values.pop().unwrap_or_default())
                    } else {
                        Value::from(values)
                    }
                } else {
                    Value::from(raw)
                };
                fields.insert(spec.name.to_owned(), value);
            }
            Planned {
                channel: found.channel,
                account: found.account,
                fields,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILE: &str = r#"# gateway-wide
BACKEND_URL=https://backend.example/events
ADMIN_TOKEN="admin-token-0123456789"

# LINE: rotating (newest first)
LINE_SHOP_CHANNEL_SECRET="0123456789abcdef0123456789abcdef, fedcba9876543210fedcba9876543210"
LINE_SHOP_CHANNEL_ID=1234567890 # from LINE Developers
LINE_SHOP_BACKEND_URL='https://shop.example/in'
export TELEGRAM_ACME_JP_SECRET_TOKEN=telegram-secret-token-acme
LINEWORKS_DESK_PRIVATE_KEY="-----BEGIN PRIVATE KEY-----
MIIE abc
-----END PRIVATE KEY-----"
LINEWORKS_DESK_BOT_SECRET=works-bot-secret-0123
EMAIL_SUPPORT_ADDRESS=support@example.com
"#;

    #[test]
    fn the_file_reads_as_bindings() {
        let vars = parse(FILE).unwrap();
        assert_eq!(vars["ADMIN_TOKEN"], "admin-token-0123456789");
        assert_eq!(vars["LINE_SHOP_CHANNEL_ID"], "1234567890");
        assert_eq!(vars["LINE_SHOP_BACKEND_URL"], "https://shop.example/in");
        assert_eq!(
            vars["LINEWORKS_DESK_PRIVATE_KEY"],
            "-----BEGIN PRIVATE KEY-----\nMIIE abc\n-----END PRIVATE KEY-----"
        );
        assert_eq!(parse("A=\"x\\ny\"").unwrap()["A"], "x\ny");
        assert_eq!(parse("A='x\\ny'").unwrap()["A"], "x\\ny");
    }

    #[test]
    fn bad_lines_are_named_by_number_only() {
        assert_eq!(
            parse("A=1\nsecret-without-name\n"),
            Err(DotVarsError::NotAssignment(2))
        );
        assert_eq!(parse("A=\"open\nB=2"), Err(DotVarsError::Unclosed(1)));
        assert_eq!(parse("1A=x"), Err(DotVarsError::NotAssignment(1)));
        let error = parse("s3cret-value\n").unwrap_err().to_string();
        assert!(!error.contains("s3cret"));
    }

    #[test]
    fn each_account_gets_its_declared_fields_and_rotating_secrets_become_lists() {
        let planned = plan(&parse(FILE).unwrap());
        let names: Vec<String> = planned
            .iter()
            .map(|p| format!("{}/{}", p.channel, p.account))
            .collect();
        assert_eq!(
            names,
            [
                "email/support",
                "line/shop",
                "lineworks/desk",
                "telegram/acme-jp"
            ]
        );
        let line = &planned[1];
        assert_eq!(
            serde_json::to_value(&line.fields).unwrap(),
            json!({
                "CHANNEL_SECRET": ["0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"],
                "CHANNEL_ID": "1234567890",
                "BACKEND_URL": "https://shop.example/in",
            })
        );
        assert_eq!(line.summary(), "BACKEND_URL, CHANNEL_ID, CHANNEL_SECRET[2]");
        let works = &planned[2];
        assert_eq!(
            works.fields["PRIVATE_KEY"],
            "-----BEGIN PRIVATE KEY-----\nMIIE abc\n-----END PRIVATE KEY-----"
        );
        assert_eq!(
            planned[3].fields["SECRET_TOKEN"],
            "telegram-secret-token-acme"
        );
        assert_eq!(planned[0].fields["ADDRESS"], "support@example.com");
        // Gateway-wide bindings belong to no account.
        assert!(planned
            .iter()
            .all(|p| !p.fields.contains_key("ADMIN_TOKEN")));
    }
}
