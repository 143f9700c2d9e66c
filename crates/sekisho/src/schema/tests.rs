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
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
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
                    .unwrap_or_else(|| panic!("README names `{field}`, which the envelope lacks"));
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
