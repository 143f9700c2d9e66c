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
mod tests {
    use super::*;

    #[test]
    fn the_committed_schema_is_generated_from_the_types() {
        if let Err(message) =
            check_committed_schema(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        {
            panic!("{message}");
        }
    }

    #[test]
    fn the_file_format_round_trips_to_the_same_schema() {
        let reparsed: Value = serde_json::from_str(&event_schema_json()).expect("valid JSON");
        assert_eq!(reparsed, event_schema());
    }

    #[test]
    fn the_published_contract_keeps_its_constraints() {
        let schema = event_schema();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(
            schema["$id"],
            "https://sekisho.dev/schema/event-v1.schema.json"
        );
        assert_eq!(schema["title"], "Sekisho event envelope v1");
        let top = &schema["properties"];
        assert_eq!(top["specversion"]["const"], "1.0");
        assert_eq!(top["datacontenttype"]["const"], "application/json");
        assert_eq!(top["id"]["pattern"], "^evt_[0-9a-f]{32}$");
        assert_eq!(top["time"]["format"], "date-time");
        assert_eq!(top["type"]["minLength"], 1);
        assert_eq!(top["source"]["pattern"], "^/[a-z0-9]+/[a-z0-9-]{1,64}$");
        assert_eq!(top["channel"]["pattern"], "^[a-z0-9]+$");
        assert_eq!(top["account"]["pattern"], "^[a-z0-9-]{1,64}$");
        assert_eq!(
            schema["required"],
            serde_json::json!([
                "specversion",
                "id",
                "source",
                "type",
                "time",
                "datacontenttype",
                "channel",
                "account",
                "data"
            ])
        );
        let defs = &schema["$defs"];
        assert_eq!(
            defs["data"]["required"],
            serde_json::json!(["provider_type", "verification", "raw"])
        );
        assert_eq!(
            defs["data"]["properties"]["conversation"]["properties"]["kind"]["enum"],
            serde_json::json!(["direct", "group", "room", "channel", "thread", "unknown"])
        );
        assert_eq!(
            defs["email"]["required"],
            serde_json::json!(["envelope", "size"])
        );
        assert_eq!(defs["email"]["properties"]["date"]["format"], "date-time");
        for open in [
            &defs["data"]["properties"]["raw"],
            &defs["data"]["properties"]["postback"]["properties"]["params"],
        ] {
            assert!(open.get("type").is_none(), "{open}: any JSON value");
        }
        // Every object is closed, and no field is ever `null`.
        fn walk(node: &Value, path: &str) {
            if let Some(object) = node.as_object() {
                if object.contains_key("properties") {
                    assert_eq!(
                        object.get("additionalProperties"),
                        Some(&Value::Bool(false)),
                        "{path}"
                    );
                }
                let types = match object.get("type") {
                    Some(Value::Array(types)) => types.clone(),
                    Some(one) => vec![one.clone()],
                    None => Vec::new(),
                };
                assert!(!types.contains(&Value::from("null")), "{path} allows null");
                for (key, child) in object {
                    walk(child, &format!("{path}/{key}"));
                }
            }
        }
        walk(&schema, "#");
    }

    /// One field of a README shape such as `{id?, kind, attachments[]?, envelope{from, to}}`.
    #[derive(Debug)]
    struct ShapeField {
        name: String,
        array: bool,
        nested: Option<Vec<ShapeField>>,
        optional: bool,
    }

    fn parse_shape(text: &mut std::iter::Peekable<std::str::Chars>) -> Vec<ShapeField> {
        assert_eq!(text.next(), Some('{'), "a shape starts with {{");
        let mut fields = Vec::new();
        loop {
            while text.peek() == Some(&' ') {
                text.next();
            }
            let mut name = String::new();
            while let Some(&c) = text
                .peek()
                .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
            {
                name.push(c);
                text.next();
            }
            let array = text.peek() == Some(&'[') && {
                text.next();
                assert_eq!(text.next(), Some(']'));
                true
            };
            let nested = (text.peek() == Some(&'{')).then(|| parse_shape(text));
            let optional = text.peek() == Some(&'?') && text.next().is_some();
            fields.push(ShapeField {
                name,
                array,
                nested,
                optional,
            });
            match text.next() {
                Some(',') => continue,
                Some('}') => return fields,
                other => panic!("unexpected {other:?} in a shape"),
            }
        }
    }

    fn resolve<'a>(node: &'a Value, schema: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.trim_start_matches("#/$defs/");
                resolve(&schema["$defs"][name], schema)
            }
            None => node,
        }
    }

    fn compare_shape(shape: &[ShapeField], node: &Value, schema: &Value, at: &str) {
        let node = resolve(node, schema);
        let properties = node["properties"].as_object().expect("an object schema");
        let named: Vec<&str> = shape.iter().map(|f| f.name.as_str()).collect();
        let mut listed = named.clone();
        listed.sort_unstable();
        let mut actual: Vec<&str> = properties.keys().map(String::as_str).collect();
        actual.sort_unstable();
        assert_eq!(listed, actual, "README: the fields of `{at}`");
        let required = node["required"].as_array().cloned().unwrap_or_default();
        for field in shape {
            let property = resolve(&properties[&field.name], schema);
            let path = format!("{at}.{}", field.name);
            let is_required = required.contains(&Value::from(field.name.as_str()));
            assert_eq!(field.optional, !is_required, "README: `{path}` and its `?`");
            let is_array = property["type"] == "array";
            assert_eq!(field.array, is_array, "README: `{path}` and its `[]`");
            if let Some(nested) = &field.nested {
                let element = if is_array {
                    &property["items"]
                } else {
                    property
                };
                compare_shape(nested, element, schema, &path);
            }
        }
    }

    /// The README's field table is written by hand: every field of the envelope has a row, and each `{…}` shape
    /// there has the generated schema's fields, `?` exactly on those that may be absent and `[]` on arrays.
    #[test]
    fn the_readme_field_table_matches_the_types() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md");
        let section = readme
            .split("## The event envelope (v1)")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README's envelope section");
        let schema = event_schema();
        let mut named = Vec::new();
        for row in section.lines().filter(|l| l.starts_with("| `")) {
            let mut cells = row.split(" | ");
            let fields: Vec<String> = cells
                .next()
                .unwrap_or_default()
                .trim_start_matches("| ")
                .split(", ")
                .map(|f| f.trim_matches('`').to_owned())
                .collect();
            let meaning = cells.collect::<Vec<_>>().join(" | ");
            let shape = meaning
                .split('`')
                .skip(1)
                .step_by(2)
                .find(|code| code.starts_with('{'));
            for field in &fields {
                let mut node = &schema;
                for segment in field.split('.') {
                    node = resolve(node, &schema)["properties"]
                        .get(segment)
                        .unwrap_or_else(|| {
                            panic!("README names `{field}`, which the envelope lacks")
                        });
                }
                if let Some(shape) = shape {
                    let node = resolve(node, &schema);
                    let element = if node["type"] == "array" {
                        &node["items"]
                    } else {
                        node
                    };
                    compare_shape(
                        &parse_shape(&mut shape.chars().peekable()),
                        element,
                        &schema,
                        field,
                    );
                }
                for value in resolve(node, &schema)["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, p)| p["enum"].as_array())
                    .flatten()
                {
                    let value = value.as_str().unwrap_or_default();
                    assert!(
                        row.contains(&format!("`{value}`")),
                        "README: `{field}` row lacks `{value}`"
                    );
                }
                named.push(field.clone());
            }
        }
        let mut expected: Vec<String> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .filter(|name| name != "data")
            .collect();
        expected.extend(
            resolve(&schema["properties"]["data"], &schema)["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, _)| format!("data.{name}")),
        );
        for field in expected {
            assert!(
                named.contains(&field),
                "README's envelope table has no row for `{field}`"
            );
        }
    }

    #[test]
    fn descriptions_are_prose() {
        assert_eq!(
            unwrap_lines("one\ntwo\n\nthree\n four"),
            "one two\n\nthree four"
        );
    }
}
