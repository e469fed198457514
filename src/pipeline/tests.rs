//! Decision logic over an in-memory swarm. Behaviour against the real engine is covered by
//! `tests/api`; this fake only lets us force rare engine answers (out of sequence, outage).

use super::*;
use crate::act::SwarmFuture;
use crate::clock::ManualClock;
use crate::journal::{Journal, Outcome, Replayed};
use crate::model::{Change, ServiceMode, ServiceState};
use crate::parse::{AlertStatus, LabelSet};
use crate::rules::load::parse_rule_file;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

#[derive(Default)]
pub(super) struct FakeSwarm {
    pub(super) services: StdMutex<HashMap<String, ServiceState>>,
    /// How many of the next updates answer "out of sequence" (after bumping the version).
    pub(super) out_of_sequence: StdMutex<usize>,
    pub(super) down: StdMutex<bool>,
    /// The next update is applied, then its answer is lost and the engine goes away.
    pub(super) lose_answer: StdMutex<bool>,
    pub(super) updates: StdMutex<Vec<Change>>,
    /// Templates kept by save_template, oldest first.
    pub(super) saved: StdMutex<Vec<(String, crate::model::Template)>>,
    /// Reads in progress now, and the most there ever were at once.
    pub(super) reads: StdMutex<(usize, usize)>,
}

impl FakeSwarm {
    pub(super) fn with(name: &str, replicas: u64, labels: &[(&str, &str)]) -> Self {
        let swarm = Self::default();
        let service = Self::service(name, replicas, labels);
        swarm.services.lock().unwrap().insert(name.into(), service);
        swarm
    }

    pub(super) fn service(name: &str, replicas: u64, labels: &[(&str, &str)]) -> ServiceState {
        ServiceState {
            id: format!("id-{name}"),
            name: name.into(),
            version: 1,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            mode: ServiceMode::Replicated { replicas },
            update_state: None,
            force_update: 0,
            template: crate::model::Template::from_task_spec(&Default::default()),
            spec: Default::default(),
        }
    }

    pub(super) fn replicas(&self, name: &str) -> u64 {
        match self.services.lock().unwrap()[name].mode {
            ServiceMode::Replicated { replicas } => replicas,
            _ => 0,
        }
    }
}

impl Swarm for FakeSwarm {
    fn find_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceState>> {
        Box::pin(async move {
            {
                let mut reads = self.reads.lock().unwrap();
                reads.0 += 1;
                reads.1 = reads.1.max(reads.0);
            }
            // A real read takes a round trip: let other admissions start meanwhile.
            tokio::task::yield_now().await;
            self.reads.lock().unwrap().0 -= 1;
            if *self.down.lock().unwrap() {
                return Err(DockerError::Unreachable("connection refused".into()));
            }
            Ok(self.services.lock().unwrap().get(name).cloned())
        })
    }

