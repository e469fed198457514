//! What deciding an action needs beyond the service itself, read from the swarm: the templates
//! seen (journaled for rollback) and whether a job run is still going (for backup_now). Shared
//! by admission and the worker; the decision itself is the gate's.

use super::{unix_ms, Pipeline};
use crate::gate::{Ask, Refusal};
use crate::journal::Entry;
use crate::model::{Planned, ServiceMode, ServiceState, Template};
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
            if self.cluster.is_some() {
                // Every replica's rollback history: kept in Swarm, not only in this journal.
                if let Err(e) = self.swarm.save_template(&service.name, template).await {
                    tracing::warn!(service = %service.name, error = %e, "could not keep a template for the cluster");
                }
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

    /// Cluster mode: the templates any replica kept for `service` join this one's history
    /// (oldest first, then the current one again as the newest), so a replica that never saw
    /// the last good template can still roll back to it.
    async fn learn_saved_templates(&self, service: &ServiceState) {
        match self.swarm.saved_templates(&service.name).await {
            Ok(saved) => {
                let memory = self.gate.memory();
                for template in saved.iter().chain(std::iter::once(&service.template)) {
                    memory.observe_template(&service.name, template);
                }
            }
            Err(e) => {
                tracing::warn!(service = %service.name, error = %e, "could not read the cluster's templates; deciding on this replica's own")
            }
        }
    }

    /// Ask the gate for the change of `rule`'s `action` on a fresh read of `service`; for a
    /// replicated-job backup, whether a run is still going is read first. `record`: target
    /// tracking remembers its recommendation (not in a dry run).
    pub(crate) async fn plan(
        &self,
        rule: &str,
        action: &Action,
        service: &ServiceState,
        previous: Option<&Template>,
        record: bool,
    ) -> Result<Planned, Refusal> {
        let job_running = match action {
            // Unknown counts as running: never start a second run on a guess.
            Action::BackupNow { .. } if service.mode == ServiceMode::ReplicatedJob => self
                .swarm
                .job_tasks(&service.id, service.force_update)
                .await
                .map_or(true, |tasks| tasks.iter().any(|t| !t.is_finished())),
            _ => false,
        };
        if *action == Action::Rollback && self.cluster.is_some() {
            self.learn_saved_templates(service).await;
        }
        let ask = Ask {
            rule,
            action,
            previous,
            job_running,
            record,
            now: self.clock.now(),
        };
        self.gate.decide(ask, service)
    }
}
