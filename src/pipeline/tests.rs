//! Decision logic over an in-memory swarm. Behaviour against the real engine is covered by
//! `tests/api`; this fake only lets us force rare engine answers (out of sequence, outage).

use super::*;
use crate::act::{ServiceMode, SwarmFuture};
use crate::clock::ManualClock;
use crate::parse::{AlertStatus, LabelSet};
use crate::rules::load::parse_rule_file;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

#[derive(Default)]
struct FakeSwarm {
    services: StdMutex<HashMap<String, ServiceState>>,
    /// How many of the next updates answer "out of sequence" (after bumping the version).
    out_of_sequence: StdMutex<usize>,
    down: StdMutex<bool>,
    updates: StdMutex<Vec<Change>>,
}

impl FakeSwarm {
    fn with(name: &str, replicas: u64, labels: &[(&str, &str)]) -> Self {
        let swarm = Self::default();
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let service = ServiceState {
            id: format!("id-{name}"),
            name: name.into(),
            version: 1,
            labels,
            mode: ServiceMode::Replicated { replicas },
            update_state: None,
            force_update: 0,
            spec: Default::default(),
        };
        swarm.services.lock().unwrap().insert(name.into(), service);
        swarm
    }

    fn replicas(&self, name: &str) -> u64 {
        match self.services.lock().unwrap()[name].mode {
            ServiceMode::Replicated { replicas } => replicas,
            _ => 0,
        }
    }
}

impl Swarm for FakeSwarm {
    fn find_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceState>> {
        Box::pin(async move {
            if *self.down.lock().unwrap() {
                return Err(DockerError::Unreachable("connection refused".into()));
            }
            Ok(self.services.lock().unwrap().get(name).cloned())
        })
    }

    fn apply<'a>(&'a self, service: &'a ServiceState, change: Change) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            let mut services = self.services.lock().unwrap();
            let stored = services.get_mut(&service.name).expect("known service");
            let mut pending = self.out_of_sequence.lock().unwrap();
            if *pending > 0 {
                *pending -= 1;
                // Someone else scaled meanwhile.
                stored.version += 1;
                if let ServiceMode::Replicated { replicas } = &mut stored.mode {
                    *replicas += 1;
                }
            }
            if stored.version != service.version {
                return Err(DockerError::OutOfSequence);
            }
            stored.version += 1;
            match change {
                Change::Replicas { to, .. } => {
                    stored.mode = ServiceMode::Replicated { replicas: to }
                }
                Change::ForceUpdate { to, .. } => stored.force_update = to,
            }
            self.updates.lock().unwrap().push(change);
            Ok(())
        })
    }

    fn ping(&self) -> SwarmFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

const RULES: &str = r#"
rules:
  - name: up
    match: ['alertname="HighCPU"']
    action: scale_up
    step: 2
    max_replicas: 6
    cooldown: 5m
  - name: heal
    match: ['alertname="Unhealthy"']
    action: restart
"#;

fn pipeline(swarm: Arc<FakeSwarm>, clock: &ManualClock) -> Pipeline {
    let (rules, errors) = parse_rule_file(Path::new("t.yml"), RULES);
    assert!(errors.is_empty(), "{errors:?}");
    Pipeline::new(
        RuleSet::new(rules),
        swarm,
        Cooldowns::new(Arc::new(clock.clone())),
        "swarmpilot.enable".into(),
    )
}

fn notification(alertname: &str, service: &str) -> Notification {
    let mut labels = LabelSet::new();
    labels.insert("alertname".into(), alertname.into());
    labels.insert("service".into(), service.into());
    Notification {
        alerts: vec![Alert {
            status: AlertStatus::Firing,
            labels,
            fingerprint: "f1".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

const ENABLED: &[(&str, &str)] = &[("swarmpilot.enable", "true")];

#[tokio::test]
async fn scales_then_cools_down_until_the_clock_moves() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let clock = ManualClock::default();
    let p = pipeline(swarm.clone(), &clock);
    let first = p.handle(&notification("HighCPU", "web"), Mode::Act).await;
    assert_eq!(first[0].decision, Decision::Executed);
    assert_eq!(first[0].change.as_deref(), Some("replicas 2→4"));
    let second = p.handle(&notification("HighCPU", "web"), Mode::Act).await;
    assert_eq!(second[0].decision, Decision::Cooldown);
    assert_eq!(swarm.replicas("web"), 4);
    clock.advance(Duration::from_secs(301));
    let third = p.handle(&notification("HighCPU", "web"), Mode::Act).await;
    assert_eq!(third[0].change.as_deref(), Some("replicas 4→6"));
}

#[tokio::test]
async fn out_of_sequence_rereads_and_recomputes_the_target() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.out_of_sequence.lock().unwrap() = 2;
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let records = p.handle(&notification("HighCPU", "web"), Mode::Act).await;
    // Two concurrent +1s landed first (2→4); our +2 is recomputed from 4, clamped to 6.
    assert_eq!(records[0].decision, Decision::Executed);
    assert_eq!(records[0].change.as_deref(), Some("replicas 4→6"));
    assert_eq!(swarm.updates.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn dry_run_changes_nothing_and_starts_no_cooldown() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let p = pipeline(swarm.clone(), &ManualClock::default());
    for _ in 0..2 {
        let records = p
            .handle(&notification("HighCPU", "web"), Mode::DryRun)
            .await;
        assert_eq!(records[0].decision, Decision::DryRun);
    }
    assert!(swarm.updates.lock().unwrap().is_empty());
}

#[tokio::test]
async fn docker_outage_is_failed_and_retryable_without_cooldown() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.down.lock().unwrap() = true;
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let records = p.handle(&notification("Unhealthy", "web"), Mode::Act).await;
    assert_eq!(records[0].decision, Decision::Failed);
    assert!(records[0].retryable);
    *swarm.down.lock().unwrap() = false;
    let records = p.handle(&notification("Unhealthy", "web"), Mode::Act).await;
    assert_eq!(records[0].decision, Decision::Executed);
}

#[tokio::test]
async fn refusals_name_their_reason() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, &[]));
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let cases = [
        ("HighCPU", "web", Decision::NotManaged),
        ("HighCPU", "ghost", Decision::NoService),
        ("HighCPU", "bad;name", Decision::NoService),
        ("Other", "web", Decision::NoMatch),
    ];
    for (alert, service, expected) in cases {
        let records = p.handle(&notification(alert, service), Mode::Act).await;
        assert_eq!(records[0].decision, expected, "{alert} {service}");
        assert!(!records[0].reason.is_empty());
    }
    assert!(swarm.updates.lock().unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_alerts_for_one_service_apply_once() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let p = Arc::new(pipeline(swarm.clone(), &ManualClock::default()));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.handle(&notification("HighCPU", "web"), Mode::Act).await })
        })
        .collect();
    let mut executed = 0;
    for t in tasks {
        executed += t
            .await
            .unwrap()
            .iter()
            .filter(|r| r.decision == Decision::Executed)
            .count();
    }
    assert_eq!(executed, 1);
    assert_eq!(swarm.replicas("web"), 4);
}
