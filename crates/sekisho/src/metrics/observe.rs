//! The observations the edge makes, built from what the gateway and the consumer already hold.

use super::accounts::is_configured;
use super::{key_index_of_event, key_match, DeliveryOutcome, Observation, Observed, SendCount};
use crate::config::Bindings;
use crate::forward::Delivery;
use crate::gateway::Refusal;

/// What an accepted request leaves for recording after the answer: its events and the first event's body
/// (whose `data.verification.key_index` names the matched secret, read only when recording).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedRequest {
    pub channel: &'static str,
    pub account: String,
    pub events: u32,
    pub duplicates: u32,
    pub first_event_body: Option<String>,
}

impl AcceptedRequest {
    /// `duplicate_events`: how many of the request's events (backend deliveries) were already seen.
    pub fn new(
        channel: Option<&'static str>,
        account: Option<&str>,
        deliveries: &[Delivery],
        duplicate_events: usize,
    ) -> Option<AcceptedRequest> {
        let mut backend = deliveries.iter().filter(|d| d.target.is_backend());
        let first_event_body = backend.next().map(|d| d.body.clone());
        let count = usize::from(first_event_body.is_some()) + backend.count();
        Some(AcceptedRequest {
            channel: channel?,
            account: account?.to_owned(),
            events: u32::try_from(count.saturating_sub(duplicate_events)).unwrap_or(u32::MAX),
            duplicates: u32::try_from(duplicate_events.min(count)).unwrap_or(u32::MAX),
            first_event_body,
        })
    }

    pub fn observation(&self, ack_ms: u64, at_ms: u64, bindings: &dyn Bindings) -> Observation {
        let key = self
            .first_event_body
            .as_deref()
            .and_then(key_index_of_event)
            .and_then(|index| key_match(self.channel, &self.account, index, bindings));
        Observation {
            channel: self.channel.to_owned(),
            account: self.account.clone(),
            at_ms,
            observed: Observed::Accepted {
                events: self.events,
                duplicates: self.duplicates,
                ack_ms,
                key,
            },
        }
    }
}

/// How many backend deliveries (events) are not among the `fresh` indices, i.e. were duplicates.
pub fn duplicate_events(deliveries: &[Delivery], fresh: &[usize]) -> usize {
    deliveries
        .iter()
        .enumerate()
        .filter(|(index, delivery)| delivery.target.is_backend() && !fresh.contains(index))
        .count()
}

/// A refusal is recorded only for a configured account, so probing unknown names never grows the store.
pub fn rejected(
    refusal: &Refusal,
    ack_ms: u64,
    at_ms: u64,
    bindings: &dyn Bindings,
) -> Option<Observation> {
    let channel = refusal.channel?;
    let account = refusal.account.as_deref()?;
    if !is_configured(channel, account, bindings) {
        return None;
    }
    Some(Observation {
        channel: channel.to_owned(),
        account: account.to_owned(),
        at_ms,
        observed: Observed::Rejected {
            reason: refusal.rejection.reason().to_owned(),
            ack_ms,
        },
    })
}

/// A backend delivery's attempt (notifications are not the backend's health).
pub fn delivery(
    delivery: &Delivery,
    outcome: DeliveryOutcome,
    latency_ms: Option<u64>,
    at_ms: u64,
) -> Option<Observation> {
    if !delivery.target.is_backend() {
        return None;
    }
    let origin = delivery.origin.as_ref()?;
    Some(Observation {
        channel: origin.channel.clone(),
        account: origin.account.clone(),
        at_ms,
        observed: Observed::Delivery {
            outcome,
            latency_ms,
        },
    })
}

