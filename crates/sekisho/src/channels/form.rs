//! HTML form bodies (`application/x-www-form-urlencoded`), shared by the channels that accept them.

use serde_json::{Map, Value};

pub(crate) const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// Whether a `content-type` names a form body.
pub(crate) fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE))
    })
}

/// A form body as a JSON object of its fields (`+` is a space here: this is HTML form encoding). A field given
/// more than once becomes an array of its values, in order.
pub(crate) fn form_object(body: &[u8]) -> Value {
    let mut fields = Map::new();
    for (name, value) in form_urlencoded::parse(body) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(name.as_ref()) {
            None => {
                fields.insert(name.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
        }
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_recognised_with_parameters_and_any_case() {
        assert!(is_form(Some("application/x-www-form-urlencoded")));
        assert!(is_form(Some(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!is_form(Some("application/json")));
        assert!(!is_form(None));
    }

    #[test]
    fn repeated_fields_become_arrays_in_order() {
        let form =
            form_object(b"name=%E9%88%B4%E6%9C%A8+%E4%B8%80%E9%83%8E&tag=a&tag=b&tag=c&empty=");
        assert_eq!(form["name"], "鈴木 一郎");
        assert_eq!(form["tag"], serde_json::json!(["a", "b", "c"]));
        assert_eq!(form["empty"], "");
    }
}
