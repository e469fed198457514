//! Execution of one admitted action: it reads the service fresh, asks for the absolute target
//! again, has it journaled before sending, and treats "already there" as success, so a retry or
//! a replay after a crash never applies an action twice. Docker unreachable: jittered backoff
//! until `docker.retry_for`. A backup's run is followed to its end.
//!
//! Every update carries the action's id as a service label
//! ([`ACTION_LABEL`]), so an update whose answer was lost is decided
//! by a re-read, never by the error: `succeeded` when the read shows the id, `expired` only once
//! a read proves it did not land.
//!
//! Act decides nothing and records nothing itself: the decision is the gate's and the journal
//! is the journal's, both reached through [`Steps`], which the pipeline provides.

use super::execute::{self, Backoff, JobEnd};
use super::{DockerError, Swarm};
use crate::clock::{from_unix_ms, saturating_add, Clock};
use crate::decision::{Decision, Refusal};
use crate::journal::{Intent, JournalError, Outcome};
use crate::model::template::short;
use crate::model::{Change, JobTask, Planned, ServiceState, Stamp, Template, ACTION_LABEL};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Recomputations after "update out of sequence" before giving up.
const MAX_OUT_OF_SEQUENCE: usize = 5;

/// How an action ended: what the journal's outcome line says.
#[derive(Debug, Clone)]
pub struct Finished {
    pub outcome: Outcome,
    pub reason: String,
    pub change: Option<Change>,
    /// For a `skipped` outcome, the gate's decision on the fresh read (`cooldown` when another
    /// replica's claim was there first, `busy`, ...).
    pub refused_as: Option<Decision>,
}

/// Whether an update of this action may have reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Nothing was sent: once `retry_for` has passed, the action is expired without a read.
    No,
    /// An update was sent and its answer lost, or a previous life of swarmpilot may have sent
    /// one: only a read of the service can tell.
    Maybe,
}

/// What execution needs from the steps around it.
pub trait Steps: Send + Sync {
    fn swarm(&self) -> &dyn Swarm;
    /// Deadlines and the waits between attempts.
    fn clock(&self) -> &dyn Clock;
    /// `docker.retry_for`: how long an action keeps trying while Docker is unreachable.
    fn retry_for(&self) -> Duration;
    /// `backup.timeout`: how long a backup's run is followed.
    fn backup_timeout(&self) -> Duration;
    /// Turns true on shutdown: whatever only waits stops.
    fn stop_signal(&self) -> watch::Receiver<bool>;
    /// Wait `d`; false (at once) on shutdown.
    fn pause(&self, d: Duration) -> impl Future<Output = bool> + Send;
    /// Every read's result, for `swarmpilot_docker_up`.
    fn note_docker<T>(&self, read: &Result<T, DockerError>);
    /// Remember (journal) the templates of a fresh read; the PreviousSpec template.
    fn observe(&self, service: &ServiceState) -> impl Future<Output = Option<Template>> + Send;
    /// The gate's decision on a fresh read, for the intent's action as admitted.
    fn decide(
        &self,
        intent: &Intent,
        service: &ServiceState,
        previous: Option<&Template>,
    ) -> impl Future<Output = Result<Planned, Refusal>> + Send;
    /// Journal the target before it is sent.
    fn journal_target(
        &self,
        intent: &Intent,
        change: Change,
    ) -> impl Future<Output = Result<(), JournalError>> + Send;
    /// A template seen on `service`, for a rollback to restore.
    fn template(&self, service: &str, hash: u64) -> Option<Template>;
    /// A rollback moved `service` away from template `hash`.
    fn rolled_back_from(&self, service: &str, hash: u64);
    /// Cluster mode: a claim of another replica's on the fresh read that forbids this action
    /// now (cooldown, the same delivery, the service's hourly budget). Local mode: never.
    fn claimed(&self, intent: &Intent, service: &ServiceState) -> Result<(), Refusal>;
    /// Whether every acting update must carry a claim (cluster mode), even one that changes
    /// nothing else.
    fn writes_claims(&self) -> bool;
    /// What the update of `change` writes besides it: the action's id and, in cluster mode,
    /// its claim.
    fn stamp(&self, intent: &Intent, service: &ServiceState, change: Change) -> Stamp;
    /// The action's update holds on the swarm (sent now, or seen there after a lost answer).
    fn landed(&self, intent: &Intent, change: Change);
}

