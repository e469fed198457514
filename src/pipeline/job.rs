//! backup_now after its run started: follow the job's task to completion or `backup.timeout`,
//! then return a replicated job service to 0 replicas, so the next trigger starts a new run.
//! How to follow and reset a job is act's ([`crate::act::execute`]); this turns it into an
//! outcome.

use super::{Finished, Pipeline};
use crate::act::execute::{follow_job, job_back_to_zero, JobEnd};
use crate::journal::{Intent, Outcome};
use crate::model::{Change, JobTask, ServiceState};

impl Pipeline {
    /// `None` when shutdown stopped the following (the action stays unfinished).
    pub(super) async fn follow_job(
        &self,
        intent: &Intent,
        service: &ServiceState,
        change: Change,
        run: u64,
    ) -> Option<Finished> {
        let timeout = self.settings.backup_timeout;
        let deadline = crate::clock::saturating_add(self.clock.now(), timeout);
        let stop = self.stop_signal();
        let end = follow_job(&*self.swarm, service, run, deadline, &*self.clock, stop).await;
        let mut finished = match end {
            JobEnd::Finished(task) => run_result(&service.name, &task, change),
            JobEnd::TimedOut => Finished {
                outcome: Outcome::TimedOut,
                reason: format!(
                    "job {} did not finish within backup.timeout ({})",
                    service.name,
                    humantime::format_duration(timeout)
                ),
                change: Some(change),
            },
            JobEnd::Stopped => return None,
        };
        if let Err(e) = job_back_to_zero(&*self.swarm, &intent.service, &intent.id).await {
            finished.reason = format!(
                "{}; could not return it to 0 replicas: {e}",
                finished.reason
            );
        }
        Some(finished)
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
