//! Cluster mode's decision logic: two pipelines (two replicas, each with its own memory and
//! journal) over one in-memory swarm whose updates are versioned like Swarm's. The same
//! behaviour on a real multi-manager swarm is `tests/cluster.rs`.

use super::tests::{
    notification, notification_fp, pipeline_with, settings, FakeSwarm, Harness, ENABLED,
};
use super::*;
use crate::act::register::BUDGET_LABEL;
use crate::clock::ManualClock;
use crate::gate::claims::ACTIONS_LABEL;
use std::time::Duration;

fn cluster(ack_wait: Duration) -> PipelineSettings {
    PipelineSettings {
        cluster: Some(ClusterMode {
            register_service: "swarmpilot-register".into(),
            ack_wait,
        }),
        ..settings()
    }
}

fn replicas(swarm: &Arc<FakeSwarm>, clock: &ManualClock) -> (Harness, Harness) {
    let settings = cluster(Duration::from_secs(5));
    (
        pipeline_with(swarm.clone(), clock, settings.clone()),
        pipeline_with(swarm.clone(), clock, settings),
    )
}

fn add_service(swarm: &FakeSwarm, name: &str, replicas: u64) {
    let service = FakeSwarm::service(name, replicas, ENABLED);
    swarm.services.lock().unwrap().insert(name.into(), service);
}

