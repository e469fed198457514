//! The Alertmanager webhook payload (version 4). Parsing is lenient: unknown fields are ignored
//! because the payload grows between Alertmanager releases, and only `alerts` is required.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Labels and annotations: sorted so logs and answers are stable.
pub type LabelSet = BTreeMap<String, String>;

/// A whole notification as Alertmanager POSTs it.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    /// How many alerts Alertmanager left out because of the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    #[serde(default)]
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    /// Not `externalUrl`: Alertmanager spells it with a capital URL.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// Why Alertmanager sent this notification (newer releases); informational only.
    #[serde(default, alias = "notification_reason")]
    pub notification_reason: Option<String>,
    pub alerts: Vec<Alert>,
}

/// One alert inside a notification.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    #[serde(default)]
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: LabelSet,
    /// Read for target tracking's `value_from: annotation:<name>`; nothing else looks at them.
    #[serde(default)]
    pub annotations: LabelSet,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    /// The `alertname` label, or "" when the alert has none.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// `startsAt` in unix ms; `None` when absent or not RFC 3339 in UTC (Alertmanager writes
    /// `2026-12-03T08:00:00.123Z`), or before 1970 (Go's zero time).
    pub fn starts_at_ms(&self) -> Option<u64> {
        let at = humantime::parse_rfc3339_weak(self.starts_at.trim()).ok()?;
        let ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        u64::try_from(ms).ok().filter(|ms| *ms > 0)
    }
}

/// Firing or resolved. Anything else Alertmanager might send one day is kept apart, so rules for
/// either state never act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    #[default]
    Firing,
    Resolved,
    #[serde(other)]
    Unknown,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Unknown => "unknown",
        }
    }
}

/// Why a body is not a notification, in words for the HTTP answer.
#[derive(Debug, thiserror::Error)]
#[error("malformed Alertmanager payload: {0}")]
pub struct ParseError(#[from] serde_json::Error);

/// Parse a webhook body.
pub fn parse_notification(body: &[u8]) -> Result<Notification, ParseError> {
    Ok(serde_json::from_slice(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::path::PathBuf;

    fn fixture(name: &str) -> Vec<u8> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[rstest]
    #[case::firing("firing.json", AlertStatus::Firing, 1, 0)]
    #[case::resolved("resolved.json", AlertStatus::Resolved, 1, 0)]
    #[case::mixed("mixed.json", AlertStatus::Firing, 3, 0)]
    #[case::truncated("truncated.json", AlertStatus::Firing, 2, 5)]
    #[case::notification_reason("notification_reason.json", AlertStatus::Firing, 1, 0)]
    fn parses_fixture(
        #[case] file: &str,
        #[case] status: AlertStatus,
        #[case] alerts: usize,
        #[case] truncated: u64,
    ) {
        let n = parse_notification(&fixture(file)).expect("fixture parses");
        assert_eq!(n.status, status);
        assert_eq!(n.alerts.len(), alerts);
        assert_eq!(n.truncated_alerts, truncated);
        assert_eq!(n.version, "4");
        assert!(n.external_url.starts_with("http://"), "externalURL read");
        assert!(n
            .alerts
            .iter()
            .all(|a| a.generator_url.starts_with("http://")));
    }

    #[test]
    fn mixed_keeps_each_alert_status() {
        let n = parse_notification(&fixture("mixed.json")).unwrap();
        let statuses: Vec<_> = n.alerts.iter().map(|a| a.status).collect();
        assert_eq!(
            statuses,
            [
                AlertStatus::Firing,
                AlertStatus::Resolved,
                AlertStatus::Firing
            ]
        );
    }

    #[test]
    fn notification_reason_is_read() {
        let n = parse_notification(&fixture("notification_reason.json")).unwrap();
        assert_eq!(n.notification_reason.as_deref(), Some("repeat"));
    }

    #[rstest]
    #[case::not_json(b"not json".as_slice())]
    #[case::empty(b"".as_slice())]
    #[case::no_alerts(br#"{"version":"4","status":"firing"}"#.as_slice())]
    #[case::alerts_not_array(br#"{"alerts":{}}"#.as_slice())]
    #[case::labels_not_strings(br#"{"alerts":[{"labels":{"a":1}}]}"#.as_slice())]
    #[case::truncated_negative(br#"{"alerts":[],"truncatedAlerts":-1}"#.as_slice())]
    #[case::top_level_array(b"[]".as_slice())]
    fn rejects_malformed(#[case] body: &[u8]) {
        let err = parse_notification(body).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("malformed Alertmanager payload"));
    }

    #[test]
    fn unknown_fields_and_statuses_are_tolerated() {
        let body = br#"{"alerts":[{"status":"suppressed","labels":{},"extra":[1,2]}],
                        "routeLabels":{"x":"y"},"future":true}"#;
        let n = parse_notification(body).unwrap();
        assert_eq!(n.alerts[0].status, AlertStatus::Unknown);
    }

    #[rstest]
    #[case::alertmanager("2026-12-03T08:00:00.123Z", Some(1_796_284_800_123))]
    #[case::nanoseconds("2026-12-03T08:00:00.123456789Z", Some(1_796_284_800_123))]
    #[case::whole_seconds("2026-12-03T08:00:00Z", Some(1_796_284_800_000))]
    #[case::absent("", None)]
    #[case::go_zero_time("0001-01-01T00:00:00Z", None)]
    #[case::not_a_time("yesterday", None)]
    fn starts_at_reads_as_unix_ms(#[case] starts_at: &str, #[case] ms: Option<u64>) {
        let body = format!(r#"{{"alerts":[{{"startsAt":"{starts_at}"}}]}}"#);
        let n = parse_notification(body.as_bytes()).unwrap();
        assert_eq!(n.alerts[0].starts_at_ms(), ms);
    }
}
