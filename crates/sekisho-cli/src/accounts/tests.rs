use super::*;
use crate::provision::{ApiBody, ApiResponse};

fn gateway() -> Gateway {
    Gateway {
        base: "https://gw.example/".to_owned(),
        token: "admin-token".to_owned(),
    }
}

fn header<'a>(request: &'a ApiRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn requests_follow_the_admin_api_contract() {
    let g = gateway();
    let mut fields = BTreeMap::new();
    fields.insert("CHANNEL_ID".to_owned(), Value::from("1234567890"));
    let put = g.put("line", "acme-jp", &fields, Some("v3"));
    assert_eq!(put.method, Method::PUT);
    assert_eq!(
        put.url,
        "https://gw.example/admin/api/accounts/line/acme-jp"
    );
    assert_eq!(header(&put, "authorization"), Some("Bearer admin-token"));
    assert_eq!(header(&put, "if-match"), Some("\"v3\""));
    assert_eq!(
        put.body,
        ApiBody::Json(json!({"fields": {"CHANNEL_ID": "1234567890"}}))
    );
    let get = g.get("line", "acme");
    assert_eq!(
        (get.method.clone(), get.body.clone()),
        (Method::GET, ApiBody::None)
    );
    assert_eq!(header(&get, "if-match"), None);
    let add = g.add_secret("line", "acme", "CHANNEL_SECRET", "v", Some("\"v4\""));
    assert_eq!(add.method, Method::POST);
    assert_eq!(
        add.url,
        "https://gw.example/admin/api/accounts/line/acme/secrets/CHANNEL_SECRET"
    );
    assert_eq!(add.body, ApiBody::Json(json!({"value": "v"})));
    assert_eq!(header(&add, "if-match"), Some("\"v4\""));
    let retire = g.retire_secret("line", "acme", "CHANNEL_SECRET", "1a2b3c4d", None);
    assert_eq!(retire.method, Method::DELETE);
    assert_eq!(
        retire.url,
        "https://gw.example/admin/api/accounts/line/acme/secrets/CHANNEL_SECRET/1a2b3c4d"
    );
    assert_eq!(
        g.delete("line", "acme", Some("*"))
            .headers
            .last()
            .map(|(_, v)| v.as_str()),
        Some("*")
    );
    assert_eq!(
        g.list(Some("line"), Some(50), Some("a/line/x y")).url,
        "https://gw.example/admin/api/registry?channel=line&limit=50&cursor=a%2Fline%2Fx+y"
    );
    assert_eq!(
        g.list(None, None, None).url,
        "https://gw.example/admin/api/registry"
    );
    assert_eq!(
        g.audit(Some(10), None).url,
        "https://gw.example/admin/api/audit?limit=10"
    );
    let reseal = g.reseal(Some("c1"));
    assert_eq!(
        (reseal.method, reseal.url.as_str()),
        (
            Method::POST,
            "https://gw.example/admin/api/registry/reseal?cursor=c1"
        )
    );
    // A path segment cannot escape its place.
    assert_eq!(
        g.retire_secret("line", "acme", "A/B", "../x", None).url,
        "https://gw.example/admin/api/accounts/line/acme/secrets/A%2FB/..%2Fx"
    );
}

#[test]
fn if_match_takes_the_version_or_the_etag() {
    assert_eq!(if_match_value("v3"), "\"v3\"");
    assert_eq!(if_match_value("\"v3\""), "\"v3\"");
    assert_eq!(if_match_value("*"), "*");
}

fn response(status: u16, body: Value) -> ApiResponse {
    ApiResponse {
        status,
        body: body.to_string().into_bytes(),
    }
}

#[test]
fn refusals_name_the_field_and_the_problem() {
    let refusal = interpret(&response(
        422,
        json!({"error": "invalid_field", "field": "CHANNEL_SECRET", "problem": "must be 32 hexadecimal digits"}),
    ))
    .unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "422 invalid_field: field `CHANNEL_SECRET` must be 32 hexadecimal digits"
    );
    let taken = interpret(&response(
        409,
        json!({"error": "address_taken", "address": "a@example.com", "owner": "email/other"}),
    ))
    .unwrap_err();
    assert_eq!(
        taken.to_string(),
        "409 address_taken: a@example.com already belongs to email/other"
    );
    assert_eq!(
        interpret(&response(412, json!({"error": "precondition_failed"})))
            .unwrap_err()
            .error,
        "precondition_failed"
    );
    let plain = interpret(&ApiResponse {
        status: 401,
        body: b"unauthorized".to_vec(),
    })
    .unwrap_err();
    assert_eq!(
        plain.to_string(),
        "401 refused: the admin token was refused"
    );
    // A control character in an answer cannot forge a line of output.
    let forged = interpret(&response(
        422,
        json!({"error": "invalid_field", "field": "X\nforged", "problem": "p"}),
    ))
    .unwrap_err();
    assert!(!forged.to_string().contains('\n'));
    assert!(interpret(&response(200, json!({"deleted": true}))).is_ok());
    assert_eq!(
        interpret(&ApiResponse {
            status: 200,
            body: b"<html>".to_vec()
        })
        .unwrap_err()
        .error,
        "unreadable"
    );
}

fn account() -> Value {
    json!({
        "channel": "line", "account": "acme", "source": "registry",
        "webhook_url": "https://gw.example/line/acme",
        "fields": {
            "CHANNEL_SECRET": {"secret": true, "values": [{"index": 0, "fingerprint": "1a2b3c4d"}, {"index": 1, "fingerprint": "5e6f7a8b"}]},
            "CHANNEL_ID": {"secret": false, "value": "1234567890"}
        },
        "created_at": "2026-05-01T00:00:00.000Z", "updated_at": "2026-05-02T00:00:00.000Z", "version": 2
    })
}

#[test]
fn an_account_shows_settings_by_value_and_secrets_by_fingerprint() {
    let text = render_account(&account());
    assert!(
        text.starts_with("line/acme (registry, version 2, ETag \"v2\")\n"),
        "{text}"
    );
    assert!(text.contains("webhook URL: https://gw.example/line/acme\n"));
    assert!(text.contains("CHANNEL_SECRET"));
    assert!(text.contains("secret [0] 1a2b3c4d, [1] 5e6f7a8b"));
    assert!(text.contains("1234567890"));
    let listing = render_listing(
        &json!({"accounts": [account(), {"channel": "telegram", "account": "desk", "source": "env"}], "next_cursor": null}),
    );
    assert_eq!(listing.lines().count(), 2);
    assert!(listing.lines().next().unwrap().ends_with(" v2"));
    assert!(listing.contains("telegram/desk"));
}

#[test]
fn audit_entries_name_fields_and_token_by_fingerprint() {
    let page = json!({"entries": [{
        "at": "2026-05-02T00:00:00.000Z", "at_ms": 1, "token": {"index": 0, "fingerprint": "9f8e7d6c"},
        "channel": "line", "account": "acme", "action": "add_secret", "fields": ["CHANNEL_SECRET"], "version": 2
    }], "next_cursor": "c2"});
    assert_eq!(
        render_audit(&page),
        "2026-05-02T00:00:00.000Z line/acme add_secret [CHANNEL_SECRET] by token 0 (9f8e7d6c) → v2\n"
    );
    assert_eq!(next_cursor(&page).as_deref(), Some("c2"));
    assert_eq!(
        reseal_step(&json!({"resealed": 3, "scanned": 10, "next_cursor": null})),
        (3, 10, None)
    );
}