#[tokio::test]
async fn an_answer_is_executed_once_the_claim_landed_and_another_replica_honours_it() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let clock = ManualClock::default();
    let (a, b) = replicas(&swarm, &clock);
    // No ?wait: in cluster mode the answer still waits for the update (and its claim) to land.
    let first = a
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(first[0].decision, Decision::Executed, "{first:?}");
    assert_eq!(first[0].change.as_deref(), Some("replicas 2→4"));
    let labels = swarm.services.lock().unwrap()["web"].labels.clone();
    assert!(
        labels.contains_key("swarmpilot.cooldown.scale_up"),
        "{labels:?}"
    );
    assert!(
        labels.contains_key("swarmpilot.delivery.scale_up"),
        "{labels:?}"
    );
    assert_eq!(
        labels.get(ACTIONS_LABEL).map(|v| v.split(',').count()),
        Some(1)
    );

    // b has never seen web: its memory is empty, the labels are all it knows.
    let again = b
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(again[0].decision, Decision::Duplicate, "{again:?}");
    let other = b
        .handle(&notification_fp("HighCPU", "web", "f2"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(other[0].decision, Decision::Cooldown, "{other:?}");
    let down = b
        .handle(&notification("Idle", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(down[0].decision, Decision::Cooldown, "anti-flap: {down:?}");
    assert!(down[0].reason.contains("anti-flap"), "{}", down[0].reason);
    assert_eq!(swarm.updates.lock().unwrap().len(), 1);

    clock.advance(Duration::from_secs(301));
    let later = b
        .handle(&notification_fp("HighCPU", "web", "f3"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(later[0].decision, Decision::Executed, "{later:?}");
    assert_eq!(swarm.replicas("web"), 6);
    let labels = swarm.services.lock().unwrap()["web"].labels.clone();
    assert_eq!(
        labels.get(ACTIONS_LABEL).map(|v| v.split(',').count()),
        Some(2)
    );
}

#[tokio::test]
async fn two_replicas_racing_on_one_service_act_once() {
    let swarm = Arc::new(FakeSwarm::default());
    let clock = ManualClock::default();
    // Each race takes two units for a moment (both replicas admit before either lands).
    let budget = PipelineSettings {
        actions_per_minute: 21,
        ..cluster(Duration::from_secs(5))
    };
    let a = pipeline_with(swarm.clone(), &clock, budget.clone());
    let b = pipeline_with(swarm.clone(), &clock, budget);
    for i in 0..20 {
        let name = format!("svc{i}");
        add_service(&swarm, &name, 1);
        let (at_a, at_b) = (
            notification_fp("HighCPU", &name, "fa"),
            notification_fp("HighCPU", &name, "fb"),
        );
        let (one, two) = tokio::join!(
            a.handle(&at_a, Mode::Act, true),
            b.handle(&at_b, Mode::Act, true),
        );
        let decisions = [one.unwrap()[0].clone(), two.unwrap()[0].clone()];
        let executed = decisions
            .iter()
            .filter(|r| r.decision == Decision::Executed)
            .count();
        assert_eq!(executed, 1, "{decisions:?}");
        let loser = decisions
            .iter()
            .find(|r| r.decision != Decision::Executed)
            .unwrap();
        assert!(loser.reason.contains("cooldown"), "{loser:?}");
        assert_eq!(swarm.replicas(&name), 3, "{decisions:?}");
    }
    assert_eq!(swarm.updates.lock().unwrap().len(), 20);
    // 20 actions: every loser's unit went back to the register (in the
    // background), so the register counts exactly the actions that happened.
    for _ in 0..100 {
        let register = swarm.services.lock().unwrap()["swarmpilot-register"].clone();
        let units = register
            .labels
            .get(BUDGET_LABEL)
            .map_or(0, |v| v.split(',').count());
        if units == 20 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the register never came back to 20 units");
}

#[tokio::test]
async fn the_budget_per_minute_holds_for_the_cluster_not_per_replica() {
    let swarm = Arc::new(FakeSwarm::default());
    let clock = ManualClock::default();
    let limited = PipelineSettings {
        actions_per_minute: 3,
        ..cluster(Duration::from_secs(5))
    };
    let a = pipeline_with(swarm.clone(), &clock, limited.clone());
    let b = pipeline_with(swarm.clone(), &clock, limited);
    let mut executed = 0;
    let mut limited_count = 0;
    for i in 0..8 {
        let name = format!("svc{i}");
        add_service(&swarm, &name, 1);
        let replica = if i % 2 == 0 { &a } else { &b };
        let records = replica
            .handle(&notification("HighCPU", &name), Mode::Act, false)
            .await
            .unwrap();
        match records[0].decision {
            Decision::Executed => executed += 1,
            Decision::RateLimited => limited_count += 1,
            other => panic!("unexpected {other:?}: {records:?}"),
        }
    }
    assert_eq!((executed, limited_count), (3, 5));
    let register = swarm.services.lock().unwrap()["swarmpilot-register"].clone();
    assert_eq!(
        register
            .labels
            .get(BUDGET_LABEL)
            .map(|v| v.split(',').count()),
        Some(3)
    );
    // A minute later the register has room again, whichever replica asks.
    clock.advance(Duration::from_secs(61));
    let records = b
        .handle(&notification("HighCPU", "svc7"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(records[0].decision, Decision::Executed, "{records:?}");
}

#[tokio::test]
async fn the_hourly_budget_of_a_service_is_counted_on_the_service() {
    let swarm = Arc::new(FakeSwarm::with("web", 1, ENABLED));
    let clock = ManualClock::default();
    let hourly = PipelineSettings {
        actions_per_service_per_hour: 2,
        ..cluster(Duration::from_secs(5))
    };
    let a = pipeline_with(swarm.clone(), &clock, hourly.clone());
    let b = pipeline_with(swarm.clone(), &clock, hourly);
    for (replica, fingerprint) in [(&a, "f1"), (&b, "f2")] {
        let records = replica
            .handle(
                &notification_fp("Unhealthy", "web", fingerprint),
                Mode::Act,
                false,
            )
            .await
            .unwrap();
        assert_eq!(records[0].decision, Decision::Executed, "{records:?}");
        clock.advance(Duration::from_secs(600));
    }
    // a has spent one locally, b one: neither alone is out, but the service's log says two.
    let third = a
        .handle(&notification_fp("Unhealthy", "web", "f3"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(third[0].decision, Decision::RateLimited, "{third:?}");
}

#[tokio::test]
async fn without_a_read_nothing_is_admitted_and_the_answer_is_a_retry() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    *swarm.down.lock().unwrap() = true;
    let clock = ManualClock::default();
    let (a, _) = replicas(&swarm, &clock);
    let answer = a
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await;
    assert!(
        matches!(&answer, Err(Unavailable::Unclaimed(why)) if why.contains("cannot be read")),
        "{answer:?}"
    );
    assert!(a.recent_actions(10).is_empty(), "nothing journaled");
    assert!(swarm.updates.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_action_that_has_not_landed_holds_no_answer_hostage() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let clock = ManualClock::default();
    let settings = cluster(Duration::from_millis(300));
    let a = pipeline_with(swarm.clone(), &clock, settings.clone());
    let b = pipeline_with(swarm.clone(), &clock, settings);
    // The update lands but its answer is lost and a's engine goes away.
    *swarm.lose_answer.lock().unwrap() = true;
    let lost = a
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await;
    assert!(matches!(lost, Err(Unavailable::Unclaimed(_))), "{lost:?}");
    // Alertmanager retries at a: still a retry, never `busy` (which would end the delivery).
    let retried = a
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await;
    assert!(
        matches!(retried, Err(Unavailable::Unclaimed(_))),
        "{retried:?}"
    );
    // The engine is back: b (the other Alertmanager's delivery) finds the landed claim.
    *swarm.down.lock().unwrap() = false;
    let at_b = b
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(at_b[0].decision, Decision::Duplicate, "{at_b:?}");
    assert_eq!(swarm.replicas("web"), 4);
    assert_eq!(swarm.updates.lock().unwrap().len(), 1);
}

fn image(name: &str) -> crate::model::Template {
    crate::model::Template::from_task_spec(&bollard::models::TaskSpec {
        container_spec: Some(bollard::models::TaskSpecContainerSpec {
            image: Some(name.into()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// An operator's `docker service update --image`: a new template, the version moves on.
fn deploy(swarm: &FakeSwarm, name: &str, template: &crate::model::Template) {
    let mut services = swarm.services.lock().unwrap();
    let service = services.get_mut(name).unwrap();
    service.template = template.clone();
    service.version += 1;
}

#[tokio::test]
async fn rollback_history_and_its_bad_templates_are_the_clusters() {
    let (v1, v2) = (image("app:1"), image("app:2"));
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    deploy(&swarm, "web", &v1);
    let clock = ManualClock::default();
    let (a, b) = replicas(&swarm, &clock);
    // a sees v1 while acting on web; then v2 is deployed.
    let scaled = a
        .handle(&notification("HighCPU", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(scaled[0].decision, Decision::Executed, "{scaled:?}");
    deploy(&swarm, "web", &v2);

    // b never saw v1, and Swarm's PreviousSpec is no help here: the kept templates are.
    let back = b
        .handle(&notification("RolloutFailing", "web"), Mode::Act, false)
        .await
        .unwrap();
    assert_eq!(back[0].decision, Decision::Executed, "{back:?}");
    assert_eq!(swarm.services.lock().unwrap()["web"].template, v1);

    // a knows v2 was current once; the label says it was rolled back from: never again.
    clock.advance(Duration::from_secs(61));
    let again = a
        .handle(
            &notification_fp("RolloutFailing", "web", "f2"),
            Mode::Act,
            false,
        )
        .await
        .unwrap();
    assert_eq!(again[0].decision, Decision::Refused, "{again:?}");
    assert!(
        again[0].reason.contains("nothing to roll back to"),
        "{again:?}"
    );
    assert_eq!(swarm.services.lock().unwrap()["web"].template, v1);
}
