//! Sekisho: an edge gateway that terminates chat-channel webhooks.
//!
//! Everything in this crate is pure, sans-IO Rust: it compiles and tests natively and for `wasm32`, takes the
//! current time and the configuration as arguments, and never touches the network. The Worker
//! (`crates/sekisho-worker`) performs what it decides; the CLI (`crates/sekisho-cli`) signs and sends with it.
//! Features: `tooling` (request signing, the native charset decoder), `schema` (the envelope's JSON Schema).

pub mod admin;
pub mod attachments;
pub mod channels;
pub mod config;
pub mod console;
pub mod control_chars;
pub mod crypto;
pub mod datetime;
pub mod dedup;
pub mod delivery;
pub mod envelope;
pub(crate) mod error;
pub mod forward;
pub mod gateway;
pub mod intake;
pub mod json;
pub mod log;
pub mod mail;
pub mod metrics;
pub mod notify;
pub(crate) mod query;
pub mod registry;
pub mod reply;
pub mod request_url;
pub mod route;
#[cfg(feature = "schema")]
pub mod schema;
pub mod send;
#[cfg(feature = "tooling")]
pub mod tooling;

pub use error::{ConfigProblem, Rejection};
