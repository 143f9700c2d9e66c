use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::envelope::{Event, EventData, EventParts, Verification};
use crate::forward;

const BUDGET: Budget = Budget {
    default_ms: 2_500,
    max_ms: 2_800,
};

#[derive(Debug)]
struct Echo;

impl RenderReply for Echo {
    fn budget(&self) -> Budget {
        BUDGET
    }

    fn render(&self, reply: &BackendReply, _: &RenderContext) -> Result<EdgeResponse, NoReply> {
        match reply {
            BackendReply::Text(text) => Ok(EdgeResponse::text(text.clone())),
            BackendReply::Raw(_) => Err(NoReply::Unrenderable("no raw")),
        }
    }
}

fn answered(status: u16, body: &str) -> CallOutcome {
    CallOutcome::Answered {
        status,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn only_a_200_with_a_reply_object_is_a_reply() {
    assert_eq!(
        read_answer(answered(200, r#"{"reply":{"text":"受け付けました"}}"#)),
        Ok(BackendReply::Text("受け付けました".into()))
    );
    assert_eq!(
        read_answer(answered(200, r#"{"reply":{"raw":{"blocks":[]}}}"#)),
        Ok(BackendReply::Raw(json!({"blocks": []})))
    );
    assert_eq!(
        read_answer(answered(201, r#"{"reply":{"text":"x"}}"#)),
        Err(NoReply::Status(201))
    );
    assert_eq!(read_answer(answered(500, "")), Err(NoReply::Status(500)));
    assert_eq!(read_answer(answered(200, "")), Err(NoReply::Declined));
    assert_eq!(read_answer(answered(200, "{}")), Err(NoReply::Declined));
    assert_eq!(
        read_answer(answered(200, r#"{"reply":null}"#)),
        Err(NoReply::Declined)
    );
    assert_eq!(
        read_answer(answered(200, r#"{"reply":{"text":"  "}}"#)),
        Err(NoReply::Declined)
    );
    assert_eq!(read_answer(answered(200, "ok")), Err(NoReply::NotJson));
    assert!(matches!(
        read_answer(answered(200, r#"{"reply":"text"}"#)),
        Err(NoReply::Invalid(_))
    ));
    assert!(matches!(
        read_answer(answered(200, r#"{"reply":{"text":1}}"#)),
        Err(NoReply::Invalid(_))
    ));
    assert!(matches!(
        read_answer(answered(200, r#"{"reply":{"text":"a","raw":{}}}"#)),
        Err(NoReply::Invalid(_))
    ));
    let huge = format!(
        r#"{{"reply":{{"text":"{}"}}}}"#,
        "a".repeat(MAX_ANSWER_BYTES)
    );
    assert_eq!(read_answer(answered(200, &huge)), Err(NoReply::TooLarge));
    assert_eq!(
        read_answer(CallOutcome::TimedOut { after_ms: 2500 }),
        Err(NoReply::TimedOut { after_ms: 2500 })
    );
    assert_eq!(read_answer(CallOutcome::TooLarge), Err(NoReply::TooLarge));
}

fn bindings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn settings(pairs: &[(&str, &str)]) -> Result<Option<ReplySettings>, Rejection> {
    let bindings = bindings(pairs);
    ReplySettings::load(&Account::new("slack", "acme-jp", &bindings), BUDGET)
}

#[test]
fn settings_come_from_the_account_then_the_gateway_then_the_channel() {
    assert_eq!(settings(&[]), Ok(None));
    assert_eq!(
        settings(&[("REPLY_URL", "https://backend.example/reply")]),
        Ok(Some(ReplySettings {
            url: "https://backend.example/reply".into(),
            timeout_ms: 2_500
        }))
    );
    assert_eq!(
        settings(&[
            ("REPLY_URL", "https://a.example/"),
            ("SLACK_ACME_JP_REPLY_URL", "https://b.example/"),
            ("REPLY_TIMEOUT_MS", "1000"),
            ("SLACK_ACME_JP_REPLY_TIMEOUT_MS", "2000"),
        ]),
        Ok(Some(ReplySettings {
            url: "https://b.example/".into(),
            timeout_ms: 2_000
        }))
    );
}

#[test]
fn a_budget_past_the_providers_deadline_or_a_bad_value_is_misconfigured() {
    assert_eq!(
        settings(&[
            ("REPLY_URL", "https://a.example/"),
            ("REPLY_TIMEOUT_MS", "5000")
        ]),
        Err(Rejection::misconfigured_because(
            "REPLY_TIMEOUT_MS",
            ConfigProblem::OverProviderDeadline { max_ms: 2_800 }
        ))
    );
    assert_eq!(
        settings(&[
            ("REPLY_URL", "https://a.example/"),
            ("SLACK_ACME_JP_REPLY_TIMEOUT_MS", "0")
        ]),
        Err(Rejection::misconfigured("SLACK_ACME_JP_REPLY_TIMEOUT_MS"))
    );
    assert_eq!(
        settings(&[("SLACK_ACME_JP_REPLY_URL", "ftp://a.example/")]),
        Err(Rejection::misconfigured("SLACK_ACME_JP_REPLY_URL"))
    );
}

fn event(id: u32) -> Event {
    let parts = EventParts {
        dedupe_key: format!("key-{id}"),
        event_type: "message.received".into(),
        time_ms: 1_700_000_000_000,
        data: EventData::new(
            "message",
            Verification {
                scheme: "test".into(),
                key_index: 0,
            },
            crate::envelope::Raw::rendered(&json!({})),
        ),
    };
    Event::new("slack", "acme-jp", parts)
}

fn planned(events: &[Event], pairs: &[(&str, &str)]) -> Option<ReplyCall> {
    let bindings = bindings(pairs);
    let account = Account::new("slack", "acme-jp", &bindings);
    let plan = forward::plan(events, &account).unwrap();
    ReplyCall::plan(
        Some(Box::new(Echo)),
        &account,
        events.len(),
        &plan.deliveries,
    )
    .unwrap()
}

const CONFIGURED: [(&str, &str); 3] = [
    ("BACKEND_URL", "https://backend.example/events"),
    ("REPLY_URL", "https://backend.example/reply"),
    (
        "BACKEND_SIGNING_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
];

#[test]
fn one_event_with_a_backend_delivery_gets_a_signed_call_with_the_same_webhook_id() {
    let events = [event(1)];
    let call = planned(&events, &CONFIGURED).unwrap();
    let bindings = bindings(&CONFIGURED);
    let outgoing = call.outgoing(&bindings, 1_700_000_001, 2_400).unwrap();
    assert_eq!(outgoing.url, "https://backend.example/reply");
    assert_eq!(outgoing.body, call.delivery.body);
    let header = |name: &str| {
        outgoing
            .headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(header("webhook-id"), events[0].id);
    assert_eq!(header(BUDGET_HEADER), "2400");
    // The signature verifies as a delivery's does.
    let keys = SigningKeys::from_bindings(&bindings).unwrap();
    assert_eq!(
        keys.verify(
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            outgoing.body.as_bytes(),
            1_700_000_001
        ),
        Ok(())
    );
}

#[test]
fn several_events_or_no_reply_url_make_no_call() {
    assert!(planned(&[event(1), event(2)], &CONFIGURED).is_none());
    assert!(planned(&[event(1)], &[CONFIGURED[0], CONFIGURED[2]]).is_none());
    assert!(planned(&[], &CONFIGURED).is_none());
}

#[test]
fn the_budget_counts_from_the_request_and_the_delivery_waits_for_it() {
    let call = planned(&[event(1)], &CONFIGURED).unwrap();
    assert_eq!(call.deadline_ms(10_000), 12_500);
    assert_eq!(call.remaining_ms(10_000, 10_100), Some(2_400));
    assert_eq!(call.remaining_ms(10_000, 12_460), None);
    assert_eq!(call.remaining_ms(10_000, 20_000), None);
    assert_eq!(call.delivery_delay_s(), 4);
}

#[test]
fn the_answer_is_rendered_by_the_channel_or_refused_with_a_reason() {
    let call = planned(&[event(1)], &CONFIGURED).unwrap();
    let context = RenderContext {
        now_ms: 0,
        entropy: [0; 32],
    };
    assert_eq!(
        call.answer(answered(200, r#"{"reply":{"text":"ok"}}"#), &context),
        Ok(EdgeResponse::text("ok"))
    );
    assert_eq!(
        call.answer(answered(200, r#"{"reply":{"raw":{}}}"#), &context),
        Err(NoReply::Unrenderable("no raw"))
    );
    assert_eq!(
        call.answer(answered(503, ""), &context)
            .map_err(|e| e.reason()),
        Err("status")
    );
}
