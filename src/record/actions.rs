//! Recent actions as the journal tells them, newest first: what `GET /api/v1/actions` and the
//! status page show. The journal's [`ActionHistory`] (the reader recovery and compaction use too),
//! bounded, filled on start and kept current by every append.

use crate::journal::history::{ActionHistory, ActionStory};
use crate::journal::{Entry, Outcome};
use crate::model::Change;
use serde::Serialize;
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

impl From<&ActionStory> for ActionView {
    fn from(story: &ActionStory) -> Self {
        let intent = &story.intent;
        let ended = story.ended.as_ref();
        let change = ended.and_then(|e| e.change).or(story.target);
        Self {
            id: intent.id.clone(),
            time_ms: intent.time_ms,
            rule: intent.rule.clone(),
            alert: intent.alert.clone(),
            fingerprint: intent.fingerprint.clone(),
            service: intent.service.clone(),
            action: intent.action.kind().as_str(),
            change: change.as_ref().map(Change::to_string),
            outcome: ended.map(|e| e.outcome),
            outcome_time_ms: ended.map(|e| e.time_ms),
            reason: ended.map(|e| e.reason.clone()).unwrap_or_default(),
        }
    }
}

/// The last [`KEEP`] actions.
#[derive(Debug, Default)]
pub struct ActionLog {
    history: Mutex<ActionHistory>,
}

impl ActionLog {
    /// Fold one journal entry in.
    pub fn apply(&self, entry: &Entry) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.apply(entry);
        history.keep_newest(KEEP);
    }

    /// Start from a journal's whole history (at start-up).
    pub fn replace(&self, mut history: ActionHistory) {
        history.keep_newest(KEEP);
        *self.history.lock().unwrap_or_else(|e| e.into_inner()) = history;
    }

    /// The `limit` newest actions.
    pub fn recent(&self, limit: usize) -> Vec<ActionView> {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history
            .iter()
            .rev()
            .take(limit)
            .map(ActionView::from)
            .collect()
    }
}
