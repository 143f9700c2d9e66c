//! Replays every request under `fixtures/<channel>/` through the gateway and checks status, reason, response
//! body and the forwarded events (each validated against the published JSON Schema).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use crate::common::*;
use serde_json::Value;

#[test]
fn every_fixture_behaves_as_expected() {
    let validator = schema_validator();
    let fixtures = all_fixtures();
    assert!(!fixtures.is_empty());
    let mut failures = Vec::new();
    for (channel, file, fixture) in &fixtures {
        let bindings = bindings_for(channel, fixture);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check(channel, fixture, &bindings, &validator);
        }));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!(
                "{channel}/{file} ({}): {message}",
                fixture.description
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
    eprintln!("{} fixtures passed", fixtures.len());
}

fn check(
    channel: &str,
    fixture: &Fixture,
    bindings: &std::collections::HashMap<String, String>,
    validator: &jsonschema::Validator,
) {
    match run(channel, fixture, bindings) {
        Ok(accepted) => {
            assert_eq!(accepted.response.status, fixture.expect.status, "status");
            assert!(
                fixture.expect.reason.is_none(),
                "expected rejection {:?}",
                fixture.expect.reason
            );
            if let Some(body) = &fixture.expect.response_body {
                assert_eq!(
                    String::from_utf8_lossy(&accepted.response.body),
                    *body,
                    "response body"
                );
            }
            let events: Vec<Value> = accepted
                .deliveries
                .iter()
                .map(|d| serde_json::from_str(&d.body).unwrap())
                .collect();
            for (delivery, event) in accepted.deliveries.iter().zip(&events) {
                assert_schema_valid(validator, event);
                assert_eq!(
                    event["id"],
                    delivery.webhook_id.as_str(),
                    "event id is the webhook-id"
                );
                assert_eq!(event["channel"], channel);
                assert_eq!(event["source"], format!("/{channel}/{}", fixture.account));
            }
            if let Some(expected) = &fixture.expect.events {
                assert_subset(
                    &Value::Array(expected.clone()),
                    &Value::Array(events),
                    "events",
                );
            }
        }
        Err(refusal) => {
            assert_eq!(
                refusal.rejection.status().as_u16(),
                fixture.expect.status,
                "status ({})",
                refusal.rejection
            );
            if let Some(reason) = &fixture.expect.reason {
                assert_eq!(refusal.rejection.reason(), reason, "reason");
            }
            assert!(
                fixture.expect.events.as_ref().is_none_or(|e| e.is_empty()),
                "expected events but refused"
            );
        }
    }
}
