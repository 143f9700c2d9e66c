//! The core's integration tests, one binary: fixtures and vectors run through the gateway in the order the
//! Worker calls it. `common` holds the shared helpers.

mod common;
mod email;
mod email_charsets;
mod fixtures;
mod fuzz_gateway;
mod line;
mod module_size;
mod standard_webhooks;
