//! The published JSON Schema of envelope v1, generated from the Rust types (native only: `schemars` is not a
//! dependency of the Worker, and the derives in `src/envelope.rs` are `cfg_attr(feature = "schema")`).
//!
//! The envelope is described once, in `src/envelope.rs`, and seen three ways:
//!
//! 1. **The types** (`src/envelope.rs`): serde says the field names, which fields may be absent
//!    (`skip_serializing_if`) and the enum spellings; `#[schemars(...)]` attributes add what serde cannot say
//!    (the id, source, channel and account patterns, the `const` values, `date-time` formats, closed objects,
//!    the names of the `$defs`), and doc comments become the descriptions.
//! 2. **The schema file** `schema/event-v1.schema.json`: exactly [`event_schema_json`], committed so backend
//!    teams (and the end-to-end tests, with Ajv) read it as a plain file. [`check_committed_schema`] fails when
//!    the file differs from what the types generate: the unit test below and every native test that validates
//!    events against the file (`tests/common::schema_validator`, used by `tests/fixtures.rs` and
//!    `tests/email.rs`) call it. Regenerate it with
//!    `cargo run --bin sekisho -- schema > schema/event-v1.schema.json` or `UPDATE_SCHEMA=1 cargo test`.
//! 3. **The template paths** `SCHEMA_PATHS` in `src/notify/paths.rs`: a plain list compiled into the Worker,
//!    which checks Chatwork templates against it without carrying any schema machinery. Its test proves the
//!    list equals the leaves of [`event_schema`], so it cannot drift from the types either.
//!
//! What the generator adds to schemars' output, each for the published contract (see [`event_schema`]):
//! no `null` for `Option` fields (they are omitted when absent, never `null`); no schemars-specific
//! number formats (`uint64`, `double`: unknown to validators, and strict Ajv refuses them; `minimum: 0` stays);
//! a unit enum whose variants are documented as one `enum` (schemars writes `oneOf` of `const`s), the variants'
//! docs joined into its description; descriptions as prose (rustdoc's wrapped lines joined); keywords in a
//! readable order in the file.

use std::path::Path;

use serde_json::{Map, Value};

use crate::envelope::Event;

/// Where the schema is published, relative to the repository root.
pub const SCHEMA_FILE: &str = "schema/event-v1.schema.json";

/// How to bring the committed file in step with the types.
pub const REGENERATE: &str =
    "cargo run --bin sekisho -- schema > schema/event-v1.schema.json   (or: UPDATE_SCHEMA=1 cargo test)";

/// The JSON Schema (draft 2020-12) of [`Event`] as serialized: what the backend receives.
pub fn event_schema() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut schema = generator.into_root_schema_for::<Event>().to_value();
    publish(&mut schema);
    schema
}

/// [`event_schema`] as the bytes of `schema/event-v1.schema.json`: 2-space indentation, keywords in a fixed
/// order (`$schema`, `$id`, `title`, … `$defs` last), property and definition names sorted, a final newline.
pub fn event_schema_json() -> String {
    let mut out = String::new();
    write_schema(&event_schema(), 0, &mut out);
    out.push('\n');
    out
}

/// Whether the committed schema file under `repo_root` is exactly what the types generate; the error says where
/// they first differ and how to regenerate. With `UPDATE_SCHEMA` set (to anything but `0`), rewrites the file
/// instead.
pub fn check_committed_schema(repo_root: &Path) -> Result<(), String> {
    let path = repo_root.join(SCHEMA_FILE);
    let generated = event_schema_json();
    if std::env::var_os("UPDATE_SCHEMA").is_some_and(|v| v != "0") {
        // Several tests may do this at once: write aside and rename, so no reader sees half a file.
        let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&temporary, &generated)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "reading {}: {e}; generate it with\n    {REGENERATE}",
            path.display()
        )
    })?;
    if committed == generated {
        return Ok(());
    }
    let (line, ours, theirs) = committed
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(generated.lines().map(Some).chain(std::iter::repeat(None)))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| {
            (
                i + 1,
                a.unwrap_or("<end of file>"),
                b.unwrap_or("<end of file>"),
            )
        })
        .unwrap_or((0, "", "(only line endings differ)"));
    Err(format!(
        "{SCHEMA_FILE} is not what the types in src/envelope.rs generate.\n\
         First difference, line {line}:\n    committed: {ours}\n    generated: {theirs}\n\
         If the change to the envelope is intended, regenerate the file, review its diff (it is the contract \
         backend teams validate against) and commit it:\n    {REGENERATE}"
    ))
}

