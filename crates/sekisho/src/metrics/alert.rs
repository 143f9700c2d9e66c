//! Alerts, decided here and sent by the edge (Chatwork room and/or Slack webhook): an event dead-lettered, a
//! jump of `invalid_signature` rejections for an account (the provider's secret was probably rotated without
//! updating Sekisho), a backend failing for some minutes. Each kind is de-duplicated per channel/account and
//! rate-limited to one message per [`MIN_INTERVAL_MS`]; the store keeps when each was last sent.

use serde::{Deserialize, Serialize};

use crate::config::Bindings;
use crate::notify as chatwork;

pub const CHATWORK_ROOM_BINDING: &str = "ALERT_CHATWORK_ROOM";
pub const SLACK_WEBHOOK_BINDING: &str = "ALERT_SLACK_WEBHOOK_URL";
/// The console's public origin for the links in alerts. Without it alerts carry no link: the request that
/// raised an alert is anyone's, and its `Host` header would choose where the link points.
pub const PUBLIC_URL_BINDING: &str = "PUBLIC_URL";

/// At most one alert of a kind per channel/account in this time.
pub const MIN_INTERVAL_MS: u64 = 30 * 60_000;
/// A backend failing (every attempt retried or dead-lettered, none delivered) this long raises an alert.
pub const BACKEND_FAILING_MS: u64 = 10 * 60_000;
/// `invalid_signature` rejections in the current 5-minute bucket needed for a jump, at least…
pub const JUMP_MIN_COUNT: u64 = 5;
/// …and more than this many times the mean of the previous buckets.
pub const JUMP_FACTOR: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    DeadLettered,
    SignatureJump,
    BackendFailing,
}

impl AlertKind {
    fn name(self) -> &'static str {
        match self {
            AlertKind::DeadLettered => "dead_lettered",
            AlertKind::SignatureJump => "signature_jump",
            AlertKind::BackendFailing => "backend_failing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub channel: String,
    pub account: String,
    /// How many (dead letters, rejections) or for how long (minutes failing).
    pub count: u64,
}

impl Alert {
    /// The de-duplication key: one alert per kind and channel/account within [`MIN_INTERVAL_MS`].
    pub fn key(&self) -> String {
        format!("{}:{}/{}", self.kind.name(), self.channel, self.account)
    }

