//! One lock per service that exists exactly while someone holds or awaits it. The map keeps weak
//! references: a lock in use can never be dropped and replaced (as an evicting cache could do
//! once alerts had named more services than its capacity, letting two actions on one service run
//! at once), and a lock nobody uses costs nothing once the map is pruned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, Weak};
use tokio::sync::Mutex;

/// The map is pruned of unused entries when it reaches this size, or twice its size after the
/// last prune, whichever is larger: amortized O(1) per lookup.
const PRUNE_FLOOR: usize = 1024;

pub struct ServiceLocks {
    inner: StdMutex<Inner>,
}

struct Inner {
    locks: HashMap<String, Weak<Mutex<()>>>,
    prune_at: usize,
}

impl Default for ServiceLocks {
    fn default() -> Self {
        Self {
            inner: StdMutex::new(Inner {
                locks: HashMap::new(),
                prune_at: PRUNE_FLOOR,
            }),
        }
    }
}

impl ServiceLocks {
    /// The lock of `service`: the same one for as long as anybody keeps it.
    pub fn get(&self, service: &str) -> Arc<Mutex<()>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = inner.locks.get(service).and_then(Weak::upgrade) {
            return lock;
        }
        if inner.locks.len() >= inner.prune_at {
            inner.locks.retain(|_, lock| lock.strong_count() > 0);
            inner.prune_at = PRUNE_FLOOR.max(2 * inner.locks.len());
        }
        let lock = Arc::new(Mutex::new(()));
        inner
            .locks
            .insert(service.to_string(), Arc::downgrade(&lock));
        lock
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.inner.lock().unwrap().locks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_survives_any_number_of_other_services() {
        let locks = ServiceLocks::default();
        let held = locks.get("web");
        let _guard = held.try_lock().unwrap();
        for i in 0..50_000 {
            locks.get(&format!("absent-{i}"));
        }
        let again = locks.get("web");
        assert!(Arc::ptr_eq(&held, &again), "the same lock while in use");
        assert!(again.try_lock().is_err(), "so it is still taken");
    }

    #[test]
    fn unused_locks_are_pruned_and_the_map_stays_bounded() {
        let locks = ServiceLocks::default();
        let kept: Vec<_> = (0..10).map(|i| locks.get(&format!("live-{i}"))).collect();
        for i in 0..100_000 {
            locks.get(&format!("gone-{i}"));
        }
        assert!(
            locks.entries() <= PRUNE_FLOOR,
            "{} entries",
            locks.entries()
        );
        for (i, lock) in kept.iter().enumerate() {
            assert!(Arc::ptr_eq(lock, &locks.get(&format!("live-{i}"))));
        }
    }
}
