//! Recent actions as the journal tells them, newest first: what `GET /api/v1/actions` serves.
//! Filled from the journal on start and kept current by every append.

use super::journal::{Entry, Outcome};
use crate::act::Change;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;

/// How many recent actions are kept (here, and by journal compaction for this history).
pub const KEEP: usize = 1000;

/// One action: its intent and, once known, its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ActionView {
    pub id: String,
    pub time_ms: u64,
    pub rule: String,
    pub alert: String,
    pub fingerprint: String,
    pub service: String,
    pub action: &'static str,
    pub change: Option<String>,
    /// `None` while the action waits for its worker or for Docker.
    pub outcome: Option<Outcome>,
    pub outcome_time_ms: Option<u64>,
    pub reason: String,
}

/// The last actions, bounded.
#[derive(Debug, Default)]
pub struct ActionLog {
    actions: Mutex<VecDeque<ActionView>>,
}

impl ActionLog {
    /// Fold one journal entry in.
    pub fn apply(&self, entry: &Entry) {
        let mut actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        match entry {
            Entry::Intent(i) => {
                actions.push_front(ActionView {
                    id: i.id.clone(),
                    time_ms: i.time_ms,
                    rule: i.rule.clone(),
                    alert: i.alert.clone(),
                    fingerprint: i.fingerprint.clone(),
                    service: i.service.clone(),
                    action: i.action.kind().as_str(),
                    change: i.change.as_ref().map(Change::to_string),
                    outcome: None,
                    outcome_time_ms: None,
                    reason: String::new(),
                });
                actions.truncate(KEEP);
            }
            Entry::Target { id, change, .. } => {
                if let Some(view) = actions.iter_mut().find(|a| &a.id == id) {
                    view.change = Some(change.to_string());
                }
            }
            Entry::Template { .. } => {}
            Entry::Outcome {
                id,
                time_ms,
                outcome,
                reason,
                change,
            } => {
                if let Some(view) = actions.iter_mut().find(|a| &a.id == id) {
                    view.outcome = Some(*outcome);
                    view.outcome_time_ms = Some(*time_ms);
                    view.reason = reason.clone();
                    if let Some(change) = change {
                        view.change = Some(change.to_string());
                    }
                }
            }
        }
    }

    /// The `limit` newest actions.
    pub fn recent(&self, limit: usize) -> Vec<ActionView> {
        let actions = self.actions.lock().unwrap_or_else(|e| e.into_inner());
        actions.iter().take(limit).cloned().collect()
    }
}
