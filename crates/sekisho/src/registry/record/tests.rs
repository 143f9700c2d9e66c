use std::collections::BTreeMap;

use super::*;
use crate::registry::fields::GivenValue;

const KEY_A: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KEY_B: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const SECRET_1: &str = "0123456789abcdef0123456789abcdef";
const SECRET_2: &str = "fedcba9876543210fedcba9876543210";

fn counter() -> impl FnMut() -> [u8; 12] {
    let mut n = 0u8;
    move || {
        n += 1;
        [n; 12]
    }
}

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, GivenValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), GivenValue::One((*v).to_owned())))
        .collect()
}

fn line_account(keys: &SealingKeys) -> StoredAccount {
    put(
        None,
        "line",
        "acme",
        &given(&[
            ("CHANNEL_SECRET", SECRET_1),
            ("BACKEND_URL", "https://backend.example/in"),
        ]),
        keys,
        &mut counter(),
        1_000,
    )
    .unwrap()
    .0
}

#[test]
fn put_seals_secrets_and_keeps_settings_readable() {
    let keys = SealingKeys::parse(KEY_A).unwrap();
    let (record, change) = put(
        None,
        "line",
        "acme",
        &given(&[
            ("CHANNEL_SECRET", SECRET_1),
            ("BACKEND_URL", "https://backend.example/in"),
        ]),
        &keys,
        &mut counter(),
        1_000,
    )
    .unwrap();
    assert_eq!(record.version, 1);
    assert_eq!(change.action, "create");
    assert_eq!(change.fields, ["BACKEND_URL", "CHANNEL_SECRET"]);
    let stored = serde_json::to_string(&record).unwrap();
    assert!(!stored.contains(SECRET_1), "the secret is sealed: {stored}");
    assert!(stored.contains("https://backend.example/in"));
    let opened = open(&record, &keys).unwrap();
    assert_eq!(
        opened.fields,
        vec![
            (
                "BACKEND_URL".to_owned(),
                vec!["https://backend.example/in".to_owned()]
            ),
            ("CHANNEL_SECRET".to_owned(), vec![SECRET_1.to_owned()]),
        ]
    );
    let view = record.view("https://gate.example/line/acme").to_string();
    assert!(!view.contains(SECRET_1));
    assert!(view.contains(&fingerprint(SECRET_1.as_bytes())));
}

#[test]
fn replace_keeps_creation_time_and_names_only_changed_fields() {
    let keys = SealingKeys::parse(KEY_A).unwrap();
    let first = line_account(&keys);
    let (second, change) = put(
        Some(&first),
        "line",
        "acme",
        &given(&[
            ("CHANNEL_SECRET", SECRET_1),
            ("BACKEND_URL", "https://other.example/in"),
        ]),
        &keys,
        &mut counter(),
        2_000,
    )
    .unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(second.created_at_ms, 1_000);
    assert_eq!(change.action, "replace");
    assert_eq!(change.fields, ["BACKEND_URL"]);
}

#[test]
fn rotation_adds_newest_first_and_retires_but_never_the_last_value() {
    let keys = SealingKeys::parse(KEY_A).unwrap();
    let record = line_account(&keys);
    let (rotated, _) = add_secret(
        &record,
        "CHANNEL_SECRET",
        SECRET_2,
        &keys,
        &mut counter(),
        2_000,
    )
    .unwrap();
    let opened = open(&rotated, &keys).unwrap();
    assert_eq!(
        opened.fields[1],
        (
            "CHANNEL_SECRET".to_owned(),
            vec![SECRET_2.to_owned(), SECRET_1.to_owned()]
        )
    );
    assert_eq!(
        add_secret(
            &rotated,
            "CHANNEL_SECRET",
            SECRET_2,
            &keys,
            &mut counter(),
            3_000
        )
        .unwrap_err(),
        WriteError::InvalidField(FieldError::new(
            "CHANNEL_SECRET",
            "already holds this value"
        ))
    );
    assert!(matches!(
        add_secret(
            &rotated,
            "CHANNEL_SECRET",
            "short",
            &keys,
            &mut counter(),
            3_000
        ),
        Err(WriteError::InvalidField(_))
    ));
    assert!(matches!(
        add_secret(
            &rotated,
            "BACKEND_URL",
            SECRET_2,
            &keys,
            &mut counter(),
            3_000
        ),
        Err(WriteError::InvalidField(_))
    ));
    let old_print = fingerprint(SECRET_1.as_bytes());
    let (retired, change) = retire_secret(&rotated, "CHANNEL_SECRET", &old_print, 3_000).unwrap();
    assert_eq!(change.action, "retire_secret");
    assert_eq!(
        open(&retired, &keys).unwrap().fields[1].1,
        vec![SECRET_2.to_owned()]
    );
    let new_print = fingerprint(SECRET_2.as_bytes());
    assert_eq!(
        retire_secret(&retired, "CHANNEL_SECRET", &new_print, 4_000).unwrap_err(),
        WriteError::LastValue
    );
    assert_eq!(
        retire_secret(&retired, "CHANNEL_SECRET", "00000000", 4_000).unwrap_err(),
        WriteError::ValueNotFound
    );
}