    fn apply<'a>(
        &'a self,
        service: &'a ServiceState,
        change: Change,
        stamp: &'a crate::model::Stamp,
    ) -> SwarmFuture<'a, ()> {
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
            stored
                .labels
                .insert(crate::model::ACTION_LABEL.into(), stamp.action_id.clone());
            stored.labels.extend(stamp.labels.iter().cloned());
            match change {
                Change::Replicas { to, .. } => {
                    stored.mode = ServiceMode::Replicated { replicas: to }
                }
                Change::ForceUpdate { to, .. } | Change::Job { to, .. } => stored.force_update = to,
                Change::Template { .. } => unreachable!("templates go through restore_template"),
            }
            self.updates.lock().unwrap().push(change);
            if std::mem::take(&mut *self.lose_answer.lock().unwrap()) {
                *self.down.lock().unwrap() = true;
                return Err(DockerError::Unreachable("connection reset".into()));
            }
            Ok(())
        })
    }

    fn restore_template<'a>(
        &'a self,
        service: &'a ServiceState,
        template: &'a crate::model::Template,
        stamp: &'a crate::model::Stamp,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            let mut services = self.services.lock().unwrap();
            let stored = services.get_mut(&service.name).expect("known service");
            if stored.version != service.version {
                return Err(DockerError::OutOfSequence);
            }
            stored.version += 1;
            let change = Change::Template {
                from: stored.template.hash(),
                to: template.hash(),
            };
            stored.template = template.clone();
            stored
                .labels
                .insert(crate::model::ACTION_LABEL.into(), stamp.action_id.clone());
            stored.labels.extend(stamp.labels.iter().cloned());
            self.updates.lock().unwrap().push(change);
            Ok(())
        })
    }

    fn set_labels<'a>(
        &'a self,
        service: &'a ServiceState,
        labels: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            if *self.down.lock().unwrap() {
                return Err(DockerError::Unreachable("connection refused".into()));
            }
            let mut services = self.services.lock().unwrap();
            let stored = services.get_mut(&service.name).expect("known service");
            if stored.version != service.version {
                return Err(DockerError::OutOfSequence);
            }
            stored.version += 1;
            stored.labels.extend(labels.iter().cloned());
            Ok(())
        })
    }

    fn create_register<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            let mut services = self.services.lock().unwrap();
            if services.contains_key(name) {
                return Err(DockerError::Api {
                    status: 409,
                    message: "name conflicts with an existing object".into(),
                });
            }
            let mut register = FakeSwarm::service(name, 0, &[]);
            register.labels = labels.iter().cloned().collect();
            services.insert(name.into(), register);
            Ok(())
        })
    }

    fn save_template<'a>(
        &'a self,
        service: &'a str,
        template: &'a crate::model::Template,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            let mut saved = self.saved.lock().unwrap();
            let entry = (service.to_string(), template.clone());
            if !saved.contains(&entry) {
                saved.push(entry);
            }
            Ok(())
        })
    }

    fn saved_templates<'a>(
        &'a self,
        service: &'a str,
    ) -> SwarmFuture<'a, Vec<crate::model::Template>> {
        Box::pin(async move {
            let saved = self.saved.lock().unwrap();
            Ok(saved
                .iter()
                .filter(|(s, _)| s == service)
                .map(|(_, t)| t.clone())
                .collect())
        })
    }

    fn previous_template<'a>(
        &'a self,
        _: &'a str,
    ) -> SwarmFuture<'a, Option<crate::model::Template>> {
        Box::pin(async { Ok(None) })
    }

    fn previous_action<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<String>> {
        Box::pin(async { Ok(None) })
    }

    fn job_tasks<'a>(&'a self, _: &'a str, _: u64) -> SwarmFuture<'a, Vec<crate::model::JobTask>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn managed_services<'a>(
        &'a self,
        _: &'a str,
    ) -> SwarmFuture<'a, Vec<crate::model::ServiceSummary>> {
        Box::pin(async { Ok(Vec::new()) })
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
  - name: down
    match: ['alertname="Idle"']
    action: scale_down
    min_replicas: 1
  - name: back
    match: ['alertname="RolloutFailing"']
    action: rollback
    cooldown: 1m
"#;

