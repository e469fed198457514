//! The worker's place in the flow: one admitted action at a time per service, in the
//! background. Act runs it ([`crate::act::worker`]); this side gives act what it needs from the
//! other steps ([`Steps`]: the gate's decision, the journal, the shutdown signal) and records
//! the outcome: journal line, cooldown, metrics, annotation, log.

use super::{action_key, unix_ms, Pipeline};
use crate::act::worker::{self, Finished, Sent, Steps};
use crate::act::{DockerError, Swarm};
use crate::clock::Clock;
use crate::gate::{owner_of, Refusal};
use crate::journal::{Entry, Intent, JournalError, Outcome};
use crate::model::{Change, Planned, ServiceState, Stamp, Template};
use crate::record::grafana::ActionNote;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::sync::{oneshot, Mutex};

/// How often an outcome that could not be journaled (a full disk) is tried again.
const OUTCOME_RETRY: Duration = Duration::from_secs(2);

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
        self: &Arc<Self>,
        intent: &Intent,
        target: Option<Change>,
        sent: Sent,
        reply: Option<oneshot::Sender<Finished>>,
    ) {
        if self.is_stopping() {
            return;
        }
        let executed = worker::execute(&**self, intent, target, sent).await;
        if executed.is_some() {
            // Landed or not, its answer stops waiting for a landing now.
            self.cluster_ended(&intent.id);
        }
        let Some(finished) = executed else {
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
}

impl Steps for Pipeline {
    fn swarm(&self) -> &dyn Swarm {
        &*self.swarm
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn retry_for(&self) -> Duration {
        self.settings.retry_for
    }

    fn backup_timeout(&self) -> Duration {
        self.settings.backup_timeout
    }

    fn stop_signal(&self) -> watch::Receiver<bool> {
        Pipeline::stop_signal(self)
    }

    async fn pause(&self, d: Duration) -> bool {
        Pipeline::pause(self, d).await
    }

    fn note_docker<T>(&self, read: &Result<T, DockerError>) {
        Pipeline::note_docker(self, read);
    }

    async fn observe(&self, service: &ServiceState) -> Option<Template> {
        self.observe_templates(service).await
    }

    async fn decide(
        &self,
        intent: &Intent,
        service: &ServiceState,
        previous: Option<&Template>,
    ) -> Result<Planned, Refusal> {
        self.plan(&intent.rule, &intent.action, service, previous, true)
            .await
    }

    async fn journal_target(&self, intent: &Intent, change: Change) -> Result<(), JournalError> {
        let entry = Entry::Target {
            id: intent.id.clone(),
            time_ms: unix_ms(self.clock.now()),
            change,
        };
        self.append(std::slice::from_ref(&entry)).await?;
        self.actions.apply(&entry);
        Ok(())
    }

    fn template(&self, service: &str, hash: u64) -> Option<Template> {
        self.gate.memory().template(service, hash)
    }

    fn rolled_back_from(&self, service: &str, hash: u64) {
        self.gate.memory().mark_bad_template(service, hash);
    }

    fn claimed(&self, intent: &Intent, service: &ServiceState) -> Result<(), Refusal> {
        self.claimed_by_other(intent, service)
    }

    fn writes_claims(&self) -> bool {
        self.cluster.is_some()
    }

    fn stamp(&self, intent: &Intent, service: &ServiceState, change: Change) -> Stamp {
        self.stamp_for(intent, service, change)
    }

    fn landed(&self, intent: &Intent, change: Change) {
        self.on_landed(intent, change);
    }
}

impl Pipeline {
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
        // The window first: whoever sees the outcome (the actions API) must see its cooldown.
        let landed = finished.outcome == Outcome::Succeeded;
        let cooldown = Duration::from_millis(intent.cooldown_ms);
        self.gate
            .finished(&action_key(intent), owner_of(&intent.id), landed, cooldown);
        self.actions.apply(&entry);
        self.record_outcome(intent, finished);
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
