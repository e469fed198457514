//! Start-up from the journal: cooldowns (and with them duplicate detection) come back, intents
//! without an outcome are resumed (their targets are absolute, and each service's are resumed in
//! journal order before anything new runs on it, so a replay cannot double them). A previous
//! life may have sent their update, so each is decided by a read of the service first; one older
//! than `docker.retry_for` is not sent again: `succeeded` if its update is on the service,
//! `expired` once a read proves it is not.

use super::{action_key, delivery_of, from_unix_ms, Pipeline};
use crate::act::worker::Sent;
use crate::gate::owner_of;
use crate::journal::history::{ActionHistory, Ended};
use crate::journal::{Entry, Intent, JournalError, Outcome, Replayed};
use crate::model::Change;
use crate::rules::Action;
use std::collections::HashMap;
use std::sync::Arc;

/// What recovery did, for the start-up log line and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub entries: usize,
    pub skipped_lines: usize,
    pub cooldowns_restored: usize,
    /// Unfinished actions resumed (each decided by a read of its service first).
    pub resumed: usize,
}

impl Pipeline {
    /// Fold the journal back into memory and restart unfinished actions.
    pub async fn recover(self: &Arc<Self>, replayed: Replayed) -> Result<Recovery, JournalError> {
        let mut recovery = Recovery {
            entries: replayed.entries.len(),
            skipped_lines: replayed.skipped.len(),
            ..Default::default()
        };
        for line in &replayed.skipped {
            tracing::warn!(line = %line, "journal line skipped");
        }
        for entry in &replayed.entries {
            if let Entry::Template {
                service, template, ..
            } = entry
            {
                self.gate.memory().observe_template(service, template);
            }
        }
        let history = ActionHistory::fold(&replayed.entries);
        let mut resumable = Vec::new();
        for story in history.iter() {
            let intent = &story.intent;
            match &story.ended {
                Some(ended) => {
                    if let Some(until) = story.cooldown_until_ms() {
                        recovery.cooldowns_restored +=
                            usize::from(self.restore_window(intent, until));
                    }
                    self.restore_recommendation(intent, ended);
                    if let Some(bad) = story.rolled_back_from() {
                        self.gate.memory().mark_bad_template(&intent.service, bad);
                    }
                }
                None => {
                    self.hold_window(intent);
                    resumable.push((intent.clone(), story.target));
                }
            }
        }
        self.actions.replace(history);
        recovery.resumed = resumable.len();
        self.resume_in_order(resumable).await;
        tracing::info!(
            entries = recovery.entries,
            cooldowns = recovery.cooldowns_restored,
            resumed = recovery.resumed,
            "journal recovered"
        );
        Ok(recovery)
    }

    /// Restore the cooldown of an action, running until `until_ms` (with the delivery that
    /// started it, for duplicates); false when it has passed.
    fn restore_window(&self, intent: &Intent, until_ms: u64) -> bool {
        let until = from_unix_ms(until_ms);
        if until <= self.clock.now() {
            return false;
        }
        let (delivery, owner) = (delivery_of(intent), owner_of(&intent.id));
        self.gate
            .memory()
            .restore(action_key(intent), Some(until), delivery, owner);
        true
    }

    /// A scale_to_target that landed within its stabilization window is a recommendation that
    /// window still holds: a restart must not let the next dip remove the replicas it added.
    /// (Recommendations that changed nothing are not journaled; those are lost on restart.)
    fn restore_recommendation(&self, intent: &Intent, ended: &Ended) {
        let (Action::ScaleToTarget(tracking), Outcome::Succeeded) = (&intent.action, ended.outcome)
        else {
            return;
        };
        let Some(Change::Replicas { to, .. }) = ended.change else {
            return;
        };
        self.gate.restore_recommendation(
            &intent.service,
            &intent.rule,
            to,
            from_unix_ms(ended.time_ms),
            tracking.scale_down_stabilization(),
        );
    }

    /// An unfinished action holds its window until its outcome.
    fn hold_window(&self, intent: &Intent) {
        let (delivery, owner) = (delivery_of(intent), owner_of(&intent.id));
        self.gate
            .memory()
            .restore(action_key(intent), None, delivery, owner);
    }

    /// Resume unfinished actions one service at a time, in journal order, each service's
    /// execution lock taken before anything else can run. An action killed after its update
    /// reached Docker is recognised on resume only by "target already reached", which holds only
    /// while nothing else ran on its service since: neither a later resumed action nor a new one
    /// may overtake it.
    async fn resume_in_order(self: &Arc<Self>, resumable: Vec<(Intent, Option<Change>)>) {
        let mut by_service: HashMap<String, Vec<(Intent, Option<Change>)>> = HashMap::new();
        for (intent, target) in resumable {
            by_service
                .entry(intent.service.clone())
                .or_default()
                .push((intent, target));
        }
        for (service, queue) in by_service {
            let turn = self.exec_lock(&service).lock_owned().await;
            let pipeline = self.clone();
            self.spawn_counted(async move {
                let _turn = turn;
                for (intent, target) in queue {
                    tracing::info!(id = %intent.id, service = %intent.service, "resuming an unfinished action");
                    pipeline
                        .execute_locked(&intent, target, Sent::Maybe, None)
                        .await;
                }
            });
        }
    }
}