pub(super) struct Harness {
    pipeline: Arc<Pipeline>,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Harness {
    type Target = Arc<Pipeline>;
    fn deref(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }
}

pub(super) fn settings() -> PipelineSettings {
    PipelineSettings {
        opt_in_label: "swarmpilot.enable".into(),
        retry_for: Duration::from_secs(600),
        admission_read_timeout: Duration::from_secs(2),
        actions_per_minute: 30,
        actions_per_service_per_hour: 12,
        backup_timeout: Duration::from_secs(60),
        cluster: None,
        prometheus: None,
    }
}

fn pipeline(swarm: Arc<FakeSwarm>, clock: &ManualClock) -> Harness {
    pipeline_with(swarm, clock, settings())
}

pub(super) fn pipeline_with(
    swarm: Arc<FakeSwarm>,
    clock: &ManualClock,
    settings: PipelineSettings,
) -> Harness {
    let (rules, errors) = parse_rule_file(Path::new("t.yml"), RULES);
    assert!(errors.is_empty(), "{errors:?}");
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let pipeline = Pipeline::new(
        RuleSet::new(rules),
        swarm,
        Arc::new(clock.clone()),
        Records::journal_only(journal),
        settings,
    );
    Harness {
        pipeline: Arc::new(pipeline),
        _dir: dir,
    }
}

pub(super) fn notification(alertname: &str, service: &str) -> Notification {
    notification_fp(alertname, service, "f1")
}

pub(super) fn notification_fp(alertname: &str, service: &str, fingerprint: &str) -> Notification {
    let mut labels = LabelSet::new();
    labels.insert("alertname".into(), alertname.into());
    labels.insert("service".into(), service.into());
    Notification {
        alerts: vec![Alert {
            status: AlertStatus::Firing,
            labels,
            fingerprint: fingerprint.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) const ENABLED: &[(&str, &str)] = &[("swarmpilot.enable", "true")];

#[tokio::test]
async fn scales_then_cools_down_until_the_clock_moves() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let clock = ManualClock::default();
    let p = pipeline(swarm.clone(), &clock);
    let first = p
        .handle(&notification("HighCPU", "web"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(first[0].decision, Decision::Executed);
    assert_eq!(first[0].change.as_deref(), Some("replicas 2→4"));
    let second = p
        .handle(&notification_fp("HighCPU", "web", "f2"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(second[0].decision, Decision::Cooldown);
    assert_eq!(swarm.replicas("web"), 4);
    clock.advance(Duration::from_secs(301));
    let third = p
        .handle(&notification_fp("HighCPU", "web", "f3"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(third[0].change.as_deref(), Some("replicas 4→6"));
}

#[tokio::test]
async fn out_of_sequence_rereads_and_recomputes_the_target() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.out_of_sequence.lock().unwrap() = 2;
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let records = p
        .handle(&notification("HighCPU", "web"), Mode::Act, true)
        .await
        .unwrap();
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
            .handle(&notification("HighCPU", "web"), Mode::DryRun, true)
            .await
            .unwrap();
        assert_eq!(records[0].decision, Decision::DryRun);
    }
    assert!(swarm.updates.lock().unwrap().is_empty());
}

#[tokio::test]
async fn docker_outage_queues_and_the_worker_applies_once_it_returns() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.down.lock().unwrap() = true;
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let records = p
        .handle(&notification("Unhealthy", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(records[0].decision, Decision::Queued);
    assert_eq!(records[0].change, None, "no target without a read");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(swarm.updates.lock().unwrap().is_empty());
    *swarm.down.lock().unwrap() = false;
    for _ in 0..100 {
        if !swarm.updates.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        *swarm.updates.lock().unwrap(),
        vec![Change::ForceUpdate { from: 0, to: 1 }]
    );
}

#[tokio::test]
async fn outage_past_retry_for_expires_and_gives_the_cooldown_back() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.down.lock().unwrap() = true;
    let clock = ManualClock::default();
    let mut s = settings();
    s.retry_for = Duration::from_secs(60);
    let p = pipeline_with(swarm.clone(), &clock, s);
    let handle = {
        let p = p.pipeline.clone();
        tokio::spawn(async move {
            p.handle(&notification("Unhealthy", "web"), Mode::Act, true)
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    clock.advance(Duration::from_secs(61));
    let records = handle.await.unwrap();
    assert_eq!(records[0].decision, Decision::Failed);
    assert!(
        records[0].reason.contains("retry_for"),
        "{}",
        records[0].reason
    );
    let actions = p.recent_actions(10);
    assert_eq!(actions[0].outcome, Some(Outcome::Expired));
    assert!(
        p.cooldowns().is_empty(),
        "an expired action keeps no cooldown"
    );
}

#[tokio::test]
async fn redelivery_is_duplicate_and_a_new_alert_is_cooldown() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let first = p
        .handle(&notification("HighCPU", "web"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(first[0].decision, Decision::Executed);
    let again = p
        .handle(&notification("HighCPU", "web"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(again[0].decision, Decision::Duplicate);
    let other = p
        .handle(&notification_fp("HighCPU", "web", "f2"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(other[0].decision, Decision::Cooldown);
}

#[tokio::test]
async fn scale_down_waits_for_the_scale_up_cooldown() {
    let swarm = Arc::new(FakeSwarm::with("web", 4, ENABLED));
    let clock = ManualClock::default();
    let p = pipeline(swarm.clone(), &clock);
    p.handle(&notification("HighCPU", "web"), Mode::Act, true)
        .await
        .unwrap();
    let down = p
        .handle(&notification("Idle", "web"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(down[0].decision, Decision::Cooldown);
    assert!(down[0].reason.contains("anti-flap"), "{}", down[0].reason);
    clock.advance(Duration::from_secs(301));
    let down = p
        .handle(&notification("Idle", "web"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(down[0].decision, Decision::Executed);
}

#[tokio::test]
async fn budgets_refuse_with_rate_limited() {
    let swarm = Arc::new(FakeSwarm::default());
    for i in 0..3 {
        let s = FakeSwarm::with(&format!("s{i}"), 1, ENABLED);
        let svc = s.services.lock().unwrap().remove(&format!("s{i}")).unwrap();
        swarm.services.lock().unwrap().insert(format!("s{i}"), svc);
    }
    let mut s = settings();
    s.actions_per_minute = 2;
    let p = pipeline_with(swarm.clone(), &ManualClock::default(), s);
    let mut decisions = Vec::new();
    for i in 0..3 {
        let r = p
            .handle(
                &notification("Unhealthy", &format!("s{i}")),
                Mode::Act,
                true,
            )
            .await
            .unwrap();
        decisions.push(r[0].decision);
    }
    assert_eq!(
        decisions,
        [
            Decision::Executed,
            Decision::Executed,
            Decision::RateLimited
        ]
    );
}

/// An admission the journal cannot take fails the request and is counted: the count is what the
/// shipped SwarmpilotJournalUnwritable alert watches.
#[tokio::test]
async fn an_unwritable_journal_refuses_and_is_counted() {
    let (rules, _) = parse_rule_file(Path::new("t.yml"), RULES);
    let pipeline = Arc::new(Pipeline::new(
        RuleSet::new(rules),
        Arc::new(FakeSwarm::with("web", 2, ENABLED)),
        Arc::new(ManualClock::default()),
        Records::journal_only(Journal::stopped()),
        settings(),
    ));
    let result = pipeline
        .handle(&notification("Unhealthy", "web"), Mode::Act, false)
        .await;
    assert!(matches!(result, Err(Unavailable::Journal(_))), "{result:?}");
    let text = pipeline.metrics().render();
    assert!(
        text.contains("swarmpilot_journal_append_errors_total 1"),
        "{text}"
    );
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
        let records = p
            .handle(&notification(alert, service), Mode::Act, true)
            .await
            .unwrap();
        assert_eq!(records[0].decision, expected, "{alert} {service}");
        assert!(!records[0].reason.is_empty());
    }
    assert!(swarm.updates.lock().unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_alerts_for_one_service_apply_once() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let p = pipeline(swarm.clone(), &ManualClock::default())
        .pipeline
        .clone();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move {
                p.handle(&notification("HighCPU", "web"), Mode::Act, true)
                    .await
                    .unwrap()
            })
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

#[tokio::test]
async fn a_huge_group_is_decided_in_order_with_bounded_concurrency() {
    let swarm = Arc::new(FakeSwarm::default());
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let alerts = (0..500)
        .map(|i| notification_fp("HighCPU", &format!("absent-{i}"), "f").alerts[0].clone())
        .collect();
    let group = Notification {
        alerts,
        ..Default::default()
    };
    let records = p.handle(&group, Mode::Act, false).await.unwrap();
    let services: Vec<_> = records.iter().map(|r| r.service.clone().unwrap()).collect();
    let expected: Vec<_> = (0..500).map(|i| format!("absent-{i}")).collect();
    assert_eq!(
        services, expected,
        "one decision per alert, in the alerts' order"
    );
    assert!(records.iter().all(|r| r.decision == Decision::NoService));
    let most_at_once = swarm.reads.lock().unwrap().1;
    assert!(
        (2..=ALERTS_IN_FLIGHT).contains(&most_at_once),
        "alerts are decided concurrently but at most {ALERTS_IN_FLIGHT} at once: {most_at_once}"
    );
}

fn open_intent(id: &str, rule: &str, clock: &ManualClock, change: Change) -> Entry {
    let (rules, _) = parse_rule_file(Path::new("t.yml"), RULES);
    let rule = rules.iter().find(|r| r.name == rule).expect("rule");
    Entry::Intent(Intent {
        id: id.into(),
        time_ms: unix_ms(clock.now()),
        rule: rule.name.clone(),
        alert: "HighCPU".into(),
        fingerprint: id.into(),
        starts_at: String::new(),
        status: "firing".into(),
        service: "web".into(),
        action: rule.action.clone(),
        cooldown_ms: 0,
        change: Some(change),
    })
}

/// Killed after the scale-up reached Docker but before its outcome was journaled, with a scale-down
/// queued behind it. Resumed in any other order, the scale-down would run first and the scale-up,
/// no longer "already reached", would be sent a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn recovery_resumes_a_services_actions_in_journal_order() {
    let clock = ManualClock::default();
    let swarm = Arc::new(FakeSwarm::with("web", 3, ENABLED));
    let p = pipeline(swarm.clone(), &clock);
    let replayed = Replayed {
        entries: vec![
            open_intent("up-sent", "up", &clock, Change::Replicas { from: 2, to: 3 }),
            open_intent(
                "down-queued",
                "down",
                &clock,
                Change::Replicas { from: 3, to: 2 },
            ),
        ],
        skipped: Vec::new(),
    };
    // From a worker thread, as a spawned task: tokio runs the task spawned last first (its LIFO
    // slot), which is what reordered the resumed actions on the real binary.
    let pipeline = p.pipeline.clone();
    let recovery = tokio::spawn(async move { pipeline.recover(replayed).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recovery.resumed, 2);
    for _ in 0..200 {
        if p.recent_actions(10).iter().all(|a| a.outcome.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outcomes: Vec<_> = p
        .recent_actions(10)
        .into_iter()
        .map(|a| (a.id, a.outcome))
        .collect();
    assert!(outcomes.iter().all(|(_, o)| o.is_some()), "{outcomes:?}");
    assert_eq!(
        *swarm.updates.lock().unwrap(),
        vec![Change::Replicas { from: 3, to: 2 }],
        "the scale-up was already on the swarm; only the scale-down is sent"
    );
    assert_eq!(swarm.replicas("web"), 2);
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting: {what}");
}

/// Docker applies the update, the answer is lost and the engine stays away past retry_for: the
/// action is not `expired` on a guess. It waits for a read, which shows its id on the service.
#[tokio::test]
async fn a_lost_answer_is_decided_by_a_read_not_called_expired() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.lose_answer.lock().unwrap() = true;
    let clock = ManualClock::default();
    let mut s = settings();
    s.retry_for = Duration::from_secs(60);
    let p = pipeline_with(swarm.clone(), &clock, s);
    let first = p
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(first[0].decision, Decision::Queued);
    wait_until("the update", || swarm.updates.lock().unwrap().len() == 1).await;
    clock.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        p.recent_actions(1)[0].outcome,
        None,
        "undecided while Docker is away"
    );
    let during = p
        .handle(&notification_fp("HighCPU", "web", "f2"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(during[0].decision, Decision::Busy, "{}", during[0].reason);
    *swarm.down.lock().unwrap() = false;
    wait_until("the outcome", || p.recent_actions(1)[0].outcome.is_some()).await;
    assert_eq!(p.recent_actions(1)[0].outcome, Some(Outcome::Succeeded));
    let after = p
        .handle(&notification_fp("HighCPU", "web", "f3"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(after[0].decision, Decision::Cooldown, "{}", after[0].reason);
    assert_eq!(swarm.replicas("web"), 4);
    assert_eq!(swarm.updates.lock().unwrap().len(), 1, "scaled once");
}

/// A is queued through an outage longer than its cooldown. B arriving then must not be admitted
/// behind it (both would run back to back when Docker returns), and A's expiry must not clear a
/// window it does not own.
#[tokio::test]
async fn an_action_queued_through_an_outage_holds_its_cooldown_until_its_outcome() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.down.lock().unwrap() = true;
    let clock = ManualClock::default();
    let p = pipeline(swarm.clone(), &clock);
    let a = p
        .handle(&notification_fp("Unhealthy", "web", "a"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(a[0].decision, Decision::Queued);
    clock.advance(Duration::from_secs(6 * 60));
    let b = p
        .handle(&notification_fp("Unhealthy", "web", "b"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(b[0].decision, Decision::Busy, "{}", b[0].reason);
    assert!(b[0].reason.contains("not finished"), "{}", b[0].reason);
    clock.advance(Duration::from_secs(5 * 60));
    wait_until("A expired", || p.recent_actions(1)[0].outcome.is_some()).await;
    assert_eq!(p.recent_actions(1)[0].outcome, Some(Outcome::Expired));
    assert!(swarm.updates.lock().unwrap().is_empty(), "nothing was sent");
    *swarm.down.lock().unwrap() = false;
    let c = p
        .handle(&notification_fp("Unhealthy", "web", "c"), Mode::Act, true)
        .await
        .unwrap();
    assert_eq!(c[0].decision, Decision::Executed, "{}", c[0].reason);
    let d = p
        .handle(&notification_fp("Unhealthy", "web", "d"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(d[0].decision, Decision::Cooldown, "{}", d[0].reason);
    assert_eq!(swarm.updates.lock().unwrap().len(), 1);
}

/// Shutdown does not wait out an outage: an action that is only waiting for Docker stops at
/// once and stays unfinished (no outcome line), to be resumed at the next start.
#[tokio::test]
async fn drain_leaves_a_waiting_action_unfinished() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.down.lock().unwrap() = true;
    let p = pipeline(swarm.clone(), &ManualClock::default());
    let queued = p
        .handle(&notification("Unhealthy", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(queued[0].decision, Decision::Queued);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    assert_eq!(p.drain(Duration::from_secs(10)).await, 0);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(p.recent_actions(1)[0].outcome, None);
}