    /// One plain message, Japanese then English, with a link to the account's console page when the console's
    /// origin is configured.
    pub fn message(&self, console_origin: Option<&str>) -> String {
        let (ja, en) = match self.kind {
            AlertKind::DeadLettered => (
                format!("配信できなかったイベントがデッドレターになりました ({} 件)", self.count),
                format!("{} event(s) were dead-lettered", self.count),
            ),
            AlertKind::SignatureJump => (
                format!(
                    "署名不一致 (invalid_signature) が急増しています ({} 件/5 分) — プロバイダーのシークレットが変更された可能性があります",
                    self.count
                ),
                format!(
                    "invalid_signature rejections jumped ({} in 5 min) — the provider's secret was probably rotated",
                    self.count
                ),
            ),
            AlertKind::BackendFailing => (
                format!("バックエンドへの配信が {} 分間失敗しています", self.count),
                format!("deliveries to the backend have failed for {} min", self.count),
            ),
        };
        let text = format!("[Sekisho] {}/{}: {ja}\n{en}", self.channel, self.account);
        match console_origin {
            Some(origin) => format!(
                "{text}\n{origin}/admin#account/{}/{}",
                self.channel, self.account
            ),
            None => text,
        }
    }
}

/// Whether an alert last sent at `last_sent_ms` may be sent again now.
pub fn may_send(last_sent_ms: Option<u64>, now_ms: u64) -> bool {
    last_sent_ms.is_none_or(|last| now_ms.saturating_sub(last) >= MIN_INTERVAL_MS)
}

/// A jump: `current` rejections in this bucket against `previous` summed over `previous_buckets` before.
pub fn is_signature_jump(current: u64, previous: u64, previous_buckets: u64) -> bool {
    let mean_ceil = previous.div_ceil(previous_buckets.max(1));
    current >= JUMP_MIN_COUNT && current > JUMP_FACTOR * mean_ceil
}

/// Whether a backend failing since `failing_since_ms` (no delivery since) should raise an alert now.
pub fn is_backend_failing(failing_since_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_sub(failing_since_ms) >= BACKEND_FAILING_MS
}

/// The alerts to send among `candidates`, given when each key was last sent: de-duplicated (one per key)
/// and rate-limited.
pub fn to_send(
    candidates: Vec<Alert>,
    last_sent: impl Fn(&str) -> Option<u64>,
    now_ms: u64,
) -> Vec<Alert> {
    let mut out: Vec<Alert> = Vec::new();
    for alert in candidates {
        let key = alert.key();
        if let Some(existing) = out.iter_mut().find(|a| a.key() == key) {
            existing.count = existing.count.max(alert.count);
            continue;
        }
        if may_send(last_sent(&key), now_ms) {
            out.push(alert);
        }
    }
    out
}

/// Whether any alert destination is configured.
pub fn configured(bindings: &dyn Bindings) -> bool {
    [CHATWORK_ROOM_BINDING, SLACK_WEBHOOK_BINDING]
        .iter()
        .any(|name| bindings.get(name).is_some_and(|v| !v.trim().is_empty()))
}

/// One alert message to one destination (sent without following redirects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRequest {
    /// The binding naming the destination, for the log when sending fails.
    pub destination: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// The console's origin from `PUBLIC_URL` (an `https://` or `http://` URL; a trailing `/` is dropped), the only
/// source of links in alerts.
pub fn console_origin(bindings: &dyn Bindings) -> Option<String> {
    bindings
        .get(PUBLIC_URL_BINDING)
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            rest.is_some_and(|host| {
                !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control())
            })
        })
}

