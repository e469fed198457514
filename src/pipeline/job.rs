//! backup_now after its run started: follow the job's task to completion or `backup.timeout`,
//! then return a replicated job service to 0 replicas, so the next trigger starts a new run.

use super::{Finished, Pipeline};
use crate::act::DockerError;
use crate::journal::{Intent, Outcome};
use crate::model::{Change, JobTask, ServiceMode, ServiceState};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(500);

impl Pipeline {
    pub(super) async fn follow_job(
        &self,
        intent: &Intent,
        service: &ServiceState,
        change: Change,
        run: u64,
    ) -> Option<Finished> {
        let deadline = crate::clock::saturating_add(self.clock.now(), self.settings.backup_timeout);
        let mut finished = loop {
            match self.swarm.job_tasks(&service.id, run).await {
                Ok(tasks) => {
                    if let Some(task) = tasks.iter().find(|t| t.is_finished()) {
                        break run_result(&service.name, task, change);
                    }
                }
                Err(e) => tracing::debug!(job = %service.name, error = %e, "job not readable yet"),
            }
            if self.clock.now() >= deadline {
                break Finished {
                    outcome: Outcome::TimedOut,
                    reason: format!(
                        "job {} did not finish within backup.timeout ({})",
                        service.name,
                        humantime::format_duration(self.settings.backup_timeout)
                    ),
                    change: Some(change),
                };
            }
            if !self.pause(POLL).await {
                return None;
            }
        };
        if let Err(e) = self.job_back_to_zero(intent).await {
            finished.reason = format!(
                "{}; could not return it to 0 replicas: {e}",
                finished.reason
            );
        }
        Some(finished)
    }

    /// A replicated job service goes back to 0 replicas (a replicated-job needs nothing).
    async fn job_back_to_zero(&self, intent: &Intent) -> Result<(), DockerError> {
        for _ in 0..5 {
            let Some(service) = self.swarm.find_service(&intent.service).await? else {
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
            match self.swarm.apply(&service, change, &intent.id).await {
                Err(DockerError::OutOfSequence) => continue,
                other => return other,
            }
        }
        Err(DockerError::OutOfSequence)
    }
}

fn run_result(name: &str, task: &JobTask, change: Change) -> Finished {
    let exit = task.exit_code.unwrap_or(-1);
    if task.state == "complete" && exit <= 0 {
        return Finished {
            outcome: Outcome::Succeeded,
            reason: format!("job {name} completed"),
            change: Some(change),
        };
    }
    let error = task.error.as_deref().unwrap_or("no error message");
    Finished {
        outcome: Outcome::Failed,
        reason: format!("job {name} {}: {error} (exit code {exit})", task.state),
        change: Some(change),
    }
}
