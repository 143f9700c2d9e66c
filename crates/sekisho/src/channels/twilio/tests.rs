use crate::channels::Handled;
use crate::envelope::Event;
use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::channels::test_support::{self, DemoRequest};
use crate::envelope::event_id;

/// The worked example of Twilio's "Webhooks security" guide (docs/usage/webhooks/webhooks-security): auth
/// token `12345`, the URL and the parameters of a voice call, and the signature Twilio computes for them.
const DOCS_TOKEN: &str = "12345";
const DOCS_URL: &str = "https://mycompany.com/myapp.php";
const DOCS_QUERY: &str = "foo=1&bar=2";
const DOCS_BODY: &str = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
const DOCS_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
/// The same example with other numbers, as the helper libraries test it (twilio-python
/// tests/unit/test_request_validator.py, twilio-node spec/validation.spec.js, twilio-ruby
/// spec/security/request_validator_spec.rb).
const LIBRARY_BODY: &str = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
const LIBRARY_SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const NOW_MS: u64 = 1_700_000_000_000;
/// The URL the test requests arrive at (`test_support` serves every channel at `https://gateway.test/demo`).
const GATEWAY_URL: &str = "https://gateway.test/demo";
const TOKEN: &str = "demo-auth-token";

fn bindings(tokens: &str, webhook_url: Option<&str>) -> HashMap<String, String> {
    let mut bindings = HashMap::from([("TWILIO_DEMO_AUTH_TOKEN".to_owned(), tokens.to_owned())]);
    if let Some(url) = webhook_url {
        bindings.insert("TWILIO_DEMO_WEBHOOK_URL".to_owned(), url.to_owned());
    }
    bindings
}

fn post(
    bindings: &HashMap<String, String>,
    query: Option<&str>,
    signature: Option<&str>,
    content_type: &str,
    body: &str,
) -> Result<Handled, Rejection> {
    let mut headers = vec![("content-type", content_type)];
    if let Some(signature) = signature {
        headers.push((SIGNATURE_HEADER, signature));
    }
    test_support::run(
        &Twilio,
        bindings,
        DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query,
            headers: &headers,
            body: body.as_bytes(),
            now_ms: NOW_MS,
        },
    )
}

fn form(
    bindings: &HashMap<String, String>,
    query: Option<&str>,
    signature: &str,
    body: &str,
) -> Result<Handled, Rejection> {
    post(
        bindings,
        query,
        Some(signature),
        super::super::form::FORM_CONTENT_TYPE,
        body,
    )
}

/// A form body signed by `sekisho sign twilio` for the URL the request arrives at.
fn signed(token: &str, body: &str) -> Result<Handled, Rejection> {
    let request = Twilio
        .sign(&SignParams {
            body: body.as_bytes().to_vec(),
            options: [
                ("secret".to_owned(), token.to_owned()),
                ("url".to_owned(), GATEWAY_URL.to_owned()),
                (
                    "content-type".to_owned(),
                    super::super::form::FORM_CONTENT_TYPE.to_owned(),
                ),
            ]
            .into(),
            now_s: 0,
        })
        .unwrap();
    let signature = &request.headers[0].1;
    form(
        &bindings(&format!("{TOKEN},old-token"), None),
        None,
        signature,
        body,
    )
}

fn only_event(handled: &Handled) -> &Event {
    assert_eq!(handled.events.len(), 1);
    &handled.events[0]
}

