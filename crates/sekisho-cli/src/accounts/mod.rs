//! `sekisho accounts …`: the account registry over the gateway's admin API (Bearer `ADMIN_TOKEN`, JSON).
//!
//! Sans-IO like [`crate::provision`]: this module builds each [`ApiRequest`] and interprets each
//! [`ApiResponse`]; [`values`] resolves `--field` sources, [`dotvars`] reads a bindings file for `import`, and
//! [`cli`] parses the command line, performs the calls and prints. The API never answers a secret value
//! (only its index and fingerprint), and nothing here prints one: a refusal names the field and the problem.

pub mod cli;
pub mod dotvars;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;

use ::http::Method;
use serde_json::{json, Value};

use crate::provision::{shown, ApiBody, ApiRequest, ApiResponse};

/// The gateway and the admin token every call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    pub base: String,
    pub token: String,
}

fn segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// `v3` or `"v3"` (as the API's `ETag`), or `*`, as an `If-Match` header value.
pub fn if_match_value(given: &str) -> String {
    let given = given.trim();
    if given == "*" || given.starts_with('"') || given.starts_with("W/") {
        given.to_owned()
    } else {
        format!("\"{given}\"")
    }
}

impl Gateway {
    fn request(
        &self,
        method: Method,
        path: &str,
        body: ApiBody,
        if_match: Option<&str>,
    ) -> ApiRequest {
        let mut headers = vec![
            ("authorization", format!("Bearer {}", self.token)),
            ("accept", "application/json".to_owned()),
        ];
        if let Some(tag) = if_match {
            headers.push(("if-match", if_match_value(tag)));
        }
        ApiRequest {
            method,
            url: format!("{}{path}", self.base.trim_end_matches('/')),
            headers,
            body,
        }
    }

    fn account_path(channel: &str, account: &str) -> String {
        format!(
            "/admin/api/accounts/{}/{}",
            segment(channel),
            segment(account)
        )
    }

    /// `PUT …/accounts/{channel}/{account}` `{"fields":{…}}`: creates or replaces the account.
    pub fn put(
        &self,
        channel: &str,
        account: &str,
        fields: &BTreeMap<String, Value>,
        if_match: Option<&str>,
    ) -> ApiRequest {
        self.request(
            Method::PUT,
            &Self::account_path(channel, account),
            ApiBody::Json(json!({ "fields": fields })),
            if_match,
        )
    }

    pub fn get(&self, channel: &str, account: &str) -> ApiRequest {
        self.request(
            Method::GET,
            &Self::account_path(channel, account),
            ApiBody::None,
            None,
        )
    }

    /// `POST …/secrets/{FIELD}` `{"value":…}`: the new value goes first (rotation step 1).
    pub fn add_secret(
        &self,
        channel: &str,
        account: &str,
        field: &str,
        value: &str,
        if_match: Option<&str>,
    ) -> ApiRequest {
        let path = format!(
            "{}/secrets/{}",
            Self::account_path(channel, account),
            segment(field)
        );
        self.request(
            Method::POST,
            &path,
            ApiBody::Json(json!({ "value": value })),
            if_match,
        )
    }

    /// `DELETE …/secrets/{FIELD}/{fingerprint}`: retires one value.
    pub fn retire_secret(
        &self,
        channel: &str,
        account: &str,
        field: &str,
        fingerprint: &str,
        if_match: Option<&str>,
    ) -> ApiRequest {
        let path = format!(
            "{}/secrets/{}/{}",
            Self::account_path(channel, account),
            segment(field),
            segment(fingerprint)
        );
        self.request(Method::DELETE, &path, ApiBody::None, if_match)
    }

    pub fn delete(&self, channel: &str, account: &str, if_match: Option<&str>) -> ApiRequest {
        self.request(
            Method::DELETE,
            &Self::account_path(channel, account),
            ApiBody::None,
            if_match,
        )
    }

    /// `GET /admin/api/registry?channel=&limit=&cursor=`.
    pub fn list(
        &self,
        channel: Option<&str>,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> ApiRequest {
        let query = query(&[
            ("channel", channel.map(str::to_owned)),
            ("limit", limit.map(|n| n.to_string())),
            ("cursor", cursor.map(str::to_owned)),
        ]);
        self.request(
            Method::GET,
            &format!("/admin/api/registry{query}"),
            ApiBody::None,
            None,
        )
    }

    /// `GET /admin/api/audit?limit=&cursor=`.
    pub fn audit(&self, limit: Option<usize>, cursor: Option<&str>) -> ApiRequest {
        let query = query(&[
            ("limit", limit.map(|n| n.to_string())),
            ("cursor", cursor.map(str::to_owned)),
        ]);
        self.request(
            Method::GET,
            &format!("/admin/api/audit{query}"),
            ApiBody::None,
            None,
        )
    }

    /// `POST /admin/api/registry/reseal?cursor=`: one page per call.
    pub fn reseal(&self, cursor: Option<&str>) -> ApiRequest {
        let query = query(&[("cursor", cursor.map(str::to_owned))]);
        self.request(
            Method::POST,
            &format!("/admin/api/registry/reseal{query}"),
            ApiBody::None,
            None,
        )
    }
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            out.append_pair(name, value);
        }
    }
    let out = out.finish();
    if out.is_empty() {
        out
    } else {
        format!("?{out}")
    }
}

