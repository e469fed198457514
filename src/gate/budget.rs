//! Budgets of actions (governor): a cluster-wide rate, a circuit breaker against runaway
//! automation, and a rate per service. They run on the injected clock so tests need no sleeps.

use crate::clock::Clock;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// governor's view of our clock: nanoseconds since the Unix epoch.
#[derive(Clone, Debug)]
pub struct InjectedClock(pub Arc<dyn Clock>);

impl GovernorClock for InjectedClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let since = self.0.now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Nanos::from(since.as_nanos() as u64)
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, InjectedClock, NoOpMiddleware<Nanos>>;
pub type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, InjectedClock, NoOpMiddleware<Nanos>>;

/// Build a keyed limiter of `per` per `period` (0 = unlimited: `None`).
pub fn keyed<K: std::hash::Hash + Eq + Clone>(
    count: u32,
    period: Duration,
    clock: &InjectedClock,
) -> Option<Keyed<K>> {
    let quota = quota(count, period)?;
    Some(RateLimiter::new(
        quota,
        DefaultKeyedStateStore::default(),
        clock.clone(),
    ))
}

fn quota(count: u32, period: Duration) -> Option<Quota> {
    let count = NonZeroU32::new(count)?;
    // Spread evenly over the period with the whole count as burst: "N per period".
    Quota::with_period(period / count.get()).map(|q| q.allow_burst(count))
}

/// The two action budgets of `[limits]`.
pub struct Budgets {
    cluster: Option<Direct>,
    per_service: Option<Keyed<String>>,
    clock: InjectedClock,
}

impl Budgets {
    pub fn new(actions_per_minute: u32, per_service_per_hour: u32, clock: Arc<dyn Clock>) -> Self {
        let clock = InjectedClock(clock);
        let cluster = quota(actions_per_minute, Duration::from_secs(60))
            .map(|q| RateLimiter::new(q, InMemoryState::default(), clock.clone()));
        let per_service = keyed(per_service_per_hour, Duration::from_secs(3600), &clock);
        Self {
            cluster,
            per_service,
            clock,
        }
    }

    /// Spend one action on `service`, or say which budget is spent and for how long.
    pub fn try_spend(&self, service: &str) -> Result<(), String> {
        if let Some(limiter) = &self.per_service {
            if let Err(not_until) = limiter.check_key(&service.to_string()) {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(format!(
                    "limits.actions_per_service_per_hour spent for {service}; next in {}",
                    humantime::format_duration(round(wait))
                ));
            }
        }
        if let Some(limiter) = &self.cluster {
            if let Err(not_until) = limiter.check() {
                let wait = not_until.wait_time_from(self.clock.now());
                return Err(format!(
                    "limits.actions_per_minute spent for the cluster; next in {}",
                    humantime::format_duration(round(wait))
                ));
            }
        }
        Ok(())
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn per_service_budget_refills_with_the_clock() {
        let clock = ManualClock::default();
        let budgets = Budgets::new(100, 2, Arc::new(clock.clone()));
        assert!(budgets.try_spend("web").is_ok());
        assert!(budgets.try_spend("web").is_ok());
        let err = budgets.try_spend("web").unwrap_err();
        assert!(err.contains("actions_per_service_per_hour"), "{err}");
        assert!(
            budgets.try_spend("api").is_ok(),
            "other services keep theirs"
        );
        clock.advance(Duration::from_secs(1800));
        assert!(budgets.try_spend("web").is_ok());
    }

    #[test]
    fn cluster_budget_caps_all_services() {
        let clock = ManualClock::default();
        let budgets = Budgets::new(3, 100, Arc::new(clock.clone()));
        for s in ["a", "b", "c"] {
            assert!(budgets.try_spend(s).is_ok());
        }
        let err = budgets.try_spend("d").unwrap_err();
        assert!(err.contains("actions_per_minute"), "{err}");
        clock.advance(Duration::from_secs(20));
        assert!(budgets.try_spend("d").is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let budgets = Budgets::new(0, 0, Arc::new(ManualClock::default()));
        for _ in 0..1000 {
            assert!(budgets.try_spend("web").is_ok());
        }
    }
}

#[cfg(test)]
mod keyed_tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn keyed_limiter_denies_past_the_burst_until_the_clock_moves() {
        let clock = ManualClock::default();
        let injected = InjectedClock(Arc::new(clock.clone()));
        let limiter = keyed::<u8>(2, Duration::from_secs(1), &injected).unwrap();
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_err());
        assert!(
            limiter.check_key(&2).is_ok(),
            "other clients keep their rate"
        );
        clock.advance(Duration::from_millis(500));
        assert!(limiter.check_key(&1).is_ok());
    }
}
