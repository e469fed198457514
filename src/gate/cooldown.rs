//! Cooldowns per (service, action), decided with the injected clock. moka's own clock cannot be
//! mocked, so the deadline lives in the value; moka only bounds memory and drops an entry once its
//! time has passed in real time.
//!
//! Each cooldown also remembers the delivery that started it. That is the whole of dedupe: the
//! same alert delivered again (an Alertmanager retry, an HA peer) finds the cooldown it started,
//! with its own key in it, and is a `duplicate`; any other alert in that window is `cooldown`.

use crate::clock::Clock;
use crate::rules::ActionKind;
use moka::sync::Cache;
use moka::Expiry;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy)]
struct Deadline {
    /// `None` while the action that started it has not finished: the window is held open, so
    /// no second action can be admitted behind one that is still queued or running.
    until: Option<SystemTime>,
    /// How long moka keeps the entry in real time.
    keep: Duration,
    /// Who started it (for cooldowns: the admitting delivery's key).
    tag: u64,
    /// The action that owns it: only its own outcome may end or give back the window.
    owner: u64,
}

/// How long a held window is kept in memory at most (an action is never unfinished this long;
/// the bound only keeps a lost entry from living forever).
const HELD_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// A window as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Its action has not finished yet; the window starts running when it lands.
    Held,
    /// Time left.
    Running(Duration),
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

    /// The window on `key`, if one is active, and the tag it was started with.
    pub fn window(&self, key: &K) -> Option<(Window, u64)> {
        let deadline = self.entries.get(key)?;
        let Some(until) = deadline.until else {
            return Some((Window::Held, deadline.tag));
        };
        let left = until.duration_since(self.clock.now()).ok()?;
        (!left.is_zero()).then_some((Window::Running(left), deadline.tag))
    }

    /// Whether a window is active on `key`.
    #[cfg(test)]
    pub fn is_active(&self, key: &K) -> bool {
        self.window(key).is_some()
    }

    /// Open a window on `key` for an action (`owner`) that has not finished yet. It replaces
    /// any window there: the gate admits only where none is active.
    pub fn hold(&self, key: K, tag: u64, owner: u64) {
        let deadline = Deadline {
            until: None,
            keep: HELD_KEEP,
            tag,
            owner,
        };
        self.entries.insert(key, deadline);
    }

    /// The owner's action landed: its window runs `length` from now. A window that another
    /// action owns by now is left alone.
    pub fn run_from_now(&self, key: &K, owner: u64, length: Duration) {
        let until = crate::clock::saturating_add(self.clock.now(), length);
        self.update_owned(key, owner, |d| {
            Some(Deadline {
                until: Some(until),
                keep: keep_until(until, self.clock.now()),
                ..d
            })
        });
    }

    /// The owner's action did not happen: its window (and with it the duplicate guard) is
    /// given back. Only the owner's entry is ever removed.
    pub fn give_back(&self, key: &K, owner: u64) {
        self.update_owned(key, owner, |_| None);
    }

    fn update_owned(&self, key: &K, owner: u64, change: impl FnOnce(Deadline) -> Option<Deadline>) {
        use moka::ops::compute::Op;
        self.entries
            .entry_by_ref(key)
            .and_compute_with(|entry| match entry {
                Some(entry) if entry.value().owner == owner => match change(*entry.value()) {
                    Some(deadline) => Op::Put(deadline),
                    None => Op::Remove,
                },
                _ => Op::Nop,
            });
    }

    /// Restore a window from the journal: running until `until` (`None`: held, its action is
    /// being resumed). A window that has passed is not restored.
    pub fn restore(&self, key: K, until: Option<SystemTime>, tag: u64, owner: u64) {
        let now = self.clock.now();
        let keep = match until {
            None => HELD_KEEP,
            Some(until) if until > now => keep_until(until, now),
            Some(_) => return,
        };
        self.entries.insert(
            key,
            Deadline {
                until,
                keep,
                tag,
                owner,
            },
        );
    }

    /// The active keys with their windows.
    pub fn active(&self) -> Vec<(K, Window)> {
        self.entries
            .iter()
            .filter_map(|(k, _)| self.window(&k).map(|(w, _)| ((*k).clone(), w)))
            .collect()
    }
}

fn keep_until(until: SystemTime, now: SystemTime) -> Duration {
    until.duration_since(now).unwrap_or_default().min(HELD_KEEP)
}

/// Cooldowns per (service, action).
pub type Cooldowns = Deadlines<(String, ActionKind)>;

