//! Scale-down stabilization's memory: the replica counts target tracking recommended per
//! (service, rule), with the injected clock's time, so a scale-down takes the highest of its
//! window (HPA's `scaleDown.stabilizationWindowSeconds`) and a brief dip in load does not remove
//! replicas that are needed again a minute later.
//!
//! Bounded twice. Per key, only what can still be the highest of some window is kept: a
//! recommendation is dropped once a later one is at least as high (a monotonic queue, highest
//! first), entries older than the window are pruned, and past 64 (`KEEP_PER_KEY`) the two oldest
//! are merged into one that keeps the higher count for the later time — which only ever holds
//! replicas longer, never removes them sooner. Across keys, moka bounds the count of
//! (service, rule) pairs and forgets one idle for longer than any window; only services that
//! exist and opted in ever get here (a recommendation needs a read of the service), so alerts
//! naming made-up services cannot grow it. As with cooldowns, moka's real-time expiry only
//! frees memory: every decision is taken with the injected clock.

use crate::clock::{saturating_sub, Clock};
use moka::sync::Cache;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// (service, rule): whose recommendations a window holds.
pub type RecommendationKey = (String, String);

/// Recommendations kept per key at most.
const KEEP_PER_KEY: usize = 64;
/// (service, rule) pairs kept at most: far above the opted-in services × target rules of any
/// swarm.
const MAX_KEYS: u64 = 10_000;
/// Longer than any window a rule may set (`scale_down_stabilization` is at most 1 h).
const IDLE_FOR: Duration = Duration::from_secs(2 * 3600);

/// The recommendations of one key: times ascending, counts strictly descending.
#[derive(Debug, Default)]
struct Seen(VecDeque<(SystemTime, u64)>);

impl Seen {
    fn prune(&mut self, cutoff: SystemTime) {
        while self.0.front().is_some_and(|(at, _)| *at < cutoff) {
            self.0.pop_front();
        }
    }

    /// The highest count since `cutoff`, `candidate` included. Every entry is looked at (at
    /// most [`KEEP_PER_KEY`]), so a wall clock that stepped back cannot hide one.
    fn highest(&self, cutoff: SystemTime, candidate: u64) -> u64 {
        self.0
            .iter()
            .filter(|(at, _)| *at >= cutoff)
            .map(|(_, replicas)| *replicas)
            .fold(candidate, u64::max)
    }

    fn push(&mut self, mut at: SystemTime, replicas: u64) {
        while let Some(&(later, lower)) = self.0.back() {
            if lower > replicas {
                break;
            }
            // It can never be the highest again; if the clock stepped back, the new entry
            // takes its later time so no window loses a count it held.
            at = at.max(later);
            self.0.pop_back();
        }
        self.0.push_back((at, replicas));
        if self.0.len() > KEEP_PER_KEY {
            if let (Some((_, oldest)), Some(next)) = (self.0.pop_front(), self.0.front_mut()) {
                next.1 = next.1.max(oldest);
            }
        }
    }
}

/// Recommendations per (service, rule), bounded (see the module's notes).
pub struct Recommendations {
    entries: Cache<RecommendationKey, Arc<Mutex<Seen>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Recommendations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recommendations")
            .field("keys", &self.entries.entry_count())
            .finish()
    }
}

