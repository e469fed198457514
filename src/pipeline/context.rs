//! What deciding an action needs beyond the service itself: the templates seen (for rollback)
//! and whether a job run is still going (for backup_now). Shared by admission and the worker.

use super::{unix_ms, Pipeline};
use crate::act::{Change, ServiceMode, ServiceState, Template};
use crate::gate::{plan_change, Context, Refusal};
use crate::journal::Entry;
use crate::rules::Action;

impl Pipeline {
    /// Journal the templates of `service` not seen before (the engine's PreviousSpec first, as
    /// it is older, then the current one) and return the PreviousSpec template.
    pub(crate) async fn observe_templates(&self, service: &ServiceState) -> Option<Template> {
        let previous = match self.swarm.previous_template(&service.id).await {
            Ok(previous) => previous,
            Err(e) => {
                tracing::debug!(service = %service.name, error = %e, "no PreviousSpec read");
                None
            }
        };
        for template in previous.iter().chain(std::iter::once(&service.template)) {
            if !self.templates.observe(&service.name, template) {
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

    /// Decide the change of `action` on a fresh read of `service`.
    pub(crate) async fn plan(
        &self,
        action: &Action,
        service: &ServiceState,
        previous: Option<&Template>,
    ) -> Result<Change, Refusal> {
        let mut context = Context::new(&self.settings.opt_in_label);
        match action {
            Action::Rollback => {
                context.rollback_to = self.templates.rollback_target(
                    &service.name,
                    service.template.hash(),
                    previous,
                );
            }
            Action::BackupNow { .. } if service.mode == ServiceMode::ReplicatedJob => {
                // Unknown counts as running: never start a second run on a guess.
                context.job_running = self
                    .swarm
                    .job_tasks(&service.id, service.force_update)
                    .await
                    .map_or(true, |tasks| tasks.iter().any(|t| !t.is_finished()));
            }
            _ => {}
        }
        plan_change(action, service, context)
    }
}
