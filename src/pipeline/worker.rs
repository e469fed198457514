//! Execution of one admitted action, in the background, one at a time per service. It reads the
//! service fresh, recomputes the absolute target, journals it before sending, and treats "already
//! there" as success, so a retry or a replay after a crash never applies an action twice.
//!
//! Every update carries the action's id as a service label ([`ACTION_LABEL`](crate::model::ACTION_LABEL)), so an update
//! whose answer was lost is decided by a re-read, never by the error: `succeeded` when the read
//! shows the id, `expired` only once a read proves it did not land.

use super::{action_key, from_unix_ms, unix_ms, Finished, Pipeline};
use crate::act::execute::{self, Backoff};
use crate::act::DockerError;
use crate::clock::saturating_add;
use crate::decision::Decision;
use crate::gate::{owner_of, Refusal};
use crate::journal::{Entry, Intent, Outcome};
use crate::model::template::short;
use crate::model::{Change, ServiceState, ACTION_LABEL};
use crate::record::grafana::ActionNote;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Mutex};

/// Recomputations after "update out of sequence" before giving up.
const MAX_OUT_OF_SEQUENCE: usize = 5;
/// How often an outcome that could not be journaled (a full disk) is tried again.
const OUTCOME_RETRY: Duration = Duration::from_secs(2);

/// How one attempt ended.
pub(super) enum Step {
    Done(Finished),
    /// Docker did not answer: wait and try again until `retry_for` has passed.
    Unreachable(String),
    /// swarmpilot is shutting down: the action stays unfinished in the journal and is resumed
    /// at the next start.
    Stopped,
}

/// Whether an update of this action may have reached the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Nothing was sent: once `retry_for` has passed, the action is expired without a read.
    No,
    /// An update was sent and its answer lost, or a previous life of swarmpilot may have sent
    /// one: only a read of the service can tell.
    Maybe,
}

impl Pipeline {
    /// Run an admitted action to its outcome, journal the outcome and report it to `reply`.
    pub(crate) async fn execute(
        self: Arc<Self>,
        intent: Intent,
        target: Option<Change>,
        reply: Option<oneshot::Sender<Finished>>,
    ) {
        let lock = self.exec_lock(&intent.service);
        let _turn = lock.lock().await;
        self.execute_locked(&intent, target, Sent::No, reply).await;
    }

    /// [`Pipeline::execute`] for a caller that holds the service's execution lock.
    pub(crate) async fn execute_locked(
        &self,
        intent: &Intent,
        target: Option<Change>,
        sent: Sent,
        reply: Option<oneshot::Sender<Finished>>,
    ) {
        if self.is_stopping() {
            return;
        }
        let Some(finished) = self.run_until_done(intent, target, sent).await else {
            tracing::info!(id = %intent.id, service = %intent.service, "shutting down: the action stays unfinished and is resumed at the next start");
            return;
        };
        self.finish(intent, &finished).await;
        if let Some(reply) = reply {
            let _ = reply.send(finished);
        }
    }

    /// The lock that makes a service's actions run one at a time.
    pub(crate) fn exec_lock(&self, service: &str) -> Arc<Mutex<()>> {
        self.exec_locks.get(service)
    }

    async fn run_until_done(
        &self,
        intent: &Intent,
        mut target: Option<Change>,
        mut sent: Sent,
    ) -> Option<Finished> {
        let deadline = saturating_add(from_unix_ms(intent.time_ms), self.settings.retry_for);
        let mut backoff = Backoff::default();
        let mut last_error = String::from("not tried");
        loop {
            if self.clock.now() >= deadline {
                return self.settle(intent, target, sent, &last_error).await;
            }
            match self.attempt(intent, &mut target, &mut sent).await {
                Step::Done(finished) => return Some(finished),
                Step::Stopped => return None,
                Step::Unreachable(reason) => {
                    tracing::debug!(id = %intent.id, %reason, "Docker unreachable; retrying");
                    last_error = reason;
                    if !self.pause(backoff.next_wait()).await {
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
        let retry_for = humantime::format_duration(self.settings.retry_for);
        if sent == Sent::No {
            return Some(Finished {
                outcome: Outcome::Expired,
                reason: format!(
                    "Docker unreachable for longer than docker.retry_for ({retry_for}); nothing was sent: {last_error}"
                ),
                change: target,
            });
        }
        let mut backoff = Backoff::default();
        loop {
            let read = self.swarm.find_service(&intent.service).await;
            self.note_docker(&read);
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
                    })
                }
                Err(e) => {
                    tracing::warn!(id = %intent.id, error = %e, "whether the update landed is unknown until Docker answers; reading again");
                    if !self.pause(backoff.next_wait()).await {
                        return None;
                    }
                }
            }
        }
    }

    async fn landed(&self, intent: &Intent, service: &ServiceState) -> bool {
        execute::landed(&*self.swarm, service, &intent.id).await
    }

