//! Start-up from the journal: cooldowns (and with them duplicate detection) come back, intents
//! without an outcome are resumed (their targets are absolute, and each service's are resumed in
//! journal order before anything new runs on it, so a replay cannot double them) or, when older
//! than `docker.retry_for`, recorded as expired.

use super::{action_key, delivery_of, from_unix_ms, unix_ms, Finished, Pipeline};
use crate::act::Change;
use crate::record::journal::{Entry, Intent, JournalError, Outcome, Replayed};
use std::collections::HashMap;
use std::sync::Arc;

/// What recovery did, for the start-up log line and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub entries: usize,
    pub skipped_lines: usize,
    pub cooldowns_restored: usize,
    pub resumed: usize,
    pub expired: usize,
}

#[derive(Default)]
struct Story {
    intent: Option<Intent>,
    target: Option<Change>,
    outcome: Option<Outcome>,
    outcome_change: Option<Change>,
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
        let mut stories: HashMap<String, Story> = HashMap::new();
        let mut order = Vec::new();
        for entry in &replayed.entries {
            self.actions.apply(entry);
            if let Entry::Template {
                service, template, ..
            } = entry
            {
                self.templates.observe(service, template);
            }
            let Some(id) = entry.id() else {
                continue;
            };
            let story = stories.entry(id.to_string()).or_default();
            match entry {
                Entry::Intent(intent) => {
                    order.push(intent.id.clone());
                    story.intent = Some(intent.clone());
                    story.target = intent.change;
                }
                Entry::Target { change, .. } => story.target = Some(*change),
                Entry::Outcome {
                    outcome, change, ..
                } => {
                    story.outcome = Some(*outcome);
                    story.outcome_change = *change;
                }
                Entry::Template { .. } => {}
            }
        }
        let mut resumable = Vec::new();
        for id in order {
            let Some(story) = stories.remove(&id) else {
                continue;
            };
            let Some(intent) = story.intent else {
                continue;
            };
            match story.outcome {
                Some(Outcome::Succeeded) => {
                    recovery.cooldowns_restored += usize::from(self.restore_windows(&intent));
                    if let Some(Change::Template { from, .. }) = story.outcome_change {
                        self.templates.mark_bad(&intent.service, from);
                    }
                }
                Some(_) => {}
                None => {
                    if self.expire_if_too_old(&intent, story.target).await {
                        recovery.expired += 1;
                    } else {
                        self.restore_windows(&intent);
                        resumable.push((intent, story.target));
                    }
                }
            }
        }
        recovery.resumed = resumable.len();
        self.resume_in_order(resumable).await;
        tracing::info!(
            entries = recovery.entries,
            cooldowns = recovery.cooldowns_restored,
            resumed = recovery.resumed,
            expired = recovery.expired,
            "journal recovered"
        );
        Ok(recovery)
    }

    /// Restore the cooldown of an action (with the delivery that started it, for duplicates);
    /// false when it has passed.
    fn restore_windows(&self, intent: &Intent) -> bool {
        let until = from_unix_ms(intent.time_ms + intent.cooldown_ms);
        if until <= self.clock.now() {
            return false;
        }
        self.cooldowns
            .restore(action_key(intent), until, delivery_of(intent).0);
        true
    }

    /// Record an unfinished action older than `docker.retry_for` as expired; true when it was.
    async fn expire_if_too_old(&self, intent: &Intent, target: Option<Change>) -> bool {
        let age_ms = unix_ms(self.clock.now()).saturating_sub(intent.time_ms);
        if age_ms <= self.settings.retry_for.as_millis() as u64 {
            return false;
        }
        let finished = Finished {
            outcome: Outcome::Expired,
            reason: "swarmpilot was down for longer than docker.retry_for".into(),
            change: target,
        };
        self.finish(intent, &finished).await;
        true
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
            tokio::spawn(async move {
                let _turn = turn;
                for (intent, target) in queue {
                    tracing::info!(id = %intent.id, service = %intent.service, "resuming an unfinished action");
                    pipeline.execute_locked(&intent, target, None).await;
                }
            });
        }
    }
}
