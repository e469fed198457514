//! The time source of every stateful stage. Cooldowns decide with an injected clock so tests can
//! move time forward instead of sleeping; production uses the system clock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Wall-clock time, so cooldown deadlines can later be persisted and restored across restarts.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; shared by clones so a test keeps a handle to it.
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
        *now += by;
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

/// `t + d`, clamped to a far but representable time instead of panicking: durations come from
/// config and rule files, and `SystemTime + Duration` panics on overflow.
pub fn saturating_add(t: SystemTime, d: Duration) -> SystemTime {
    // ~year 5138: far beyond any cooldown, and representable on every platform Rust supports.
    const FAR: Duration = Duration::from_secs(100_000_000_000);
    let latest = SystemTime::UNIX_EPOCH + FAR;
    t.checked_add(d).map_or(latest, |sum| sum.min(latest))
}
