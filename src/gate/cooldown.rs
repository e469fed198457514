//! Cooldowns per (service, action), decided with the injected clock. moka's own clock cannot be
//! mocked, so the deadline lives in the value; moka only bounds memory and drops an entry once its
//! time has passed in real time.
//!
//! Each cooldown also remembers the delivery that started it. That is the whole of dedupe: the
//! same alert delivered again (an Alertmanager retry, an HA peer) finds the cooldown it started,
//! with its own key in it, and is a `duplicate`; any other alert in that window is `cooldown`.

use crate::clock::{saturating_add, Clock};
use crate::rules::ActionKind;
use moka::sync::Cache;
use moka::Expiry;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy)]
struct Deadline {
    until: SystemTime,
    /// How long moka keeps the entry in real time.
    keep: Duration,
    /// Who started it (for cooldowns: the admitting delivery's key).
    tag: u64,
}

struct ExpireAtDeadline;

impl<K> Expiry<K, Deadline> for ExpireAtDeadline {
    fn expire_after_create(&self, _: &K, value: &Deadline, _: Instant) -> Option<Duration> {
        Some(value.keep)
    }

    fn expire_after_update(
        &self,
        _: &K,
        value: &Deadline,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.keep)
    }
}

/// Keys that stay "active" until a deadline, bounded in memory.
#[derive(Clone)]
pub struct Deadlines<K: Hash + Eq + Send + Sync + 'static> {
    entries: Cache<K, Deadline>,
    clock: Arc<dyn Clock>,
}

impl<K: Hash + Eq + Send + Sync + 'static> std::fmt::Debug for Deadlines<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Deadlines<K> {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(100_000)
                .expire_after(ExpireAtDeadline)
                .build(),
            clock,
        }
    }

    /// Time left on `key`, if any.
    pub fn remaining(&self, key: &K) -> Option<Duration> {
        self.remaining_with_tag(key).map(|(left, _)| left)
    }

    /// Time left on `key` and the tag it was started with.
    pub fn remaining_with_tag(&self, key: &K) -> Option<(Duration, u64)> {
        let deadline = self.entries.get(key)?;
        let left = deadline.until.duration_since(self.clock.now()).ok()?;
        (!left.is_zero()).then_some((left, deadline.tag))
    }

    /// Keep `key` active for `length` from now.
    pub fn start(&self, key: K, length: Duration) {
        self.start_tagged(key, length, 0);
    }

    pub fn start_tagged(&self, key: K, length: Duration, tag: u64) {
        self.restore(key, saturating_add(self.clock.now(), length), tag);
    }

    /// Keep `key` active until an absolute time (restoring from the journal).
    pub fn restore(&self, key: K, until: SystemTime, tag: u64) {
        let Ok(keep) = until.duration_since(self.clock.now()) else {
            return;
        };
        self.entries.insert(key, Deadline { until, keep, tag });
    }

    pub fn clear(&self, key: &K) {
        self.entries.invalidate(key);
    }

    /// The active keys with their time left.
    pub fn active(&self) -> Vec<(K, Duration)> {
        self.entries
            .iter()
            .filter_map(|(k, _)| self.remaining(&k).map(|left| ((*k).clone(), left)))
            .collect()
    }
}

/// Cooldowns per (service, action).
pub type Cooldowns = Deadlines<(String, ActionKind)>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rstest::rstest;

    fn key(service: &str, action: ActionKind) -> (String, ActionKind) {
        (service.to_string(), action)
    }

    #[rstest]
    #[case::just_started(0, Some(300))]
    #[case::midway(120, Some(180))]
    #[case::one_second_left(299, Some(1))]
    #[case::exactly_over(300, None)]
    #[case::long_over(3600, None)]
    fn remaining_follows_the_clock(#[case] elapsed: u64, #[case] left: Option<u64>) {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        cooldowns.start(key("web", ActionKind::ScaleUp), Duration::from_secs(300));
        clock.advance(Duration::from_secs(elapsed));
        let remaining = cooldowns.remaining(&key("web", ActionKind::ScaleUp));
        assert_eq!(remaining.map(|d| d.as_secs()), left);
    }

    #[test]
    fn is_per_service_and_action() {
        let cooldowns = Cooldowns::new(Arc::new(ManualClock::default()));
        cooldowns.start(key("web", ActionKind::ScaleUp), Duration::from_secs(60));
        assert!(cooldowns
            .remaining(&key("web", ActionKind::ScaleUp))
            .is_some());
        assert!(cooldowns
            .remaining(&key("web", ActionKind::Restart))
            .is_none());
        assert!(cooldowns
            .remaining(&key("api", ActionKind::ScaleUp))
            .is_none());
    }

    #[test]
    fn restarting_extends_the_deadline() {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        cooldowns.start(key("web", ActionKind::Restart), Duration::from_secs(60));
        clock.advance(Duration::from_secs(50));
        cooldowns.start(key("web", ActionKind::Restart), Duration::from_secs(60));
        clock.advance(Duration::from_secs(50));
        let left = cooldowns.remaining(&key("web", ActionKind::Restart));
        assert_eq!(left, Some(Duration::from_secs(10)));
    }

    #[test]
    fn restore_keeps_an_absolute_deadline_and_ignores_past_ones() {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        let now = clock.now();
        cooldowns.restore(
            key("web", ActionKind::ScaleUp),
            now + Duration::from_secs(30),
            7,
        );
        cooldowns.restore(
            key("api", ActionKind::ScaleUp),
            now - Duration::from_secs(1),
            7,
        );
        assert_eq!(
            cooldowns.remaining_with_tag(&key("web", ActionKind::ScaleUp)),
            Some((Duration::from_secs(30), 7))
        );
        assert_eq!(cooldowns.remaining(&key("api", ActionKind::ScaleUp)), None);
        cooldowns.clear(&key("web", ActionKind::ScaleUp));
        assert_eq!(cooldowns.remaining(&key("web", ActionKind::ScaleUp)), None);
    }

    /// A cooldown too long for the clock (a journal from before the bounds, a test) used to
    /// panic the HTTP worker with "overflow when adding duration"; now it lasts until the far
    /// future and is still found.
    #[rstest]
    #[case::u64_seconds(Duration::from_secs(u64::MAX))]
    #[case::duration_max(Duration::MAX)]
    fn an_unrepresentable_cooldown_saturates(#[case] length: Duration) {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        cooldowns.start_tagged(key("web", ActionKind::ScaleUp), length, 9);
        let (left, tag) = cooldowns
            .remaining_with_tag(&key("web", ActionKind::ScaleUp))
            .expect("still cooling down");
        assert_eq!(tag, 9);
        assert!(
            left > Duration::from_secs(1000 * 365 * 24 * 3600),
            "{left:?}"
        );
        clock.advance(Duration::MAX);
        assert_eq!(cooldowns.remaining(&key("web", ActionKind::ScaleUp)), None);
    }
}
