//! The time source of every stateful stage. Cooldowns decide with an injected clock so tests can
//! move time forward instead of sleeping; production uses the system clock.

use std::time::{Duration, Instant, SystemTime};

/// The future [`Clock::sleep`] returns.
pub type Sleep = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Wall-clock time, so cooldown deadlines can be persisted and restored across restarts, and the
/// waits between retries: one clock for deadlines and sleeps.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;

    /// Wait `d`. Real time by default: a manual clock only moves deadlines, so the retries it
    /// paces still wait (briefly) instead of spinning.
    fn sleep(&self, d: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(d))
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use manual::ManualClock;

#[cfg(any(test, feature = "test-support"))]
mod manual {
    use super::{saturating_add, Clock};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, SystemTime};

    /// A clock that only moves when told to; shared by clones so a test keeps a handle to it.
    /// Tests only: unit tests, and integration tests and benchmarks through `test-support`.
    #[derive(Debug, Clone)]
    pub struct ManualClock {
        now: Arc<Mutex<SystemTime>>,
    }

    impl ManualClock {
        pub fn new(start: SystemTime) -> Self {
            Self {
                now: Arc::new(Mutex::new(start)),
            }
        }

        pub fn advance(&self, by: Duration) {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            *now = saturating_add(*now, by);
        }
    }

    impl Default for ManualClock {
        fn default() -> Self {
            Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> SystemTime {
            *self.now.lock().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// The latest time swarmpilot ever computes: 1 January 10000 UTC. Far beyond any cooldown or
/// retry window, yet representable as a `SystemTime` on every platform and as milliseconds in a
/// `u64` (the journal's time format), so clamping to it never panics further down.
pub fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + FAR_FUTURE_SINCE_EPOCH
}

/// Seconds from the Unix epoch to 10000-01-01T00:00:00Z.
const FAR_FUTURE_SINCE_EPOCH: Duration = Duration::from_secs(253_402_300_800);

/// `t + d`, clamped to [`far_future`] instead of panicking (`SystemTime + Duration` panics on
/// overflow, which a huge configured duration would otherwise reach).
pub fn saturating_add(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_add(d)
        .map_or(far_future(), |sum| sum.min(far_future()))
}

/// `t - d`, clamped to the Unix epoch: no deadline or window of swarmpilot starts earlier.
pub fn saturating_sub(t: SystemTime, d: Duration) -> SystemTime {
    t.checked_sub(d).map_or(SystemTime::UNIX_EPOCH, |diff| {
        diff.max(SystemTime::UNIX_EPOCH)
    })
}

/// `t + d` for monotonic deadlines (tokio's `Instant` converts with `from_std`/`into_std`). An
/// `Instant` has no public maximum, so a duration past `FAR_FUTURE_SINCE_EPOCH` (thousands of
/// years) is cut to it; that sum fits any platform's monotonic clock.
pub fn saturating_add_instant(t: Instant, d: Duration) -> Instant {
    let d = d.min(FAR_FUTURE_SINCE_EPOCH);
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(t)
}

/// Milliseconds since the Unix epoch (the journal's time format): 0 before the epoch, `u64::MAX`
/// past it (never reached for times clamped to [`far_future`]) instead of a truncating cast.
pub fn unix_ms(t: SystemTime) -> u64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    duration_ms(since)
}

/// The time `ms` milliseconds after the Unix epoch, clamped to [`far_future`] (a journal line
/// is input too: a corrupt or hostile time must not panic recovery).
pub fn from_unix_ms(ms: u64) -> SystemTime {
    saturating_add(SystemTime::UNIX_EPOCH, Duration::from_millis(ms))
}

/// A duration in whole milliseconds, saturating at `u64::MAX` instead of `as u64` truncating
/// the `u128` that `Duration::as_millis` returns.
pub fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up: what a person is told to wait ("retry in 3s", "4m 48s left") must
/// never read shorter than the real wait.
pub fn whole_secs_up(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// Seconds since the Unix epoch (what Prometheus timestamps in seconds).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

    #[rstest]
    #[case::ordinary(Duration::from_secs(300), false)]
    #[case::past_far_future(YEAR * 10_000, true)]
    #[case::duration_max(Duration::MAX, true)]
    #[case::u64_seconds(Duration::from_secs(u64::MAX), true)]
    fn saturating_add_clamps_to_far_future(#[case] d: Duration, #[case] clamped: bool) {
        let now = ManualClock::default().now();
        let sum = saturating_add(now, d);
        if clamped {
            assert_eq!(sum, far_future());
        } else {
            assert_eq!(sum, now + d);
        }
    }

    #[test]
    fn saturating_sub_stops_at_the_epoch() {
        let now = ManualClock::default().now();
        assert_eq!(saturating_sub(now, Duration::MAX), SystemTime::UNIX_EPOCH);
        let earlier = saturating_sub(now, Duration::from_secs(60));
        assert_eq!(
            now.duration_since(earlier).unwrap(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn saturating_add_instant_never_panics() {
        let now = Instant::now();
        assert_eq!(
            saturating_add_instant(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        for huge in [Duration::MAX, Duration::from_secs(u64::MAX), YEAR * 100_000] {
            assert!(saturating_add_instant(now, huge) > now + YEAR);
        }
    }

    #[rstest]
    #[case::epoch(0)]
    #[case::now(1_800_000_000_000)]
    #[case::far_future(253_402_300_800_000)]
    fn unix_ms_round_trips(#[case] ms: u64) {
        assert_eq!(unix_ms(from_unix_ms(ms)), ms);
    }

    #[test]
    fn unix_ms_clamps_instead_of_truncating() {
        assert_eq!(from_unix_ms(u64::MAX), far_future());
        assert_eq!(unix_ms(SystemTime::UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(duration_ms(Duration::MAX), u64::MAX);
        assert_eq!(duration_ms(Duration::from_secs(2)), 2000);
    }
}
