//! The OpenAPI 3.1 document of the whole admin API, served at `/admin/openapi.json`; a test checks it against
//! the router both ways.

pub const DOCUMENT: &str = include_str!("../../assets/openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use http::Method;
    use serde_json::Value;

    use super::DOCUMENT;
    use crate::admin::{route, AdminAction};
    use crate::query::Query;

    const METHODS: [Method; 5] = [
        Method::GET,
        Method::PUT,
        Method::POST,
        Method::DELETE,
        Method::PATCH,
    ];

    fn example(path: &str) -> String {
        path.replace("{channel}", "line")
            .replace("{account}", "acme")
            .replace("{field}", "CHANNEL_SECRET")
            .replace("{fingerprint}", "ab12cd34")
            .replace("{webhook_id}", "evt_0123")
    }

    fn query_for(path: &str) -> Option<&'static str> {
        (path == "/admin/api/metrics").then_some("channel=line&account=acme")
    }

    /// Which action a request routes to, by variant (the `match` fails to compile when a variant is added).
    fn variant(action: &AdminAction) -> &'static str {
        match action {
            AdminAction::ListDeadLetters(_) => "ListDeadLetters",
            AdminAction::ReplayAll => "ReplayAll",
            AdminAction::ReplayOne(_) => "ReplayOne",
            AdminAction::DeleteOne(_) => "DeleteOne",
            AdminAction::Console => "Console",
            AdminAction::Accounts(_) => "Accounts",
            AdminAction::Metrics { .. } => "Metrics",
            AdminAction::Rejections => "Rejections",
            AdminAction::Registry(registry) => match registry {
                crate::registry::api::RegistryAction::Get(_) => "Registry::Get",
                crate::registry::api::RegistryAction::Put(_) => "Registry::Put",
                crate::registry::api::RegistryAction::AddSecret(..) => "Registry::AddSecret",
                crate::registry::api::RegistryAction::RetireSecret(..) => "Registry::RetireSecret",
                crate::registry::api::RegistryAction::Delete(_) => "Registry::Delete",
                crate::registry::api::RegistryAction::List { .. } => "Registry::List",
                crate::registry::api::RegistryAction::Audit { .. } => "Registry::Audit",
                crate::registry::api::RegistryAction::Reseal { .. } => "Registry::Reseal",
                crate::registry::api::RegistryAction::Channels => "Registry::Channels",
            },
            AdminAction::OpenApi => "OpenApi",
        }
    }

    const EVERY_VARIANT: usize = 18;

    #[test]
    fn the_document_and_the_router_agree_both_ways() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut reached = BTreeSet::new();
        for (path, operations) in paths {
            let concrete = example(path);
            let query = Query::parse(query_for(path));
            for method in METHODS {
                let documented = operations
                    .get(method.as_str().to_ascii_lowercase())
                    .is_some();
                let routed = if path == "/admin" {
                    (method == Method::GET).then_some(Ok(AdminAction::Console))
                } else {
                    route(&method, &concrete, &query)
                };
                match (documented, routed) {
                    (true, Some(Ok(action))) => {
                        reached.insert(variant(&action));
                    }
                    (true, other) => {
                        panic!("{method} {path} is documented but routes to {other:?}")
                    }
                    (false, Some(Ok(action))) => {
                        panic!("{method} {path} routes to {action:?} but is not documented")
                    }
                    (false, _) => {}
                }
            }
        }
        assert_eq!(
            reached.len(),
            EVERY_VARIANT,
            "every action is documented: {reached:?}"
        );
    }
}
