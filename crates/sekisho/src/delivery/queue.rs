//! Deliveries as queue messages: their format, the Queues limits, and batching.

use serde::{Deserialize, Serialize};

use crate::forward::Delivery;
use crate::Rejection;

/// A delivery as it sits in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedDelivery {
    pub delivery: Delivery,
    /// Attempts already made.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl QueuedDelivery {
    pub fn first(delivery: Delivery) -> Self {
        QueuedDelivery {
            delivery,
            attempts: 0,
            last_status: None,
            last_error: None,
        }
    }
}

/// Cloudflare Queues limits: one message at most 128 KB, one `sendBatch` at most 100 messages and 256 KB
/// (workerd's own check allows 288 KB but reports 256 KB as the limit: keep to the smaller). Messages are sent
/// as text, so their size is their UTF-8 length.
pub const QUEUE_MESSAGE_MAX_BYTES: usize = 128_000;
pub const QUEUE_BATCH_MAX_BYTES: usize = 256_000;
pub const QUEUE_BATCH_MAX_MESSAGES: usize = 100;
/// Room kept in every message for what a retry adds to it (attempt count, last status, last error).
pub const RETRY_BOOKKEEPING_BYTES: usize = 2_000;
/// The largest first queue message a delivery may need.
pub const QUEUED_DELIVERY_MAX_BYTES: usize = QUEUE_MESSAGE_MAX_BYTES - RETRY_BOOKKEEPING_BYTES;
/// `last_error` is cut to this many characters, so a retry never outgrows its message.
pub const LAST_ERROR_MAX_CHARS: usize = 500;

impl QueuedDelivery {
    /// The queue message for this delivery.
    pub fn to_message(&self) -> String {
        // A struct of strings and numbers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn set_last_error(&mut self, error: &str) {
        self.last_error = Some(error.chars().take(LAST_ERROR_MAX_CHARS).collect());
    }
}

/// The queue whose messages are dead letters: `DEAD_LETTER_QUEUE`, default `sekisho-events-dlq` (the
/// `dead_letter_queue` of the `EVENTS` consumer in wrangler.toml). The same Worker consumes both queues.
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "sekisho-events-dlq";

pub fn is_dead_letter_queue(queue_name: &str, bindings: &dyn crate::config::Bindings) -> bool {
    let configured = bindings
        .get("DEAD_LETTER_QUEUE")
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_DEAD_LETTER_QUEUE.to_owned());
    queue_name == configured
}

/// Refuses a delivery whose first queue message would not leave room for retries: the provider gets a clear
/// 413 instead of an enqueue failure it would retry forever.
pub fn check_fits_queue(delivery: &Delivery) -> Result<(), Rejection> {
    let size = first_message_len(delivery);
    if size > QUEUED_DELIVERY_MAX_BYTES {
        return Err(Rejection::EventTooLarge {
            size,
            limit: QUEUED_DELIVERY_MAX_BYTES,
        });
    }
    Ok(())
}

/// The length of `QueuedDelivery::first(delivery).to_message()`, counted without copying the delivery or
/// building the message.
fn first_message_len(delivery: &Delivery) -> usize {
    /// The same JSON as a first [`QueuedDelivery`] (its optional fields are skipped when empty).
    #[derive(Serialize)]
    struct FirstAttempt<'a> {
        delivery: &'a Delivery,
        attempts: u32,
    }
    struct ByteCount(usize);
    impl std::io::Write for ByteCount {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = ByteCount(0);
    let first = FirstAttempt {
        delivery,
        attempts: 0,
    };
    match serde_json::to_writer(&mut count, &first) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// The binding that lists the queues events are spread over: binding names separated by commas, default
/// [`DEFAULT_EVENT_QUEUE`]. One queue takes about 5,000 messages per second; a deployment that needs more binds
/// more producers in wrangler.toml (each consumed by this same Worker, with the same dead-letter queue) and
/// names them here — a configuration, not a code change.
pub const EVENT_QUEUES_BINDING: &str = "EVENT_QUEUES";
pub const DEFAULT_EVENT_QUEUE: &str = "EVENTS";
/// More names than this are ignored (a typo cannot make every send look up hundreds of bindings).
const MAX_EVENT_QUEUES: usize = 32;

/// The queues events are spread over, by event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSet {
    names: Vec<String>,
}

impl QueueSet {
    /// From [`EVENT_QUEUES_BINDING`]; names that are not binding names (`A-Z`, `0-9`, `_`) are skipped, and
    /// with none left the set is [`DEFAULT_EVENT_QUEUE`] alone.
    pub fn from_bindings(bindings: &dyn crate::config::Bindings) -> QueueSet {
        let mut names: Vec<String> = Vec::new();
        if let Some(list) = bindings.get(EVENT_QUEUES_BINDING) {
            for name in list.split(',').map(str::trim) {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                if valid && !names.iter().any(|n| n == name) && names.len() < MAX_EVENT_QUEUES {
                    names.push(name.to_owned());
                }
            }
        }
        if names.is_empty() {
            names.push(DEFAULT_EVENT_QUEUE.to_owned());
        }
        QueueSet { names }
    }

