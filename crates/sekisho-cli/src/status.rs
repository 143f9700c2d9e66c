//! `sekisho status`: the accounts table and rotation status of `GET /admin/api/accounts`, as a terminal
//! table or (`--json`) the API's JSON as it is.

use serde_json::Value;

/// `sekisho status --url https://gw --token T [--window 1h|24h|7d] [--json]`.
pub(crate) fn run(
    url: Option<&String>,
    token: Option<&String>,
    window: Option<&String>,
    json: bool,
) -> Result<(), String> {
    let base = url
        .ok_or("status needs --url (the gateway's base URL)")?
        .trim_end_matches('/');
    let token = token.ok_or("status needs --token (ADMIN_TOKEN)")?;
    let window = window.map_or("24h", String::as_str);
    let response = ureq::get(&format!("{base}/admin/api/accounts"))
        .query("window", window)
        .set("authorization", &format!("Bearer {token}"))
        .call();
    let body = match response {
        Ok(response) => response.into_string().map_err(|e| e.to_string())?,
        Err(ureq::Error::Status(status, response)) => {
            return Err(format!(
                "the gateway answered {status} {}",
                response.into_string().unwrap_or_default()
            ))
        }
        Err(error) => return Err(error.to_string()),
    };
    if json {
        println!("{body}");
        return Ok(());
    }
    let parsed: Value = serde_json::from_str(&body).map_err(|e| format!("not JSON: {e}"))?;
    print!("{}", render(&parsed));
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn millis(value: &Value) -> String {
    value
        .as_u64()
        .map_or("-".to_owned(), |ms| format!("{ms} ms"))
}

/// The table: one line per account, then one per key of its secret binding with the advice sentence.
pub(crate) fn render(answer: &Value) -> String {
    let window = text(&answer["window"]);
    let mut out = format!(
        "{:<28} {:<25} {:>9} {:>9} {:>9} {:>10} {:>6}   (window {window})\n",
        "ACCOUNT", "LAST EVENT", "ACCEPTED", "REJECTED", "P99 ACK", "DELIVERED", "DEAD"
    );
    if answer["recording"] == Value::Bool(false) {
        out.push_str("(recording is off: the Worker has no METRICS binding)\n");
    }
    let empty = Vec::new();
    for account in answer["accounts"].as_array().unwrap_or(&empty) {
        let name = format!(
            "{}/{}",
            text(&account["channel"]),
            text(&account["account"])
        );
        out.push_str(&format!(
            "{:<28} {:<25} {:>9} {:>9} {:>9} {:>10} {:>6}\n",
            name,
            text(&account["last_event_at"]),
            text(&account["requests"]),
            text(&account["rejected"]),
            millis(&account["ack_p99_ms"]),
            text(&account["delivered"]),
            text(&account["dead_lettered"]),
        ));
        if let Some(reasons) = account["rejected_by_reason"].as_object() {
            for (reason, count) in reasons {
                out.push_str(&format!("    rejected {reason}: {count}\n"));
            }
        }
        let keys = account["keys"].as_array().unwrap_or(&empty);
        if !keys.is_empty() {
            out.push_str(&format!("    {}\n", text(&account["secret_binding"])));
        }
        for key in keys {
            out.push_str(&format!(
                "      index {}: matched {}, last {} — {}\n",
                text(&key["index"]),
                text(&key["matched"]),
                text(&key["last_matched_at"]),
                text(&key["sentence_en"]),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_counts_and_each_key_with_its_advice() {
        let answer = serde_json::json!({
            "window": "24h",
            "recording": true,
            "accounts": [{
                "channel": "line", "account": "shop", "last_event_at": "2026-12-02T02:00:00.000Z",
                "requests": 6, "rejected": 3, "ack_p99_ms": 5, "delivered": 5, "dead_lettered": 0,
                "rejected_by_reason": {"invalid_signature": 2},
                "secret_binding": "LINE_SHOP_CHANNEL_SECRET",
                "keys": [
                    {"index": 0, "matched": 4, "last_matched_at": "2026-12-02T02:00:00.000Z", "sentence_en": "Newest secret (index 0)."},
                    {"index": 1, "matched": 2, "last_matched_at": null, "sentence_en": "Old secret (index 1) has not been used for 3 days — you can remove it."}
                ]
            }]
        });
        let table = render(&answer);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("ACCOUNT"));
        assert!(lines[1].starts_with("line/shop"));
        assert!(lines[1].contains("5 ms"));
        assert!(lines[2].contains("rejected invalid_signature: 2"));
        assert!(lines[3].contains("LINE_SHOP_CHANNEL_SECRET"));
        assert!(lines[5].contains(
            "index 1: matched 2, last - — Old secret (index 1) has not been used for 3 days"
        ));
    }
}