/// The API refused the call: its status, its machine-readable reason, and the details it gave (field and
/// problem, the address's owner, …), each shown on one bounded line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub status: u16,
    pub error: String,
    pub detail: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.error)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

fn text(body: &Value, key: &str) -> String {
    body.get(key)
        .and_then(Value::as_str)
        .map(shown)
        .unwrap_or_default()
}

/// The answer's JSON when the call succeeded (2xx), else the [`Refusal`].
pub fn interpret(response: &ApiResponse) -> Result<Value, Refusal> {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    if (200..300).contains(&response.status) {
        return body.ok_or(Refusal {
            status: response.status,
            error: "unreadable".to_owned(),
            detail: "the answer is not JSON".to_owned(),
        });
    }
    let body = body.unwrap_or(Value::Null);
    let error = match text(&body, "error") {
        e if e.is_empty() => "refused".to_owned(),
        e => e,
    };
    let detail = match error.as_str() {
        "invalid_field" => format!(
            "field `{}` {}",
            text(&body, "field"),
            text(&body, "problem")
        ),
        "address_taken" => format!(
            "{} already belongs to {}",
            text(&body, "address"),
            text(&body, "owner")
        ),
        "invalid_parameter" => format!("parameter `{}`", text(&body, "parameter")),
        "misconfigured" => match text(&body, "account") {
            account if account.is_empty() => format!("binding {}", text(&body, "binding")),
            account => format!("binding {} (account {account})", text(&body, "binding")),
        },
        "precondition_failed" => "the account changed since that version (If-Match)".to_owned(),
        "last_value" => "the field's last value cannot be retired".to_owned(),
        "not_found" => "no such channel or account".to_owned(),
        _ if response.status == 401 => "the admin token was refused".to_owned(),
        _ => String::new(),
    };
    Err(Refusal {
        status: response.status,
        error,
        detail,
    })
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `line/acme`.
pub fn account_name(account: &Value) -> String {
    shown(&format!(
        "{}/{}",
        str_of(account, "channel"),
        str_of(account, "account")
    ))
}

/// An account as the API answers it, for people: its source and version, its webhook URL, and each field —
/// settings by value, secrets by index and fingerprint (the API answers nothing else for them).
pub fn render_account(account: &Value) -> String {
    let mut out = format!(
        "{} ({}, version {}, ETag \"v{}\")\n",
        account_name(account),
        shown(str_of(account, "source")),
        account.get("version").and_then(Value::as_u64).unwrap_or(0),
        account.get("version").and_then(Value::as_u64).unwrap_or(0),
    );
    out.push_str(&format!(
        "webhook URL: {}\n",
        shown(str_of(account, "webhook_url"))
    ));
    if let Some(fields) = account.get("fields").and_then(Value::as_object) {
        for (name, field) in fields {
            let shown_value = if field.get("secret").and_then(Value::as_bool) == Some(true) {
                let values: Vec<String> = field
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|values| {
                        values
                            .iter()
                            .map(|v| {
                                format!(
                                    "[{}] {}",
                                    v.get("index").and_then(Value::as_u64).unwrap_or(0),
                                    shown(str_of(v, "fingerprint"))
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                format!("secret {}", values.join(", "))
            } else {
                shown(str_of(field, "value"))
            };
            out.push_str(&format!("  {:<24} {shown_value}\n", shown(name)));
        }
    }
    let updated = str_of(account, "updated_at");
    if !updated.is_empty() {
        out.push_str(&format!("updated {}\n", shown(updated)));
    }
    out
}

/// One line per account of a listing page: `line/acme  registry  v2`.
pub fn render_listing(page: &Value) -> String {
    let mut out = String::new();
    for account in page
        .get("accounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let version = match account.get("version").and_then(Value::as_u64) {
            Some(v) => format!("v{v}"),
            None => "–".to_owned(),
        };
        out.push_str(&format!(
            "{:<40} {:<9} {version}\n",
            account_name(account),
            shown(str_of(account, "source"))
        ));
    }
    out
}

/// One line per audit entry: when, which account, what, which fields, which admin token (index and
/// fingerprint).
pub fn render_audit(page: &Value) -> String {
    let mut out = String::new();
    for entry in page
        .get("entries")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let fields: Vec<String> = entry
            .get("fields")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).map(shown).collect())
            .unwrap_or_default();
        let token = entry.get("token").unwrap_or(&Value::Null);
        let version = entry
            .get("version")
            .and_then(Value::as_u64)
            .map(|v| format!(" → v{v}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{} {} {} [{}] by token {} ({}){version}\n",
            shown(str_of(entry, "at")),
            account_name(entry),
            shown(str_of(entry, "action")),
            fields.join(", "),
            token.get("index").and_then(Value::as_u64).unwrap_or(0),
            shown(str_of(token, "fingerprint")),
        ));
    }
    out
}

/// The cursor of the next page, when there is one.
pub fn next_cursor(page: &Value) -> Option<String> {
    page.get("next_cursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
}

/// What one re-seal call did: records re-sealed, records scanned, and the next page's cursor.
pub fn reseal_step(page: &Value) -> (u64, u64, Option<String>) {
    let count = |key| page.get(key).and_then(Value::as_u64).unwrap_or(0);
    (count("resealed"), count("scanned"), next_cursor(page))
}

#[cfg(test)]
mod tests;
