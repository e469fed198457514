//! Prometheus metrics: one struct owns the registry and offers typed methods, so names and label
//! sets live in one place. Labels are bounded: rule names come from the loaded rules, actions,
//! decisions and outcomes are enums, routes are patterns, never raw paths.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    alerts_received: IntCounterVec,
    decisions: IntCounterVec,
    actions: IntCounterVec,
    action_duration: HistogramVec,
    docker_up: IntGauge,
    rules_loaded: IntGauge,
    reload_successful: IntGauge,
    reload_timestamp: IntGauge,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_in_flight: IntGauge,
    annotations_sent: IntCounter,
    annotations_dropped: IntCounter,
    journal_append: Histogram,
    journal_append_errors: IntCounter,
    target_query: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("swarmpilot")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(opts(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::with_opts(opts(name, help)).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help)
                    .namespace("swarmpilot")
                    .buckets(buckets),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let single = |name: &str, help: &str| {
            let c = IntCounter::with_opts(opts(name, help)).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let journal_append = Histogram::with_opts(
            HistogramOpts::new(
                "journal_append_seconds",
                "Time to write and fsync a journal append.",
            )
            .namespace("swarmpilot")
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(journal_append.clone()))
            .expect("unique metric");
        Self {
            alerts_received: counter(
                "alerts_received_total",
                "Alerts received on /webhook, by alert status.",
                &["status"],
            ),
            decisions: counter(
                "decisions_total",
                "Decisions per matched rule (rule is empty for no_match).",
                &["rule", "action", "decision"],
            ),
            actions: counter(
                "actions_total",
                "Admitted actions by outcome.",
                &["action", "outcome"],
            ),
            target_query: histogram(
                "target_query_duration_seconds",
                "Target tracking's query: rules asking Prometheus for their value, by result (ok, error).",
                &["result"],
                vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
            ),
            action_duration: histogram(
                "action_duration_seconds",
                "From admission to outcome.",
                &["action"],
                vec![
                    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0,
                ],
            ),
            docker_up: gauge(
                "docker_up",
                "1 when the Docker engine answered the last call.",
            ),
            rules_loaded: gauge("rules_loaded", "Rules currently loaded."),
            reload_successful: gauge(
                "config_last_reload_successful",
                "1 when the last rules/config reload succeeded.",
            ),
            reload_timestamp: gauge(
                "config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful reload.",
            ),
            http_requests: counter(
                "http_requests_total",
                "HTTP requests by method, route pattern and status.",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                "http_request_duration_seconds",
                "HTTP request duration by method and route pattern.",
                &["method", "route"],
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
                ],
            ),
            http_in_flight: gauge("http_requests_in_flight", "HTTP requests being served."),
            annotations_sent: single(
                "grafana_annotations_sent_total",
                "Grafana annotations delivered.",
            ),
            annotations_dropped: single(
                "grafana_annotations_dropped_total",
                "Grafana annotations given up on (Grafana down, queue full, rejected).",
            ),
            // Unlabelled, so it is exported at 0 from the start and increase() sees the first
            // failure: the 503s alone would only show in Alertmanager's retries.
            journal_append_errors: single(
                "journal_append_errors_total",
                "Journal appends that failed (full or read-only data_dir, writer stopped).",
            ),
            journal_append,
            registry,
        }
    }

    /// Count a notification's alerts by status: one label lookup per status, not per alert.
    pub fn alerts_received(&self, alerts: &[crate::parse::Alert]) {
        use crate::parse::AlertStatus;
        for status in [
            AlertStatus::Firing,
            AlertStatus::Resolved,
            AlertStatus::Unknown,
        ] {
            let n = alerts.iter().filter(|a| a.status == status).count() as u64;
            if n > 0 {
                self.alerts_received
                    .with_label_values(&[status.as_str()])
                    .inc_by(n);
            }
        }
    }

    /// Count a notification's decisions: one label lookup per distinct (rule, action, decision)
    /// rather than one per alert, which matters for storms of repeats.
    pub fn decisions(&self, records: &[crate::decision::DecisionRecord]) {
        let mut counts: Vec<((&str, &str, &str), u64)> = Vec::new();
        for r in records {
            let key = (
                r.rule.as_deref().unwrap_or(""),
                r.action.unwrap_or(""),
                r.decision.as_str(),
            );
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        for ((rule, action, decision), n) in counts {
            self.decisions
                .with_label_values(&[rule, action, decision])
                .inc_by(n);
        }
    }

    pub fn action_finished(&self, action: &str, outcome: &str, took: Duration) {
        self.actions.with_label_values(&[action, outcome]).inc();
        self.action_duration
            .with_label_values(&[action])
            .observe(took.as_secs_f64());
    }

    pub fn docker_up(&self, up: bool) {
        self.docker_up.set(i64::from(up));
    }

    pub fn rules_loaded(&self, count: usize) {
        self.rules_loaded.set(count as i64);
    }

    pub fn reload(&self, ok: bool, unix_secs: u64) {
        self.reload_successful.set(i64::from(ok));
        if ok {
            self.reload_timestamp.set(unix_secs as i64);
        }
    }

    pub fn http_started(&self) {
        self.http_in_flight.inc();
    }

    pub fn http_finished(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_in_flight.dec();
        self.http_requests
            .with_label_values(&[method, route, status_label(status)])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(took.as_secs_f64());
    }

    pub fn annotation_sent(&self) {
        self.annotations_sent.inc();
    }

    pub fn annotation_dropped(&self) {
        self.annotations_dropped.inc();
    }

    pub fn journal_appended(&self, took: Duration) {
        self.journal_append.observe(took.as_secs_f64());
    }

    /// One `query:` to Prometheus for a target-tracking value, answered (`ok`) or not.
    pub fn query_seconds(&self, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.target_query
            .with_label_values(&[result])
            .observe(seconds);
    }

    pub fn journal_append_failed(&self) {
        self.journal_append_errors.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buffer) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

/// Status codes as static labels (bounded, and no allocation per request).
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_names() {
        let m = Metrics::new();
        m.alerts_received(&[crate::parse::Alert::default()]);
        m.decisions(&[crate::decision::DecisionRecord {
            rule: Some("r".into()),
            alert: "A".into(),
            fingerprint: "f".into(),
            service: Some("web".into()),
            action: Some("scale_up"),
            decision: crate::decision::Decision::Queued,
            reason: String::new(),
            change: None,
            action_id: None,
        }]);
        m.action_finished("scale_up", "succeeded", Duration::from_millis(30));
        m.http_started();
        m.http_finished("POST", "/webhook", 200, Duration::from_millis(2));
        let text = m.render();
        for needle in [
            "swarmpilot_alerts_received_total{status=\"firing\"} 1",
            "swarmpilot_decisions_total{action=\"scale_up\",decision=\"queued\",rule=\"r\"} 1",
            "swarmpilot_actions_total{action=\"scale_up\",outcome=\"succeeded\"} 1",
            "swarmpilot_action_duration_seconds_bucket",
            "swarmpilot_http_requests_total{method=\"POST\",route=\"/webhook\",status=\"200\"} 1",
            "swarmpilot_http_requests_in_flight 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn journal_append_errors_start_at_zero_and_count() {
        let m = Metrics::new();
        let count = |n: u64| format!("swarmpilot_journal_append_errors_total {n}\n");
        assert!(m.render().contains(&count(0)));
        m.journal_append_failed();
        m.journal_append_failed();
        assert!(m.render().contains(&count(2)));
    }
}
