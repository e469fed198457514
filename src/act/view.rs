//! The swarm as the operator pages see it: the managed services behind `GET /` and the engine's
//! liveness behind `/-/ready` and `swarmpilot_docker_up`, shared by every reader and at most
//! [`MAX_AGE`] old.
//!
//! Those pages are cheap to ask for and were expensive to answer: each `GET /` listed every
//! service and every task of the cluster, each `/-/ready` pinged, so a busy dashboard or a
//! `wrk` run kept dockerd at a full core. Here each kind of read reaches Docker at most once per
//! [`MAX_AGE`] however many readers there are, and readers that arrive while a read is in flight
//! wait for it instead of starting their own (single-flight). Failures are kept as long as
//! answers: during an outage the pages do not hammer (or wait on) an engine that is away.
//!
//! Admission and execution never read through this view: they always read the service fresh.

use super::{DockerError, Swarm};
use crate::clock::Clock;
use crate::model::ServiceSummary;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How old a shared answer may be before the next reader asks Docker again.
pub const MAX_AGE: Duration = Duration::from_secs(1);

/// The managed services of the status page.
pub type Services = Result<Arc<[ServiceSummary]>, DockerError>;

/// Shared, briefly cached reads of the swarm for the operator pages.
pub struct SwarmView {
    swarm: Arc<dyn Swarm>,
    /// Ages the answers. Not the pipeline's decision clock: tests freeze that one, while the
    /// load this view bounds is in real seconds. Injected so unit tests can move it.
    clock: Arc<dyn Clock>,
    opt_in_label: String,
    services: Fresh<Services>,
    ping: Fresh<Result<(), DockerError>>,
}

impl SwarmView {
    pub fn new(swarm: Arc<dyn Swarm>, clock: Arc<dyn Clock>, opt_in_label: String) -> Self {
        Self {
            swarm,
            clock,
            opt_in_label,
            services: Fresh::default(),
            ping: Fresh::default(),
        }
    }

    /// Every opted-in service with its running tasks (one service list and one task list).
    pub async fn services(&self) -> Services {
        let read = || async {
            self.swarm
                .managed_services(&self.opt_in_label)
                .await
                .map(Arc::from)
        };
        self.services.get(self.clock.as_ref(), read).await
    }

    /// Whether the engine answers.
    pub async fn ping(&self) -> Result<(), DockerError> {
        self.ping
            .get(self.clock.as_ref(), || self.swarm.ping())
            .await
    }
}

/// One cached answer. The async mutex is held across the read, which is what makes the read
/// single-flight: later readers queue on it and find the fresh answer when they get it.
struct Fresh<T> {
    slot: tokio::sync::Mutex<Option<(SystemTime, T)>>,
}

