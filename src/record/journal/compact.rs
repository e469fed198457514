//! Compaction: which lines a journal still needs. Without it the journal only grows, and with it
//! the time and memory of every start. Kept, in their original order:
//! - every action without an outcome (to be resumed or expired),
//! - every action whose cooldown is still running (cooldowns and duplicates survive a restart),
//! - every rollback (the templates it rolled back from must never be restored again),
//! - the last `keep_actions` actions (the history `GET /api/v1/actions` and the status page show),
//! - the first line of each distinct task template of each service (what a rollback restores).
//!
//! Lines of an action are kept or dropped together; a target or outcome whose intent is gone is
//! dropped.

use super::{Entry, Outcome};
use crate::act::Change;
use crate::rules::Action;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
struct Story {
    /// Position of the intent among all intents, oldest first.
    order: usize,
    cooldown_until_ms: u64,
    outcome: Option<Outcome>,
    rollback: bool,
}

/// For each entry, whether the compacted journal keeps it.
pub fn kept(entries: &[Entry], now_ms: u64, keep_actions: usize) -> Vec<bool> {
    let stories = stories(entries);
    let intents = stories.len();
    let needed: HashSet<&str> = stories
        .iter()
        .filter(|(_, s)| {
            s.outcome.is_none()
                || s.rollback
                || s.order + keep_actions >= intents
                || (s.outcome == Some(Outcome::Succeeded) && s.cooldown_until_ms > now_ms)
        })
        .map(|(id, _)| *id)
        .collect();
    let mut templates = HashSet::new();
    entries
        .iter()
        .map(|entry| match entry {
            Entry::Template { service, hash, .. } => templates.insert((service.as_str(), *hash)),
            other => other.id().is_some_and(|id| needed.contains(id)),
        })
        .collect()
}

fn stories(entries: &[Entry]) -> HashMap<&str, Story> {
    let mut stories: HashMap<&str, Story> = HashMap::new();
    for entry in entries {
        match entry {
            Entry::Intent(intent) => {
                let order = stories.len();
                let story = stories.entry(&intent.id).or_default();
                story.order = order;
                story.cooldown_until_ms = intent.time_ms.saturating_add(intent.cooldown_ms);
                story.rollback |= matches!(intent.action, Action::Rollback);
            }
            Entry::Target { id, change, .. } => {
                if let Some(story) = stories.get_mut(id.as_str()) {
                    story.rollback |= matches!(change, Change::Template { .. });
                }
            }
            Entry::Outcome { id, outcome, .. } => {
                if let Some(story) = stories.get_mut(id.as_str()) {
                    story.outcome = Some(*outcome);
                }
            }
            Entry::Template { .. } => {}
        }
    }
    stories
}
