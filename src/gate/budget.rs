//! The action budgets of `[limits]`: at most `actions_per_minute` actions in any 60 s across the
//! cluster (a circuit breaker against runaway automation) and `actions_per_service_per_hour` in
//! any hour per service.
//!
//! Both are checked and spent together, atomically: an action refused by one budget takes nothing
//! from the other. (governor cannot do this: a check spends a cell and has no peek, so a storm
//! refused by the cluster budget used to drain every service's hourly budget with actions that
//! never ran.) Budgets are tens of actions, so an exact sliding log of admission times is cheap.

use crate::clock::{saturating_add, saturating_sub, Clock};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Admission times within one window, oldest first.
#[derive(Debug, Default)]
struct Log(VecDeque<SystemTime>);

impl Log {
    fn forget_before(&mut self, horizon: SystemTime) {
        while self.0.front().is_some_and(|t| *t <= horizon) {
            self.0.pop_front();
        }
    }

    /// How long until one more fits, or `None` when it fits now.
    fn wait(&mut self, limit: u32, window: Duration, now: SystemTime) -> Option<Duration> {
        self.forget_before(saturating_sub(now, window));
        if self.0.len() < limit as usize {
            return None;
        }
        let oldest = self.0[self.0.len() - limit as usize];
        Some(
            saturating_add(oldest, window)
                .duration_since(now)
                .unwrap_or_default(),
        )
    }
}

#[derive(Default)]
struct Logs {
    cluster: Log,
    per_service: HashMap<String, Log>,
}

/// The two action budgets; 0 means unlimited.
pub struct Budgets {
    per_minute: u32,
    per_service_per_hour: u32,
    logs: Mutex<Logs>,
    clock: Arc<dyn Clock>,
}

/// A budget that is spent, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetSpent {
    #[error("limits.actions_per_service_per_hour spent for {service}; next in {}", humantime::format_duration(*.next_in))]
    Service { service: String, next_in: Duration },
    #[error("limits.actions_per_minute spent for the cluster; next in {}", humantime::format_duration(*.next_in))]
    Cluster { next_in: Duration },
}

/// One action's spending, to give back if the action is not admitted after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spent(SystemTime);

impl Budgets {
    pub fn new(actions_per_minute: u32, per_service_per_hour: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            per_minute: actions_per_minute,
            per_service_per_hour,
            logs: Mutex::new(Logs::default()),
            clock,
        }
    }

    /// Whether an action on `service` would be admitted now, spending nothing: lets admission
    /// refuse before it reads the service from Docker.
    pub fn check(&self, service: &str) -> Result<(), BudgetSpent> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        self.refusal(&mut logs, service, self.clock.now())
    }

    /// Spend one action on `service` from both budgets, or spend nothing and say which budget is
    /// spent and for how long. The time returned is what [`Budgets::give_back`] takes.
    pub fn try_spend(&self, service: &str) -> Result<Spent, BudgetSpent> {
        let now = self.clock.now();
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        self.refusal(&mut logs, service, now)?;
        if self.per_minute > 0 {
            logs.cluster.0.push_back(now);
        }
        if self.per_service_per_hour > 0 {
            logs.per_service
                .entry(service.to_string())
                .or_default()
                .0
                .push_back(now);
        }
        Ok(Spent(now))
    }

    /// Undo a [`Budgets::try_spend`] whose action was not admitted after all (its intent could
    /// not be journaled).
    pub fn give_back(&self, service: &str, Spent(spent): Spent) {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        let remove = |log: &mut Log| {
            if let Some(i) = log.0.iter().rposition(|t| *t == spent) {
                log.0.remove(i);
            }
        };
        if self.per_minute > 0 {
            remove(&mut logs.cluster);
        }
        if let Some(log) = logs.per_service.get_mut(service) {
            remove(log);
        }
    }

    fn refusal(&self, logs: &mut Logs, service: &str, now: SystemTime) -> Result<(), BudgetSpent> {
        if self.per_service_per_hour > 0 {
            if let Some(log) = logs.per_service.get_mut(service) {
                if let Some(wait) = log.wait(self.per_service_per_hour, HOUR, now) {
                    return Err(BudgetSpent::Service {
                        service: service.to_string(),
                        next_in: round(wait),
                    });
                }
            }
        }
        if self.per_minute > 0 {
            if let Some(wait) = logs.cluster.wait(self.per_minute, MINUTE, now) {
                return Err(BudgetSpent::Cluster {
                    next_in: round(wait),
                });
            }
        }
        Ok(())
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(crate::clock::whole_secs_up(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn per_service_budget_refills_as_its_hour_slides() {
        let clock = ManualClock::default();
        let budgets = Budgets::new(100, 2, Arc::new(clock.clone()));
        assert!(budgets.try_spend("web").is_ok());
        clock.advance(Duration::from_secs(1800));
        assert!(budgets.try_spend("web").is_ok());
        let err = budgets.try_spend("web").unwrap_err().to_string();
        assert!(err.contains("actions_per_service_per_hour"), "{err}");
        assert!(err.contains("next in 30m"), "{err}");
        assert!(
            budgets.try_spend("api").is_ok(),
            "other services keep theirs"
        );
        clock.advance(Duration::from_secs(1800));
        assert!(
            budgets.try_spend("web").is_ok(),
            "the first one left the hour"
        );
        assert!(budgets.try_spend("web").is_err());
    }

    #[test]
    fn cluster_budget_caps_all_services() {
        let clock = ManualClock::default();
        let budgets = Budgets::new(3, 100, Arc::new(clock.clone()));
        for s in ["a", "b", "c"] {
            assert!(budgets.try_spend(s).is_ok());
        }
        let err = budgets.try_spend("d").unwrap_err().to_string();
        assert!(err.contains("actions_per_minute"), "{err}");
        clock.advance(Duration::from_secs(59));
        assert!(budgets.try_spend("d").is_err(), "still within the minute");
        clock.advance(Duration::from_secs(1));
        assert!(budgets.try_spend("d").is_ok());
    }

    #[test]
    fn a_refusal_by_one_budget_spends_nothing_from_the_other() {
        let clock = ManualClock::default();
        let budgets = Budgets::new(1, 2, Arc::new(clock.clone()));
        assert!(budgets.try_spend("web").is_ok());
        // The cluster budget refuses many times; web's hourly budget must not drain meanwhile.
        for _ in 0..10 {
            assert!(budgets.try_spend("web").is_err());
        }
        clock.advance(MINUTE);
        assert!(budgets.try_spend("web").is_ok(), "web still had one left");
    }

    #[test]
    fn check_spends_nothing() {
        let budgets = Budgets::new(1, 1, Arc::new(ManualClock::default()));
        for _ in 0..5 {
            assert!(budgets.check("web").is_ok());
        }
        assert!(budgets.try_spend("web").is_ok());
        assert!(budgets.check("web").is_err());
    }

    #[test]
    fn zero_means_unlimited() {
        let budgets = Budgets::new(0, 0, Arc::new(ManualClock::default()));
        for _ in 0..1000 {
            assert!(budgets.try_spend("web").is_ok());
        }
    }
}
