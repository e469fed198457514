//! When a service has converged: the test `secret rotate` and `deploy` share, and the polling
//! loop around it. Converged means Swarm is not mid-update and as many tasks as the service
//! wants are running the spec we wait for; jobs and services scaled to 0 are converged at once.
//! A paused update or a rollback (started, paused or completed) is a failure: Swarm gave up on
//! the spec we sent. Convergence counts once it has held, with the same running tasks, for
//! [`STABLE`]: a task that exits at once is briefly "running" too.

use crate::act::docker::classify;
use crate::act::DockerError;
use bollard::models::{Service, ServiceUpdateStatusStateEnum as UpdateState, Task, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;
use bollard::Docker;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How far a service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Converged,
    /// Still moving; the text says how far ("1/2 tasks running: task: non-zero exit (1)").
    Pending(String),
    /// Swarm gave up on the spec (update paused or rolled back).
    Failed(String),
}

/// Why waiting ended without convergence.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("{0}")]
    Failed(String),
    #[error("not converged within {deadline:?}: {last}")]
    Deadline { deadline: Duration, last: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// Judge one read of a service and its tasks. `current` says whether a task runs the spec being
/// waited for; `rolled_back_ok` accepts a completed rollback (when the spec waited for is the
/// one Swarm rolled back to).
pub fn assess(
    service: &Service,
    tasks: &[Task],
    current: &dyn Fn(&Task) -> bool,
    rolled_back_ok: bool,
) -> Progress {
    let status = service.update_status.as_ref();
    let message = status
        .and_then(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match status.and_then(|s| s.state) {
        Some(UpdateState::UPDATING) => return Progress::Pending(format!("updating{message}")),
        Some(UpdateState::ROLLBACK_COMPLETED) if rolled_back_ok => {}
        Some(
            state @ (UpdateState::PAUSED
            | UpdateState::ROLLBACK_STARTED
            | UpdateState::ROLLBACK_PAUSED
            | UpdateState::ROLLBACK_COMPLETED),
        ) => return Progress::Failed(format!("update {state}{message}")),
        _ => {}
    }
    let mode = service.spec.as_ref().and_then(|s| s.mode.as_ref());
    if mode.is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some()) {
        return Progress::Converged;
    }
    let replicas = mode.map_or(Some(1), |m| {
        if m.global.is_some() {
            None
        } else {
            Some(m.replicated.as_ref().and_then(|r| r.replicas).unwrap_or(1))
        }
    });
    let wanted: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let running = wanted
        .iter()
        .filter(|t| is_running(t) && current(t))
        .count() as i64;
    let desired = replicas.unwrap_or(wanted.len().max(1) as i64);
    if running >= desired {
        return Progress::Converged;
    }
    Progress::Pending(format!(
        "{running}/{desired} tasks running{}",
        last_error(tasks)
    ))
}

fn is_running(task: &Task) -> bool {
    task.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
}

/// The newest task error, which usually says why tasks do not stay up.
fn last_error(tasks: &[Task]) -> String {
    tasks
        .iter()
        .filter_map(|t| {
            let status = t.status.as_ref()?;
            let err = status.err.as_deref().filter(|e| !e.is_empty())?;
            Some((status.timestamp.clone().unwrap_or_default(), err))
        })
        .max()
        .map(|(_, err)| format!(": {err}"))
        .unwrap_or_default()
}

/// Whether a task runs the service's current task template. The engine reports `Runtime` on the
/// service but not on its tasks, so it is left out of the comparison.
pub fn runs_current_template(service: &Service, task: &Task) -> bool {
    let strip = |spec: Option<&bollard::models::TaskSpec>| {
        spec.cloned().map(|mut s| {
            s.runtime = None;
            serde_json::to_value(s).unwrap_or_default()
        })
    };
    let template = service.spec.as_ref().and_then(|s| s.task_template.as_ref());
    strip(template) == strip(task.spec.as_ref())
}

/// The tasks of one service.
pub async fn tasks_of(docker: &Docker, service_id: &str) -> Result<Vec<Task>, DockerError> {
    let filters = HashMap::from([("service", vec![service_id])]);
    let options = ListTasksOptionsBuilder::new().filters(&filters).build();
    docker.list_tasks(Some(options)).await.map_err(classify)
}

/// Poll the service until it converges, fails, or `timeout` passes.
pub async fn wait(
    docker: &Docker,
    service_id: &str,
    timeout: Duration,
    current: &(dyn Fn(&Task) -> bool + Sync),
    rolled_back_ok: bool,
) -> Result<(), WaitError> {
    let deadline = crate::clock::saturating_add_instant(Instant::now(), timeout);
    let mut settle = Settle::new(STABLE);
    loop {
        let service = docker
            .inspect_service(service_id, None)
            .await
            .map_err(classify)?;
        let tasks = tasks_of(docker, service_id).await?;
        let progress = assess(&service, &tasks, current, rolled_back_ok);
        match settle.observe(progress, &tasks, Instant::now()) {
            Progress::Converged => return Ok(()),
            Progress::Failed(reason) => return Err(WaitError::Failed(reason)),
            Progress::Pending(last) if Instant::now() >= deadline => {
                return Err(WaitError::Deadline {
                    deadline: timeout,
                    last,
                })
            }
            Progress::Pending(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Swarm's own progress moves in steps of about a second.
pub const POLL: Duration = Duration::from_millis(500);
/// As long as Swarm's default update monitor, and as `docker service create` waits.
pub const STABLE: Duration = Duration::from_secs(5);

/// Turns a converged read into a converged service once the same tasks have stayed running for
/// the stable period.
#[derive(Debug)]
pub struct Settle {
    stable: Duration,
    seen: Option<(Vec<String>, Instant)>,
}

impl Settle {
    pub fn new(stable: Duration) -> Self {
        Self { stable, seen: None }
    }

    pub fn observe(&mut self, progress: Progress, tasks: &[Task], now: Instant) -> Progress {
        if progress != Progress::Converged {
            self.seen = None;
            return progress;
        }
        let ids = running_ids(tasks);
        let since = match &self.seen {
            Some((seen, since)) if *seen == ids => *since,
            _ => {
                self.seen = Some((ids, now));
                now
            }
        };
        if now.duration_since(since) >= self.stable {
            Progress::Converged
        } else {
            Progress::Pending("tasks running, waiting to see them stay up".into())
        }
    }
}

fn running_ids(tasks: &[Task]) -> Vec<String> {
    let mut ids: Vec<String> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING) && is_running(t))
        .filter_map(|t| t.id.clone())
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests;
