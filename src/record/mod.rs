//! The record step: the journal (durable intents and outcomes), the recent-actions view, metrics,
//! Grafana annotations, and the one place that turns a decision into its log line and counter.

pub mod actions;
pub mod grafana;
pub mod metrics;

use crate::decision::{Decision, DecisionRecord};

/// Log one decision: a line per (alert, rule), at a level that matches what happened. (They are
/// counted per notification, see `Metrics::decisions`.)
pub fn record_decision(record: &DecisionRecord) {
    let rule = record.rule.as_deref().unwrap_or("-");
    let service = record.service.as_deref().unwrap_or("-");
    let action = record.action.unwrap_or("-");
    let change = record.change.as_deref().unwrap_or("-");
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
    // Repeat notifications (every group_interval, from every HA peer) would drown the log in
    // lines saying nothing happened; they stay counted in swarmpilot_decisions_total.
    match record.decision {
        Decision::Failed => line!(warn),
        Decision::NoMatch | Decision::Cooldown | Decision::Duplicate => line!(debug),
        _ => line!(info),
    }
}
