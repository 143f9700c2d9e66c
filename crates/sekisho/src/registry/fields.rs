//! The registry's checks of an account's fields: each channel's declarations ([`crate::config::field`]) joined
//! with the common ones, every name known, every required field present, every value of its format.

use std::collections::BTreeMap;

use crate::channels;
pub use crate::config::field::{FieldSpec, Format, COMMON_FIELDS};
use crate::mail;

/// The fields of `channel` (its own, then the common ones), or `None` for an unknown channel.
pub fn fields_of(channel: &str) -> Option<Vec<&'static FieldSpec>> {
    let own: &'static [FieldSpec] = if channel == mail::CHANNEL {
        mail::FIELDS
    } else {
        channels::find(channel)?.fields()
    };
    Some(own.iter().chain(COMMON_FIELDS.iter()).collect())
}

/// The spec of one field of `channel`.
pub fn field_of(channel: &str, name: &str) -> Option<&'static FieldSpec> {
    fields_of(channel)?
        .into_iter()
        .find(|spec| spec.name == name)
}

/// Every channel a registry account may belong to: the HTTP channels and e-mail.
pub fn channel_names() -> impl Iterator<Item = &'static str> {
    channels::CHANNELS
        .iter()
        .map(|channel| channel.name())
        .chain([mail::CHANNEL])
}

/// A value given for a field in a write, before it is sealed: one value for a setting; one or several for a
/// secret (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GivenValue {
    One(String),
    Several(Vec<String>),
}

/// A refused field, as the API answers it: `422 {"error":"invalid_field","field":…,"problem":…}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: &'static str,
}

impl FieldError {
    pub fn new(field: &str, problem: &'static str) -> FieldError {
        FieldError {
            field: field.to_owned(),
            problem,
        }
    }
}

/// Checks a whole account's fields: every name declared, every required field present, every value of its
/// format. Returns the values per field, trimmed, in field order.
pub fn validate(
    channel: &str,
    given: &BTreeMap<String, GivenValue>,
) -> Result<BTreeMap<String, Vec<String>>, FieldError> {
    let specs = fields_of(channel).unwrap_or_default();
    for name in given.keys() {
        if !specs.iter().any(|spec| spec.name == name) {
            return Err(FieldError::new(name, "is not a field of this channel"));
        }
    }
    let mut out = BTreeMap::new();
    for spec in specs {
        match given.get(spec.name) {
            None if spec.required => return Err(FieldError::new(spec.name, "is required")),
            None => {}
            Some(value) => {
                let values = check_value(spec, value)?;
                out.insert(spec.name.to_owned(), values);
            }
        }
    }
    Ok(out)
}

/// One field's value(s), checked: a secret may have several (at most [`MAX_SECRET_VALUES`]), a setting one.
pub fn check_value(spec: &FieldSpec, value: &GivenValue) -> Result<Vec<String>, FieldError> {
    let values: Vec<String> = match value {
        GivenValue::One(value) => vec![value.trim().to_owned()],
        GivenValue::Several(_) if !spec.secret => {
            return Err(FieldError::new(spec.name, "takes one value, not a list"))
        }
        GivenValue::Several(values) => values.iter().map(|v| v.trim().to_owned()).collect(),
    };
    if values.is_empty() || values.iter().any(String::is_empty) {
        return Err(FieldError::new(spec.name, "is empty"));
    }
    if values.len() > MAX_SECRET_VALUES {
        return Err(FieldError::new(
            spec.name,
            "has too many values (at most 5)",
        ));
    }
    if matches!(spec.format, Format::Pem) && values.len() > 1 {
        return Err(FieldError::new(spec.name, "takes one value"));
    }
    if spec.secret
        && !matches!(spec.format, Format::Pem)
        && values.iter().any(|v| v.contains([',', ' ', '\t', '\n']))
    {
        return Err(FieldError::new(
            spec.name,
            "must not contain commas or whitespace (they separate rotated values)",
        ));
    }
    for value in &values {
        spec.format
            .check(value)
            .map_err(|problem| FieldError::new(spec.name, problem))?;
    }
    let mut unique = values.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != values.len() {
        return Err(FieldError::new(spec.name, "holds the same value twice"));
    }
    Ok(values)
}

/// At most this many values per secret field: the newest and a few being retired.
pub const MAX_SECRET_VALUES: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_channel_declares_its_account_field_as_a_required_field() {
        for channel in channels::CHANNELS {
            let specs = fields_of(channel.name()).unwrap();
            let account_field = specs
                .iter()
                .find(|spec| spec.name == channel.account_field())
                .unwrap_or_else(|| {
                    panic!("{} declares {}", channel.name(), channel.account_field())
                });
            assert!(account_field.required, "{}", channel.name());
            for spec in &specs {
                assert!(
                    !spec.help_en.is_empty() && !spec.help_ja.is_empty(),
                    "{}: {}",
                    channel.name(),
                    spec.name
                );
            }
            let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(
                before,
                names.len(),
                "{} declares a field twice",
                channel.name()
            );
        }
        assert!(fields_of("email")
            .unwrap()
            .iter()
            .any(|s| s.name == "ADDRESS" && s.required));
        assert!(fields_of("nope").is_none());
    }

    #[test]
    fn formats_accept_the_real_shapes_and_refuse_others() {
        let hex32 = Format::Hex { len: 32 };
        assert!(hex32.check("0123456789abcdef0123456789ABCDEF").is_ok());
        assert!(hex32.check("0123456789abcdef").is_err());
        assert!(hex32.check("0123456789abcdef0123456789abcdeg").is_err());
        // The EncodingAESKey of the WeChat documentation's sample.
        let aes = Format::EncodingAesKey;
        assert!(aes
            .check("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
            .is_ok());
        assert!(aes
            .check("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF=")
            .is_err());
        assert!(Format::Hex { len: 64 }
            .check("e6a6e1f8c0c4b4bb2ff24e9b9e3d4e1a7d3c3a1f4e1a7d3c3a1f4e1a7d3c3a1f")
            .is_ok());
        assert!(Format::Url.check("https://backend.example/in?x=1").is_ok());
        assert!(Format::Url.check("http://127.0.0.1:8788/in").is_ok());
        assert!(Format::Url.check("http://localhost:8788/in").is_err());
        assert!(Format::Url.check("http://127.0.0.1.evil.example/").is_err());
        assert!(Format::Url.check("ftp://x").is_err());
        assert!(Format::Url.check("https://").is_err());
        assert!(Format::Addresses
            .check("a@example.com, b@example.co.jp")
            .is_ok());
        assert!(Format::Addresses.check("nobody").is_err());
        assert!(Format::Pem
            .check("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
            .is_ok());
        assert!(Format::Pem.check("MIIE").is_err());
        assert!(Format::Text { max: 5 }.check("abc\n").is_ok());
        assert!(Format::Text { max: 5 }.check("a\u{0}").is_err());
    }

    #[test]
    fn a_private_key_keeps_its_line_breaks_but_other_secrets_refuse_separators() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIE abc\n-----END PRIVATE KEY-----";
        let spec = field_of("lineworks", "PRIVATE_KEY").unwrap();
        assert_eq!(
            check_value(spec, &GivenValue::One(pem.into())).unwrap(),
            [pem]
        );
        let secret = field_of("line", "CHANNEL_SECRET").unwrap();
        assert!(check_value(
            secret,
            &GivenValue::One("0123456789abcdef,123456789abcdef".into())
        )
        .is_err());
    }
}
