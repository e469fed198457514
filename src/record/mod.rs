//! The record step: the one place that turns a decision into its log line. The journal, metrics
//! and Grafana annotations attach here, so every sink sees the same decision.

pub mod actions;
pub mod journal;

use crate::decision::{Decision, DecisionRecord};

/// Log one decision: a line per (alert, rule), at a level that matches what happened.
pub fn record_decision(record: &DecisionRecord) {
    let rule = record.rule.as_deref().unwrap_or("-");
    let service = record.service.as_deref().unwrap_or("-");
    let action = record.action.as_deref().unwrap_or("-");
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
    match record.decision {
        Decision::Failed => line!(warn),
        Decision::NoMatch => line!(debug),
        _ => line!(info),
    }
}
