//! Sekisho: an edge gateway that terminates chat-channel webhooks.
//!
//! Everything in this crate except [`edge`] is pure, sans-IO Rust: it compiles and tests natively, takes the
//! current time and the configuration as arguments, and never touches the network. The `edge` module is the
//! thin Cloudflare Workers layer, compiled only for `wasm32`.

pub mod admin;
pub mod attachments;
pub mod channels;
pub mod config;
pub mod console;
pub(crate) mod control_chars;
pub mod crypto;
pub(crate) mod datetime;
pub mod dedup;
pub mod delivery;
pub mod envelope;
pub(crate) mod error;
pub mod forward;
pub mod gateway;
pub mod json;
pub mod log;
pub mod metrics;
pub mod notify;
#[cfg(not(target_arch = "wasm32"))]
pub mod provision;
pub(crate) mod query;
pub mod reply;
pub mod request_url;
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
#[cfg(not(target_arch = "wasm32"))]
pub mod tooling;

#[cfg(target_arch = "wasm32")]
mod edge;

pub use error::{ConfigProblem, Rejection};
