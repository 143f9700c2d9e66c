//! The template language: text with `{{ path }}` placeholders over the event JSON, and the rendering that
//! neutralises Chatwork markup and control characters in inserted values.

use serde_json::Value;

use crate::control_chars::{multi_line, single_line};

use super::paths::{is_index, is_known_path, is_multi_line};

const OPEN: &str = "{{";
const CLOSE: &str = "}}";

/// A configuration error in a notification template. Offsets are in bytes from the template's start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{` at byte {offset} is not closed by `}}}}`")]
    UnclosedPlaceholder { offset: usize },
    #[error("`}}}}` at byte {offset} closes no placeholder")]
    UnopenedClose { offset: usize },
    #[error("empty placeholder at byte {offset}")]
    EmptyPlaceholder { offset: usize },
    #[error("unknown placeholder {{{{{path}}}}} at byte {offset}")]
    UnknownPlaceholder { path: String, offset: usize },
}

/// A parsed notification template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Placeholder(Vec<String>),
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        loop {
            let Some((literal, after_open)) = rest.split_once(OPEN) else {
                if let Some(close_at) = rest.find(CLOSE) {
                    return Err(TemplateError::UnopenedClose {
                        offset: offset + close_at,
                    });
                }
                push_text(&mut parts, rest);
                return Ok(Template { parts });
            };
            if let Some(close_at) = literal.find(CLOSE) {
                return Err(TemplateError::UnopenedClose {
                    offset: offset + close_at,
                });
            }
            push_text(&mut parts, literal);
            let open_at = offset + literal.len();
            let Some((inner, after_close)) = after_open.split_once(CLOSE) else {
                return Err(TemplateError::UnclosedPlaceholder { offset: open_at });
            };
            if inner.contains(OPEN) {
                return Err(TemplateError::UnclosedPlaceholder { offset: open_at });
            }
            let path = inner.trim();
            if path.is_empty() {
                return Err(TemplateError::EmptyPlaceholder { offset: open_at });
            }
            let segments: Vec<&str> = path.split('.').collect();
            if !is_known_path(&segments) {
                return Err(TemplateError::UnknownPlaceholder {
                    path: path.to_owned(),
                    offset: open_at,
                });
            }
            parts.push(Part::Placeholder(
                segments.into_iter().map(str::to_owned).collect(),
            ));
            offset = open_at + OPEN.len() + inner.len() + CLOSE.len();
            rest = after_close;
        }
    }

    /// The text with every placeholder replaced by its value in `event`, markup in values neutralised and
    /// control characters too (`paths::MULTI_LINE_PATHS` keep their line breaks, every other value is one line).
    /// A path absent from this event renders as nothing. Values are inserted once: a value that looks like
    /// a placeholder stays text.
    pub fn render(&self, event: &Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Placeholder(path) => {
                    if let Some(value) = resolve(event, path) {
                        let text = value_text(value);
                        let text = if is_multi_line(path) {
                            multi_line(&text)
                        } else {
                            single_line(&text)
                        };
                        push_neutralised(&mut out, &text);
                    }
                }
            }
        }
        out
    }
}

/// Template text is kept as written, except `\n` (backslash, n), which becomes a line break, so a template can
/// be set on one line (a dashboard field, `--var` on a command line).
fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.replace("\\n", "\n")));
    }
}

/// Follows `path` through objects (by key) and arrays (by decimal index).
pub(super) fn resolve<'v>(event: &'v Value, path: &[impl AsRef<str>]) -> Option<&'v Value> {
    path.iter().try_fold(event, |value, segment| {
        let segment = segment.as_ref();
        match value {
            Value::Object(fields) => fields.get(segment),
            Value::Array(items) if is_index(segment) => segment
                .parse::<usize>()
                .ok()
                .and_then(|index| items.get(index)),
            _ => None,
        }
    })
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(_) => serde_json::to_string(value).unwrap_or_default(),
    }
}

/// `text` without Chatwork markup: see [`push_neutralised`].
pub fn neutralised(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_neutralised(&mut out, text);
    out
}

/// Chatwork markup is all square-bracket tags (`[toall]`, `[To:1]`, `[info]`, …): full-width brackets look
/// alike to a reader and are never parsed.
fn push_neutralised(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| match c {
        '[' => '［',
        ']' => '］',
        other => other,
    }));
}

#[cfg(test)]
mod tests;
