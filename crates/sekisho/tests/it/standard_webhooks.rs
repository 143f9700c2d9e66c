//! The gateway → backend signature against the Standard Webhooks reference vector.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use crate::common;

use sekisho::forward::{ReceiveError, SigningKeys};
use serde_json::Value;

#[test]
fn reference_vector() {
    let text =
        std::fs::read_to_string(common::crate_root().join("tests/vectors/standard_webhooks.json"))
            .unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let mut ran = 0;
    for vector in file["vectors"].as_array().unwrap() {
        let keys = SigningKeys::parse(&[vector["secret"].as_str().unwrap()]).unwrap();
        let id = vector["webhook-id"].as_str().unwrap();
        let timestamp = vector["webhook-timestamp"].as_str().unwrap();
        let body = vector["body"].as_str().unwrap().as_bytes();
        let expected = vector["expected_signature"].as_str().unwrap();
        assert_eq!(
            keys.signature(id, timestamp.parse().unwrap(), body),
            expected
        );
        let now: u64 = timestamp.parse().unwrap();
        assert_eq!(keys.verify(id, timestamp, expected, body, now), Ok(()));
        let negative = vector["negative"]["signature"].as_str().unwrap();
        assert_eq!(
            keys.verify(id, timestamp, negative, body, now),
            Err(ReceiveError::BadSignature)
        );
        ran += 1;
    }
    // The reference vector of standard-webhooks' libraries; an emptied file must not pass silently.
    assert_eq!(ran, 1, "vectors run");
}

#[test]
fn rotation_signs_with_every_secret_newest_first() {
    let both = SigningKeys::parse(&[
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_b2xkLXNlY3JldA==",
    ])
    .unwrap();
    let header = both.signature(
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        br#"{"test": 2432232314}"#,
    );
    let entries: Vec<&str> = header.split(' ').collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0],
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
}
