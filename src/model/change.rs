//! The absolute target of an action: what the journal records and execution applies.

use super::template;
use super::{ServiceMode, ServiceState};

/// An absolute target, so a retry or replay can never apply an action twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    Replicas {
        from: u64,
        to: u64,
    },
    ForceUpdate {
        from: u64,
        to: u64,
    },
    /// Replace the task template (by hash, see [`Template::hash`](super::Template::hash)); replicas stay as they are.
    Template {
        from: u64,
        to: u64,
    },
    /// Start a job service run: ForceUpdate to `to` (and 1 replica for the replicated form).
    Job {
        from: u64,
        to: u64,
    },
}

impl Change {
    /// Whether the service as read already shows this change (a replay after a crash, or an
    /// operator who did the same by hand): then there is nothing left to send.
    pub fn is_reached_by(&self, service: &ServiceState) -> bool {
        match (*self, service.mode) {
            (Change::Replicas { to, .. }, ServiceMode::Replicated { replicas }) => replicas == to,
            (Change::ForceUpdate { to, .. } | Change::Job { to, .. }, _) => {
                service.force_update >= to
            }
            (Change::Template { to, .. }, _) => service.template.hash() == to,
            (Change::Replicas { .. }, _) => false,
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Replicas { from, to } => write!(f, "replicas {from}→{to}"),
            Change::ForceUpdate { from, to } => write!(f, "force_update {from}→{to}"),
            Change::Template { from, to } => {
                write!(
                    f,
                    "template {}→{}",
                    template::short(*from),
                    template::short(*to)
                )
            }
            Change::Job { from, to } => write!(f, "job run force_update {from}→{to}"),
        }
    }
}

/// A decided change and, when its numbers need explaining (target tracking: the value, the
/// target, what stabilization and the rate policies did), why this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub change: Change,
    pub why: Option<String>,
}

impl From<Change> for Planned {
    fn from(change: Change) -> Self {
        Self { change, why: None }
    }
}
