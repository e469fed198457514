//! A service as swarmpilot reads it, its tasks, and the label that stamps our updates.

use super::Template;
use bollard::models::ServiceSpec;
use std::collections::HashMap;

/// The service label every update swarmpilot sends carries, set to the action's id in the same
/// update that scales, restarts or rolls back. An update whose answer was lost (a timeout, a
/// dropped connection, an engine that vanished) is then decided by a re-read of the service:
/// the id is there or it is not. It costs no extra update and no extra Raft write.
pub const ACTION_LABEL: &str = "swarmpilot.action";

/// What an acting update writes on the service besides its change: the action's id (under
/// [`ACTION_LABEL`]) and, in cluster mode, the gate's claims — all in the same update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    pub action_id: String,
    pub labels: Vec<(String, String)>,
}

impl Stamp {
    /// Just the action's id.
    pub fn id(action_id: &str) -> Self {
        Self {
            action_id: action_id.to_string(),
            labels: Vec::new(),
        }
    }
}

/// Update states in which any spec update would resume or disturb a rollout.
pub const BUSY_UPDATE_STATES: [&str; 4] =
    ["updating", "paused", "rollback_started", "rollback_paused"];

/// Whether a service in update state `state` is busy with a rollout (see [`BUSY_UPDATE_STATES`]).
pub fn is_busy_update_state(state: &str) -> bool {
    BUSY_UPDATE_STATES.contains(&state)
}

/// How a service schedules its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceMode {
    Replicated { replicas: u64 },
    Global,
    ReplicatedJob,
    GlobalJob,
}

/// A fresh read of one service: what gating needs, plus the spec to send back unchanged but for
/// the one field an action sets.
#[derive(Debug, Clone)]
pub struct ServiceState {
    pub id: String,
    pub name: String,
    /// The spec's version index; an update must carry it (optimistic concurrency).
    pub version: u64,
    pub labels: HashMap<String, String>,
    pub mode: ServiceMode,
    /// Docker's UpdateStatus.State ("updating", "paused", ...), `None` if never updated.
    pub update_state: Option<String>,
    pub force_update: u64,
    /// The current task template, for rollback.
    pub template: Template,
    pub spec: ServiceSpec,
}

/// One managed service as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSummary {
    pub name: String,
    pub image: String,
    /// `None` for global services.
    pub desired: Option<u64>,
    pub running: u64,
    pub update_state: Option<String>,
}

/// One task of a job service run, as far as it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTask {
    /// Docker's task state: "pending", "running", "complete", "failed", ...
    pub state: String,
    pub error: Option<String>,
    pub exit_code: Option<i64>,
}

impl ServiceState {
    /// Whether the update of action `id` is what this read of the service shows.
    pub fn carries_action(&self, id: &str) -> bool {
        self.labels.get(ACTION_LABEL).is_some_and(|v| v == id)
    }
}

impl JobTask {
    /// Whether the task has stopped for good.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "complete" | "failed" | "rejected" | "shutdown" | "orphaned" | "remove"
        )
    }
}