impl<T> Default for Fresh<T> {
    fn default() -> Self {
        Self {
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

impl<T: Clone> Fresh<T> {
    async fn get<F, Fut>(&self, clock: &dyn Clock, read: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = slot.as_ref() {
            if is_fresh(*at, clock.now()) {
                return value.clone();
            }
        }
        // Stamped with the time the read started: the answer is at least that recent.
        let started = clock.now();
        let value = read().await;
        *slot = Some((started, value.clone()));
        value
    }
}

/// A clock that went backwards makes the answer stale rather than fresh forever.
fn is_fresh(at: SystemTime, now: SystemTime) -> bool {
    now.duration_since(at).is_ok_and(|age| age < MAX_AGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::act::SwarmFuture;
    use crate::clock::ManualClock;
    use crate::model::{Change, JobTask, ServiceState, Stamp, Template};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Semaphore;

    /// Counts the page reads and holds each one until the test lets it through.
    struct CountingSwarm {
        lists: AtomicUsize,
        pings: AtomicUsize,
        gate: Semaphore,
        down: std::sync::atomic::AtomicBool,
    }

    impl CountingSwarm {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                lists: AtomicUsize::new(0),
                pings: AtomicUsize::new(0),
                gate: Semaphore::new(0),
                down: Default::default(),
            })
        }

        fn answer(&self) -> Result<(), DockerError> {
            match self.down.load(Ordering::SeqCst) {
                true => Err(DockerError::Unreachable("connection refused".into())),
                false => Ok(()),
            }
        }
    }

    impl Swarm for CountingSwarm {
        fn managed_services<'a>(&'a self, label: &'a str) -> SwarmFuture<'a, Vec<ServiceSummary>> {
            Box::pin(async move {
                self.lists.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.unwrap().forget();
                self.answer()?;
                Ok(vec![ServiceSummary {
                    name: format!("web ({label})"),
                    image: "busybox".into(),
                    desired: Some(1),
                    running: 1,
                    update_state: None,
                }])
            })
        }

        fn ping(&self) -> SwarmFuture<'_, ()> {
            Box::pin(async move {
                self.pings.fetch_add(1, Ordering::SeqCst);
                self.answer()
            })
        }

        // The view never makes these calls.
        fn find_service<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<ServiceState>> {
            unreachable!("the view only lists and pings")
        }
        fn apply<'a>(
            &'a self,
            _: &'a ServiceState,
            _: Change,
            _: &'a Stamp,
        ) -> SwarmFuture<'a, ()> {
            unreachable!("the view only lists and pings")
        }
        fn restore_template<'a>(
            &'a self,
            _: &'a ServiceState,
            _: &'a Template,
            _: &'a Stamp,
        ) -> SwarmFuture<'a, ()> {
            unreachable!("the view only lists and pings")
        }
        fn set_labels<'a>(
            &'a self,
            _: &'a ServiceState,
            _: &'a [(String, String)],
        ) -> SwarmFuture<'a, ()> {
            unreachable!("the view only lists and pings")
        }
        fn create_register<'a>(
            &'a self,
            _: &'a str,
            _: &'a [(String, String)],
        ) -> SwarmFuture<'a, ()> {
            unreachable!("the view only lists and pings")
        }
        fn save_template<'a>(&'a self, _: &'a str, _: &'a Template) -> SwarmFuture<'a, ()> {
            unreachable!("the view only lists and pings")
        }
        fn saved_templates<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Vec<Template>> {
            unreachable!("the view only lists and pings")
        }
        fn previous_template<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<Template>> {
            unreachable!("the view only lists and pings")
        }
        fn previous_action<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<String>> {
            unreachable!("the view only lists and pings")
        }
        fn job_tasks<'a>(&'a self, _: &'a str, _: u64) -> SwarmFuture<'a, Vec<JobTask>> {
            unreachable!("the view only lists and pings")
        }
    }

    fn view(swarm: &Arc<CountingSwarm>, clock: &ManualClock) -> Arc<SwarmView> {
        Arc::new(SwarmView::new(
            swarm.clone(),
            Arc::new(clock.clone()),
            "swarmpilot.enable".into(),
        ))
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_read_in_flight() {
        let (swarm, clock) = (CountingSwarm::new(), ManualClock::default());
        let view = view(&swarm, &clock);
        let readers: Vec<_> = (0..20)
            .map(|_| {
                let view = view.clone();
                tokio::spawn(async move { view.services().await })
            })
            .collect();
        // Let every reader reach the view while the first read is held at the gate.
        while swarm.lists.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        swarm.gate.add_permits(1);
        for reader in readers {
            let services = reader.await.unwrap().unwrap();
            assert_eq!(services[0].name, "web (swarmpilot.enable)");
        }
        assert_eq!(swarm.lists.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_is_reused_for_under_a_second_then_read_again() {
        let (swarm, clock) = (CountingSwarm::new(), ManualClock::default());
        let view = view(&swarm, &clock);
        swarm.gate.add_permits(10);
        view.services().await.unwrap();
        clock.advance(Duration::from_millis(999));
        view.services().await.unwrap();
        assert_eq!(swarm.lists.load(Ordering::SeqCst), 1, "fresh for 999 ms");
        clock.advance(Duration::from_millis(1));
        view.services().await.unwrap();
        assert_eq!(swarm.lists.load(Ordering::SeqCst), 2, "stale at 1 s");
    }

    #[tokio::test]
    async fn failures_are_shared_too_and_recovery_shows_within_a_second() {
        let (swarm, clock) = (CountingSwarm::new(), ManualClock::default());
        let view = view(&swarm, &clock);
        swarm.down.store(true, Ordering::SeqCst);
        for _ in 0..100 {
            assert!(view.ping().await.is_err());
        }
        assert_eq!(swarm.pings.load(Ordering::SeqCst), 1);
        swarm.down.store(false, Ordering::SeqCst);
        clock.advance(MAX_AGE);
        assert_eq!(view.ping().await, Ok(()));
        assert_eq!(swarm.pings.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_clock_that_went_back_makes_the_answer_stale() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert!(is_fresh(at, at));
        assert!(is_fresh(at, at + MAX_AGE - Duration::from_nanos(1)));
        assert!(!is_fresh(at, at + MAX_AGE));
        assert!(!is_fresh(at, at - Duration::from_secs(1)));
    }
}
