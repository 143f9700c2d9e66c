//! The OpenAPI 3.1 document of the whole admin API, served at `/admin/openapi.json`; a test checks it against
//! the router both ways.

pub const DOCUMENT: &str = include_str!("../../assets/openapi.json");
