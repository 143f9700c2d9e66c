use super::*;
use crate::crypto::seal::fingerprint;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SECRET_1: &str = "0123456789abcdef0123456789abcdef";
const SECRET_2: &str = "fedcba9876543210fedcba9876543210";

fn r(
    method: Method,
    path: &str,
    query: Option<&str>,
) -> Option<Result<RegistryAction, RegistryError>> {
    let segments: Vec<&str> = path.split('/').collect();
    route(&method, &segments, &Query::parse(query))
}

fn line() -> AccountPath {
    AccountPath {
        channel: "line",
        account: "acme".into(),
    }
}

#[test]
fn routes_of_the_contract() {
    assert_eq!(
        r(Method::PUT, "accounts/line/acme", None),
        Some(Ok(RegistryAction::Put(line())))
    );
    assert_eq!(
        r(Method::GET, "accounts/line/acme", None),
        Some(Ok(RegistryAction::Get(line())))
    );
    assert_eq!(
        r(Method::DELETE, "accounts/line/acme", None),
        Some(Ok(RegistryAction::Delete(line())))
    );
    assert_eq!(
        r(
            Method::POST,
            "accounts/line/acme/secrets/CHANNEL_SECRET",
            None
        ),
        Some(Ok(RegistryAction::AddSecret(
            line(),
            "CHANNEL_SECRET".into()
        )))
    );
    assert_eq!(
        r(
            Method::DELETE,
            "accounts/line/acme/secrets/CHANNEL_SECRET/ab12cd34",
            None
        ),
        Some(Ok(RegistryAction::RetireSecret(
            line(),
            "CHANNEL_SECRET".into(),
            "ab12cd34".into()
        )))
    );
    assert_eq!(
        r(
            Method::GET,
            "registry",
            Some("channel=email&limit=5&cursor=abc")
        ),
        Some(Ok(RegistryAction::List {
            channel: Some("email"),
            limit: 5,
            cursor: Some("abc".into())
        }))
    );
    assert_eq!(
        r(Method::GET, "audit", None),
        Some(Ok(RegistryAction::Audit {
            limit: 100,
            cursor: None
        }))
    );
    assert_eq!(
        r(Method::POST, "registry/reseal", None),
        Some(Ok(RegistryAction::Reseal { cursor: None }))
    );
    assert_eq!(
        r(Method::GET, "channels", None),
        Some(Ok(RegistryAction::Channels))
    );
    // The accounts metrics table (`GET /admin/api/accounts`) is not the registry's.
    assert_eq!(r(Method::GET, "accounts", None), None);
}

#[test]
fn unknown_channels_and_invalid_names_are_404_and_bad_parameters_400() {
    assert_eq!(
        r(Method::GET, "accounts/nope/acme", None),
        Some(Err(RegistryError::NotFound))
    );
    assert_eq!(
        r(Method::GET, "accounts/line/Acme", None),
        Some(Err(RegistryError::NotFound))
    );
    assert_eq!(
        r(Method::POST, "accounts/line/acme", None),
        Some(Err(RegistryError::MethodNotAllowed))
    );
    assert_eq!(
        r(Method::GET, "registry", Some("limit=0")),
        Some(Err(RegistryError::InvalidParameter("limit")))
    );
    assert_eq!(
        r(Method::GET, "registry", Some("channel=nope")),
        Some(Err(RegistryError::InvalidParameter("channel")))
    );
    assert_eq!(RegistryError::NotFound.status(), StatusCode::NOT_FOUND);
    assert_eq!(RegistryError::LastValue.status(), StatusCode::CONFLICT);
    assert_eq!(
        RegistryError::PreconditionFailed.status(),
        StatusCode::PRECONDITION_FAILED
    );
}

fn apply_call(
    existing: Option<&StoredAccount>,
    call: WriterCall,
) -> Result<Applied, RegistryError> {
    let keys = SealingKeys::parse(KEY).unwrap();
    let mut n = 0u8;
    apply(
        &line(),
        existing,
        &call,
        &keys,
        &mut || {
            n += 1;
            [n; 12]
        },
        5_000,
    )
}

fn put_body(body: &str, if_match: Option<&str>) -> WriterCall {
    WriterCall::from_request(&RegistryAction::Put(line()), body.as_bytes(), if_match).unwrap()
}

