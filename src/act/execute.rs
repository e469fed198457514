//! How an action is carried out against the engine, whatever decided it: send the change
//! stamped with its action id, tell from a read whether an update landed, pace the retries, and
//! follow a job run to its end. The pipeline's worker puts these in order with the journal.

use super::DockerError;
use super::Swarm;
use crate::clock::Clock;
use crate::model::{Change, JobTask, ServiceMode, ServiceState, Stamp, Template};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a job run's tasks are read.
const JOB_POLL: Duration = Duration::from_millis(500);

/// Waits between attempts: 0.2 s doubling to 5 s, each ±25 %, so that many queued actions do not
/// hammer a returning engine in lockstep.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    /// The next wait (jittered), doubling the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = jitter(self.next);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        wait
    }
}

fn jitter(base: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    base.mul_f64(factor)
}

/// Send `change` (with `template` for a rollback), writing `stamp` in the same update.
pub async fn send(
    swarm: &dyn Swarm,
    service: &ServiceState,
    change: Change,
    template: Option<&Template>,
    stamp: &Stamp,
) -> Result<(), DockerError> {
    match template {
        Some(template) => swarm.restore_template(service, template, stamp).await,
        None => swarm.apply(service, change, stamp).await,
    }
}

/// Whether the update of `action_id` is on the service as read: its id on the spec, or on the
/// PreviousSpec (someone updated the service after ours landed).
pub async fn landed(swarm: &dyn Swarm, service: &ServiceState, action_id: &str) -> bool {
    if service.carries_action(action_id) {
        return true;
    }
    match swarm.previous_action(&service.id).await {
        Ok(previous) => previous.as_deref() == Some(action_id),
        Err(_) => false,
    }
}

/// How following a job run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// Its task stopped for good (complete, failed, ...).
    Finished(JobTask),
    /// Still going at the deadline.
    TimedOut,
    /// `pause` said to stop (shutdown): the run goes on without us.
    Stopped,
}

/// Follow the run of `service` started with ForceUpdate = `run` until a task of it finishes or
/// `deadline` passes, reading every 0.5 s (on `clock`); `stop` turning true ends it early.
pub async fn follow_job(
    swarm: &dyn Swarm,
    service: &ServiceState,
    run: u64,
    deadline: SystemTime,
    clock: &dyn Clock,
    mut stop: watch::Receiver<bool>,
) -> JobEnd {
    loop {
        match swarm.job_tasks(&service.id, run).await {
            Ok(tasks) => {
                if let Some(task) = tasks.into_iter().find(JobTask::is_finished) {
                    return JobEnd::Finished(task);
                }
            }
            Err(e) => tracing::debug!(job = %service.name, error = %e, "job not readable yet"),
        }
        if clock.now() >= deadline {
            return JobEnd::TimedOut;
        }
        tokio::select! {
            _ = clock.sleep(JOB_POLL) => {}
            _ = stop.wait_for(|stopping| *stopping) => return JobEnd::Stopped,
        }
    }
}

/// Return a replicated job service to 0 replicas, so the next trigger starts a new run (a
/// replicated-job needs nothing); the update is stamped with `action_id` like any other.
pub async fn job_back_to_zero(
    swarm: &dyn Swarm,
    name: &str,
    action_id: &str,
) -> Result<(), DockerError> {
    for _ in 0..5 {
        let Some(service) = swarm.find_service(name).await? else {
            return Ok(());
        };
        let ServiceMode::Replicated { replicas } = service.mode else {
            return Ok(());
        };
        if replicas == 0 {
            return Ok(());
        }
        let change = Change::Replicas {
            from: replicas,
            to: 0,
        };
        match swarm.apply(&service, change, &Stamp::id(action_id)).await {
            Err(DockerError::OutOfSequence) => continue,
            other => return other,
        }
    }
    Err(DockerError::OutOfSequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter() {
        let mut backoff = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| backoff.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(150) && waits[0] <= Duration::from_millis(250));
        assert!(waits[1] >= Duration::from_millis(300) && waits[1] <= Duration::from_millis(500));
        for wait in &waits[5..] {
            assert!(*wait >= Duration::from_millis(3750) && *wait <= Duration::from_millis(6250));
        }
    }
}
