//! From an action and a fresh read of the service to an absolute target, or a refusal.

use crate::act::{Change, ServiceMode, ServiceState};
use crate::decision::Decision;
use crate::rules::Action;

/// Service labels that narrow a rule's bounds (the tighter bound wins).
pub const MIN_REPLICAS_LABEL: &str = "swarmpilot.min_replicas";
pub const MAX_REPLICAS_LABEL: &str = "swarmpilot.max_replicas";

/// Update states in which any spec update would resume or disturb a rollout.
const BUSY_STATES: [&str; 4] = ["updating", "paused", "rollback_started", "rollback_paused"];

/// Why an action does not go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub decision: Decision,
    pub reason: String,
}

fn refuse(decision: Decision, reason: impl Into<String>) -> Refusal {
    Refusal {
        decision,
        reason: reason.into(),
    }
}

/// Decide the target of `action` on `service`, or why there is none.
pub fn plan_change(
    action: &Action,
    service: &ServiceState,
    opt_in_label: &str,
) -> Result<Change, Refusal> {
    if service.labels.get(opt_in_label).map(String::as_str) != Some("true") {
        return Err(refuse(
            Decision::NotManaged,
            format!(
                "service {} does not carry {opt_in_label}=true",
                service.name
            ),
        ));
    }
    if let Some(state) = service.update_state.as_deref() {
        if BUSY_STATES.contains(&state) {
            return Err(refuse(
                Decision::Busy,
                format!(
                    "service {} is {state}; any update would disturb it",
                    service.name
                ),
            ));
        }
    }
    match action {
        Action::ScaleUp { step, max_replicas } => scale(service, *step as i64, *max_replicas),
        Action::ScaleDown { step, min_replicas } => scale(service, -(*step as i64), *min_replicas),
        Action::Restart => Ok(Change::ForceUpdate {
            from: service.force_update,
            to: service.force_update + 1,
        }),
        Action::Rollback | Action::BackupNow { .. } => Err(refuse(
            Decision::Refused,
            format!("action {} is not available in this version", action.kind()),
        )),
    }
}

/// Scale by `delta` towards the rule's `bound` (a maximum going up, a minimum going down).
fn scale(service: &ServiceState, delta: i64, rule_bound: u64) -> Result<Change, Refusal> {
    let ServiceMode::Replicated { replicas } = service.mode else {
        return Err(refuse(
            Decision::Refused,
            format!("service {} is not in replicated mode", service.name),
        ));
    };
    let up = delta > 0;
    let (label, bound) = if up {
        let label = label_bound(service, MAX_REPLICAS_LABEL)?;
        (
            MAX_REPLICAS_LABEL,
            label.map_or(rule_bound, |l| l.min(rule_bound)),
        )
    } else {
        let label = label_bound(service, MIN_REPLICAS_LABEL)?;
        (
            MIN_REPLICAS_LABEL,
            label.map_or(rule_bound, |l| l.max(rule_bound)),
        )
    };
    let target = clamp_step(replicas, delta, bound);
    if target == replicas {
        let which = if up { "max_replicas" } else { "min_replicas" };
        let source = if label_bound(service, label).ok().flatten() == Some(bound) {
            format!("label {label}")
        } else {
            "rule".into()
        };
        return Err(refuse(
            Decision::AtBound,
            format!("{replicas} replicas, {which} is {bound} ({source})"),
        ));
    }
    Ok(Change::Replicas {
        from: replicas,
        to: target,
    })
}

/// The replicas after one step, never past the bound and never in the opposite direction: a
/// service scaled by hand beyond the bound is left alone, not pulled back.
pub fn clamp_step(current: u64, delta: i64, bound: u64) -> u64 {
    let stepped = current.saturating_add_signed(delta);
    if delta > 0 {
        if current >= bound {
            current
        } else {
            stepped.min(bound)
        }
    } else if current <= bound {
        current
    } else {
        stepped.max(bound)
    }
}

fn label_bound(service: &ServiceState, label: &str) -> Result<Option<u64>, Refusal> {
    match service.labels.get(label) {
        None => Ok(None),
        Some(value) => value.trim().parse().map(Some).map_err(|_| {
            refuse(
                Decision::Refused,
                format!(
                    "label {label}={value:?} on {} is not a whole number",
                    service.name
                ),
            )
        }),
    }
}

#[cfg(test)]
mod tests;
