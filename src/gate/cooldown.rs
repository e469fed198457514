//! Cooldowns per (service, action). The deadline lives in the value and is compared with the
//! injected clock, because moka's own clock cannot be mocked; moka bounds the memory and drops
//! entries once their cooldown has passed in real time.

use crate::clock::Clock;
use crate::rules::ActionKind;
use moka::sync::Cache;
use moka::Expiry;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

type Key = (String, ActionKind);

#[derive(Debug, Clone, Copy)]
struct Deadline {
    until: SystemTime,
    length: Duration,
}

struct ExpireAtDeadline;

impl Expiry<Key, Deadline> for ExpireAtDeadline {
    fn expire_after_create(&self, _: &Key, value: &Deadline, _: Instant) -> Option<Duration> {
        Some(value.length)
    }

    fn expire_after_update(
        &self,
        _: &Key,
        value: &Deadline,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.length)
    }
}

/// Active cooldowns, bounded in memory.
#[derive(Clone)]
pub struct Cooldowns {
    deadlines: Cache<Key, Deadline>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Cooldowns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cooldowns")
            .field("entries", &self.deadlines.entry_count())
            .finish()
    }
}

impl Cooldowns {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            deadlines: Cache::builder()
                .max_capacity(100_000)
                .expire_after(ExpireAtDeadline)
                .build(),
            clock,
        }
    }

    /// Time left before `action` may run on `service` again, if any.
    pub fn remaining(&self, service: &str, action: ActionKind) -> Option<Duration> {
        let deadline = self.deadlines.get(&(service.to_string(), action))?;
        let left = deadline.until.duration_since(self.clock.now()).ok()?;
        (!left.is_zero()).then_some(left)
    }

    /// Start a cooldown of `length` from now.
    pub fn start(&self, service: &str, action: ActionKind, length: Duration) {
        let until = self.clock.now() + length;
        self.deadlines
            .insert((service.to_string(), action), Deadline { until, length });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rstest::rstest;

    #[rstest]
    #[case::just_started(0, Some(300))]
    #[case::midway(120, Some(180))]
    #[case::one_second_left(299, Some(1))]
    #[case::exactly_over(300, None)]
    #[case::long_over(3600, None)]
    fn remaining_follows_the_clock(#[case] elapsed: u64, #[case] left: Option<u64>) {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        cooldowns.start("web", ActionKind::ScaleUp, Duration::from_secs(300));
        clock.advance(Duration::from_secs(elapsed));
        let remaining = cooldowns.remaining("web", ActionKind::ScaleUp);
        assert_eq!(remaining.map(|d| d.as_secs()), left.filter(|&s| s > 0));
    }

    #[test]
    fn is_per_service_and_action() {
        let cooldowns = Cooldowns::new(Arc::new(ManualClock::default()));
        cooldowns.start("web", ActionKind::ScaleUp, Duration::from_secs(60));
        assert!(cooldowns.remaining("web", ActionKind::ScaleUp).is_some());
        assert!(cooldowns.remaining("web", ActionKind::Restart).is_none());
        assert!(cooldowns.remaining("api", ActionKind::ScaleUp).is_none());
    }

    #[test]
    fn restarting_extends_the_deadline() {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        cooldowns.start("web", ActionKind::Restart, Duration::from_secs(60));
        clock.advance(Duration::from_secs(50));
        cooldowns.start("web", ActionKind::Restart, Duration::from_secs(60));
        clock.advance(Duration::from_secs(50));
        assert_eq!(
            cooldowns.remaining("web", ActionKind::Restart),
            Some(Duration::from_secs(10))
        );
    }
}
