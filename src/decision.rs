//! The outcome of gating one (alert, rule) pair. One value feeds the HTTP answer, the log line and
//! (later) the journal and the metric label, so they cannot disagree.

use serde::Serialize;

/// What swarmpilot decided for one alert and one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The action was applied to the swarm.
    Executed,
    /// Admitted, waiting for the per-service worker (used once actions run in the background).
    Queued,
    /// Would have acted, but swarmpilot runs with `dry_run` or the request asked for it.
    DryRun,
    /// The same action on the same service ran too recently.
    Cooldown,
    /// The same alert was already handled.
    Duplicate,
    /// The service exists but does not carry the opt-in label.
    NotManaged,
    /// The alert names no service, or no service has that exact name.
    NoService,
    /// The target is already at the rule's or the service's bound.
    AtBound,
    /// Target tracking: the service already has the replicas the value asks for (within the
    /// tolerance, rounded to today's count, or held by scale-down stabilization).
    NoChange,
    /// The service is mid-update, paused or rolling back.
    Busy,
    /// A budget of actions is spent.
    RateLimited,
    /// The action cannot apply to this service (global mode, bad label value, ...).
    Refused,
    /// No rule matched the alert.
    NoMatch,
    /// The action was admitted but Docker rejected or did not answer it.
    Failed,
}

impl Decision {
    /// The snake_case name used in answers, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Executed => "executed",
            Decision::Queued => "queued",
            Decision::DryRun => "dry_run",
            Decision::Cooldown => "cooldown",
            Decision::Duplicate => "duplicate",
            Decision::NotManaged => "not_managed",
            Decision::NoService => "no_service",
            Decision::AtBound => "at_bound",
            Decision::NoChange => "no_change",
            Decision::Busy => "busy",
            Decision::RateLimited => "rate_limited",
            Decision::Refused => "refused",
            Decision::NoMatch => "no_match",
            Decision::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the `/webhook` answer.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// The rule that matched; `None` for `no_match`.
    pub rule: Option<String>,
    /// The alert's `alertname` label.
    pub alert: String,
    pub fingerprint: String,
    /// The service named by the alert, if any.
    pub service: Option<String>,
    /// The action of the rule; `None` for `no_match`.
    pub action: Option<&'static str>,
    pub decision: Decision,
    /// Why, in words an operator can act on.
    pub reason: String,
    /// Set when the decision changed (or would change) the swarm: e.g. "replicas 2→4".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// The journal id of an admitted action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
}

/// Why an action does not go ahead: the decision and a reason a person can act on. The gate
/// refuses with it at admission, execution when an action no longer applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub decision: Decision,
    pub reason: String,
}

impl Refusal {
    pub fn new(decision: Decision, reason: impl Into<String>) -> Self {
        Self {
            decision,
            reason: reason.into(),
        }
    }
}