impl Recommendations {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(clock, MAX_KEYS)
    }

    fn with_capacity(clock: Arc<dyn Clock>, keys: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(keys)
                .time_to_idle(IDLE_FOR)
                .build(),
            clock,
        }
    }

    /// Remember `replicas` as `key`'s recommendation now (unless `record` is false: a dry run
    /// decides without leaving a trace) and return the highest of the last `window`, this one
    /// included.
    pub fn recommend(
        &self,
        key: &RecommendationKey,
        replicas: u64,
        window: Duration,
        record: bool,
    ) -> u64 {
        let now = self.clock.now();
        let cutoff = saturating_sub(now, window);
        if !record {
            return self
                .entries
                .get(key)
                .map_or(replicas, |seen| lock(&seen).highest(cutoff, replicas));
        }
        let seen = self.entries.get_with_by_ref(key, Arc::default);
        let mut seen = lock(&seen);
        seen.prune(cutoff);
        let highest = seen.highest(cutoff, replicas);
        seen.push(now, replicas);
        highest
    }

    /// A recommendation made `at` (recovery: a journaled scale_to_target that landed), kept
    /// only while it is inside `window`.
    pub fn restore(
        &self,
        key: &RecommendationKey,
        replicas: u64,
        at: SystemTime,
        window: Duration,
    ) {
        let cutoff = saturating_sub(self.clock.now(), window);
        if at < cutoff {
            return;
        }
        let seen = self.entries.get_with_by_ref(key, Arc::default);
        lock(&seen).push(at, replicas);
    }

    /// How many recommendations `key` holds (tests: memory stays bounded).
    #[cfg(test)]
    fn held(&self, key: &RecommendationKey) -> usize {
        self.entries.get(key).map_or(0, |seen| lock(&seen).0.len())
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use rstest::rstest;

    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn key() -> RecommendationKey {
        ("web".into(), "cpu-target".into())
    }

    /// Feed `(seconds after start, recommendation)` and return the highest answered each time.
    fn feed(steps: &[(u64, u64)], window: Duration) -> Vec<u64> {
        let clock = ManualClock::default();
        let start = clock.now();
        let memory = Recommendations::new(Arc::new(clock.clone()));
        steps
            .iter()
            .map(|&(at, replicas)| {
                let now = clock.now().duration_since(start).unwrap().as_secs();
                clock.advance(Duration::from_secs(at - now));
                memory.recommend(&key(), replicas, window, true)
            })
            .collect()
    }

    #[rstest]
    #[case::a_dip_is_held(&[(0, 6), (60, 2), (120, 2)], FIVE_MIN, &[6, 6, 6])]
    #[case::held_until_the_window_passes(&[(0, 6), (60, 2), (300, 2), (301, 2)], FIVE_MIN, &[6, 6, 6, 2])]
    #[case::the_exact_edge_is_inside(&[(0, 6), (300, 2)], FIVE_MIN, &[6, 6])]
    #[case::a_later_higher_one_restarts_the_hold(&[(0, 4), (200, 6), (400, 2), (501, 2)], FIVE_MIN, &[4, 6, 6, 2])]
    #[case::the_second_highest_takes_over(&[(0, 8), (100, 5), (200, 3), (301, 3), (401, 3)], FIVE_MIN, &[8, 8, 8, 5, 3])]
    #[case::a_higher_one_is_the_highest_at_once(&[(0, 2), (10, 7)], FIVE_MIN, &[2, 7])]
    #[case::no_window(&[(0, 6), (1, 2)], Duration::ZERO, &[6, 2])]
    fn the_highest_of_the_window(
        #[case] steps: &[(u64, u64)],
        #[case] window: Duration,
        #[case] expected: &[u64],
    ) {
        assert_eq!(feed(steps, window), expected);
    }

    #[test]
    fn keys_are_per_service_and_rule() {
        let memory = Recommendations::new(Arc::new(ManualClock::default()));
        memory.recommend(&key(), 9, FIVE_MIN, true);
        let other_rule = ("web".to_string(), "mem-target".to_string());
        let other_service = ("api".to_string(), "cpu-target".to_string());
        assert_eq!(memory.recommend(&other_rule, 2, FIVE_MIN, true), 2);
        assert_eq!(memory.recommend(&other_service, 2, FIVE_MIN, true), 2);
        assert_eq!(memory.recommend(&key(), 2, FIVE_MIN, true), 9);
    }

    #[test]
    fn a_dry_run_looks_without_recording() {
        let memory = Recommendations::new(Arc::new(ManualClock::default()));
        assert_eq!(memory.recommend(&key(), 9, FIVE_MIN, false), 9);
        assert_eq!(memory.recommend(&key(), 2, FIVE_MIN, true), 2);
        assert_eq!(memory.recommend(&key(), 1, FIVE_MIN, false), 2);
    }

    /// Thousands of recommendations, each lower than the one before (the worst case of the
    /// monotonic queue), keep at most KEEP_PER_KEY, and the merge errs towards the higher count.
    #[test]
    fn one_key_stays_bounded_and_never_forgets_a_high() {
        let clock = ManualClock::default();
        let memory = Recommendations::new(Arc::new(clock.clone()));
        for replicas in (1..=5000).rev() {
            memory.recommend(&key(), replicas, Duration::from_secs(3600), true);
            clock.advance(Duration::from_millis(100));
        }
        assert!(
            memory.held(&key()) <= KEEP_PER_KEY,
            "{}",
            memory.held(&key())
        );
        assert_eq!(
            memory.recommend(&key(), 1, Duration::from_secs(3600), true),
            5000
        );
    }

    #[test]
    fn equal_or_higher_later_counts_replace_earlier_ones() {
        let memory = Recommendations::new(Arc::new(ManualClock::default()));
        for replicas in [3, 3, 5, 5, 5] {
            memory.recommend(&key(), replicas, FIVE_MIN, true);
        }
        assert_eq!(memory.held(&key()), 1);
    }

    #[test]
    fn the_count_of_keys_is_bounded() {
        let memory = Recommendations::with_capacity(Arc::new(ManualClock::default()), 100);
        for n in 0..1000 {
            memory.recommend(&(format!("svc{n}"), "r".into()), 3, FIVE_MIN, true);
        }
        memory.entries.run_pending_tasks();
        assert!(memory.entries.entry_count() <= 100);
    }

    #[test]
    fn a_clock_stepping_back_keeps_the_high() {
        let clock = ManualClock::default();
        let start = clock.now();
        let memory = Recommendations::new(Arc::new(clock.clone()));
        clock.advance(Duration::from_secs(100));
        memory.recommend(&key(), 6, FIVE_MIN, true);
        // The wall clock steps back 50 s (NTP); a higher recommendation then.
        let back = Arc::new(ManualClock::new(start + Duration::from_secs(50)));
        let stepped = Recommendations {
            entries: memory.entries.clone(),
            clock: back.clone(),
        };
        stepped.recommend(&key(), 7, FIVE_MIN, true);
        // 7 keeps the later time (100 s): at 399 s it is still inside the window.
        back.advance(Duration::from_secs(349));
        assert_eq!(stepped.recommend(&key(), 1, FIVE_MIN, false), 7);
    }

    #[test]
    fn restore_keeps_what_is_inside_the_window() {
        let clock = ManualClock::default();
        let memory = Recommendations::new(Arc::new(clock.clone()));
        let now = clock.now();
        memory.restore(&key(), 8, now - Duration::from_secs(400), FIVE_MIN);
        assert_eq!(memory.recommend(&key(), 2, FIVE_MIN, false), 2);
        memory.restore(&key(), 6, now - Duration::from_secs(200), FIVE_MIN);
        assert_eq!(memory.recommend(&key(), 2, FIVE_MIN, false), 6);
        clock.advance(Duration::from_secs(101));
        assert_eq!(memory.recommend(&key(), 2, FIVE_MIN, false), 2);
    }
}
