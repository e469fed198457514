//! What deciding an action needs beyond the service itself, read from the swarm: the templates
//! seen (journaled for rollback) and whether a job run is still going (for backup_now). Shared
//! by admission and the worker; the decision itself is the gate's.

use super::{unix_ms, Pipeline};
use crate::gate::Refusal;
use crate::journal::Entry;
use crate::model::{Change, ServiceMode, ServiceState, Template};
use crate::rules::Action;

impl Pipeline {
    /// Journal the templates of `service` not seen before (the engine's PreviousSpec first, as
    /// it is older, then the current one) and return the PreviousSpec template.
    pub(crate) async fn observe_templates(&self, service: &ServiceState) -> Option<Template> {
        self.learn_bad_templates(service);
        let previous = match self.swarm.previous_template(&service.id).await {
            Ok(previous) => previous,
            Err(e) => {
                tracing::debug!(service = %service.name, error = %e, "no PreviousSpec read");
                None
            }
        };
        for template in previous.iter().chain(std::iter::once(&service.template)) {
            if !self.gate.memory().observe_template(&service.name, template) {
                continue;
            }
            let entry = Entry::Template {
                service: service.name.clone(),
                time_ms: unix_ms(self.clock.now()),
                hash: template.hash(),
                template: template.clone(),
            };
            if let Err(e) = self.append(&[entry]).await {
                tracing::warn!(service = %service.name, error = %e, "could not journal a template");
            }
        }
        previous
    }

    /// Ask the gate for the change of `action` on a fresh read of `service`; for a
    /// replicated-job backup, whether a run is still going is read first.
    pub(crate) async fn plan(
        &self,
        action: &Action,
        service: &ServiceState,
        previous: Option<&Template>,
    ) -> Result<Change, Refusal> {
        let job_running = match action {
            // Unknown counts as running: never start a second run on a guess.
            Action::BackupNow { .. } if service.mode == ServiceMode::ReplicatedJob => self
                .swarm
                .job_tasks(&service.id, service.force_update)
                .await
                .map_or(true, |tasks| tasks.iter().any(|t| !t.is_finished())),
            _ => false,
        };
        self.gate.decide(action, service, previous, job_running)
    }
}