/// How one attempt ended.
enum Step {
    Done(Finished),
    /// Docker did not answer: wait and try again until `retry_for` has passed.
    Unreachable(String),
    /// swarmpilot is shutting down: the action stays unfinished in the journal and is resumed
    /// at the next start.
    Stopped,
}

/// Run `intent` to its outcome; `None` when shutdown stopped it first (it stays unfinished and
/// is resumed at the next start). The caller holds the service's execution lock.
pub async fn execute<S: Steps>(
    steps: &S,
    intent: &Intent,
    target: Option<Change>,
    sent: Sent,
) -> Option<Finished> {
    Worker { steps }.run(intent, target, sent).await
}

struct Worker<'a, S> {
    steps: &'a S,
}

impl<S: Steps> Worker<'_, S> {
    async fn run(
        &self,
        intent: &Intent,
        mut target: Option<Change>,
        mut sent: Sent,
    ) -> Option<Finished> {
        let deadline = saturating_add(from_unix_ms(intent.time_ms), self.steps.retry_for());
        let mut backoff = Backoff::default();
        let mut last_error = String::from("not tried");
        loop {
            if self.steps.clock().now() >= deadline {
                return self.settle(intent, target, sent, &last_error).await;
            }
            match self.attempt(intent, &mut target, &mut sent).await {
                Step::Done(finished) => return Some(finished),
                Step::Stopped => return None,
                Step::Unreachable(reason) => {
                    tracing::debug!(id = %intent.id, %reason, "Docker unreachable; retrying");
                    last_error = reason;
                    if !self.steps.pause(backoff.next_wait()).await {
                        return None;
                    }
                }
            }
        }
    }

    /// `retry_for` has passed: nothing more is sent. An action that may have been sent ends
    /// only on a read of the service: `succeeded` if its update is there, `expired` if the read
    /// proves it is not. While Docker stays away the read is retried; the action's cooldown
    /// stays held meanwhile, so nothing acts on a guess.
    async fn settle(
        &self,
        intent: &Intent,
        target: Option<Change>,
        sent: Sent,
        last_error: &str,
    ) -> Option<Finished> {
        let retry_for = humantime::format_duration(self.steps.retry_for());
        if sent == Sent::No {
            return Some(Finished {
                outcome: Outcome::Expired,
                reason: format!(
                    "Docker unreachable for longer than docker.retry_for ({retry_for}); nothing was sent: {last_error}"
                ),
                change: target,
                refused_as: None,
            });
        }
        let mut backoff = Backoff::default();
        loop {
            let read = self.steps.swarm().find_service(&intent.service).await;
            self.steps.note_docker(&read);
            match read {
                Ok(Some(service)) => {
                    if let (true, Some(change)) = (self.landed(intent, &service).await, target) {
                        let reason = "its update landed (seen on the service after its answer was lost)";
                        return match self.completed(intent, &service, change, reason).await {
                            Step::Done(finished) => Some(finished),
                            _ => None,
                        };
                    }
                    let seen = service.labels.get(ACTION_LABEL).map_or("none", |v| v.as_str());
                    return Some(Finished {
                        outcome: Outcome::Expired,
                        reason: format!(
                            "not done within docker.retry_for ({retry_for}); a read of the service proves its update did not land ({ACTION_LABEL}: {seen})"
                        ),
                        change: target,
                        refused_as: None,
                    });
                }
                Ok(None) => {
                    return Some(Finished {
                        outcome: Outcome::Expired,
                        reason: format!(
                            "not done within docker.retry_for ({retry_for}) and the service {} no longer exists",
                            intent.service
                        ),
                        change: target,
                        refused_as: None,
                    })
                }
                Err(e) => {
                    tracing::warn!(id = %intent.id, error = %e, "whether the update landed is unknown until Docker answers; reading again");
                    if !self.steps.pause(backoff.next_wait()).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn landed(&self, intent: &Intent, service: &ServiceState) -> bool {
        execute::landed(self.steps.swarm(), service, &intent.id).await
    }

    /// One read → target → update round, with bounded recomputation on "out of sequence".
    async fn attempt(&self, intent: &Intent, target: &mut Option<Change>, sent: &mut Sent) -> Step {
        for _ in 0..MAX_OUT_OF_SEQUENCE {
            let read = self.steps.swarm().find_service(&intent.service).await;
            self.steps.note_docker(&read);
            let service = match read {
                Ok(Some(service)) => service,
                Ok(None) => {
                    return skipped(Refusal::new(
                        Decision::NoService,
                        format!("no service named {}", intent.service),
                    ))
                }
                Err(e) => return docker_failure(e, *target),
            };
            let previous = self.steps.observe(&service).await;
            if let (Sent::Maybe, Some(change)) = (*sent, *target) {
                if self.landed(intent, &service).await {
                    let reason =
                        "its update landed (seen on the service after its answer was lost)";
                    return self.completed(intent, &service, change, reason).await;
                }
            }
            if let Err(refusal) = self.steps.claimed(intent, &service) {
                return skipped(refusal);
            }
            let Planned { change, why } = match *target {
                // In cluster mode the claim must land even when the target is there already
                // (an operator scaled by hand): the same target is sent with it. Not for a
                // job: any update of a job service starts another run.
                Some(change) if change.is_reached_by(&service) => {
                    let is_job = matches!(change, Change::Job { .. });
                    if !self.steps.writes_claims() || is_job {
                        let reason = "target already reached; nothing sent";
                        return self.completed(intent, &service, change, reason).await;
                    }
                    Planned::from(change)
                }
                _ => match self
                    .recompute(intent, &service, previous.as_ref(), target)
                    .await
                {
                    Ok(planned) => planned,
                    Err(step) => return step,
                },
            };
            let template = match change {
                Change::Template { to, .. } => match self.steps.template(&service.name, to) {
                    Some(template) => Some(template),
                    None => {
                        let reason = format!("template {} is no longer known", short(to));
                        return failed(reason, Some(change));
                    }
                },
                _ => None,
            };
            let stamp = self.steps.stamp(intent, &service, change);
            let sending = execute::send(
                self.steps.swarm(),
                &service,
                change,
                template.as_ref(),
                &stamp,
            );
            match sending.await {
                Ok(()) => {
                    let reason = why
                        .unwrap_or_else(|| format!("{} {}", intent.action.kind(), intent.service));
                    return self.completed(intent, &service, change, &reason).await;
                }
                // Versioned: the engine refused it, nothing landed.
                Err(DockerError::OutOfSequence) => continue,
                Err(DockerError::Unreachable(reason)) => {
                    *sent = Sent::Maybe;
                    return Step::Unreachable(reason);
                }
                // A server error, or an answer that cannot be read, may come after the engine
                // committed the update: read first.
                Err(e @ (DockerError::Api { status: 500.., .. } | DockerError::BadAnswer(_))) => {
                    *sent = Sent::Maybe;
                    return self.decide_after_error(intent, change, e).await;
                }
                Err(e) => return failed(e.to_string(), Some(change)),
            }
        }
        failed(
            "the service kept changing under us (update out of sequence)".into(),
            *target,
        )
    }

    /// The gate's decision on the fresh read, journaled when it differs from the target so far.
    async fn recompute(
        &self,
        intent: &Intent,
        service: &ServiceState,
        previous: Option<&Template>,
        target: &mut Option<Change>,
    ) -> Result<Planned, Step> {
        let planned = self
            .steps
            .decide(intent, service, previous)
            .await
            .map_err(skipped)?;
        let change = planned.change;
        if *target != Some(change) {
            if let Err(e) = self.steps.journal_target(intent, change).await {
                return Err(failed(e.to_string(), Some(change)));
            }
            *target = Some(change);
        }
        Ok(planned)
    }

    /// After a server error: succeeded if a read shows the update, failed if it proves it is
    /// not there, and retried like an outage if the read fails too.
    async fn decide_after_error(
        &self,
        intent: &Intent,
        change: Change,
        error: DockerError,
    ) -> Step {
        let read = self.steps.swarm().find_service(&intent.service).await;
        self.steps.note_docker(&read);
        match read {
            Ok(Some(service)) if self.landed(intent, &service).await => {
                let reason = format!("its update landed although Docker answered: {error}");
                self.completed(intent, &service, change, &reason).await
            }
            Ok(_) => failed(error.to_string(), Some(change)),
            Err(e) => docker_failure(e, Some(change)),
        }
    }

    /// The change holds on the swarm; what remains depends on the action.
    async fn completed(
        &self,
        intent: &Intent,
        service: &ServiceState,
        change: Change,
        reason: &str,
    ) -> Step {
        self.steps.landed(intent, change);
        match change {
            Change::Template { from, .. } => {
                self.steps.rolled_back_from(&service.name, from);
                succeeded(change, reason)
            }
            Change::Job { to, .. } => match self.follow_job(intent, service, change, to).await {
                Some(finished) => Step::Done(finished),
                None => Step::Stopped,
            },
            _ => succeeded(change, reason),
        }
    }

    /// `None` when shutdown stopped the following (the action stays unfinished).
    async fn follow_job(
        &self,
        intent: &Intent,
        service: &ServiceState,
        change: Change,
        run: u64,
    ) -> Option<Finished> {
        let timeout = self.steps.backup_timeout();
        let deadline = saturating_add(self.steps.clock().now(), timeout);
        let stop = self.steps.stop_signal();
        let end = execute::follow_job(
            self.steps.swarm(),
            service,
            run,
            deadline,
            self.steps.clock(),
            stop,
        )
        .await;
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
                refused_as: None,
            },
            JobEnd::Stopped => return None,
        };
        if let Err(e) =
            execute::job_back_to_zero(self.steps.swarm(), &intent.service, &intent.id).await
        {
            finished.reason = format!(
                "{}; could not return it to 0 replicas: {e}",
                finished.reason
            );
        }
        Some(finished)
    }
}

fn succeeded(change: Change, reason: &str) -> Step {
    Step::Done(Finished {
        outcome: Outcome::Succeeded,
        reason: reason.to_string(),
        change: Some(change),
        refused_as: None,
    })
}

fn skipped(refusal: Refusal) -> Step {
    Step::Done(Finished {
        outcome: Outcome::Skipped,
        reason: format!("{}: {}", refusal.decision, refusal.reason),
        change: None,
        refused_as: Some(refusal.decision),
    })
}

fn failed(reason: String, change: Option<Change>) -> Step {
    Step::Done(Finished {
        outcome: Outcome::Failed,
        reason,
        change,
        refused_as: None,
    })
}

fn docker_failure(e: DockerError, change: Option<Change>) -> Step {
    // Only reads reach here: nothing was sent.
    match e {
        DockerError::Unreachable(reason) => Step::Unreachable(reason),
        other => failed(other.to_string(), change),
    }
}

fn run_result(name: &str, task: &JobTask, change: Change) -> Finished {
    let exit = task.exit_code.unwrap_or(-1);
    if task.state == "complete" && exit <= 0 {
        return Finished {
            outcome: Outcome::Succeeded,
            reason: format!("job {name} completed"),
            change: Some(change),
            refused_as: None,
        };
    }
    let error = task.error.as_deref().unwrap_or("no error message");
    Finished {
        outcome: Outcome::Failed,
        reason: format!("job {name} {}: {error} (exit code {exit})", task.state),
        change: Some(change),
        refused_as: None,
    }
}
