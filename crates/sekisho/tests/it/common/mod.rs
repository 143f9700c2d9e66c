//! Shared by the native integration tests: loading fixtures and running them through the gateway.
#![allow(dead_code, unreachable_pub)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use serde_json::Value;

use sekisho::config::binding_name;
use sekisho::gateway::{self, Accepted, BodyBuffer, Inbound, Refusal};
use sekisho::route::{self, Route};

pub const TEST_SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const TEST_BACKEND_URL: &str = "http://127.0.0.1:9/backend";

#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub description: String,
    pub source: String,
    pub account: String,
    pub config: HashMap<String, String>,
    pub now_ms: Option<u64>,
    pub request: FixtureRequest,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
pub struct FixtureRequest {
    pub method: String,
    #[serde(default)]
    pub extra_path: Vec<String>,
    pub query: Option<String>,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub struct Expect {
    pub status: u16,
    pub reason: Option<String>,
    pub response_body: Option<String>,
    pub events: Option<Vec<Value>>,
}

/// The repository's root: `fixtures/` and `schema/` are shared with the end-to-end tests.
pub fn repo_root() -> PathBuf {
    crate_root().join("../..")
}

/// This crate's folder: `tests/vectors/` (copies of shared/vectors) live here.
pub fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every HTTP fixture as (channel, file name, fixture). E-mail fixtures (raw messages, not requests) have
/// their own format and test (`tests/email.rs`).
pub fn all_fixtures() -> Vec<(String, String, Fixture)> {
    let mut found = Vec::new();
    let mut channel_dirs: Vec<_> = std::fs::read_dir(repo_root().join("fixtures"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    channel_dirs.sort_by_key(|e| e.file_name());
    for dir in channel_dirs {
        let channel = dir.file_name().to_string_lossy().into_owned();
        if channel == sekisho::mail::CHANNEL {
            continue;
        }
        assert!(
            sekisho::channels::find(&channel).is_some(),
            "fixtures/{channel} names no channel"
        );
        for file in json_files(&dir.path()) {
            found.push((
                channel.clone(),
                file.file_name().unwrap().to_string_lossy().into_owned(),
                load(&file),
            ));
        }
    }
    found
}

/// The `.json` files of a fixture folder, sorted.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

pub fn load(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Bindings for one fixture: its account config plus a backend and signing secret.
pub fn bindings_for(channel: &str, fixture: &Fixture) -> HashMap<String, String> {
    let mut bindings: HashMap<String, String> = fixture
        .config
        .iter()
        .map(|(field, value)| {
            (
                binding_name(channel, &fixture.account, field),
                value.clone(),
            )
        })
        .collect();
    bindings.insert("BACKEND_URL".into(), TEST_BACKEND_URL.into());
    bindings.insert("BACKEND_SIGNING_SECRET".into(), TEST_SIGNING_SECRET.into());
    bindings
}

pub fn run(
    channel: &str,
    fixture: &Fixture,
    bindings: &HashMap<String, String>,
) -> Result<Accepted, Refusal> {
    let mut headers = HeaderMap::new();
    for (name, value) in &fixture.request.headers {
        headers.append(
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let mut path = format!("/{channel}/{}", fixture.account);
    for segment in &fixture.request.extra_path {
        path.push('/');
        path.push_str(segment);
    }
    let method = Method::from_bytes(fixture.request.method.as_bytes()).unwrap();
    let inbound = Inbound {
        method: &method,
        origin: "https://gateway.test",
        path: &path,
        query: fixture.request.query.as_deref(),
        headers: &headers,
        body: fixture.request.body.as_bytes(),
    };
    let now_ms = fixture.now_ms.unwrap_or_else(now_ms);
    handle(&inbound, bindings, now_ms)
}

/// A webhook request whose body is in memory, through the core in the Worker's order: the router, then
/// [`gateway::admit`] (account, declared size), the body read within the limit, [`gateway::handle_admitted`].
/// A path the router sends elsewhere (health, admin, attachments) or nowhere is refused `route_not_found`.
pub fn handle(
    inbound: &Inbound<'_>,
    bindings: &dyn sekisho::config::Bindings,
    now_ms: u64,
) -> Result<Accepted, Refusal> {
    let Route::Channel(channel) = route::route(inbound.method, inbound.path) else {
        return Err(Refusal {
            rejection: sekisho::Rejection::RouteNotFound,
            channel: None,
            account: None,
        });
    };
    let target = gateway::admit(
        channel,
        inbound.method,
        inbound.path,
        inbound.query,
        inbound.headers,
        bindings,
    )?;
    BodyBuffer::whole(target.body_limit, inbound.body.to_vec())
        .map_err(|rejection| target.refusal(rejection))?;
    gateway::handle_admitted(&target, inbound, bindings, now_ms)
}

/// The log line of an accepted request, as the Worker writes it for events that went into the queue.
pub fn accepted_log_line(accepted: &Accepted, duplicates: Option<usize>) -> String {
    sekisho::log::request_accepted(accepted, duplicates, sekisho::log::Kept::Queued).to_string()
}

/// The log line of a refused request, as the Worker writes it.
pub fn refused_log_line(refusal: &Refusal) -> String {
    sekisho::log::request_rejected(refusal).to_string()
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Every key of `expected` equals the same key of `actual`; arrays must have the same length.
pub fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let got = have
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} is missing in {actual}"));
                assert_subset(value, got, &format!("{path}.{key}"));
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            assert_eq!(
                want.len(),
                have.len(),
                "{path}: array length differs: {actual}"
            );
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                assert_subset(w, h, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(expected, actual, "{path} differs"),
    }
}

/// A validator for the committed `schema/event-v1.schema.json`, after proving the file is exactly what the types
/// in `src/envelope.rs` generate: a test that validates events against it also fails when the two diverge.
pub fn schema_validator() -> jsonschema::Validator {
    if let Err(message) = sekisho::schema::check_committed_schema(&repo_root()) {
        panic!("{message}");
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("schema/event-v1.schema.json")).unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

pub fn assert_schema_valid(validator: &jsonschema::Validator, event: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "event does not match schema/event-v1.schema.json: {errors:?}\n{event:#}"
    );
}
