//! The per-client request rate of `limits.requests_per_second_per_client`: governor's keyed GCRA
//! limiter on the injected clock, so tests need no sleeps.

use crate::clock::Clock;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
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

/// How many periods' worth a client may send at once. Alertmanager flushes every group that is
/// due at the same moment, one request each: a storm of a few hundred groups arrives as one
/// burst, and Alertmanager does not retry a 429 — those groups would wait for the next
/// `group_interval`. Ten seconds' worth lets such a burst through at the default rate (50/s:
/// 500) while a client that keeps sending is still held to the rate.
const BURST_PERIODS: u32 = 10;

fn quota(count: u32, period: Duration) -> Option<Quota> {
    let count = NonZeroU32::new(count)?;
    let burst = count.saturating_mul(NonZeroU32::new(BURST_PERIODS)?);
    // Spread evenly over the period: "N per period", after a burst of BURST_PERIODS × N.
    Quota::with_period(period / count.get()).map(|q| q.allow_burst(burst))
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
        for _ in 0..2 * BURST_PERIODS {
            assert!(limiter.check_key(&1).is_ok());
        }
        assert!(limiter.check_key(&1).is_err());
        assert!(
            limiter.check_key(&2).is_ok(),
            "other clients keep their rate"
        );
        clock.advance(Duration::from_millis(500));
        assert!(limiter.check_key(&1).is_ok());
        assert!(
            limiter.check_key(&1).is_err(),
            "then the rate, not another burst"
        );
    }

    #[test]
    fn the_largest_rate_saturates_its_burst_instead_of_overflowing() {
        let injected = InjectedClock(Arc::new(ManualClock::default()));
        // 10⁹ per second: one every nanosecond, a burst past u32::MAX (saturated).
        let limiter = keyed::<u8>(1_000_000_000, Duration::from_secs(1), &injected).unwrap();
        assert!(limiter.check_key(&1).is_ok());
    }
}
