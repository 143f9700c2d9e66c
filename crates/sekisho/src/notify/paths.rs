//! Which placeholder paths an envelope v1 event can have (`schema/event-v1.schema.json`), and which of them
//! hold text of several lines.
//!
//! The chain that keeps [`SCHEMA_PATHS`] true, from the one description of the envelope:
//!
//! 1. `src/envelope.rs`, the Rust types, are the source.
//! 2. `crate::schema::event_schema` derives the JSON Schema from them (natively, with `schemars`); a test
//!    proves the committed `schema/event-v1.schema.json` is byte for byte what it generates
//!    (regenerate: `cargo run --bin sekisho -- schema > schema/event-v1.schema.json`).
//! 3. [`SCHEMA_PATHS`] is a plain list, because the Worker checks every Chatwork template against it and must
//!    not carry a schema generator or parse a schema at run time. The test
//!    `the_known_paths_match_the_published_schema` below walks the generated schema and proves the list equals
//!    its leaves outside [`OPEN_SUBTREES`]: a field added to, renamed in or removed from the types fails that
//!    test until the list (and the schema file) follow.

/// Every leaf path of envelope v1 (`schema/event-v1.schema.json`) outside the open subtrees; `*` stands for
/// an array index. A test keeps this list equal to the leaves of the schema generated from `src/envelope.rs`.
pub(super) const SCHEMA_PATHS: &[&str] = &[
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "datacontenttype",
    "channel",
    "account",
    "data.provider_type",
    "data.conversation.id",
    "data.conversation.kind",
    "data.sender.id",
    "data.sender.name",
    "data.members.*.id",
    "data.members.*.name",
    "data.message.id",
    "data.message.kind",
    "data.message.text",
    "data.message.attachments.*.kind",
    "data.message.attachments.*.id",
    "data.message.attachments.*.url",
    "data.message.attachments.*.name",
    "data.message.attachments.*.content_type",
    "data.message.attachments.*.size",
    "data.message.attachments.*.duration_ms",
    "data.message.location.latitude",
    "data.message.location.longitude",
    "data.message.location.title",
    "data.message.location.address",
    "data.message.sticker.package_id",
    "data.message.sticker.sticker_id",
    "data.postback.data",
    "data.reply.token",
    "data.verification.scheme",
    "data.verification.key_index",
    "data.send_id",
    "data.recipient.conversation",
    "data.recipient.user",
    "data.in_reply_to",
    "data.error.code",
    "data.error.message",
    "data.ordering.key",
    "data.ordering.sequence",
];

/// Placeholders whose values are text of several lines: they keep LF and TAB (other control characters are
/// dropped, CR becomes LF). Every other value is one line: its control characters and line separators become
/// spaces, so an event cannot forge a line of the room message. `data.raw` is the provider's free-form payload,
/// where a form's free-text field legitimately has line breaks.
const MULTI_LINE_PATHS: &[&str] = &["data.message.text", "data.email.html", "data.raw"];

pub(super) fn is_multi_line(path: &[String]) -> bool {
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    MULTI_LINE_PATHS
        .iter()
        .any(|prefix| starts_with_subtree(&segments, prefix))
}

/// Subtrees whose shape is free-form or owned elsewhere: any path below them is accepted.
const OPEN_SUBTREES: &[&str] = &["data.raw", "data.email", "data.postback.params"];

/// Whether a placeholder path can occur in an envelope v1 event: a schema path, a part of one (which renders
/// as JSON), or anything inside an open subtree.
pub fn is_known_path(segments: &[&str]) -> bool {
    if segments.is_empty() || segments.iter().any(|segment| segment.is_empty()) {
        return false;
    }
    OPEN_SUBTREES
        .iter()
        .any(|subtree| starts_with_subtree(segments, subtree))
        || SCHEMA_PATHS
            .iter()
            .any(|pattern| leads_into_pattern(segments, pattern))
}

fn starts_with_subtree(segments: &[&str], subtree: &str) -> bool {
    let mut remaining = segments.iter();
    subtree
        .split('.')
        .all(|expected| remaining.next() == Some(&expected))
}

fn leads_into_pattern(segments: &[&str], pattern: &str) -> bool {
    let mut pattern_segments = pattern.split('.');
    segments
        .iter()
        .all(|segment| match pattern_segments.next() {
            Some("*") => is_index(segment),
            Some(expected) => expected == *segment,
            None => false,
        })
}

pub(super) fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    #[test]
    fn known_paths_cover_parts_of_the_schema_and_the_open_subtrees() {
        let known = |path: &str| is_known_path(&path.split('.').collect::<Vec<_>>());
        for path in [
            "type",
            "data",
            "data.sender",
            "data.members.12.name",
            "data.message.attachments",
            "data.message.attachments.0",
            "data.conversation.kind",
            "data.raw",
            "data.raw.company",
            "data.raw.お名前.0",
            "data.email.from.address",
            "data.email.to.0.name",
            "data.postback.params.date",
        ] {
            assert!(known(path), "{path}");
        }
        for path in [
            "",
            "types",
            "data.sender.id.x",
            "data.members.name",
            "data.members.-1.name",
            "data.message.attachments.+1",
            "data.raw.",
            "data.emails",
            "raw.company",
        ] {
            assert!(!known(path), "{path}");
        }
    }

    /// Every leaf of the schema, `*` for array items, as `(path, is_leaf)` for every node.
    fn schema_paths(node: &Value, defs: &Value, path: &str, out: &mut Vec<(String, bool)>) {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/$defs/")
                .expect("local $defs reference");
            return schema_paths(&defs[name], defs, path, out);
        }
        let join = |segment: &str| {
            if path.is_empty() {
                segment.to_owned()
            } else {
                format!("{path}.{segment}")
            }
        };
        let mut leaf = true;
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            leaf = false;
            for (name, child) in properties {
                schema_paths(child, defs, &join(name), out);
            }
        }
        if let Some(items) = node.get("items") {
            leaf = false;
            schema_paths(items, defs, &join("*"), out);
        }
        out.push((path.to_owned(), leaf));
    }

    /// Against the schema the types generate (which `crate::schema`'s test proves is the committed file).
    #[test]
    fn the_known_paths_match_the_published_schema() {
        let schema = crate::schema::event_schema();
        let mut nodes = Vec::new();
        schema_paths(&schema, &schema["$defs"], "", &mut nodes);
        let in_open_subtree = |path: &str| {
            OPEN_SUBTREES
                .iter()
                .any(|subtree| path == *subtree || path.starts_with(&format!("{subtree}.")))
        };
        let leaves: BTreeSet<&str> = nodes
            .iter()
            .filter(|(path, leaf)| *leaf && !in_open_subtree(path))
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(leaves.len() > 30, "the walk found the schema's leaves");

        for leaf in &leaves {
            let as_template_path = leaf.replace('*', "0");
            assert!(
                is_known_path(&as_template_path.split('.').collect::<Vec<_>>()),
                "schema leaf `{leaf}` is missing from SCHEMA_PATHS"
            );
        }
        let listed: BTreeSet<&str> = SCHEMA_PATHS.iter().copied().collect();
        assert_eq!(
            listed, leaves,
            "SCHEMA_PATHS must list exactly the schema's leaves"
        );
        for subtree in OPEN_SUBTREES {
            assert!(
                nodes.iter().any(|(path, _)| path == subtree),
                "open subtree `{subtree}` is not in the schema"
            );
        }
    }
}