#[test]
fn one_validation_error_per_kind_of_field_and_nothing_is_stored() {
    let cases = [
        (
            r#"{"fields":{"CHANNEL_SECRET":"xyz"}}"#,
            "CHANNEL_SECRET",
            "must be 32 hexadecimal digits",
        ),
        (
            r#"{"fields":{"BACKEND_URL":"https://b.example"}}"#,
            "CHANNEL_SECRET",
            "is required",
        ),
        (
            &format!(r#"{{"fields":{{"CHANNEL_SECRET":"{SECRET_1}","NOPE":"x"}}}}"#),
            "NOPE",
            "is not a field of this channel",
        ),
        (
            &format!(
                r#"{{"fields":{{"CHANNEL_SECRET":"{SECRET_1}","BACKEND_URL":"http://evil.example"}}}}"#
            ),
            "BACKEND_URL",
            "must be https (http only to 127.0.0.1)",
        ),
        (
            &format!(r#"{{"fields":{{"CHANNEL_SECRET":"{SECRET_1}","REPLY_TIMEOUT_MS":"abc"}}}}"#),
            "REPLY_TIMEOUT_MS",
            "must be a whole number in the allowed range",
        ),
        (
            &format!(
                r#"{{"fields":{{"CHANNEL_SECRET":"{SECRET_1}","NOTIFY_SELF_UNREAD":"yes"}}}}"#
            ),
            "NOTIFY_SELF_UNREAD",
            "is not one of the allowed values",
        ),
        (
            &format!(r#"{{"fields":{{"CHANNEL_SECRET":["{SECRET_1}","{SECRET_1}"]}}}}"#),
            "CHANNEL_SECRET",
            "holds the same value twice",
        ),
        (
            &format!(
                r#"{{"fields":{{"CHANNEL_SECRET":"{SECRET_1}","BACKEND_URL":["https://a.example","https://b.example"]}}}}"#
            ),
            "BACKEND_URL",
            "takes one value, not a list",
        ),
    ];
    for (body, field, problem) in cases {
        let error = apply_call(None, put_body(body, None)).unwrap_err();
        assert_eq!(
            error,
            RegistryError::InvalidField(FieldError::new(field, problem)),
            "{body}"
        );
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(error.body()["error"], "invalid_field");
        assert_eq!(error.body()["field"], field);
    }
    assert_eq!(
        WriterCall::from_request(&RegistryAction::Put(line()), b"{\"fieldz\":{}}", None),
        Err(RegistryError::InvalidBody)
    );
}

#[test]
fn the_write_sequence_of_a_tenant_with_versions_and_if_match() {
    let created = apply_call(
        None,
        put_body(
            &format!(r#"{{"fields":{{"CHANNEL_SECRET":"{SECRET_1}"}}}}"#),
            None,
        ),
    )
    .unwrap();
    assert!(created.created);
    let v1 = created.record.unwrap();
    assert_eq!(v1.version, 1);
    // A stale If-Match is refused; a current one goes through.
    let stale = WriterCall::AddSecret {
        field: "CHANNEL_SECRET".into(),
        value: SECRET_2.into(),
        if_match: Some("\"v0\"".into()),
    };
    assert_eq!(
        apply_call(Some(&v1), stale),
        Err(RegistryError::PreconditionFailed)
    );
    let add = WriterCall::AddSecret {
        field: "CHANNEL_SECRET".into(),
        value: SECRET_2.into(),
        if_match: Some("\"v1\"".into()),
    };
    let v2 = apply_call(Some(&v1), add).unwrap().record.unwrap();
    assert_eq!(v2.version, 2);
    let retire_last = WriterCall::RetireSecret {
        field: "CHANNEL_SECRET".into(),
        fingerprint: fingerprint(SECRET_2.as_bytes()),
        if_match: None,
    };
    let v3 = apply_call(Some(&v2), retire_last.clone())
        .unwrap()
        .record
        .unwrap();
    assert_eq!(
        apply_call(Some(&v3), retire_last),
        Err(RegistryError::NotFound)
    );
    let retire_only = WriterCall::RetireSecret {
        field: "CHANNEL_SECRET".into(),
        fingerprint: fingerprint(SECRET_1.as_bytes()),
        if_match: None,
    };
    assert_eq!(
        apply_call(Some(&v3), retire_only),
        Err(RegistryError::LastValue)
    );
    let deleted = apply_call(Some(&v3), WriterCall::Delete { if_match: None }).unwrap();
    assert_eq!(deleted.record, None);
    assert_eq!(deleted.change.unwrap().action, "delete");
    assert_eq!(
        apply_call(None, WriterCall::Delete { if_match: None }),
        Err(RegistryError::NotFound)
    );
    assert_eq!(
        apply_call(None, WriterCall::Get),
        Err(RegistryError::NotFound)
    );
}
