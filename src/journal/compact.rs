//! Compaction: which lines a journal still needs. Without it the journal only grows, and with it
//! the time and memory of every start. Kept, in their original order:
//! - every action without an outcome (to be resumed or expired),
//! - every action whose cooldown is still running (cooldowns and duplicates survive a restart),
//! - every scale_to_target whose stabilization window is still running (its replica count is a
//!   recommendation a restart must not forget),
//! - every rollback (the templates it rolled back from must never be restored again),
//! - the last `keep_actions` actions (the history `GET /api/v1/actions` and the status page show),
//! - the first line of each distinct task template of each service (what a rollback restores).
//!
//! Lines of an action are kept or dropped together; a target or outcome whose intent is gone is
//! dropped.

use super::history::ActionHistory;
use super::Entry;
use std::collections::HashSet;

/// For each entry, whether the compacted journal keeps it.
pub fn kept(entries: &[Entry], now_ms: u64, keep_actions: usize) -> Vec<bool> {
    let history = ActionHistory::fold(entries);
    let recent_from = history.len().saturating_sub(keep_actions);
    let needed: HashSet<&str> = history
        .iter()
        .enumerate()
        .filter(|(position, story)| {
            !story.is_finished()
                || story.is_rollback()
                || *position >= recent_from
                || story
                    .cooldown_until_ms()
                    .is_some_and(|until| until > now_ms)
                || story
                    .stabilization_until_ms()
                    .is_some_and(|until| until > now_ms)
        })
        .map(|(_, story)| story.intent.id.as_str())
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
