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