/// A send's attempt: `queued` on its first (a send is taken from the queue once per `webhook-id`, so a repeated
/// call is not counted twice), then what the step after it counts as.
pub fn send(
    delivery: &Delivery,
    step: &crate::delivery::Step,
    first_attempt: bool,
    at_ms: u64,
) -> Vec<Observation> {
    let (crate::forward::Target::Send(_), Some(origin)) = (&delivery.target, &delivery.origin)
    else {
        return Vec::new();
    };
    let queued = first_attempt.then_some(SendCount::Queued);
    queued
        .into_iter()
        .chain([SendCount::of(step)])
        .map(|count| Observation {
            channel: origin.channel.clone(),
            account: origin.account.clone(),
            at_ms,
            observed: Observed::Send { count },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::forward::{Origin, Target};
    use crate::metrics::KeyMatch;
    use crate::Rejection;

    fn event(id: &str, key_index: u64) -> Delivery {
        Delivery {
            webhook_id: id.into(),
            url: "https://backend.example/hook".into(),
            event_type: "message".into(),
            body: format!(
                r#"{{"id":"{id}","data":{{"verification":{{"key_index":{key_index}}}}}}}"#
            ),
            target: Target::Backend,
            origin: Some(Origin {
                channel: "line".into(),
                account: "acme".into(),
            }),
        }
    }

    fn bindings() -> HashMap<String, String> {
        HashMap::from([("LINE_ACME_CHANNEL_SECRET".to_owned(), "new,old".to_owned())])
    }

    #[test]
    fn an_accepted_request_counts_new_and_duplicate_events_and_the_matched_key() {
        let deliveries = [event("evt_1", 1), event("evt_2", 1)];
        let request = AcceptedRequest::new(Some("line"), Some("acme"), &deliveries, 1).unwrap();
        let observation = request.observation(7, 1_000, &bindings());
        let Observed::Accepted {
            events,
            duplicates,
            ack_ms,
            key,
        } = observation.observed
        else {
            panic!("accepted");
        };
        assert_eq!((events, duplicates, ack_ms), (1, 1, 7));
        let KeyMatch { index, fingerprint } = key.unwrap();
        assert_eq!(index, 1);
        assert_eq!(
            fingerprint,
            crate::metrics::key_fingerprint("line", "acme", "old")
        );
    }

    #[test]
    fn duplicates_count_events_not_notifications() {
        let mut notification = event("evt_1.chatwork", 0);
        notification.target = Target::ChatworkRoom(crate::notify::ChatworkNotice {
            room_id: "1".into(),
            template_binding: None,
            self_unread: None,
        });
        let deliveries = [event("evt_1", 0), notification, event("evt_2", 0)];
        assert_eq!(duplicate_events(&deliveries, &[0, 1, 2]), 0);
        assert_eq!(duplicate_events(&deliveries, &[2]), 1);
        assert_eq!(duplicate_events(&deliveries, &[]), 2);
    }

    #[test]
    fn a_handshake_without_events_has_no_key() {
        let request = AcceptedRequest::new(Some("line"), Some("acme"), &[], 0).unwrap();
        let observation = request.observation(1, 1, &bindings());
        assert!(matches!(
            observation.observed,
            Observed::Accepted {
                events: 0,
                key: None,
                ..
            }
        ));
        assert_eq!(AcceptedRequest::new(None, Some("acme"), &[], 0), None);
    }

    #[test]
    fn refusals_of_unknown_accounts_are_not_recorded() {
        let refusal = |account: &str, rejection| Refusal {
            rejection,
            channel: Some("line"),
            account: Some(account.to_owned()),
        };
        let known = rejected(
            &refusal("acme", Rejection::InvalidSignature),
            2,
            3,
            &bindings(),
        );
        assert!(matches!(
            known.map(|o| o.observed),
            Some(Observed::Rejected { reason, .. }) if reason == "invalid_signature"
        ));
        assert_eq!(
            rejected(
                &refusal("nobody", Rejection::UnknownAccount),
                2,
                3,
                &bindings()
            ),
            None
        );
    }

    #[test]
    fn a_send_counts_queued_once_then_each_step() {
        let job = crate::send::SendJob {
            send_id: "snd_1".into(),
            to: crate::send::Recipient::User("U1".into()),
            message_kind: "text".into(),
            text: Some("x".into()),
            in_reply_to: None,
        };
        let mut send = event("snd_1", 0);
        send.target = Target::Send(job);
        let counts = |step: &crate::delivery::Step, first: bool| -> Vec<SendCount> {
            super::send(&send, step, first, 5)
                .into_iter()
                .map(|o| match o.observed {
                    Observed::Send { count } => count,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        use crate::delivery::Step;
        assert_eq!(
            counts(&Step::Delivered, true),
            vec![SendCount::Queued, SendCount::Sent]
        );
        let retry = Step::Retry {
            message: crate::delivery::QueuedDelivery::first(send.clone()),
            delay_s: 1,
        };
        assert_eq!(counts(&retry, false), vec![SendCount::Retried]);
        let letter = crate::delivery::DeadLetter::from_queued(
            crate::delivery::QueuedDelivery::first(send.clone()),
            5,
        );
        assert_eq!(
            counts(&Step::DeadLetter(letter), false),
            vec![SendCount::Failed]
        );
        let first = super::send(&send, &Step::Delivered, true, 5);
        assert!(first
            .iter()
            .all(|o| o.channel == "line" && o.account == "acme" && o.at_ms == 5));
        // Backend deliveries are not sends.
        assert!(super::send(&event("evt_1", 0), &Step::Delivered, true, 5).is_empty());
    }

    #[test]
    fn only_backend_deliveries_count_for_the_backend() {
        let backend = event("evt_1", 0);
        assert!(delivery(&backend, DeliveryOutcome::Delivered, Some(3), 1).is_some());
        let mut without_origin = backend.clone();
        without_origin.origin = None;
        assert_eq!(
            delivery(&without_origin, DeliveryOutcome::Delivered, Some(3), 1),
            None
        );
    }
}