/// The requests that send `alerts` to every configured destination; their links only from [`console_origin`].
pub fn requests(alerts: &[Alert], bindings: &dyn Bindings) -> Vec<AlertRequest> {
    let origin = console_origin(bindings);
    let room = bindings
        .get(CHATWORK_ROOM_BINDING)
        .map(|room| room.trim().to_owned())
        .filter(|room| !room.is_empty());
    let slack = bindings
        .get(SLACK_WEBHOOK_BINDING)
        .map(|url| url.trim().to_owned())
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"));
    let mut out = Vec::new();
    for alert in alerts {
        let message = alert.message(origin.as_deref());
        if let Some(room) = &room {
            if let Ok(request) = chatwork::plain_request(room, &message, bindings) {
                out.push(AlertRequest {
                    destination: CHATWORK_ROOM_BINDING,
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                });
            }
        }
        if let Some(url) = &slack {
            out.push(AlertRequest {
                destination: SLACK_WEBHOOK_BINDING,
                url: url.clone(),
                headers: vec![("content-type", "application/json".to_owned())],
                body: serde_json::json!({ "text": message }).to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_633_600_000;

    fn alert(kind: AlertKind, account: &str, count: u64) -> Alert {
        Alert {
            kind,
            channel: "line".into(),
            account: account.into(),
            count,
        }
    }

    #[test]
    fn one_alert_per_kind_and_account_in_the_interval() {
        let candidates = vec![
            alert(AlertKind::DeadLettered, "a", 1),
            alert(AlertKind::DeadLettered, "a", 2),
            alert(AlertKind::DeadLettered, "b", 1),
            alert(AlertKind::SignatureJump, "a", 9),
        ];
        let sent_recently = |key: &str| (key == "dead_lettered:line/b").then_some(NOW - 60_000);
        let out = to_send(candidates, sent_recently, NOW);
        assert_eq!(
            out,
            vec![
                alert(AlertKind::DeadLettered, "a", 2),
                alert(AlertKind::SignatureJump, "a", 9)
            ]
        );
    }

    #[test]
    fn the_rate_limit_opens_after_the_interval() {
        assert!(may_send(None, NOW));
        assert!(!may_send(Some(NOW - MIN_INTERVAL_MS + 1), NOW));
        assert!(may_send(Some(NOW - MIN_INTERVAL_MS), NOW));
        let out = to_send(
            vec![alert(AlertKind::BackendFailing, "a", 10)],
            |_| Some(NOW - MIN_INTERVAL_MS),
            NOW,
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn a_signature_jump_needs_a_minimum_and_a_multiple_of_the_usual() {
        assert!(!is_signature_jump(4, 0, 12));
        assert!(is_signature_jump(5, 0, 12));
        // Usually 2 per bucket: 6 is not more than 3×, 7 is.
        assert!(!is_signature_jump(6, 24, 12));
        assert!(is_signature_jump(7, 24, 12));
        assert!(is_signature_jump(5, 0, 0));
    }

    #[test]
    fn a_backend_alert_waits_for_the_failing_duration() {
        assert!(!is_backend_failing(NOW - BACKEND_FAILING_MS + 1, NOW));
        assert!(is_backend_failing(NOW - BACKEND_FAILING_MS, NOW));
    }

    #[test]
    fn alerts_go_to_every_configured_destination() {
        use std::collections::HashMap;
        let alerts = [alert(AlertKind::DeadLettered, "a", 1)];
        let none: HashMap<String, String> = HashMap::new();
        assert!(!configured(&none));
        assert!(requests(&alerts, &none).is_empty());
        let both = HashMap::from([
            ("ALERT_CHATWORK_ROOM".to_owned(), "123".to_owned()),
            ("CHATWORK_API_TOKEN".to_owned(), "tok".to_owned()),
            (
                "ALERT_SLACK_WEBHOOK_URL".to_owned(),
                "https://hooks.slack.test/T/B/x".to_owned(),
            ),
            (
                "PUBLIC_URL".to_owned(),
                "https://gate.example.com/".to_owned(),
            ),
        ]);
        assert!(configured(&both));
        let out = requests(&alerts, &both);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].url, "https://api.chatwork.com/v2/rooms/123/messages");
        assert!(
            out[0].body.contains("gate.example.com%2Fadmin"),
            "{}",
            out[0].body
        );
        assert_eq!(out[1].url, "https://hooks.slack.test/T/B/x");
        let text: serde_json::Value = serde_json::from_str(&out[1].body).unwrap();
        assert!(text["text"]
            .as_str()
            .unwrap()
            .contains("https://gate.example.com/admin#account/line/a"));
    }

    /// Nothing of the request that raised an alert reaches it: without `PUBLIC_URL` (or with one that is not
    /// an http(s) URL) the alert goes out without a link.
    #[test]
    fn without_public_url_alerts_carry_no_link() {
        use std::collections::HashMap;
        let alerts = [alert(AlertKind::SignatureJump, "a", 9)];
        let mut bindings = HashMap::from([(
            "ALERT_SLACK_WEBHOOK_URL".to_owned(),
            "https://hooks.slack.test/T/B/x".to_owned(),
        )]);
        for public_url in [
            None,
            Some(""),
            Some("attacker.example"),
            Some("javascript:alert(1)"),
        ] {
            if let Some(value) = public_url {
                bindings.insert("PUBLIC_URL".to_owned(), value.to_owned());
            }
            assert_eq!(console_origin(&bindings), None, "{public_url:?}");
            let out = requests(&alerts, &bindings);
            assert_eq!(out.len(), 1);
            let text: serde_json::Value = serde_json::from_str(&out[0].body).unwrap();
            let text = text["text"].as_str().unwrap();
            assert!(text.contains("invalid_signature"), "{text}");
            assert!(!text.contains("/admin"), "{text}");
            assert!(!text.contains("attacker"), "{text}");
        }
    }

    #[test]
    fn messages_link_to_the_account_page() {
        let text = alert(AlertKind::SignatureJump, "acme-jp", 12)
            .message(Some("https://gate.example.com"));
        assert!(
            text.contains("https://gate.example.com/admin#account/line/acme-jp"),
            "{text}"
        );
        assert!(text.contains("invalid_signature"));
        assert!(text.contains("12"));
    }
}
