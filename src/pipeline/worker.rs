//! Execution of one admitted action, in the background, one at a time per service. It reads the
//! service fresh, recomputes the absolute target, journals it before sending, and treats "already
//! there" as success, so a retry or a replay after a crash never applies an action twice.

use super::{action_key, from_unix_ms, refusal, unix_ms, Finished, Pipeline};
use crate::act::template::short;
use crate::act::{Change, DockerError, ServiceState};
use crate::decision::Decision;
use crate::gate::Refusal;
use crate::record::grafana::ActionNote;
use crate::record::journal::{Entry, Intent, Outcome};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Mutex};

/// Recomputations after "update out of sequence" before giving up.
const MAX_OUT_OF_SEQUENCE: usize = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How one attempt ended.
pub(super) enum Step {
    Done(Finished),
    /// Docker did not answer: wait and try again until `retry_for` has passed.
    Unreachable(String),
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
        self.execute_locked(&intent, target, reply).await;
    }

    /// [`Pipeline::execute`] for a caller that holds the service's execution lock.
    pub(crate) async fn execute_locked(
        &self,
        intent: &Intent,
        target: Option<Change>,
        reply: Option<oneshot::Sender<Finished>>,
    ) {
        let finished = self.run_until_done(intent, target).await;
        self.finish(intent, &finished).await;
        if let Some(reply) = reply {
            let _ = reply.send(finished);
        }
    }

    /// The lock that makes a service's actions run one at a time.
    pub(crate) fn exec_lock(&self, service: &str) -> Arc<Mutex<()>> {
        self.exec_locks.get(service)
    }

    async fn run_until_done(&self, intent: &Intent, mut target: Option<Change>) -> Finished {
        let deadline = from_unix_ms(intent.time_ms) + self.settings.retry_for;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.attempt(intent, &mut target).await {
                Step::Done(finished) => return finished,
                Step::Unreachable(reason) => {
                    if self.clock.now() >= deadline {
                        return Finished {
                            outcome: Outcome::Expired,
                            reason: format!(
                                "Docker unreachable for longer than docker.retry_for ({}): {reason}",
                                humantime::format_duration(self.settings.retry_for)
                            ),
                            change: target,
                        };
                    }
                    tracing::debug!(id = %intent.id, %reason, "Docker unreachable; retrying");
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One read → target → update round, with bounded recomputation on "out of sequence".
    async fn attempt(&self, intent: &Intent, target: &mut Option<Change>) -> Step {
        for _ in 0..MAX_OUT_OF_SEQUENCE {
            let read = self.swarm.find_service(&intent.service).await;
            self.note_docker(&read);
            let service = match read {
                Ok(Some(service)) => service,
                Ok(None) => {
                    return skipped(refusal(
                        Decision::NoService,
                        format!("no service named {}", intent.service),
                    ))
                }
                Err(e) => return docker_failure(e, *target),
            };
            let previous = self.observe_templates(&service).await;
            if let Some(change) = target.filter(|c| c.is_reached_by(&service)) {
                let reason = "target already reached; nothing sent";
                return self.completed(intent, &service, change, reason).await;
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
            match self.send(&service, change).await {
                Ok(()) => {
                    let reason = format!("{} {}", intent.action.kind(), intent.service);
                    return self.completed(intent, &service, change, &reason).await;
                }
                Err(DockerError::OutOfSequence) => continue,
                Err(e) => return docker_failure(e, Some(change)),
            }
        }
        failed(
            "the service kept changing under us (update out of sequence)".into(),
            *target,
        )
    }

    async fn send(&self, service: &ServiceState, change: Change) -> Result<(), DockerError> {
        match change {
            Change::Template { to, .. } => match self.templates.get(&service.name, to) {
                Some(template) => self.swarm.restore_template(service, &template).await,
                None => Err(DockerError::Api {
                    status: 0,
                    message: format!("template {} is no longer known", short(to)),
                }),
            },
            other => self.swarm.apply(service, other).await,
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
                self.templates.mark_bad(&service.name, from);
                succeeded(change, reason)
            }
            Change::Job { to, .. } => {
                Step::Done(self.follow_job(intent, service, change, to).await)
            }
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

    /// Journal the outcome; an action that did not happen gives its cooldown back (and with it
    /// the duplicate guard), so Alertmanager's next notification may try again.
    pub(crate) async fn finish(&self, intent: &Intent, finished: &Finished) {
        let entry = Entry::Outcome {
            id: intent.id.clone(),
            time_ms: unix_ms(self.clock.now()),
            outcome: finished.outcome,
            reason: finished.reason.clone(),
            change: finished.change,
        };
        if let Err(e) = self.append(std::slice::from_ref(&entry)).await {
            tracing::error!(id = %intent.id, error = %e, "could not journal an outcome");
        }
        self.actions.apply(&entry);
        self.record_outcome(intent, finished);
        if finished.outcome != Outcome::Succeeded {
            self.cooldowns.clear(&action_key(intent));
        }
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
    match e {
        DockerError::Unreachable(reason) => Step::Unreachable(reason),
        other => failed(other.to_string(), change),
    }
}

/// ±25 % so that many queued actions do not hammer a returning engine in lockstep.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    base.mul_f64(factor)
}