    /// The queue of an event: always the same for the same id (its retries stay on it), spread evenly.
    pub fn for_event(&self, id: &str) -> &str {
        let digest = crate::crypto::sha256(&[b"queue\n", id.as_bytes()]);
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as usize;
        self.names
            .get(n % self.names.len().max(1))
            .map_or(DEFAULT_EVENT_QUEUE, String::as_str)
    }

    /// The first queue named: where spilled messages are drained and dead letters replayed.
    pub fn primary(&self) -> &str {
        self.names
            .first()
            .map_or(DEFAULT_EVENT_QUEUE, String::as_str)
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Splits queue messages into `sendBatch` calls within the batch limits, keeping their order.
pub fn batches(messages: Vec<String>) -> Vec<Vec<String>> {
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let start_new = match batches.last() {
            None => true,
            Some(batch) => {
                batch.len() >= QUEUE_BATCH_MAX_MESSAGES
                    || bytes + message.len() > QUEUE_BATCH_MAX_BYTES
            }
        };
        if start_new {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += message.len();
        if let Some(batch) = batches.last_mut() {
            batch.push(message);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_spread_evenly_over_the_configured_queues() {
        let none = std::collections::HashMap::<String, String>::new();
        assert_eq!(QueueSet::from_bindings(&none).names(), ["EVENTS"]);
        let set = QueueSet::from_bindings(&std::collections::HashMap::from([(
            EVENT_QUEUES_BINDING.to_owned(),
            " EVENTS, EVENTS_2,EVENTS_3 ,events-bad,, EVENTS_2".to_owned(),
        )]));
        assert_eq!(set.names(), ["EVENTS", "EVENTS_2", "EVENTS_3"]);
        assert_eq!(set.primary(), "EVENTS");
        let mut counts = [0usize; 3];
        for i in 0..3_000 {
            let id = format!("evt_{i}");
            let queue = set.for_event(&id);
            assert_eq!(queue, set.for_event(&id), "stable");
            let slot = set.names().iter().position(|n| n == queue).unwrap();
            counts[slot] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..=1_100).contains(&c)),
            "{counts:?}"
        );
        let only_bad = QueueSet::from_bindings(&std::collections::HashMap::from([(
            EVENT_QUEUES_BINDING.to_owned(),
            "lower, ".to_owned(),
        )]));
        assert_eq!(only_bad.names(), ["EVENTS"]);
    }

    #[test]
    fn the_dead_letter_queue_is_recognised_by_name() {
        let none = std::collections::HashMap::<String, String>::new();
        assert!(is_dead_letter_queue("sekisho-events-dlq", &none));
        assert!(!is_dead_letter_queue("sekisho-events", &none));
        let set = std::collections::HashMap::from([(
            "DEAD_LETTER_QUEUE".to_owned(),
            "acme-dlq".to_owned(),
        )]);
        assert!(is_dead_letter_queue("acme-dlq", &set));
        assert!(!is_dead_letter_queue("sekisho-events-dlq", &set));
    }

    #[test]
    fn batches_respect_count_and_byte_limits_in_order() {
        let small: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
        let split = batches(small.clone());
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        assert_eq!(split.concat(), small);

        let big: Vec<String> = (0..5).map(|i| format!("{i}").repeat(100_000)).collect();
        let split = batches(big.clone());
        assert_eq!(
            split.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        let exact: Vec<String> = (0..3)
            .map(|_| "z".repeat(QUEUE_BATCH_MAX_BYTES / 2))
            .collect();
        assert_eq!(
            batches(exact).iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 1]
        );
        for batch in &split {
            assert!(batch.iter().map(String::len).sum::<usize>() <= QUEUE_BATCH_MAX_BYTES);
        }
        assert_eq!(split.concat(), big);
        assert!(batches(Vec::new()).is_empty());
    }

    #[test]
    fn the_counted_length_is_the_first_queue_message_length() {
        let delivery = Delivery {
            webhook_id: "evt_1".into(),
            url: "https://backend.example/events".into(),
            event_type: "message.received".into(),
            body: "{\"text\":\"こんにちは \\\"quoted\\\"\"}".into(),
            target: Default::default(),
            origin: None,
        };
        assert_eq!(
            first_message_len(&delivery),
            QueuedDelivery::first(delivery.clone()).to_message().len()
        );
    }

    #[test]
    fn deliveries_too_large_for_a_queue_message_are_refused_with_their_size() {
        let delivery = |body_len: usize| Delivery {
            webhook_id: "evt_1".into(),
            url: "https://backend.example/events".into(),
            event_type: "message.received".into(),
            body: "\"".repeat(body_len),
            target: Default::default(),
            origin: None,
        };
        assert!(check_fits_queue(&delivery(1000)).is_ok());
        // Every `"` is escaped once more inside the queue message: 70,000 of them need 140,000 bytes.
        match check_fits_queue(&delivery(70_000)) {
            Err(Rejection::EventTooLarge { size, limit }) => {
                assert!(size > 140_000);
                assert_eq!(limit, QUEUED_DELIVERY_MAX_BYTES);
            }
            other => panic!("{other:?}"),
        }
        let mut queued = QueuedDelivery::first(delivery(10));
        queued.set_last_error(&"e".repeat(10_000));
        assert_eq!(
            queued.last_error.as_deref().map(str::len),
            Some(LAST_ERROR_MAX_CHARS)
        );
    }
}