    /// One read → target → update round, with bounded recomputation on "out of sequence".
    async fn attempt(&self, intent: &Intent, target: &mut Option<Change>, sent: &mut Sent) -> Step {
        for _ in 0..MAX_OUT_OF_SEQUENCE {
            let read = self.swarm.find_service(&intent.service).await;
            self.note_docker(&read);
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
            let previous = self.observe_templates(&service).await;
            if let Some(change) = *target {
                if *sent == Sent::Maybe && self.landed(intent, &service).await {
                    let reason =
                        "its update landed (seen on the service after its answer was lost)";
                    return self.completed(intent, &service, change, reason).await;
                }
                if change.is_reached_by(&service) {
                    let reason = "target already reached; nothing sent";
                    return self.completed(intent, &service, change, reason).await;
                }
            }
            let change = match self.plan(&intent.action, &service, previous.as_ref()).await {
                Ok(change) => change,
                Err(refusal) => return skipped(refusal),
            };
            if *target != Some(change) {
                if let Err(e) = self.journal_target(intent, change).await {
                    return failed(e, Some(change));
                }
                *target = Some(change);
            }
            let template = match change {
                Change::Template { to, .. } => match self.gate.memory().template(&service.name, to)
                {
                    Some(template) => Some(template),
                    None => {
                        let reason = format!("template {} is no longer known", short(to));
                        return failed(reason, Some(change));
                    }
                },
                _ => None,
            };
            match execute::send(
                &*self.swarm,
                &service,
                change,
                template.as_ref(),
                &intent.id,
            )
            .await
            {
                Ok(()) => {
                    let reason = format!("{} {}", intent.action.kind(), intent.service);
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

    /// After a server error: succeeded if a read shows the update, failed if it proves it is
    /// not there, and retried like an outage if the read fails too.
    async fn decide_after_error(
        &self,
        intent: &Intent,
        change: Change,
        error: DockerError,
    ) -> Step {
        let read = self.swarm.find_service(&intent.service).await;
        self.note_docker(&read);
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
        match change {
            Change::Template { from, .. } => {
                self.gate.memory().mark_bad_template(&service.name, from);
                succeeded(change, reason)
            }
            Change::Job { to, .. } => match self.follow_job(intent, service, change, to).await {
                Some(finished) => Step::Done(finished),
                None => Step::Stopped,
            },
            _ => succeeded(change, reason),
        }
    }

    async fn journal_target(&self, intent: &Intent, change: Change) -> Result<(), String> {
        let entry = Entry::Target {
            id: intent.id.clone(),
            time_ms: unix_ms(self.clock.now()),
            change,
        };
        self.append(std::slice::from_ref(&entry))
            .await
            .map_err(|e| e.to_string())?;
        self.actions.apply(&entry);
        Ok(())
    }

    /// Journal the outcome, retrying while the journal cannot be written (a full disk): an
    /// outcome that is not on disk would let a restart resume an action that already ended.
    /// A succeeded action's cooldown runs from now; one that did not happen gives its cooldown
    /// back (and with it the duplicate guard), so Alertmanager's next notification may try
    /// again. Either only if the window is still this action's own.
    pub(crate) async fn finish(&self, intent: &Intent, finished: &Finished) {
        let entry = Entry::Outcome {
            id: intent.id.clone(),
            time_ms: unix_ms(self.clock.now()),
            outcome: finished.outcome,
            reason: finished.reason.clone(),
            change: finished.change,
        };
        self.append_outcome(intent, &entry).await;
        self.actions.apply(&entry);
        self.record_outcome(intent, finished);
        let landed = finished.outcome == Outcome::Succeeded;
        let cooldown = Duration::from_millis(intent.cooldown_ms);
        self.gate
            .finished(&action_key(intent), owner_of(&intent.id), landed, cooldown);
        let change = finished.change.map(|c| c.to_string());
        let line = (
            intent.id.as_str(),
            intent.service.as_str(),
            intent.action.kind().as_str(),
        );
        match finished.outcome {
            Outcome::Succeeded => {
                tracing::info!(id = line.0, service = line.1, action = line.2, outcome = finished.outcome.as_str(), change = change.as_deref().unwrap_or("-"), reason = %finished.reason, "outcome")
            }
            _ => {
                tracing::warn!(id = line.0, service = line.1, action = line.2, outcome = finished.outcome.as_str(), change = change.as_deref().unwrap_or("-"), reason = %finished.reason, "outcome")
            }
        }
    }

    async fn append_outcome(&self, intent: &Intent, entry: &Entry) {
        loop {
            match self.append(std::slice::from_ref(entry)).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(id = %intent.id, error = %e, "could not journal an outcome; trying again");
                    if !self.pause(OUTCOME_RETRY).await {
                        return;
                    }
                }
            }
        }
    }
}

impl Pipeline {
    /// Metrics and the Grafana annotation of an outcome.
    fn record_outcome(&self, intent: &Intent, finished: &Finished) {
        let now = unix_ms(self.clock.now());
        let took = Duration::from_millis(now.saturating_sub(intent.time_ms));
        let kind = intent.action.kind().as_str();
        self.metrics
            .action_finished(kind, finished.outcome.as_str(), took);
        let Some(annotator) = &self.annotator else {
            return;
        };
        // Executed or failed actions are worth a mark on the dashboards; skips are not.
        if finished.outcome == Outcome::Skipped {
            return;
        }
        let change = finished.change.map(|c| c.to_string());
        annotator.annotate(&ActionNote {
            time_ms: now,
            rule: &intent.rule,
            alert: &intent.alert,
            service: &intent.service,
            action: kind,
            change: change.as_deref(),
            outcome: finished.outcome.as_str(),
            reason: &finished.reason,
        });
    }
}

pub(super) fn succeeded(change: Change, reason: &str) -> Step {
    Step::Done(Finished {
        outcome: Outcome::Succeeded,
        reason: reason.to_string(),
        change: Some(change),
    })
}

fn skipped(refusal: Refusal) -> Step {
    Step::Done(Finished {
        outcome: Outcome::Skipped,
        reason: format!("{}: {}", refusal.decision, refusal.reason),
        change: None,
    })
}

fn failed(reason: String, change: Option<Change>) -> Step {
    Step::Done(Finished {
        outcome: Outcome::Failed,
        reason,
        change,
    })
}

fn docker_failure(e: DockerError, change: Option<Change>) -> Step {
    // Only reads reach here: nothing was sent.
    match e {
        DockerError::Unreachable(reason) => Step::Unreachable(reason),
        other => failed(other.to_string(), change),
    }
}