/// The owner tag of an action id (ids are unique; the digest only keeps entries small).
pub fn owner_of(action_id: &str) -> u64 {
    super::stable_digest(&[action_id])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rstest::rstest;

    fn key(service: &str, action: ActionKind) -> (String, ActionKind) {
        (service.to_string(), action)
    }

    fn left(cooldowns: &Cooldowns, k: &(String, ActionKind)) -> Option<u64> {
        match cooldowns.window(k) {
            Some((Window::Running(left), _)) => Some(left.as_secs()),
            Some((Window::Held, _)) => Some(u64::MAX),
            None => None,
        }
    }

    /// An action admitted and landed at once, owning its window.
    fn landed(cooldowns: &Cooldowns, k: (String, ActionKind), owner: u64, secs: u64) {
        cooldowns.hold(k.clone(), 1, owner);
        cooldowns.run_from_now(&k, owner, Duration::from_secs(secs));
    }

    #[rstest]
    #[case::just_started(0, Some(300))]
    #[case::midway(120, Some(180))]
    #[case::one_second_left(299, Some(1))]
    #[case::exactly_over(300, None)]
    #[case::long_over(3600, None)]
    fn remaining_follows_the_clock(#[case] elapsed: u64, #[case] expected: Option<u64>) {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        landed(&cooldowns, key("web", ActionKind::ScaleUp), 1, 300);
        clock.advance(Duration::from_secs(elapsed));
        assert_eq!(left(&cooldowns, &key("web", ActionKind::ScaleUp)), expected);
    }

    #[test]
    fn is_per_service_and_action() {
        let cooldowns = Cooldowns::new(Arc::new(ManualClock::default()));
        landed(&cooldowns, key("web", ActionKind::ScaleUp), 1, 60);
        assert!(cooldowns.is_active(&key("web", ActionKind::ScaleUp)));
        assert!(!cooldowns.is_active(&key("web", ActionKind::Restart)));
        assert!(!cooldowns.is_active(&key("api", ActionKind::ScaleUp)));
    }

    #[test]
    fn a_held_window_does_not_pass_with_time() {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        cooldowns.hold(key("web", ActionKind::Restart), 7, 1);
        clock.advance(Duration::from_secs(86_400));
        assert_eq!(
            cooldowns.window(&key("web", ActionKind::Restart)),
            Some((Window::Held, 7))
        );
        cooldowns.run_from_now(&key("web", ActionKind::Restart), 1, Duration::from_secs(60));
        clock.advance(Duration::from_secs(50));
        assert_eq!(left(&cooldowns, &key("web", ActionKind::Restart)), Some(10));
    }

    /// A (queued through an outage) expires after B was admitted behind its window: A's outcome
    /// must not touch B's window, whether it gives back or lands.
    #[test]
    fn only_the_owner_ends_or_gives_back_a_window() {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        let k = key("web", ActionKind::ScaleUp);
        cooldowns.hold(k.clone(), 10, 1);
        cooldowns.give_back(&k, 1);
        cooldowns.hold(k.clone(), 20, 2);
        cooldowns.give_back(&k, 1);
        cooldowns.run_from_now(&k, 1, Duration::ZERO);
        assert_eq!(cooldowns.window(&k), Some((Window::Held, 20)));
        cooldowns.run_from_now(&k, 2, Duration::from_secs(300));
        cooldowns.give_back(&k, 1);
        assert_eq!(left(&cooldowns, &k), Some(300));
        cooldowns.give_back(&k, 2);
        assert_eq!(cooldowns.window(&k), None);
    }

    #[test]
    fn restore_keeps_an_absolute_deadline_and_ignores_past_ones() {
        let clock = ManualClock::default();
        let cooldowns = Cooldowns::new(Arc::new(clock.clone()));
        let now = clock.now();
        let web = key("web", ActionKind::ScaleUp);
        cooldowns.restore(web.clone(), Some(now + Duration::from_secs(30)), 7, 1);
        cooldowns.restore(
            key("api", ActionKind::ScaleUp),
            Some(now - Duration::from_secs(1)),
            7,
            2,
        );
        cooldowns.restore(key("db", ActionKind::Restart), None, 8, 3);
        assert_eq!(
            cooldowns.window(&web),
            Some((Window::Running(Duration::from_secs(30)), 7))
        );
        assert!(!cooldowns.is_active(&key("api", ActionKind::ScaleUp)));
        assert_eq!(
            cooldowns.window(&key("db", ActionKind::Restart)),
            Some((Window::Held, 8))
        );
        cooldowns.give_back(&web, 1);
        assert!(!cooldowns.is_active(&web));
    }

    #[test]
    fn a_cooldown_too_long_to_represent_saturates() {
        let cooldowns = Cooldowns::new(Arc::new(ManualClock::default()));
        let k = key("web", ActionKind::ScaleUp);
        cooldowns.hold(k.clone(), 1, 1);
        cooldowns.run_from_now(&k, 1, Duration::from_secs(u64::MAX));
        assert!(matches!(
            cooldowns.window(&k),
            Some((Window::Running(_), 1))
        ));
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
        let k = key("web", ActionKind::ScaleUp);
        cooldowns.hold(k.clone(), 9, 1);
        cooldowns.run_from_now(&k, 1, length);
        let Some((Window::Running(left), tag)) = cooldowns.window(&k) else {
            panic!("still cooling down");
        };
        assert_eq!(tag, 9);
        assert!(
            left > Duration::from_secs(1000 * 365 * 24 * 3600),
            "{left:?}"
        );
        clock.advance(Duration::MAX);
        assert_eq!(cooldowns.window(&k), None);
    }
}
