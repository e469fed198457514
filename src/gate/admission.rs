//! The gate as admission asks it: dedupe, cooldown and anti-flap from the [`GateMemory`], the
//! action budgets, and the decision on a fresh read of the service (opt-in, update state,
//! bounds, rollback eligibility). The pipeline calls these in order; it decides nothing itself.

use super::budget::{Budgets, Spent};
use super::change::{plan, Context, Refusal};
use super::cooldown::Window;
use super::memory::{ActionKey, GateMemory};
use super::DeliveryKey;
use crate::clock::whole_secs_up;
use crate::decision::Decision;
use crate::model::{Planned, ServiceState, Template};
use crate::parse::Alert;
use crate::prometheus::{Instant, PrometheusError};
use crate::rules::{Action, ActionKind, Finite};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Everything that may refuse an action before it touches the swarm.
pub struct Gate {
    memory: Arc<dyn GateMemory>,
    budgets: Budgets,
    opt_in_label: String,
}

impl Gate {
    pub fn new(memory: Arc<dyn GateMemory>, budgets: Budgets, opt_in_label: String) -> Self {
        Self {
            memory,
            budgets,
            opt_in_label,
        }
    }

    pub fn memory(&self) -> &Arc<dyn GateMemory> {
        &self.memory
    }

    /// Dedupe, cooldown, and anti-flap: a scale_down waits for the cooldown of the last
    /// scale_up. Repeat notifications end here, so it allocates only to refuse.
    pub fn recent(
        &self,
        alert: &Alert,
        service: &str,
        kind: ActionKind,
        delivery: DeliveryKey,
    ) -> Result<(), Refusal> {
        self.recent_window(alert, service, kind, delivery)
            .map_err(|(refusal, _)| refusal)
    }

    /// As [`Gate::recent`], saying with a refusal whether the window behind it is held (its
    /// action has not finished): cluster mode answers those with a retry, not a refusal.
    pub fn recent_window(
        &self,
        alert: &Alert,
        service: &str,
        kind: ActionKind,
        delivery: DeliveryKey,
    ) -> Result<(), (Refusal, bool)> {
        let key = (service.to_string(), kind);
        let window = self.memory.window(&key);
        let held = matches!(window, Some((Window::Held, _)));
        if window.is_some_and(|(_, started_by)| started_by == delivery) {
            let refusal = Refusal::new(
                Decision::Duplicate,
                format!(
                    "this alert (fingerprint {}, startsAt {}, {}) was already handled by this rule",
                    alert.fingerprint,
                    alert.starts_at,
                    alert.status.as_str()
                ),
            );
            return Err((refusal, held));
        }
        match window {
            Some((Window::Running(left), _)) => Err((
                Refusal::new(
                    Decision::Cooldown,
                    format!("{kind} on {service} ran recently; {} of cooldown left", fmt_secs(left)),
                ),
                false,
            )),
            // Our own action on it is still queued or running: the service is busy with it.
            Some((Window::Held, _)) => Err((
                Refusal::new(
                    Decision::Busy,
                    format!("an earlier {kind} on {service} has not finished yet; its cooldown starts when it lands"),
                ),
                true,
            )),
            None if kind == ActionKind::ScaleDown => self.anti_flap(service),
            None => Ok(()),
        }
    }

    fn anti_flap(&self, service: &str) -> Result<(), (Refusal, bool)> {
        match self.memory.window(&(service.to_string(), ActionKind::ScaleUp)) {
            Some((Window::Running(left), _)) => Err((
                Refusal::new(
                    Decision::Cooldown,
                    format!(
                        "scale_up on {service} ran recently; scale_down waits {} (anti-flap)",
                        fmt_secs(left)
                    ),
                ),
                false,
            )),
            Some((Window::Held, _)) => Err((
                Refusal::new(
                    Decision::Busy,
                    format!("a scale_up on {service} has not finished yet; scale_down waits for it and its cooldown (anti-flap)"),
                ),
                true,
            )),
            None => Ok(()),
        }
    }

    /// Whether a budget is spent, spending nothing: admission refuses before the Docker read.
    pub fn budget_left(&self, service: &str) -> Result<(), Refusal> {
        self.budgets
            .check(service)
            .map_err(|spent| Refusal::new(Decision::RateLimited, spent.to_string()))
    }

    /// Spend one action on `service` from both budgets.
    pub fn spend(&self, service: &str) -> Result<Spent, Refusal> {
        self.budgets
            .try_spend(service)
            .map_err(|spent| Refusal::new(Decision::RateLimited, spent.to_string()))
    }

    /// An action that was not admitted after all (its intent could not be journaled).
    pub fn refund(&self, service: &str, spent: Spent) {
        self.budgets.give_back(service, spent);
    }

