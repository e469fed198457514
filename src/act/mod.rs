//! The act step: the swarm seen through a small trait, so decision logic can be unit-tested, and
//! [`docker::DockerSwarm`], the real engine through bollard, which is the only implementation the
//! service and the integration tests use.

pub mod docker;
pub mod endpoint;
pub mod raw;
pub mod template;
pub mod view;

use bollard::models::ServiceSpec;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
pub use template::Template;

/// The service label every update swarmpilot sends carries, set to the action's id in the same
/// update that scales, restarts or rolls back. An update whose answer was lost (a timeout, a
/// dropped connection, an engine that vanished) is then decided by a re-read of the service:
/// the id is there or it is not. It costs no extra update and no extra Raft write.
pub const ACTION_LABEL: &str = "swarmpilot.action";

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

/// An absolute target, so a retry or replay can never apply an action twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Replicas {
        from: u64,
        to: u64,
    },
    ForceUpdate {
        from: u64,
        to: u64,
    },
    /// Replace the task template (by hash, see [`Template::hash`]); replicas stay as they are.
    Template {
        from: u64,
        to: u64,
    },
    /// Start a job service run: ForceUpdate to `to` (and 1 replica for the replicated form).
    Job {
        from: u64,
        to: u64,
    },
}

impl Change {
    /// Whether the service as read already shows this change (a replay after a crash, or an
    /// operator who did the same by hand): then there is nothing left to send.
    pub fn is_reached_by(&self, service: &ServiceState) -> bool {
        match (*self, service.mode) {
            (Change::Replicas { to, .. }, ServiceMode::Replicated { replicas }) => replicas == to,
            (Change::ForceUpdate { to, .. } | Change::Job { to, .. }, _) => {
                service.force_update >= to
            }
            (Change::Template { to, .. }, _) => service.template.hash() == to,
            (Change::Replicas { .. }, _) => false,
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Replicas { from, to } => write!(f, "replicas {from}→{to}"),
            Change::ForceUpdate { from, to } => write!(f, "force_update {from}→{to}"),
            Change::Template { from, to } => {
                write!(
                    f,
                    "template {}→{}",
                    template::short(*from),
                    template::short(*to)
                )
            }
            Change::Job { from, to } => write!(f, "job run force_update {from}→{to}"),
        }
    }
}

/// Why a Docker call did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerError {
    /// The engine did not answer (socket missing, connection refused, timeout): retrying may work.
    #[error("Docker engine unreachable: {0}")]
    Unreachable(String),
    /// The spec changed between our read and our update; re-read and recompute.
    #[error("update out of sequence")]
    OutOfSequence,
    /// `docker.host` / `DOCKER_HOST` names no engine swarmpilot can reach.
    #[error(transparent)]
    Endpoint(#[from] endpoint::EndpointError),
    /// The engine answered with an error.
    #[error("Docker API error {status}: {message}")]
    Api { status: u16, message: String },
    /// The change cannot be expressed to the engine (a replica count past its signed 64-bit
    /// field, from a journal written before rules were bounded): never sent, never retried.
    #[error("cannot ask Docker for {0}")]
    Unrepresentable(String),
}

pub type SwarmFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DockerError>> + Send + 'a>>;

/// What swarmpilot needs from a swarm manager.
pub trait Swarm: Send + Sync {
    /// The service whose name is exactly `name` (never an ID or a prefix), if any.
    fn find_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceState>>;

    /// Apply `change` to the service as it was read (its version index guards the write),
    /// stamping [`ACTION_LABEL`] with `action_id` in the same update.
    /// `Change::Template` needs the template itself: use [`Swarm::restore_template`].
    fn apply<'a>(
        &'a self,
        service: &'a ServiceState,
        change: Change,
        action_id: &'a str,
    ) -> SwarmFuture<'a, ()>;

    /// Replace the service's task template, keeping everything else (replicas included),
    /// stamping [`ACTION_LABEL`] with `action_id` in the same update.
    fn restore_template<'a>(
        &'a self,
        service: &'a ServiceState,
        template: &'a Template,
        action_id: &'a str,
    ) -> SwarmFuture<'a, ()>;

    /// The template of the service's `PreviousSpec`, if the engine keeps one.
    fn previous_template<'a>(&'a self, service_id: &'a str) -> SwarmFuture<'a, Option<Template>>;

    /// The [`ACTION_LABEL`] of the service's `PreviousSpec`: an update of ours that landed and
    /// was then replaced by someone else's (a `docker stack deploy` drops our label).
    fn previous_action<'a>(&'a self, service_id: &'a str) -> SwarmFuture<'a, Option<String>>;

    /// The tasks of a job service's run started with ForceUpdate = `force_update`.
    fn job_tasks<'a>(
        &'a self,
        service_id: &'a str,
        force_update: u64,
    ) -> SwarmFuture<'a, Vec<JobTask>>;

    /// Every service carrying `<opt_in_label>=true`, with its running task count.
    fn managed_services<'a>(
        &'a self,
        opt_in_label: &'a str,
    ) -> SwarmFuture<'a, Vec<ServiceSummary>>;

    /// Whether the engine answers.
    fn ping(&self) -> SwarmFuture<'_, ()>;
}