#[test]
fn the_documented_example_verifies_and_nothing_else_does() {
    let pinned = bindings(DOCS_TOKEN, Some(DOCS_URL));
    let handled = form(&pinned, Some(DOCS_QUERY), DOCS_SIGNATURE, DOCS_BODY).unwrap();
    // A voice call's parameters are not a message: forwarded as they are, answered with empty TwiML.
    let event = only_event(&handled);
    assert_eq!(event.event_type, "unrecognized");
    assert_eq!(event.data.raw.value()["Caller"], "+12349013030");
    assert_eq!(event.data.verification.scheme, "twilio-hmac-sha1");
    assert_eq!(handled.response.content_type, "text/xml");
    assert_eq!(
        handled.response.body,
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>"
    );
    // The order of the parameters in the body does not matter; their names and values do.
    let reordered = "To=%2B18005551212&Digits=1234&From=%2B12349013030&CallSid=CA1234567890ABCDE&Caller=%2B12349013030";
    assert!(form(&pinned, Some(DOCS_QUERY), DOCS_SIGNATURE, reordered).is_ok());
    let tampered = DOCS_BODY.replace("Digits=1234", "Digits=9999");
    for (query, body) in [
        (Some(DOCS_QUERY), tampered.as_str()),
        (Some("foo=1&bar=3"), DOCS_BODY),
        (None, DOCS_BODY),
        (Some("bar=2&foo=1"), DOCS_BODY),
    ] {
        assert_eq!(
            form(&pinned, query, DOCS_SIGNATURE, body).unwrap_err(),
            Rejection::InvalidSignature
        );
    }
    // Without WEBHOOK_URL the request's own URL (https://gateway.test/demo) is what must have been signed.
    assert_eq!(
        form(
            &bindings(DOCS_TOKEN, None),
            Some(DOCS_QUERY),
            DOCS_SIGNATURE,
            DOCS_BODY
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn urls_with_and_without_their_port_as_the_helper_libraries_accept_them() {
    // (the public URL, the signature the libraries' tests expect for it)
    let accepted = [
        ("https://mycompany.com/myapp.php", LIBRARY_SIGNATURE),
        // signed over https://mycompany.com:443/…
        (
            "https://mycompany.com/myapp.php",
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ),
        // a URL with a port, signed without it
        ("https://mycompany.com:1234/myapp.php", LIBRARY_SIGNATURE),
        // signed over http://mycompany.com:1234/…
        (
            "http://mycompany.com:1234/myapp.php",
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
        // signed over http://mycompany.com:80/…
        (
            "http://mycompany.com/myapp.php",
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        ),
        // credentials in the URL are signed as part of it (twilio-node), with or without :443
        (
            "https://user:pass@mycompany.com/myapp.php",
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
        ),
        (
            "https://user:pass@mycompany.com/myapp.php",
            "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
        ),
        (
            "https://user@mycompany.com/myapp.php",
            "2YRLlVAflCqxaNicjMpJcSTgzSs=",
        ),
    ];
    for (url, signature) in accepted {
        let result = form(
            &bindings(DOCS_TOKEN, Some(url)),
            Some(DOCS_QUERY),
            signature,
            LIBRARY_BODY,
        );
        assert!(result.is_ok(), "{url} {signature}: {result:?}");
    }
    let refused = [
        // :443 was signed, another port is seen
        (
            "https://mycompany.com:8443/myapp.php",
            "kvajT1Ptam85bY51eRf/AJRuM3w=",
        ),
        // https was signed, http is seen
        ("http://mycompany.com/myapp.php", LIBRARY_SIGNATURE),
        (
            "https://mycompany.com/myapp.php",
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        ),
        (
            "https://mycompany.com/myapp.php",
            "CukzLTc1tT5dXEDIHm/tKBanW10=",
        ),
        ("https://mycompany.org/myapp.php", LIBRARY_SIGNATURE),
    ];
    for (url, signature) in refused {
        assert_eq!(
            form(
                &bindings(DOCS_TOKEN, Some(url)),
                Some(DOCS_QUERY),
                signature,
                LIBRARY_BODY
            )
            .unwrap_err(),
            Rejection::InvalidSignature,
            "{url} {signature}"
        );
    }
}

#[test]
fn repeated_parameters_count_each_distinct_value_once_in_order() {
    // twilio-python test_compute_signature_duplicate_multi_dict / twilio-node "multiple params and values".
    let pinned = bindings(DOCS_TOKEN, Some(DOCS_URL));
    let signature = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
    for body in [
        "Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234",
        "Digits=1234&Sid=CA123&Digits=5678&SidAccount=AC123",
    ] {
        let handled = form(&pinned, Some(DOCS_QUERY), signature, body).unwrap();
        assert_eq!(
            only_event(&handled).data.raw.value()["Digits"],
            serde_json::json!(["1234", "5678"])
        );
    }
    // twilio-node "array parameter", in either order.
    for body in [
        "MessagingBinding.Address=%2B1325xxxxxxx&MessagingBinding.Address=%2B1415xxxxxxx",
        "MessagingBinding.Address=%2B1415xxxxxxx&MessagingBinding.Address=%2B1325xxxxxxx",
    ] {
        assert!(form(
            &pinned,
            Some(DOCS_QUERY),
            "83O6e2vORAoJHUNzJjDWN1jz+BA=",
            body
        )
        .is_ok());
    }
    assert_eq!(
        form(
            &pinned,
            Some(DOCS_QUERY),
            signature,
            "Sid=CA123&SidAccount=AC123&Digits=5678"
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn a_quote_in_the_query_is_accepted_escaped_or_not() {
    // twilio-node "urls with special characters": signed over `…&Body=It%27s+amazing`.
    let pinned = bindings(DOCS_TOKEN, Some(DOCS_URL));
    let signature = "TfZzewPq8wqrGlMfyAud8+/IvJ0=";
    for query in [
        "foo=1&bar=2&Body=It%27s+amazing",
        "foo=1&bar=2&Body=It's+amazing",
    ] {
        assert!(
            form(&pinned, Some(query), signature, LIBRARY_BODY).is_ok(),
            "{query}"
        );
    }
    assert_eq!(
        form(
            &pinned,
            Some("foo=1&bar=2&Body=Its+amazing"),
            signature,
            LIBRARY_BODY
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn json_bodies_are_signed_through_body_sha256() {
    // twilio-python test_validation_of_body_succeeds, twilio-ruby "should validate with no other GET
    // parameters", twilio-node "should validate request body when empty" (signed with :443).
    let pinned = bindings(DOCS_TOKEN, Some(DOCS_URL));
    let body = r#"{"property": "value", "boolean": true}"#;
    let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    let empty_hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let cases = [
        (
            format!("foo=1&bar=2&bodySHA256={hash}"),
            "a9nBmqA0ju/hNViExpshrM61xv4=",
            body,
        ),
        (
            format!("bodySHA256={hash}"),
            "y77kIzt2vzLz71DgmJGsen2scGs=",
            body,
        ),
        (
            format!("foo=1&bar=2&bodySHA256={empty_hash}"),
            "Ldidvp12m26NI7eqEvxnEpkd9Hc=",
            "{}",
        ),
    ];
    for (query, signature, body) in &cases {
        let handled = post(
            &pinned,
            Some(query),
            Some(signature),
            "application/json",
            body,
        )
        .unwrap();
        assert_eq!(handled.response, EdgeResponse::accepted(1));
        let event = only_event(&handled);
        assert_eq!(event.event_type, "unrecognized");
        assert_eq!(event.data.provider_type, "json");
        assert_eq!(
            event.id,
            event_id(
                "twilio",
                "demo",
                &super::super::content_hash_key(body.as_bytes())
            )
        );
    }
    let (query, signature, _) = &cases[0];
    // The URL is signed, the body is only hashed: another body, or a hash that is not hex, is refused.
    for other in [r#"{"property": "value", "boolean": false}"#, ""] {
        assert_eq!(
            post(
                &pinned,
                Some(query),
                Some(signature),
                "application/json",
                other
            )
            .unwrap_err(),
            Rejection::InvalidSignature
        );
    }
    assert_eq!(
        post(
            &pinned,
            Some("foo=1&bar=2&bodySHA256=zz"),
            Some(signature),
            "application/json",
            body
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
    // A JSON body without bodySHA256 is read as form parameters: the signature does not match.
    assert_eq!(
        post(
            &pinned,
            Some(DOCS_QUERY),
            Some(signature),
            "application/json",
            body
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn a_signed_json_body_that_is_not_json_is_malformed() {
    let request = Twilio
        .sign(&SignParams {
            body: b"not json".to_vec(),
            options: [
                ("secret".to_owned(), TOKEN.to_owned()),
                ("url".to_owned(), GATEWAY_URL.to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
            .into(),
            now_s: 0,
        })
        .unwrap();
    let query = format!("{}={}", request.query[0].0, request.query[0].1);
    assert_eq!(
        post(
            &bindings(TOKEN, None),
            Some(&query),
            Some(&request.headers[0].1),
            "application/json",
            "not json"
        )
        .unwrap_err(),
        Rejection::MalformedBody { expected: "JSON" }
    );
}

#[test]
fn missing_wrong_and_undecodable_signatures_and_rotation() {
    let b = bindings(DOCS_TOKEN, Some(DOCS_URL));
    assert_eq!(
        post(
            &b,
            Some(DOCS_QUERY),
            None,
            "application/x-www-form-urlencoded",
            DOCS_BODY
        )
        .unwrap_err(),
        Rejection::MissingSignature
    );
    for signature in [
        "",
        "not base64!",
        "0/KCTR6DLpKmkAf8muzZqo1nDg",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        assert_eq!(
            form(&b, Some(DOCS_QUERY), signature, DOCS_BODY).unwrap_err(),
            Rejection::InvalidSignature,
            "{signature:?}"
        );
    }
    // The documented token second: still accepted, and reported as key 1.
    let rotated = bindings(&format!("newer-token {DOCS_TOKEN}"), Some(DOCS_URL));
    let handled = form(&rotated, Some(DOCS_QUERY), DOCS_SIGNATURE, DOCS_BODY).unwrap();
    assert_eq!(only_event(&handled).data.verification.key_index, 1);
    assert_eq!(
        form(
            &bindings("newer-token", Some(DOCS_URL)),
            Some(DOCS_QUERY),
            DOCS_SIGNATURE,
            DOCS_BODY
        )
        .unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn a_webhook_url_with_a_query_or_without_a_host_is_misconfigured() {
    for url in [
        "https://mycompany.com/myapp.php?foo=1",
        "mycompany.com/myapp.php",
        "https://",
        "https:///x",
        "ftp://x/y",
        "https://x/y#z",
        "https://x/a b",
    ] {
        assert_eq!(
            form(
                &bindings(DOCS_TOKEN, Some(url)),
                Some(DOCS_QUERY),
                DOCS_SIGNATURE,
                DOCS_BODY
            )
            .unwrap_err(),
            Rejection::misconfigured("TWILIO_DEMO_WEBHOOK_URL"),
            "{url}"
        );
    }
}

/// An inbound SMS as Twilio's "incoming message webhook" page lists its parameters.
const SMS: &str = "ToCountry=JP&ToState=&SmsMessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&ToCity=&FromZip=&SmsSid=SM0123456789abcdef0123456789abcdef&FromState=&SmsStatus=received&FromCity=&Body=%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF+%E4%B8%96%E7%95%8C&FromCountry=JP&To=%2B815012345678&ToZip=&NumSegments=1&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef&From=%2B819012345678&ApiVersion=2010-04-01";

#[test]
fn an_sms_becomes_message_received_keyed_by_its_message_sid() {
    let handled = signed(TOKEN, SMS).unwrap();
    assert_eq!(handled.response.body, EMPTY_TWIML.as_bytes());
    let event = only_event(&handled);
    assert_eq!(
        event.id,
        event_id("twilio", "demo", "SM0123456789abcdef0123456789abcdef")
    );
    assert_eq!(event.event_type, "message.received");
    assert_eq!(event.data.provider_type, "received");
    assert_eq!(
        event.data.conversation,
        Some(Conversation {
            id: "+819012345678".into(),
            kind: ConversationKind::Direct
        })
    );
    assert_eq!(
        event.data.sender,
        Some(Sender {
            id: "+819012345678".into(),
            name: None
        })
    );
    let message = event.data.message.as_ref().unwrap();
    assert_eq!(
        message.id.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );
    assert_eq!(message.kind, "text");
    assert_eq!(message.text.as_deref(), Some("こんにちは 世界"));
    assert!(message.attachments.is_empty());
    assert_eq!(event.data.raw.value()["To"], "+815012345678");
    assert_eq!(event.data.raw.value()["ToState"], "");
    assert_eq!(event.data.verification.key_index, 0);
    assert_eq!(event.time, "2023-11-14T22:13:20.000Z");
    // Signed with the older token: the same event, reported as key 1.
    let old = signed("old-token", SMS).unwrap();
    assert_eq!(only_event(&old).id, event.id);
    assert_eq!(only_event(&old).data.verification.key_index, 1);
    assert_eq!(
        signed("not-a-token", SMS).unwrap_err(),
        Rejection::InvalidSignature
    );
}

#[test]
fn mms_media_become_attachments_by_content_type() {
    let body = "MessageSid=MM0123456789abcdef0123456789abcdef&From=%2B819012345678&To=%2B815012345678&Body=&NumMedia=2\
            &MediaContentType0=image%2Fjpeg&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME0123456789abcdef0123456789abcdef\
            &MediaContentType1=application%2Fpdf&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC1%2FMessages%2FMM1%2FMedia%2FME1123456789abcdef0123456789abcdef";
    let handled = signed(TOKEN, body).unwrap();
    let message = only_event(&handled).data.message.clone().unwrap();
    assert_eq!(message.kind, "image");
    assert_eq!(message.text, None);
    let kinds: Vec<_> = message
        .attachments
        .iter()
        .map(|a| (a.kind.as_str(), a.content_type.as_deref(), a.id.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "image",
                Some("image/jpeg"),
                Some("ME0123456789abcdef0123456789abcdef")
            ),
            (
                "file",
                Some("application/pdf"),
                Some("ME1123456789abcdef0123456789abcdef")
            ),
        ]
    );
    assert!(message.attachments[0]
        .url
        .as_deref()
        .unwrap()
        .starts_with("https://api.twilio.com/2010-04-01/"));
}

#[test]
fn whatsapp_profile_names_locations_and_quick_replies() {
    let text = "MessageSid=SM1&From=whatsapp%3A%2B819012345678&To=whatsapp%3A%2B815012345678&Body=hi&NumMedia=0&ProfileName=Ichiro+Suzuki&WaId=819012345678&MessageType=text";
    let handled = signed(TOKEN, text).unwrap();
    let event = only_event(&handled);
    assert_eq!(
        event.data.sender,
        Some(Sender {
            id: "whatsapp:+819012345678".into(),
            name: Some("Ichiro Suzuki".into())
        })
    );
    assert_eq!(
        event.data.conversation.as_ref().unwrap().id,
        "whatsapp:+819012345678"
    );

    let location = "MessageSid=SM2&From=whatsapp%3A%2B819012345678&To=whatsapp%3A%2B815012345678&Body=&NumMedia=0&MessageType=location&Latitude=35.681236&Longitude=139.767125&Label=Tokyo+Station&Address=1+Chome+Marunouchi";
    let handled = signed(TOKEN, location).unwrap();
    let message = only_event(&handled).data.message.clone().unwrap();
    assert_eq!(message.kind, "location");
    assert_eq!(message.text.as_deref(), Some("Tokyo Station"));
    assert_eq!(
        message.location,
        Some(Location {
            latitude: 35.681236,
            longitude: 139.767125,
            title: Some("Tokyo Station".into()),
            address: Some("1 Chome Marunouchi".into())
        })
    );
    for bad in [
        "Latitude=NaN&Longitude=1",
        "Latitude=inf&Longitude=1",
        "Latitude=north&Longitude=1",
        "Latitude=1",
    ] {
        let handled = signed(TOKEN, &format!("MessageSid=SM3&From=whatsapp%3A%2B1&{bad}")).unwrap();
        assert_eq!(
            only_event(&handled).data.message.as_ref().unwrap().location,
            None,
            "{bad}"
        );
    }

    let button = "MessageSid=SM4&From=whatsapp%3A%2B819012345678&To=whatsapp%3A%2B815012345678&Body=Yes&NumMedia=0&MessageType=button&ButtonText=Yes&ButtonPayload=confirm%3A42";
    let handled = signed(TOKEN, button).unwrap();
    let event = only_event(&handled);
    assert_eq!(event.event_type, "postback");
    let postback = event.data.postback.as_ref().unwrap();
    assert_eq!(postback.data, "confirm:42");
    assert_eq!(postback.params, Some(serde_json::json!({"text": "Yes"})));
    assert_eq!(event.data.message.as_ref().unwrap().kind, "button");
    assert_eq!(
        event.data.message.as_ref().unwrap().text.as_deref(),
        Some("Yes")
    );
}

#[test]
fn each_status_of_a_message_is_its_own_event() {
    let status = |status: &str| {
        let body = format!("MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus={status}&SmsStatus={status}&From=%2B815012345678&To=%2B819012345678&AccountSid=AC1&ApiVersion=2010-04-01");
        let handled = signed(TOKEN, &body).unwrap();
        assert_eq!(handled.response.body, EMPTY_TWIML.as_bytes());
        only_event(&handled).clone()
    };
    let mut ids = std::collections::HashSet::new();
    for (twilio_status, envelope_type) in [
        ("queued", "message.status"),
        ("sending", "message.status"),
        ("sent", "message.sent"),
        ("delivered", "message.delivered"),
        ("undelivered", "message.failed"),
        ("failed", "message.failed"),
        ("read", "message.read"),
        ("canceled", "message.status"),
    ] {
        let event = status(twilio_status);
        assert_eq!(event.event_type, envelope_type, "{twilio_status}");
        assert_eq!(event.data.provider_type, twilio_status);
        assert_eq!(
            event.id,
            event_id(
                "twilio",
                "demo",
                &format!("SM0123456789abcdef0123456789abcdef:{twilio_status}")
            )
        );
        // The recipient of the message is the conversation; nobody "sent" a status.
        assert_eq!(
            event.data.conversation.as_ref().unwrap().id,
            "+819012345678"
        );
        assert_eq!(event.data.sender, None);
        let message = event.data.message.unwrap();
        assert_eq!(
            (message.id.as_deref(), message.kind.as_str()),
            (Some("SM0123456789abcdef0123456789abcdef"), "unknown")
        );
        assert!(ids.insert(event.id));
    }
    // An inbound message reporting `received` is the message itself.
    assert_eq!(status("received").event_type, "message.received");
}

#[test]
fn forms_without_one_message_sid_are_unrecognized_keyed_by_their_signed_content() {
    for body in [
        "CallSid=CA1&CallStatus=ringing",
        "MessageSid=SM1&MessageSid=SM2&Body=hi",
        "",
    ] {
        let handled = signed(TOKEN, body).unwrap();
        let event = only_event(&handled);
        assert_eq!(event.event_type, "unrecognized", "{body}");
        let suffix = Params::parse(body.as_bytes()).signed_suffix();
        assert_eq!(
            event.id,
            event_id("twilio", "demo", &super::super::content_hash_key(&suffix))
        );
    }
}

#[test]
fn sign_needs_a_url_and_refuses_a_query_with_json() {
    let sign = |options: &[(&str, &str)], body: &[u8]| {
        Twilio.sign(&SignParams {
            body: body.to_vec(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            now_s: 0,
        })
    };
    assert_eq!(
        sign(&[("secret", "t")], b"").unwrap_err(),
        ToolingError::MissingOption("url")
    );
    assert!(matches!(
        sign(&[("secret", "t"), ("url", "gateway.test/x")], b""),
        Err(ToolingError::InvalidOption { option: "url", .. })
    ));
    assert!(matches!(
        sign(&[("secret", "t"), ("url", "https://g/x?a=1")], b"{}"),
        Err(ToolingError::InvalidOption { option: "url", .. })
    ));
    // The documented example, signed by the CLI.
    let url = format!("{DOCS_URL}?{DOCS_QUERY}");
    let request = sign(
        &[("secret", DOCS_TOKEN), ("url", &url)],
        DOCS_BODY.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        request.headers[0],
        (SIGNATURE_HEADER.to_owned(), DOCS_SIGNATURE.to_owned())
    );
    assert!(request.query.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_requests_never_panic_and_are_refused(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        signature in "[A-Za-z0-9+/=]{0,40}",
        query in proptest::option::of("[a-zA-Z0-9=&%'A-F]{0,40}"),
    ) {
        let headers = [(SIGNATURE_HEADER, signature.as_str())];
        let result = test_support::run(&Twilio, &bindings(TOKEN, None), DemoRequest {
            method: Method::POST,
            extra_path: &[],
            query: query.as_deref(),
            headers: &headers,
            body: &body,
            now_ms: NOW_MS,
        });
        prop_assert!(result.is_err());
    }

    #[test]
    fn any_signed_form_never_panics(body in "[ -~]{0,200}") {
        let handled = signed(TOKEN, &body).unwrap();
        prop_assert_eq!(handled.events.len(), 1);
    }
}