    /// An action was admitted: its window is held until its outcome.
    pub fn admitted(&self, key: ActionKey, delivery: DeliveryKey, owner: u64) {
        self.memory.hold(key, delivery, owner);
    }

    /// The owner's action ended: a landed one's cooldown runs from now; one that did not
    /// happen gives its window (and with it the duplicate guard) back.
    pub fn finished(&self, key: &ActionKey, owner: u64, landed: bool, cooldown: Duration) {
        if landed {
            self.memory.landed(key, owner, cooldown);
        } else {
            self.memory.not_landed(key, owner);
        }
    }

    /// Decide the change of an action on a fresh read of `service`.
    pub fn decide(&self, ask: Ask<'_>, service: &ServiceState) -> Result<Planned, Refusal> {
        let mut context = Context::new(&self.opt_in_label);
        context.job_running = ask.job_running;
        if *ask.action == Action::Rollback {
            context.rollback_to =
                self.memory
                    .rollback_target(&service.name, service.template.hash(), ask.previous);
        }
        let window = match ask.action {
            Action::ScaleToTarget(tracking) => Some(tracking.scale_down_stabilization()),
            _ => None,
        };
        let stabilize = |replicas: u64| match window {
            Some(window) => {
                let key = (service.name.clone(), ask.rule.to_string());
                self.memory.recommend(&key, replicas, window, ask.record)
            }
            None => replicas,
        };
        if window.is_some() {
            context.stabilize = Some(&stabilize);
        }
        if let Action::ScaleToTarget(tracking) = ask.action {
            context.off_target_for = tracking
                .reading
                .and_then(|r| r.since_ms)
                .map(|since| off_target_for(since, ask.now));
        }
        plan(ask.action, service, context)
    }

    /// Target tracking (`value_from: annotation:<name>`): the alert's annotation `name` as the
    /// value, or why it is none.
    pub fn annotation_value(&self, name: &str, alert: &Alert) -> Result<Finite, Refusal> {
        super::target::annotation_value(name, alert)
    }

    /// Target tracking: Prometheus' answer to a `query:` rule for `service` as the value, or why
    /// it is none.
    pub fn query_value(
        &self,
        answer: Result<Instant, PrometheusError>,
        service: &str,
    ) -> Result<Finite, Refusal> {
        super::target::query_value(answer, service)
    }

    /// Recovery: a scale_to_target of `rule` that landed on `service` at `at` recommended
    /// `replicas`; its stabilization window keeps it (a restart must not forget a high).
    pub fn restore_recommendation(
        &self,
        service: &str,
        rule: &str,
        replicas: u64,
        at: SystemTime,
        window: Duration,
    ) {
        let key = (service.to_string(), rule.to_string());
        self.memory
            .restore_recommendation(&key, replicas, at, window);
    }
}

/// What the gate decides an action on, besides the fresh read of the service.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The rule's name: target tracking remembers recommendations per (service, rule).
    pub rule: &'a str,
    pub action: &'a Action,
    /// The engine's PreviousSpec template (rollback).
    pub previous: Option<&'a Template>,
    /// Whether a replicated-job run is still going (backup_now).
    pub job_running: bool,
    /// Remember target tracking's recommendation; false for a dry run, which decides without
    /// leaving a trace.
    pub record: bool,
    /// The decision's time (target tracking: how long the value has been off target).
    pub now: SystemTime,
}

/// How long an alert that started firing at `since_ms` (unix ms) has fired at `now`; a start
/// in the future (clocks apart) is zero.
fn off_target_for(since_ms: u64, now: SystemTime) -> Duration {
    let now_ms = crate::clock::unix_ms(now);
    Duration::from_millis(now_ms.saturating_sub(since_ms))
}

/// "4m 47s": whole seconds rounded up, like humantime's output but cheap enough for the hot path
/// of repeat notifications, where every answer carries a remaining cooldown.
pub fn fmt_secs(d: Duration) -> String {
    use std::fmt::Write;
    let secs = whole_secs_up(d);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::with_capacity(12);
    for (value, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
        if value > 0 || (unit == 's' && out.is_empty()) {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{value}{unit}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fmt_secs;
    use rstest::rstest;
    use std::time::Duration;

    #[rstest]
    #[case(Duration::ZERO, "0s")]
    #[case(Duration::from_millis(1), "1s")]
    #[case(Duration::from_secs(59), "59s")]
    #[case(Duration::from_secs(60), "1m")]
    #[case(Duration::from_millis(287_200), "4m 48s")]
    #[case(Duration::from_secs(3600 + 5), "1h 5s")]
    fn formats_like_humantime(#[case] d: Duration, #[case] text: &str) {
        assert_eq!(fmt_secs(d), text);
    }
}
