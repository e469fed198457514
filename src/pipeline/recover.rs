//! Start-up from the journal: cooldowns (and with them duplicate detection) come back, intents without an outcome
//! are resumed (their targets are absolute, so a replay cannot double them) or, when older than
//! `docker.retry_for`, recorded as expired.

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
                    self.resume_or_expire(intent, story.target, &mut recovery)
                        .await
                }
            }
        }
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

    async fn resume_or_expire(
        self: &Arc<Self>,
        intent: Intent,
        target: Option<Change>,
        recovery: &mut Recovery,
    ) {
        let age_ms = unix_ms(self.clock.now()).saturating_sub(intent.time_ms);
        if age_ms > self.settings.retry_for.as_millis() as u64 {
            let finished = Finished {
                outcome: Outcome::Expired,
                reason: "swarmpilot was down for longer than docker.retry_for".into(),
                change: target,
            };
            self.finish(&intent, &finished).await;
            recovery.expired += 1;
            return;
        }
        self.restore_windows(&intent);
        tracing::info!(id = %intent.id, service = %intent.service, "resuming an unfinished action");
        tokio::spawn(self.clone().execute(intent, target, None));
        recovery.resumed += 1;
    }
}