#[test]
fn reseal_moves_values_to_the_newest_key_and_refuses_a_record_no_key_opens() {
    let old_keys = SealingKeys::parse(KEY_B).unwrap();
    let record = line_account(&old_keys);
    let rotated_keys = SealingKeys::parse(&format!("{KEY_A},{KEY_B}")).unwrap();
    assert!(record.needs_reseal(&rotated_keys));
    let resealed = reseal(&record, &rotated_keys, &mut counter())
        .unwrap()
        .unwrap();
    assert!(!resealed.needs_reseal(&rotated_keys));
    // Once the old key is gone, the re-sealed record still opens.
    let new_only = SealingKeys::parse(KEY_A).unwrap();
    assert_eq!(
        open(&resealed, &new_only).unwrap().fields[1].1,
        vec![SECRET_1.to_owned()]
    );
    assert_eq!(
        reseal(&resealed, &rotated_keys, &mut counter()).unwrap(),
        None
    );
    // The un-resealed record does not open under the new key alone: refused, naming the account.
    assert_eq!(
        open(&record, &new_only).unwrap_err(),
        OpenFailure {
            channel: "line".into(),
            account: "acme".into()
        }
    );
    assert!(reseal(&record, &new_only, &mut counter()).is_err());
}

#[test]
fn a_sealed_value_moved_to_another_account_does_not_open() {
    let keys = SealingKeys::parse(KEY_A).unwrap();
    let mut record = line_account(&keys);
    record.account = "evil".into();
    assert!(open(&record, &keys).is_err());
}

#[test]
fn if_match_compares_the_version_tag() {
    assert!(if_match_allows(None, None));
    assert!(if_match_allows(None, Some(3)));
    assert!(if_match_allows(Some("\"v3\""), Some(3)));
    assert!(if_match_allows(Some("W/\"v3\""), Some(3)));
    assert!(if_match_allows(Some("\"v1\", \"v3\""), Some(3)));
    assert!(if_match_allows(Some("*"), Some(1)));
    assert!(!if_match_allows(Some("\"v2\""), Some(3)));
    assert!(!if_match_allows(Some("*"), None));
    assert!(!if_match_allows(Some("\"v1\""), None));
    assert_eq!(etag(7), "\"v7\"");
}

#[test]
fn webhook_urls_and_email_addresses() {
    assert_eq!(
        webhook_url("https://gate.example/", "line", "acme", None),
        "https://gate.example/line/acme"
    );
    assert_eq!(
        webhook_url("https://gate.example", "chatplus", "acme", Some("s3cret")),
        "https://gate.example/chatplus/acme/s3cret"
    );
    let keys = SealingKeys::parse(KEY_A).unwrap();
    let (mail, _) = put(
        None,
        "email",
        "support",
        &given(&[("ADDRESS", "Support@Example.com, help@example.com")]),
        &keys,
        &mut counter(),
        1,
    )
    .unwrap();
    assert_eq!(
        mail.addresses(),
        ["support@example.com", "help@example.com"]
    );
    assert!(line_account(&keys).addresses().is_empty());
}
