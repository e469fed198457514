//! The record step: the journal (durable intents and outcomes), the recent-actions view, metrics,
//! Grafana annotations, and the one place that turns a decision into its log line and counter.

pub mod actions;
pub mod grafana;
pub mod journal;
pub mod metrics;

use crate::decision::{Decision, DecisionRecord};
use metrics::Metrics;

/// Log and count one decision: a line per (alert, rule), at a level that matches what happened.
pub fn record_decision(metrics: &Metrics, record: &DecisionRecord) {
    let rule = record.rule.as_deref().unwrap_or("-");
    let service = record.service.as_deref().unwrap_or("-");
    let action = record.action.as_deref().unwrap_or("-");
    let change = record.change.as_deref().unwrap_or("-");
    metrics.decision(
        record.rule.as_deref().unwrap_or(""),
        record.action.as_deref().unwrap_or(""),
        record.decision.as_str(),
    );
    macro_rules! line {
        ($level:ident) => {
            tracing::$level!(
                decision = record.decision.as_str(),
                rule,
                alert = %record.alert,
                fingerprint = %record.fingerprint,
                service,
                action,
                change,
                reason = %record.reason,
                "decision"
            )
        };
    }
    match record.decision {
        Decision::Failed => line!(warn),
        Decision::NoMatch => line!(debug),
        _ => line!(info),
    }
}