/// The post-processing of schemars' output described in the module docs.
fn publish(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            omit_null(object);
            collapse_string_enum(object);
            if matches!(
                object.get("type").and_then(Value::as_str),
                Some("integer" | "number")
            ) {
                object.remove("format");
            }
            if let Some(Value::String(description)) = object.get_mut("description") {
                *description = unwrap_lines(description);
            }
            for (_, child) in object.iter_mut() {
                publish(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(publish),
        _ => {}
    }
}

/// `"type": ["string", "null"]` → `"type": "string"`; `"anyOf": [S, {"type": "null"}]` → S (keeping the
/// siblings, e.g. the field's description).
fn omit_null(object: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".to_owned(), only);
        }
    }
    let is_null = |s: &Value| {
        s.as_object()
            .is_some_and(|o| o.len() == 1 && o.get("type") == Some(&Value::from("null")))
    };
    if let Some(Value::Array(any_of)) = object.get("anyOf") {
        if any_of.len() == 2 && any_of.iter().any(is_null) {
            let kept = any_of.iter().find(|s| !is_null(s)).cloned();
            object.remove("anyOf");
            // (`true`, any value, needs no keyword)
            if let Some(Value::Object(kept)) = kept {
                for (key, value) in kept {
                    object.entry(key).or_insert(value);
                }
            }
        }
    }
}

/// schemars writes a unit enum whose variants have doc comments as `oneOf` one `const` per variant; publish it as
/// one `enum` (in declaration order), the variants' descriptions joined into the description.
fn collapse_string_enum(object: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = object.get("oneOf") else {
        return;
    };
    let mut values = Vec::new();
    let mut described = Vec::new();
    for variant in variants {
        let Some(variant) = variant.as_object() else {
            return;
        };
        if variant.get("type") != Some(&Value::from("string"))
            || variant
                .keys()
                .any(|k| !matches!(k.as_str(), "type" | "const" | "enum" | "description"))
        {
            return;
        }
        let these: Vec<Value> = match (variant.get("const"), variant.get("enum")) {
            (Some(one), None) => vec![one.clone()],
            (None, Some(Value::Array(many))) => many.clone(),
            _ => return,
        };
        if let (Some(Value::String(description)), [Value::String(value)]) =
            (variant.get("description"), these.as_slice())
        {
            described.push(format!("`{value}`: {}", unwrap_lines(description)));
        }
        values.extend(these);
    }
    object.remove("oneOf");
    object.insert("type".to_owned(), Value::from("string"));
    object.insert("enum".to_owned(), Value::Array(values));
    if !described.is_empty() {
        let mut description = described.join(" ");
        if let Some(Value::String(own)) = object.get("description") {
            description = format!("{own} {description}");
        }
        object.insert("description".to_owned(), Value::String(description));
    }
}

/// Rustdoc wraps prose at the line width; a single newline is a space there, a blank line a new paragraph.
fn unwrap_lines(text: &str) -> String {
    text.split("\n\n")
        .map(|paragraph| {
            paragraph
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// Keywords print in this order (unknown ones after them, sorted); names under `properties` and `$defs` sorted.
const KEYWORD_ORDER: &[&str] = &[
    "$schema",
    "$id",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "minimum",
    "required",
    "additionalProperties",
    "properties",
    "items",
    "oneOf",
    "anyOf",
    "$defs",
];

fn write_schema(schema: &Value, indent: usize, out: &mut String) {
    match schema {
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            let rank = |key: &str| {
                KEYWORD_ORDER
                    .iter()
                    .position(|k| *k == key)
                    .unwrap_or(KEYWORD_ORDER.len())
            };
            keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
            write_object(&keys, object, indent, out, |key, value, indent, out| {
                if key == "properties" || key == "$defs" {
                    match value {
                        Value::Object(named) => {
                            let names: Vec<&String> = named.keys().collect();
                            write_object(&names, named, indent, out, |_, value, indent, out| {
                                write_schema(value, indent, out)
                            });
                        }
                        other => write_schema(other, indent, out),
                    }
                } else {
                    write_schema(value, indent, out);
                }
            });
        }
        Value::Array(items)
            if items
                .iter()
                .all(|item| !item.is_object() && !item.is_array()) =>
        {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            out.push('[');
            out.push_str(&items.join(", "));
            out.push(']');
        }
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&"  ".repeat(indent + 1));
                write_schema(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(indent));
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_object(
    keys: &[&String],
    object: &Map<String, Value>,
    indent: usize,
    out: &mut String,
    write_value: impl Fn(&str, &Value, usize, &mut String),
) {
    if keys.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    for (i, key) in keys.iter().enumerate() {
        out.push_str(&"  ".repeat(indent + 1));
        out.push_str(&Value::from(key.as_str()).to_string());
        out.push_str(": ");
        write_value(key, &object[key.as_str()], indent + 1, out);
        out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
    }
    out.push_str(&"  ".repeat(indent));
    out.push('}');
}

#[cfg(test)]
mod tests;
