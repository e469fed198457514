//! The one reader of the journal's action lines: each action folded from its intent, target and
//! outcome lines, in journal order. Recovery (what to restore and resume), compaction (what to
//! keep) and the recent-actions view (`GET /api/v1/actions`, the status page) all read it, so
//! they cannot disagree about what an action's lines mean.

use super::{Entry, Intent, Outcome};
use crate::model::Change;
use crate::rules::Action;
use std::collections::{HashMap, VecDeque};

/// How an action ended, from its outcome line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub outcome: Outcome,
    pub time_ms: u64,
    pub reason: String,
    pub change: Option<Change>,
}

/// One action as its journal lines tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionStory {
    pub intent: Intent,
    /// The newest target: the intent's, or the last target line's.
    pub target: Option<Change>,
    pub ended: Option<Ended>,
}

impl ActionStory {
    fn new(intent: &Intent) -> Self {
        Self {
            target: intent.change,
            intent: intent.clone(),
            ended: None,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.ended.is_some()
    }

    /// When its cooldown ends (Unix ms): it runs from when the action landed, so only a
    /// succeeded action has one.
    pub fn cooldown_until_ms(&self) -> Option<u64> {
        let ended = self.ended.as_ref()?;
        let landed = ended.time_ms.max(self.intent.time_ms);
        (ended.outcome == Outcome::Succeeded)
            .then(|| landed.saturating_add(self.intent.cooldown_ms))
    }

    /// Until when (Unix ms) a succeeded scale_to_target's replica count is still a
    /// recommendation its scale-down stabilization window holds: recovery restores it, so
    /// compaction keeps it until then.
    pub fn stabilization_until_ms(&self) -> Option<u64> {
        let Action::ScaleToTarget(tracking) = &self.intent.action else {
            return None;
        };
        let ended = self.ended.as_ref()?;
        (ended.outcome == Outcome::Succeeded).then(|| {
            ended
                .time_ms
                .saturating_add(tracking.scale_down_stabilization_ms)
        })
    }

    /// A rollback, or anything that replaced a template: the template it left must never be
    /// restored again.
    pub fn is_rollback(&self) -> bool {
        matches!(self.intent.action, Action::Rollback)
            || matches!(self.target, Some(Change::Template { .. }))
    }

    /// The template a succeeded rollback left (known bad).
    pub fn rolled_back_from(&self) -> Option<u64> {
        match self.ended.as_ref()? {
            Ended {
                outcome: Outcome::Succeeded,
                change: Some(Change::Template { from, .. }),
                ..
            } => Some(*from),
            _ => None,
        }
    }
}

/// Actions in journal order (oldest first).
#[derive(Debug, Default, Clone)]
pub struct ActionHistory {
    stories: VecDeque<ActionStory>,
    /// Id → sequence number; a story's position is its number minus `first`.
    index: HashMap<String, u64>,
    first: u64,
}

impl ActionHistory {
    /// Fold every entry of a journal.
    pub fn fold(entries: &[Entry]) -> Self {
        let mut history = Self::default();
        for entry in entries {
            history.apply(entry);
        }
        history
    }

