//! The act step: the swarm seen through a small trait, so decision logic can be unit-tested, and
//! [`docker::DockerSwarm`], the real engine through bollard, which is the only implementation the
//! service and the integration tests use. The swarm's own types (a service as read, a change, a
//! task template) live below every step, in [`crate::model`].

pub mod docker;
pub mod endpoint;
pub mod execute;
pub mod raw;
pub mod register;
pub mod view;
pub mod worker;

use std::future::Future;
use std::pin::Pin;

use crate::model::{Change, JobTask, ServiceState, ServiceSummary, Stamp, Template};

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
    /// The engine answered, but not in a form swarmpilot can read (malformed JSON): after an
    /// update, whether it landed is unknown until a read.
    #[error("unreadable answer from the Docker engine: {0}")]
    BadAnswer(String),
}

pub type SwarmFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DockerError>> + Send + 'a>>;

/// What swarmpilot needs from a swarm manager.
pub trait Swarm: Send + Sync {
    /// The service whose name is exactly `name` (never an ID or a prefix), if any.
    fn find_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceState>>;

    /// Apply `change` to the service as it was read (its version index guards the write),
    /// writing `stamp` (the action's id, cluster claims) in the same update.
    /// `Change::Template` needs the template itself: use [`Swarm::restore_template`].
    fn apply<'a>(
        &'a self,
        service: &'a ServiceState,
        change: Change,
        stamp: &'a Stamp,
    ) -> SwarmFuture<'a, ()>;

    /// Replace the service's task template, keeping everything else (replicas included),
    /// writing `stamp` in the same update.
    fn restore_template<'a>(
        &'a self,
        service: &'a ServiceState,
        template: &'a Template,
        stamp: &'a Stamp,
    ) -> SwarmFuture<'a, ()>;

    /// Set `labels` on the service as read and change nothing else (its version index guards
    /// the write): cluster mode's register.
    fn set_labels<'a>(
        &'a self,
        service: &'a ServiceState,
        labels: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()>;

    /// Create a service named `name` that runs nothing (0 replicas), carrying `labels`: cluster
    /// mode's register. A name taken meanwhile is `Api { status: 409, .. }`.
    fn create_register<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()>;

    /// Keep `template` of `service` where every manager can read it (a Swarm config, replicated
    /// by Raft): cluster mode's rollback history. Already kept is fine.
    fn save_template<'a>(&'a self, service: &'a str, template: &'a Template)
        -> SwarmFuture<'a, ()>;

    /// The templates kept for `service` by [`Swarm::save_template`], oldest first.
    fn saved_templates<'a>(&'a self, service: &'a str) -> SwarmFuture<'a, Vec<Template>>;

    /// The template of the service's `PreviousSpec`, if the engine keeps one.
    fn previous_template<'a>(&'a self, service_id: &'a str) -> SwarmFuture<'a, Option<Template>>;

    /// The [`ACTION_LABEL`](crate::model::ACTION_LABEL) of the service's `PreviousSpec`: an update of ours that landed and
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
