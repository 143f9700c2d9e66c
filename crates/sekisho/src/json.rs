//! JSON as providers send it. [`parse`] reads a provider's JSON into a [`Value`] for normalization without
//! refusing numbers that do not fit an `f64` (`1e400`, a 400-digit integer): serde_json rejects those as "number
//! out of range", yet they are valid JSON, signed by the provider. Such a number reads as `null` here — the
//! normalized fields never come from one — while `data.raw` keeps its every digit (see [`crate::envelope::Raw`]).

use serde_json::Value;

/// How many out-of-range numbers one document may hold before it is refused: each costs one more pass.
const MAX_REPAIRS: usize = 16;

/// Parses JSON text; numbers beyond `f64` become `null`. Any other error is returned as is.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let first = match serde_json::from_str(text) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let mut repaired = text.to_owned();
    let mut error = first;
    for _ in 0..MAX_REPAIRS {
        let Some(span) = out_of_range_span(&repaired, &error) else {
            return Err(error);
        };
        repaired.replace_range(span, "null");
        match serde_json::from_str(&repaired) {
            Ok(value) => return Ok(value),
            Err(next) => error = next,
        }
    }
    Err(error)
}

/// Parses JSON bytes (which must be UTF-8, as RFC 8259 requires) like [`parse`].
pub fn parse_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text),
        // Let serde_json describe the encoding error.
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// The byte range of the number an "out of range" error points at. serde_json reports the line and the column
/// (1-based, in bytes) of the number's last character.
fn out_of_range_span(text: &str, error: &serde_json::Error) -> Option<std::ops::Range<usize>> {
    if !error.to_string().starts_with("number out of range") {
        return None;
    }
    let line_start = if error.line() <= 1 {
        0
    } else {
        text.match_indices('\n').nth(error.line() - 2)?.0 + 1
    };
    let last = line_start.checked_add(error.column())?.checked_sub(1)?;
    let bytes = text.as_bytes();
    let is_number_byte =
        |b: u8| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E');
    if !bytes.get(last).copied().is_some_and(is_number_byte) {
        return None;
    }
    let start = bytes
        .get(..last)?
        .iter()
        .rposition(|b| !is_number_byte(*b))
        .map_or(0, |i| i + 1);
    let end = bytes
        .get(last..)?
        .iter()
        .position(|b| !is_number_byte(*b))
        .map_or(bytes.len(), |i| last + i);
    Some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ordinary_json_parses_as_serde_json_does() {
        let text = r#"{"b":[1,2.5,"x"],"a":{"c":null,"d":true}}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn numbers_beyond_f64_read_as_null_and_the_rest_stays() {
        let huge = "9".repeat(400);
        let text = format!("{{\"a\":1e400,\n \"b\": [{huge}, 7],\n\"c\":-2E+999,\"d\":\"1e400\"}}");
        assert_eq!(
            parse(&text).unwrap(),
            json!({"a": null, "b": [null, 7], "c": null, "d": "1e400"})
        );
    }

    #[test]
    fn a_30_digit_integer_is_a_number_not_an_error() {
        let value = parse(r#"{"n":123456789012345678901234567890}"#).unwrap();
        assert!(value["n"].is_f64());
    }

    #[test]
    fn syntax_errors_are_still_errors() {
        for text in ["{", r#"{"a":1e400"#, "[1e400,]", "", "nul", "{\"a\":01}"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn too_many_out_of_range_numbers_are_refused() {
        let text = format!("[{}]", vec!["1e999"; MAX_REPAIRS + 1].join(","));
        assert!(parse(&text).is_err());
        let text = format!("[{}]", vec!["1e999"; MAX_REPAIRS].join(","));
        assert_eq!(
            parse(&text).unwrap(),
            Value::Array(vec![Value::Null; MAX_REPAIRS])
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        assert!(parse_slice(b"{\"a\":\"\xff\"}").is_err());
    }
}