    /// Fold one entry in. A target or outcome whose intent is unknown (compacted away) is
    /// ignored; template lines belong to services, not actions.
    pub fn apply(&mut self, entry: &Entry) {
        match entry {
            Entry::Intent(intent) => {
                let seq = self.first + self.stories.len() as u64;
                if self.index.insert(intent.id.clone(), seq).is_none() {
                    self.stories.push_back(ActionStory::new(intent));
                }
            }
            Entry::Target { id, change, .. } => {
                if let Some(story) = self.get_mut(id) {
                    story.target = Some(*change);
                }
            }
            Entry::Outcome {
                id,
                time_ms,
                outcome,
                reason,
                change,
            } => {
                if let Some(story) = self.get_mut(id) {
                    story.ended = Some(Ended {
                        outcome: *outcome,
                        time_ms: *time_ms,
                        reason: reason.clone(),
                        change: *change,
                    });
                }
            }
            Entry::Template { .. } => {}
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut ActionStory> {
        let seq = *self.index.get(id)?;
        let position = usize::try_from(seq - self.first).ok()?;
        self.stories.get_mut(position)
    }

    /// Keep only the `n` newest actions.
    pub fn keep_newest(&mut self, n: usize) {
        while self.stories.len() > n {
            if let Some(story) = self.stories.pop_front() {
                self.index.remove(&story.intent.id);
                self.first += 1;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.stories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stories.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &ActionStory> {
        self.stories.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(id: &str, time_ms: u64, action: Action) -> Entry {
        Entry::Intent(Intent {
            id: id.into(),
            time_ms,
            rule: "r".into(),
            alert: "A".into(),
            fingerprint: "f".into(),
            starts_at: "s".into(),
            status: "firing".into(),
            service: "web".into(),
            action,
            cooldown_ms: 60_000,
            change: Some(Change::Replicas { from: 1, to: 2 }),
        })
    }

    fn outcome(id: &str, time_ms: u64, outcome: Outcome, change: Option<Change>) -> Entry {
        Entry::Outcome {
            id: id.into(),
            time_ms,
            outcome,
            reason: "why".into(),
            change,
        }
    }

    const UP: Action = Action::ScaleUp {
        step: 1,
        max_replicas: 5,
    };

    #[test]
    fn folds_each_action_from_its_lines_in_journal_order() {
        let entries = [
            intent("a", 1_000, UP),
            intent("b", 2_000, Action::Restart),
            Entry::Target {
                id: "b".into(),
                time_ms: 2_001,
                change: Change::ForceUpdate { from: 0, to: 1 },
            },
            outcome("a", 5_000, Outcome::Succeeded, None),
            outcome("ghost", 5_000, Outcome::Failed, None),
        ];
        let history = ActionHistory::fold(&entries);
        let ids: Vec<&str> = history.iter().map(|s| s.intent.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let a = history.iter().next().unwrap();
        assert_eq!(
            a.cooldown_until_ms(),
            Some(65_000),
            "runs from when it landed"
        );
        let b = history.iter().nth(1).unwrap();
        assert!(!b.is_finished());
        assert_eq!(b.target, Some(Change::ForceUpdate { from: 0, to: 1 }));
        assert_eq!(b.cooldown_until_ms(), None);
    }

    #[test]
    fn only_a_succeeded_action_keeps_a_cooldown() {
        let history = ActionHistory::fold(&[
            intent("a", 1_000, UP),
            outcome("a", 1_500, Outcome::Expired, None),
        ]);
        assert_eq!(history.iter().next().unwrap().cooldown_until_ms(), None);
    }

    #[test]
    fn a_rollback_names_the_template_it_left() {
        let change = Change::Template { from: 7, to: 9 };
        let history = ActionHistory::fold(&[
            intent("r", 1_000, Action::Rollback),
            outcome("r", 1_100, Outcome::Succeeded, Some(change)),
        ]);
        let story = history.iter().next().unwrap();
        assert!(story.is_rollback());
        assert_eq!(story.rolled_back_from(), Some(7));
    }

    #[test]
    fn keeping_the_newest_still_folds_their_later_lines() {
        let mut history = ActionHistory::default();
        for i in 0..10 {
            history.apply(&intent(&format!("a{i}"), i, UP));
            history.keep_newest(3);
        }
        history.apply(&outcome("a9", 50, Outcome::Succeeded, None));
        history.apply(&outcome("a0", 50, Outcome::Succeeded, None));
        let ids: Vec<&str> = history.iter().map(|s| s.intent.id.as_str()).collect();
        assert_eq!(ids, ["a7", "a8", "a9"]);
        assert!(history.iter().last().unwrap().is_finished());
    }
}
