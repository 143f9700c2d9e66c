//! Where a field's value comes from on the command line: `NAME=@file`, `NAME=env:VAR`, or (for settings only)
//! `NAME=value`. A secret is never accepted as a literal, so it never lands in shell history or `ps`; it is read
//! from a file or the environment, and no message ever repeats it.

use std::collections::BTreeMap;

use sekisho::registry::fields::{field_of, fields_of, FieldSpec};
use serde_json::Value;

/// The source of one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Given inline: settings only.
    Literal(String),
    /// `@path`: the file's contents, without the trailing line break.
    File(String),
    /// `env:VAR`: the environment variable's value.
    Env(String),
}

impl Source {
    /// `@path`, `env:VAR`, or the text itself.
    pub fn parse(text: &str) -> Source {
        if let Some(path) = text.strip_prefix('@') {
            Source::File(path.to_owned())
        } else if let Some(variable) = text.strip_prefix("env:") {
            Source::Env(variable.to_owned())
        } else {
            Source::Literal(text.to_owned())
        }
    }
}

/// Reading files and the environment, passed in so the rules are tested without either.
pub struct Readers<'a> {
    pub file: &'a dyn Fn(&str) -> std::io::Result<String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The value a source holds: a file's contents lose their final line break (`echo x > file`), nothing else.
pub fn resolve(field: &str, source: &Source, readers: &Readers<'_>) -> Result<String, String> {
    let value = match source {
        Source::Literal(value) => value.clone(),
        Source::File(path) => (readers.file)(path)
            .map_err(|e| format!("{field}: reading {path}: {}", e.kind()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        Source::Env(variable) => (readers.env)(variable)
            .ok_or_else(|| format!("{field}: the environment variable {variable} is not set"))?,
    };
    if value.trim().is_empty() {
        return Err(format!("{field}: the value is empty"));
    }
    Ok(value)
}

/// The declared field `name` of `channel`, refusing a literal for a secret field.
pub fn declared(channel: &str, name: &str, source: &Source) -> Result<&'static FieldSpec, String> {
    let spec = field_of(channel, name).ok_or_else(|| {
        let names: Vec<&str> = fields_of(channel)
            .unwrap_or_default()
            .iter()
            .map(|spec| spec.name)
            .collect();
        format!(
            "{name} is not a field of {channel} (its fields: {})",
            names.join(", ")
        )
    })?;
    if spec.secret && matches!(source, Source::Literal(_)) {
        return Err(format!(
            "{name} is a secret field: give it as {name}=@FILE or {name}=env:VARIABLE, never on the command line"
        ));
    }
    Ok(spec)
}

/// `--field NAME=…` arguments, in order, as the PUT body's `fields`: a secret given several times becomes a list
/// (newest first, in the order given); a setting given twice is refused.
pub fn fields_body(
    channel: &str,
    arguments: &[String],
    readers: &Readers<'_>,
) -> Result<BTreeMap<String, Value>, String> {
    let mut collected: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
    for argument in arguments {
        let (name, source) = argument
            .split_once('=')
            .map(|(name, text)| (name.trim(), Source::parse(text)))
            // The argument is not repeated: it may be a secret pasted without its name.
            .ok_or("--field takes NAME=VALUE, NAME=@FILE or NAME=env:VAR")?;
        let spec = declared(channel, name, &source)?;
        let value = resolve(name, &source, readers)?;
        let entry = collected
            .entry(spec.name.to_owned())
            .or_insert((spec.secret, Vec::new()));
        if !spec.secret && !entry.1.is_empty() {
            return Err(format!("{name} is a setting: give it once"));
        }
        entry.1.push(value);
    }
    Ok(collected
        .into_iter()
        .map(|(name, (secret, mut values))| {
            let value = if secret && values.len() > 1 {
                Value::from(values)
            } else {
                Value::from(values.pop().unwrap_or_default())
            };
            (name, value)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const OLDER: &str = "fedcba9876543210fedcba9876543210";

    fn file(path: &str) -> std::io::Result<String> {
        match path {
            "new.txt" => Ok(format!("{SECRET}\n")),
            "old.txt" => Ok(format!("{OLDER}\r\n")),
            "empty.txt" => Ok("\n".to_owned()),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    }

    fn env(name: &str) -> Option<String> {
        (name == "LINE_SECRET").then(|| SECRET.to_owned())
    }

    fn readers() -> Readers<'static> {
        Readers {
            file: &file,
            env: &env,
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn sources_are_files_the_environment_or_literal_text() {
        assert_eq!(Source::parse("@/run/s"), Source::File("/run/s".into()));
        assert_eq!(Source::parse("env:X"), Source::Env("X".into()));
        assert_eq!(
            Source::parse("https://b.example/in"),
            Source::Literal("https://b.example/in".into())
        );
    }

    #[test]
    fn secrets_come_from_files_or_the_environment_and_settings_may_be_literal() {
        let body = fields_body(
            "line",
            &args(&[
                "CHANNEL_SECRET=@new.txt",
                "CHANNEL_ID=1234567890",
                "BACKEND_URL=https://backend.example/in",
            ]),
            &readers(),
        )
        .unwrap();
        assert_eq!(body["CHANNEL_SECRET"], SECRET);
        assert_eq!(body["CHANNEL_ID"], "1234567890");
        let from_env = fields_body(
            "line",
            &args(&["CHANNEL_SECRET=env:LINE_SECRET"]),
            &readers(),
        )
        .unwrap();
        assert_eq!(from_env["CHANNEL_SECRET"], SECRET);
    }

    #[test]
    fn a_secret_given_twice_is_a_list_newest_first() {
        let body = fields_body(
            "line",
            &args(&["CHANNEL_SECRET=@new.txt", "CHANNEL_SECRET=@old.txt"]),
            &readers(),
        )
        .unwrap();
        assert_eq!(body["CHANNEL_SECRET"], serde_json::json!([SECRET, OLDER]));
        let twice = fields_body("line", &args(&["CHANNEL_ID=1", "CHANNEL_ID=2"]), &readers());
        assert!(twice.unwrap_err().contains("give it once"));
    }

    #[test]
    fn a_literal_secret_is_refused_without_repeating_it() {
        let error = fields_body(
            "line",
            &args(&[&format!("CHANNEL_SECRET={SECRET}")]),
            &readers(),
        )
        .unwrap_err();
        assert!(error.contains("secret field"), "{error}");
        assert!(!error.contains(SECRET));
        let error =
            fields_body("line", &args(&[&format!("NOPE={SECRET}")]), &readers()).unwrap_err();
        assert!(error.contains("NOPE is not a field of line"), "{error}");
        assert!(!error.contains(SECRET));
        let error = fields_body("line", &args(&[SECRET]), &readers()).unwrap_err();
        assert!(!error.contains(SECRET), "{error}");
    }

    #[test]
    fn missing_or_empty_sources_are_named_not_shown() {
        let missing =
            fields_body("line", &args(&["CHANNEL_SECRET=@gone.txt"]), &readers()).unwrap_err();
        assert!(missing.contains("reading gone.txt"), "{missing}");
        let unset =
            fields_body("line", &args(&["CHANNEL_SECRET=env:UNSET"]), &readers()).unwrap_err();
        assert!(unset.contains("UNSET is not set"), "{unset}");
        let empty =
            fields_body("line", &args(&["CHANNEL_SECRET=@empty.txt"]), &readers()).unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
    }
}
