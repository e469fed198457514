//! The match step: rule files turn an alert into candidate actions on a named service.
//!
//! `load` reads `rules/*.yml` with line/column errors; `matcher` implements Alertmanager's matcher
//! syntax; [`RuleSet::matching`] returns the rules an alert satisfies.

pub mod load;
pub mod matcher;
pub mod target;

use crate::parse::{Alert, AlertStatus};
use matcher::Matcher;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{load_rules_dir, load_rules_for, RuleError, RuleErrors};
pub use target::{Finite, Reading, StepLimit, TargetTracking, ValueSource};

/// The largest replica count or step a rule or a `swarmpilot.*_replicas` label may name. Swarm
/// stores replicas as a signed 64-bit number (bollard's `i64`), and a value near that wraps or
/// overflows in `current ± step`; no real service runs near ten thousand replicas of one task,
/// so anything above is a typo, not a bound.
pub const MAX_REPLICAS: u64 = 10_000;

/// The remediation a rule asks for. Journaled with each intent, so a resumed action does what was
/// admitted even if the rule changed meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Add `step` replicas, up to `max_replicas`.
    ScaleUp { step: u64, max_replicas: u64 },
    /// Remove `step` replicas, down to `min_replicas`.
    ScaleDown { step: u64, min_replicas: u64 },
    /// Set the replicas that hold a per-replica value at its target (HPA's formula). Boxed: it
    /// is far larger than the other actions, which are cloned into every intent too.
    ScaleToTarget(Box<TargetTracking>),
    /// A rolling force update.
    Restart,
    /// Restore the last distinct task template.
    Rollback,
    /// Run the named job service once.
    BackupNow { job: String },
}

/// The kind of an action, without its parameters: the key of cooldowns and metric labels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    ScaleUp,
    ScaleDown,
    ScaleToTarget,
    Restart,
    Rollback,
    BackupNow,
}

impl ActionKind {
    pub const ALL: [ActionKind; 6] = [
        ActionKind::ScaleUp,
        ActionKind::ScaleDown,
        ActionKind::ScaleToTarget,
        ActionKind::Restart,
        ActionKind::Rollback,
        ActionKind::BackupNow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::ScaleUp => "scale_up",
            ActionKind::ScaleDown => "scale_down",
            ActionKind::ScaleToTarget => "scale_to_target",
            ActionKind::Restart => "restart",
            ActionKind::Rollback => "rollback",
            ActionKind::BackupNow => "backup_now",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::ScaleUp { .. } => ActionKind::ScaleUp,
            Action::ScaleDown { .. } => ActionKind::ScaleDown,
            Action::ScaleToTarget(_) => ActionKind::ScaleToTarget,
            Action::Restart => ActionKind::Restart,
            Action::Rollback => ActionKind::Rollback,
            Action::BackupNow { .. } => ActionKind::BackupNow,
        }
    }
}

/// Where a rule was written, for messages that point an operator at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOrigin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub matchers: Vec<Matcher>,
    /// Which alert status this rule acts on.
    pub on: AlertStatus,
    /// The alert label that names the Swarm service.
    pub service_label: String,
    pub action: Action,
    pub cooldown: Duration,
    pub origin: RuleOrigin,
}

impl Rule {
    /// Whether deciding on this rule asks Prometheus (target tracking's `query:`).
    pub fn reads_prometheus(&self) -> bool {
        matches!(&self.action, Action::ScaleToTarget(t) if matches!(t.value_from, ValueSource::Query { .. }))
    }

    /// Whether this rule applies to the alert: the status it acts on and every matcher hold.
    pub fn applies_to(&self, alert: &Alert) -> bool {
        alert.status == self.on && self.matchers.iter().all(|m| m.matches(&alert.labels))
    }
}

/// Every rule from every file, in file-name then file order, indexed by the value their
/// `alertname = "..."` matcher pins, so matching an alert never visits rules that cannot match it.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Positions of the rules pinning `alertname` with `=`, by that value (ascending).
    by_alertname: HashMap<String, Vec<usize>>,
    /// Positions of the rules without such a matcher: candidates for every alert (ascending).
    unindexed: Vec<usize>,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut by_alertname: HashMap<String, Vec<usize>> = HashMap::new();
        let mut unindexed = Vec::new();
        for (position, rule) in rules.iter().enumerate() {
            let pinned = rule
                .matchers
                .iter()
                .find(|m| m.name == "alertname")
                .and_then(|m| m.equality());
            match pinned {
                Some(value) => by_alertname
                    .entry(value.to_string())
                    .or_default()
                    .push(position),
                None => unindexed.push(position),
            }
        }
        Self {
            rules,
            by_alertname,
            unindexed,
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The rules that apply to an alert, in file order.
    pub fn matching<'a>(&'a self, alert: &'a Alert) -> impl Iterator<Item = &'a Rule> + 'a {
        let pinned = self
            .by_alertname
            .get(alert.name())
            .map_or(&[][..], Vec::as_slice);
        merge_ascending(pinned, &self.unindexed)
            .map(|position| &self.rules[position])
            .filter(move |rule| rule.applies_to(alert))
    }
}

/// The union of two ascending position lists, ascending.
fn merge_ascending<'a>(a: &'a [usize], b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(&&x), Some(&&y)) if x <= y => a.next().copied(),
        (Some(_), Some(_)) => b.next().copied(),
        (Some(_), None) => a.next().copied(),
        (None, _) => b.next().copied(),
    })
}

#[cfg(test)]
mod tests;
