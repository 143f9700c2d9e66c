//! Property tests: no input makes the gateway panic, whatever the channel, path, headers or body.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use crate::common;

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use sekisho::channels::CHANNELS;
use sekisho::gateway::Inbound;

fn bindings() -> HashMap<String, String> {
    // Every channel gets an account `fz` whose every plausible field is set, so requests reach the parsers.
    let mut bindings = HashMap::from([
        (
            "BACKEND_URL".to_owned(),
            common::TEST_BACKEND_URL.to_owned(),
        ),
        (
            "BACKEND_SIGNING_SECRET".to_owned(),
            common::TEST_SIGNING_SECRET.to_owned(),
        ),
    ]);
    for channel in CHANNELS {
        bindings.insert(
            sekisho::config::binding_name(channel.name(), "fz", channel.account_field()),
            "c2VjcmV0".to_owned(),
        );
    }
    bindings
}

fn header_names() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "x-line-signature",
        "x-works-signature",
        "x-works-botid",
        "x-chatworkwebhooksignature",
        "x-telegram-bot-api-secret-token",
        "x-hub-signature-256",
        "x-slack-signature",
        "x-slack-request-timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "authorization",
        "content-type",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn never_panics(
        channel in prop::sample::select(CHANNELS.iter().map(|c| c.name()).collect::<Vec<_>>()),
        extra in prop::option::of("[a-zA-Z0-9%/]{0,20}"),
        query in prop::option::of("[a-z_.=&%+0-9A-F]{0,80}"),
        headers in prop::collection::vec((header_names(), "[ -~]{0,60}"), 0..5),
        body in prop::collection::vec(any::<u8>(), 0..400),
        json_body in "[\\[\\]{}\":,a-z0-9 ]{0,200}",
        use_json in any::<bool>(),
        get in any::<bool>(),
    ) {
        let bindings = bindings();
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        let path = match &extra { Some(extra) => format!("/{channel}/fz/{extra}"), None => format!("/{channel}/fz") };
        let body = if use_json { json_body.into_bytes() } else { body };
        let method = if get { Method::GET } else { Method::POST };
        let inbound = Inbound { method: &method, origin: "https://gateway.test", path: &path, query: query.as_deref(), headers: &map, body: &body };
        let _ = common::handle(&inbound, &bindings, 1_700_000_000_000);
    }
}
