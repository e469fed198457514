//! From an action and a fresh read of the service to an absolute target, or a refusal.

use crate::decision::Decision;
use crate::model::{is_busy_update_state, Change, Planned, ServiceMode, ServiceState};
use crate::rules::{Action, MAX_REPLICAS};
use std::time::Duration;

/// Service labels that narrow a rule's bounds (the tighter bound wins).
pub const MIN_REPLICAS_LABEL: &str = "swarmpilot.min_replicas";
pub const MAX_REPLICAS_LABEL: &str = "swarmpilot.max_replicas";

pub use crate::decision::Refusal;

/// What deciding needs besides the action and the service.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub opt_in_label: &'a str,
    /// For rollback: the hash of the template to restore, if one is known.
    pub rollback_to: Option<u64>,
    /// For backup_now on a replicated-job service: whether a run's task is still going.
    pub job_running: bool,
    /// For scale_to_target: remembers a recommendation and answers the highest of the rule's
    /// scale-down stabilization window (see `stabilization`); `None`: no window.
    pub stabilize: Option<&'a dyn Fn(u64) -> u64>,
    /// For scale_to_target: how long the alert has fired (its value off target); `None`:
    /// unknown.
    pub off_target_for: Option<Duration>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("opt_in_label", &self.opt_in_label)
            .field("rollback_to", &self.rollback_to)
            .field("job_running", &self.job_running)
            .field("stabilize", &self.stabilize.is_some())
            .finish()
    }
}

impl<'a> Context<'a> {
    pub fn new(opt_in_label: &'a str) -> Self {
        Self {
            opt_in_label,
            rollback_to: None,
            job_running: false,
            stabilize: None,
            off_target_for: None,
        }
    }
}

/// Decide the target of `action` on `service`, or why there is none.
pub fn plan_change(
    action: &Action,
    service: &ServiceState,
    context: Context<'_>,
) -> Result<Change, Refusal> {
    plan(action, service, context).map(|planned| planned.change)
}

/// As [`plan_change`], with why this change when its numbers need explaining (target tracking).
pub fn plan(
    action: &Action,
    service: &ServiceState,
    context: Context<'_>,
) -> Result<Planned, Refusal> {
    let opt_in_label = context.opt_in_label;
    if service.labels.get(opt_in_label).map(String::as_str) != Some("true") {
        return Err(Refusal::new(
            Decision::NotManaged,
            format!(
                "service {} does not carry {opt_in_label}=true",
                service.name
            ),
        ));
    }
    // Rollback is the one action meant for a rollout that is stuck or going wrong.
    if let (Some(state), false) = (service.update_state.as_deref(), *action == Action::Rollback) {
        if is_busy_update_state(state) {
            return Err(Refusal::new(
                Decision::Busy,
                format!(
                    "service {} is {state}; any update would disturb it",
                    service.name
                ),
            ));
        }
    }
    let change = match action {
        Action::ScaleUp { step, max_replicas } => scale(service, signed(*step), *max_replicas),
        Action::ScaleDown { step, min_replicas } => {
            scale(service, signed(*step).saturating_neg(), *min_replicas)
        }
        Action::ScaleToTarget(tracking) => {
            let replicas = replicated(service)?;
            let no_window = |replicas| replicas;
            let stabilize = context.stabilize.unwrap_or(&no_window);
            let window = super::target::Window {
                highest: stabilize,
                off_target_for: context.off_target_for,
            };
            return super::target::plan(tracking, service, replicas, &window);
        }
        Action::Restart => Ok(Change::ForceUpdate {
            from: service.force_update,
            to: next_force_update(service)?,
        }),
        Action::Rollback => match context.rollback_to {
            Some(to) if to != service.template.hash() => Ok(Change::Template {
                from: service.template.hash(),
                to,
            }),
            _ => Err(Refusal::new(
                Decision::Refused,
                format!(
                    "nothing to roll back to: no earlier task template of {} is known",
                    service.name
                ),
            )),
        },
        Action::BackupNow { .. } => job_run(service, context.job_running),
    };
    change.map(Planned::from)
}

/// Start a run of a job service: replicated with 0 replicas, or replicated-job mode.
fn job_run(service: &ServiceState, job_running: bool) -> Result<Change, Refusal> {
    let running = match service.mode {
        ServiceMode::Replicated { replicas } => replicas > 0,
        ServiceMode::ReplicatedJob => job_running,
        ServiceMode::Global | ServiceMode::GlobalJob => {
            return Err(Refusal::new(
                Decision::Refused,
                format!(
                    "job service {} must be replicated with 0 replicas or replicated-job",
                    service.name
                ),
            ))
        }
    };
    if running {
        return Err(Refusal::new(
            Decision::Busy,
            format!("job {} has a run in progress", service.name),
        ));
    }
    Ok(Change::Job {
        from: service.force_update,
        to: next_force_update(service)?,
    })
}

/// A step as a signed delta. Rules bound steps to `MAX_REPLICAS`, but an action can also come
/// back from a journal written before that bound: saturate rather than wrap (`u64::MAX as i64`
/// is -1, which turned a scale_up into a scale_down).
fn signed(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// ForceUpdate + 1; the engine's counter is any u64 a client set, so its maximum is refused
/// rather than wrapped to 0 (which the engine would not see as a new update).
fn next_force_update(service: &ServiceState) -> Result<u64, Refusal> {
    service.force_update.checked_add(1).ok_or_else(|| {
        Refusal::new(
            Decision::Refused,
            format!(
                "service {} has ForceUpdate {}, the largest possible; reset it with a manual update",
                service.name, service.force_update
            ),
        )
    })
}

/// Scale by `delta` towards the rule's `bound` (a maximum going up, a minimum going down).
fn scale(service: &ServiceState, delta: i64, rule_bound: u64) -> Result<Change, Refusal> {
    let replicas = replicated(service)?;
    let up = delta > 0;
    let (label, bound) = if up {
        let label = label_bound(service, MAX_REPLICAS_LABEL)?;
        // A rule bound replayed from an old journal may exceed MAX_REPLICAS; never go past it.
        let bound = label.map_or(rule_bound, |l| l.min(rule_bound));
        (MAX_REPLICAS_LABEL, bound.min(MAX_REPLICAS))
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
        return Err(Refusal::new(
            Decision::AtBound,
            format!("{replicas} replicas, {which} is {bound} ({source})"),
        ));
    }
    Ok(Change::Replicas {
        from: replicas,
        to: target,
    })
}

/// The replicas of a replicated service; other modes are not scaled.
fn replicated(service: &ServiceState) -> Result<u64, Refusal> {
    match service.mode {
        ServiceMode::Replicated { replicas } => Ok(replicas),
        _ => Err(Refusal::new(
            Decision::Refused,
            format!("service {} is not in replicated mode", service.name),
        )),
    }
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

/// A replica bound from a service label: a whole number up to [`MAX_REPLICAS`]. Anything else
/// (negative, huge, not a number) is refused with the range, never wrapped or clamped silently.
pub(super) fn label_bound(service: &ServiceState, label: &str) -> Result<Option<u64>, Refusal> {
    let Some(value) = service.labels.get(label) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(bound) if bound <= MAX_REPLICAS => Ok(Some(bound)),
        _ => Err(Refusal::new(
            Decision::Refused,
            format!(
                "label {label}={value:?} on {} is not a whole number from 0 to {MAX_REPLICAS}",
                service.name
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
