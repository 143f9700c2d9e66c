//! Durable delivery decisions, free of IO: the queue message format and limits ([`queue`]), the retry
//! schedule ([`policy`]), each attempt's bookkeeping ([`attempt`]) and the dead-letter store ([`dead_letter`]).
//!
//! The attempt count travels in the queued message itself, so the schedule does not depend on the queue's
//! own retry counter; the queue's own retries (and its dead-letter queue) only cover a consumer that could not
//! record the next step.

pub mod attempt;
pub mod dead_letter;
pub mod policy;
pub mod queue;

pub use attempt::{record_attempt, AttemptOutcome, ResponseHeaders, Step};
pub use dead_letter::{DeadLetter, Page, PageRequest};
pub use policy::{RetryPolicy, QUEUE_MAX_DELAY_S};
pub use queue::{
    batches, check_fits_queue, QueueSet, QueuedDelivery, EVENT_QUEUES_BINDING,
    QUEUE_BATCH_MAX_BYTES, QUEUE_BATCH_MAX_MESSAGES, QUEUE_MESSAGE_MAX_BYTES,
};
