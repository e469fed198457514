//! Cluster mode's budget of actions per minute, shared by every replica: the admission times of
//! the last minute kept as a label on a service that runs nothing (0 replicas). Each spend is a
//! versioned update of that service — a compare-and-set through Swarm's Raft — so two replicas
//! taking the last unit at once cannot both have it: one gets "update out of sequence", reads
//! again and counts again. Created by the first replica that needs it (or by the stack).

use super::{DockerError, Swarm};
use crate::clock::{from_unix_ms, saturating_add, unix_ms};
use std::time::{Duration, SystemTime};

/// The label holding the log: unix milliseconds, comma-separated, oldest first.
pub const BUDGET_LABEL: &str = "swarmpilot.budget.minute";
/// Marks the register service for operators (`docker service ls --filter label=...`).
pub const REGISTER_LABEL: &str = "swarmpilot.register";

const MINUTE: Duration = Duration::from_secs(60);
/// Reads and writes before giving up on a register that keeps changing under us: a storm on
/// three replicas races a handful of times at most.
const MAX_TRIES: usize = 16;

/// Why a unit could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpendError {
    /// The budget is spent for the cluster; the next unit frees up in `next_in`.
    #[error("the cluster's budget is spent; next in {next_in:?}")]
    Spent { next_in: Duration },
    /// The register could not be read or written (no quorum, engine away): nothing is known to
    /// be spent, and nothing may be admitted.
    #[error("the cluster's budget register is unavailable: {0}")]
    Unavailable(DockerError),
}

/// The register service, by name.
#[derive(Debug, Clone)]
pub struct Register {
    name: String,
}

impl Register {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Take one unit of `limit` per minute at `now` (0 = unlimited, nothing written); the unit
    /// taken (its time in unix ms), for [`Register::give_back`].
    pub async fn spend(
        &self,
        swarm: &dyn Swarm,
        limit: u32,
        now: SystemTime,
    ) -> Result<Option<u64>, SpendError> {
        if limit == 0 {
            return Ok(None);
        }
        for _ in 0..MAX_TRIES {
            let read = swarm.find_service(&self.name).await;
            let register = match read {
                Ok(Some(register)) => register,
                Ok(None) => {
                    self.create(swarm).await?;
                    continue;
                }
                Err(e) => return Err(SpendError::Unavailable(e)),
            };
            let mut log = within_minute(register.labels.get(BUDGET_LABEL), now);
            if log.len() >= limit as usize {
                let oldest = log[log.len() - limit as usize];
                let next_in = saturating_add(from_unix_ms(oldest), MINUTE)
                    .duration_since(now)
                    .unwrap_or_default();
                return Err(SpendError::Spent { next_in });
            }
            let unit = unix_ms(now);
            log.push(unit);
            let keep = log.len().min(limit as usize);
            let labels = [(BUDGET_LABEL.to_string(), written(&log[log.len() - keep..]))];
            match swarm.set_labels(&register, &labels).await {
                Ok(()) => return Ok(Some(unit)),
                Err(DockerError::OutOfSequence) => continue,
                Err(e) => return Err(SpendError::Unavailable(e)),
            }
        }
        Err(SpendError::Unavailable(DockerError::OutOfSequence))
    }

    /// Give back `unit` (from [`Register::spend`]) for an action that never landed, if it is
    /// still in the log. Units taken at the same millisecond are interchangeable.
    pub async fn give_back(
        &self,
        swarm: &dyn Swarm,
        unit: u64,
        now: SystemTime,
    ) -> Result<(), DockerError> {
        for _ in 0..MAX_TRIES {
            let Some(register) = swarm.find_service(&self.name).await? else {
                return Ok(());
            };
            let mut log = within_minute(register.labels.get(BUDGET_LABEL), now);
            let Some(at) = log.iter().position(|&t| t == unit) else {
                return Ok(());
            };
            log.remove(at);
            let labels = [(BUDGET_LABEL.to_string(), written(&log))];
            match swarm.set_labels(&register, &labels).await {
                Err(DockerError::OutOfSequence) => continue,
                other => return other,
            }
        }
        Err(DockerError::OutOfSequence)
    }

    async fn create(&self, swarm: &dyn Swarm) -> Result<(), SpendError> {
        let labels = [(REGISTER_LABEL.to_string(), "true".to_string())];
        match swarm.create_register(&self.name, &labels).await {
            // Another replica created it first: read theirs.
            Ok(()) | Err(DockerError::Api { status: 409, .. }) => Ok(()),
            Err(e) => Err(SpendError::Unavailable(e)),
        }
    }
}

fn written(log: &[u64]) -> String {
    let text: Vec<String> = log.iter().map(u64::to_string).collect();
    text.join(",")
}

/// The admission times (unix ms) of the log within the minute before `now`, oldest first; what
/// cannot be read is dropped (an operator's edit never blocks the cluster).
fn within_minute(log: Option<&String>, now: SystemTime) -> Vec<u64> {
    let horizon = unix_ms(now).saturating_sub(60_000);
    let mut times: Vec<u64> = log
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_default();
    times.retain(|&t| t > horizon);
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_the_last_minute_only() {
        let now = from_unix_ms(1_000_000);
        let log = "939000,940001,999999,junk,,1000000".to_string();
        assert_eq!(
            within_minute(Some(&log), now),
            vec![940_001, 999_999, 1_000_000]
        );
        assert!(within_minute(None, now).is_empty());
    }
}
