//! Grafana annotations for executed and failed actions. They are queued and sent in the
//! background with a bounded retry: Grafana being slow or down never blocks or fails an action;
//! what cannot be delivered is counted in `swarmpilot_grafana_annotations_dropped_total`.

use super::metrics::Metrics;
use crate::settings::{read_secret, GrafanaSettings, SettingsError};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 1000;
const ATTEMPTS: u32 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Grafana's `POST /api/annotations` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    /// Unix milliseconds.
    pub time: u64,
    pub tags: Vec<String>,
    /// HTML-escaped: Grafana renders annotation text as HTML.
    pub text: String,
    #[serde(rename = "dashboardUID", skip_serializing_if = "Option::is_none")]
    pub dashboard_uid: Option<String>,
}

/// What an annotation says about one action.
pub struct ActionNote<'a> {
    pub time_ms: u64,
    pub rule: &'a str,
    pub alert: &'a str,
    pub service: &'a str,
    pub action: &'a str,
    pub change: Option<&'a str>,
    pub outcome: &'a str,
    pub reason: &'a str,
}

#[derive(Clone)]
pub struct Annotator {
    tx: mpsc::Sender<Annotation>,
    tags: Vec<String>,
    dashboard_uid: Option<String>,
    metrics: Arc<Metrics>,
}

impl Annotator {
    /// Start the sender when `grafana.url` is set; checks `dashboard_uid` in the background.
    pub fn start(
        settings: &GrafanaSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Self>, SettingsError> {
        if settings.url.is_empty() {
            return Ok(None);
        }
        let token = match settings.token_file.as_str() {
            "" => None,
            path => Some(read_secret("grafana.token_file", path)?),
        };
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| SettingsError::Grafana(e.to_string()))?;
        let base = settings.url.trim_end_matches('/').to_string();
        let dashboard_uid = Some(settings.dashboard_uid.clone()).filter(|u| !u.is_empty());
        if let Some(uid) = dashboard_uid.clone() {
            tokio::spawn(check_dashboard(
                client.clone(),
                base.clone(),
                token.clone(),
                uid,
            ));
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let sender = Sender {
            client,
            url: format!("{base}/api/annotations"),
            token,
            metrics: metrics.clone(),
        };
        tokio::spawn(sender.run(rx));
        Ok(Some(Self {
            tx,
            tags: settings.tags.clone(),
            dashboard_uid,
            metrics,
        }))
    }

    /// Queue an annotation for an action; never waits.
    pub fn annotate(&self, note: &ActionNote<'_>) {
        let annotation = self.build(note);
        if self.tx.try_send(annotation).is_err() {
            self.metrics.annotation_dropped();
            tracing::warn!("Grafana annotation queue full; annotation dropped");
        }
    }

    pub fn build(&self, note: &ActionNote<'_>) -> Annotation {
        let mut tags = self.tags.clone();
        tags.extend([note.action, note.service, note.outcome].map(String::from));
        let change = note.change.unwrap_or("no change");
        let mut text = format!(
            "{} {}: {change} — {} (rule {}, alert {})",
            note.action, note.service, note.outcome, note.rule, note.alert
        );
        if note.outcome != "succeeded" && !note.reason.is_empty() {
            text.push_str(": ");
            text.push_str(note.reason);
        }
        Annotation {
            time: note.time_ms,
            tags,
            text: maud::html! { (text) }.into_string(),
            dashboard_uid: self.dashboard_uid.clone(),
        }
    }
}

struct Sender {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    metrics: Arc<Metrics>,
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<Annotation>) {
        while let Some(annotation) = rx.recv().await {
            if self.deliver(&annotation).await {
                self.metrics.annotation_sent();
            } else {
                self.metrics.annotation_dropped();
            }
        }
    }

    async fn deliver(&self, annotation: &Annotation) -> bool {
        for attempt in 0..ATTEMPTS {
            let mut request = self.client.post(&self.url).json(annotation);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(r) if r.status().is_success() => return true,
                // Grafana said no (bad token, bad dashboard): a retry will not change its mind.
                Ok(r) if r.status().is_client_error() => {
                    tracing::warn!(status = %r.status(), "Grafana rejected an annotation");
                    return false;
                }
                Ok(r) => tracing::debug!(status = %r.status(), attempt, "Grafana error"),
                Err(e) => tracing::debug!(error = %e, attempt, "Grafana unreachable"),
            }
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt)).await;
            }
        }
        tracing::warn!("Grafana annotation dropped after {ATTEMPTS} attempts");
        false
    }
}

async fn check_dashboard(
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    uid: String,
) {
    let mut request = client.get(format!("{base}/api/dashboards/uid/{uid}"));
    if let Some(token) = &token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => tracing::info!(%uid, "Grafana dashboard found"),
        Ok(r) => {
            tracing::warn!(%uid, status = %r.status(), "grafana.dashboard_uid not found: annotations will not show on it")
        }
        Err(e) => tracing::warn!(%uid, error = %e, "could not check grafana.dashboard_uid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn text_is_html_escaped_and_tags_name_the_action() {
        let settings = GrafanaSettings {
            url: "http://127.0.0.1:9".into(),
            dashboard_uid: String::new(),
            ..Default::default()
        };
        let annotator = Annotator::start(&settings, Arc::new(Metrics::new()))
            .unwrap()
            .unwrap();
        let note = ActionNote {
            time_ms: 1_700_000_000_000,
            rule: "r<1>",
            alert: "A&B",
            service: "web",
            action: "restart",
            change: Some("force_update 1→2"),
            outcome: "failed",
            reason: "<script>alert(1)</script>",
        };
        let a = annotator.build(&note);
        assert_eq!(a.time, 1_700_000_000_000);
        assert_eq!(a.tags, ["swarmpilot", "restart", "web", "failed"]);
        assert_eq!(
            a.text,
            "restart web: force_update 1→2 — failed (rule r&lt;1&gt;, alert A&amp;B): &lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(a.dashboard_uid, None);
        let json = serde_json::to_value(&a).unwrap();
        assert!(json.get("dashboardUID").is_none());
    }
}
