//! Cluster mode on the real engine: two replicas (two servers, each with its own data_dir and
//! memory) in front of one swarm, as a Swarm service with two tasks would be. What one replica
//! did, the other learns from the service itself: claims in its labels (set by the acting update,
//! a compare-and-set on its version), the budget register, the templates kept as Swarm configs.
//! The same on a real multi-manager swarm, with Alertmanager, kills and elections, is
//! `tests/cluster.rs`.

use crate::common::docker_proxy::{DockerProxy, Fault};
use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use swarmpilot::clock::ManualClock;
use swarmpilot::settings::Settings;

/// The budget register of one test: unique, removed when the test ends.
struct Register(String);

impl Register {
    fn new(tag: &str) -> Self {
        Self(TestService::unique_name(&format!("register_{tag}")))
    }

    /// The admission times the register holds.
    fn units(&self) -> usize {
        docker(&[
            "service",
            "inspect",
            "--format",
            "{{index .Spec.Labels \"swarmpilot.budget.minute\"}}",
            &self.0,
        ])
        .map(|v| v.split(',').filter(|t| !t.is_empty()).count())
        .unwrap_or(0)
    }
}

impl Drop for Register {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.0]);
    }
}

/// Remove the templates cluster mode kept for `services` (Swarm configs).
fn forget_templates(services: &[&TestService]) {
    for svc in services {
        let label = format!("label=swarmpilot.template.service={}", svc.name);
        let ids = docker(&["config", "ls", "--quiet", "--filter", &label]).unwrap_or_default();
        for id in ids.lines() {
            let _ = docker(&["config", "rm", id]);
        }
    }
}

/// Two replicas of one cluster: same clock, same register, their own data_dirs.
async fn two_replicas(
    register: &Register,
    configure: impl Fn(&mut Settings),
) -> (TestApp, TestApp) {
    let clock = ManualClock::default();
    let setup = |s: &mut Settings| {
        s.cluster.enabled = true;
        s.cluster.register_service = register.0.clone();
        configure(s);
    };
    let a = AppSetup::default().clock(clock.clone()).spawn(setup).await;
    let b = AppSetup::default().clock(clock).spawn(setup).await;
    (a, b)
}

/// POST without `?wait`: in cluster mode the answer itself waits for the claim.
async fn post(app: &TestApp, alertname: &str, service: &str, fingerprint: &str) -> Value {
    let payload = alert_payload_fp(alertname, service, fingerprint);
    let answer = app.post_webhook_to("webhook", &payload).await;
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    let body: Value = answer.json().await.unwrap();
    body["decisions"][0].clone()
}

fn label(svc: &TestService, name: &str) -> String {
    svc.inspect(&format!("{{{{index .Spec.Labels \"{name}\"}}}}"))
}

#[tokio::test]
async fn a_delivery_acted_on_at_one_replica_is_a_duplicate_at_the_other() {
    let register = Register::new("dup");
    let (a, b) = two_replicas(&register, |_| {}).await;
    let svc = TestService::opted_in("cluster_dup", 1).await;

    let first = post(&a, "TestHighCPU", &svc.name, "c-1").await;
    assert_eq!(
        first["decision"], "executed",
        "answered once landed: {first}"
    );
    assert_eq!(first["change"], "replicas 1→3");
    assert_eq!(
        label(&svc, "swarmpilot.action"),
        first["action_id"].as_str().unwrap()
    );
    assert!(!label(&svc, "swarmpilot.cooldown.scale_up").is_empty());
    assert!(!label(&svc, "swarmpilot.delivery.scale_up").is_empty());

    // The same delivery later at b (an Alertmanager retry, the HA peer 15 s later).
    let again = post(&b, "TestHighCPU", &svc.name, "c-1").await;
    assert_eq!(again["decision"], "duplicate", "{again}");
    let other = post(&b, "TestHighCPU", &svc.name, "c-2").await;
    assert_eq!(other["decision"], "cooldown", "{other}");
    let down = post(&b, "TestLowCPU", &svc.name, "c-3").await;
    assert_eq!(
        down["decision"], "cooldown",
        "anti-flap at the other replica: {down}"
    );
    assert_eq!(svc.desired_replicas(), 3, "scaled once, not 1→3→5");

    // Once the cooldown is over (one clock for the cluster) either replica may act again.
    a.clock.advance(Duration::from_secs(301));
    let later = post(&b, "TestHighCPU", &svc.name, "c-4").await;
    assert_eq!(later["decision"], "executed", "{later}");
    assert_eq!(svc.desired_replicas(), 5);
    forget_templates(&[&svc]);
    drop((a.stop().await, b.stop().await));
}

#[tokio::test]
async fn the_same_alerts_at_two_replicas_at_once_act_once_per_service() {
    let register = Register::new("race");
    let (a, b) = two_replicas(&register, |_| {}).await;
    let services: Vec<TestService> = (0..6)
        .map(|_| TestService::opted_in_with("cluster_race", &["--replicas", "1"], TEST_IMAGE, &[]))
        .collect();
    let mut both = Vec::new();
    for svc in &services {
        both.push(post(&a, "TestUnhealthy", &svc.name, "race"));
        both.push(post(&b, "TestUnhealthy", &svc.name, "race"));
    }
    let answers = futures_util::future::join_all(both).await;
    for (svc, pair) in services.iter().zip(answers.chunks(2)) {
        let executed = pair.iter().filter(|d| d["decision"] == "executed").count();
        assert_eq!(executed, 1, "{pair:?}");
        assert_eq!(svc.force_update(), 1, "restarted once: {pair:?}");
    }
    forget_templates(&services.iter().collect::<Vec<_>>());
    drop((a.stop().await, b.stop().await));
}

#[tokio::test]
async fn the_budget_per_minute_is_the_clusters() {
    let register = Register::new("budget");
    let (a, b) = two_replicas(&register, |s| s.limits.actions_per_minute = 3).await;
    let services: Vec<TestService> = (0..6)
        .map(|_| {
            TestService::opted_in_with("cluster_budget", &["--replicas", "1"], TEST_IMAGE, &[])
        })
        .collect();
    let mut decisions = Vec::new();
    for (i, svc) in services.iter().enumerate() {
        let replica = if i % 2 == 0 { &a } else { &b };
        decisions.push(post(replica, "TestUnhealthy", &svc.name, "budget").await);
    }
    let executed = decisions
        .iter()
        .filter(|d| d["decision"] == "executed")
        .count();
    let limited = decisions
        .iter()
        .filter(|d| d["decision"] == "rate_limited")
        .count();
    assert_eq!((executed, limited), (3, 3), "{decisions:#?}");
    assert_eq!(register.units(), 3);
    forget_templates(&services.iter().collect::<Vec<_>>());
    drop((a.stop().await, b.stop().await));
}

#[tokio::test]
async fn a_replica_that_never_saw_the_last_good_template_rolls_back_to_it() {
    let register = Register::new("rollback");
    let (a, b) = two_replicas(&register, |_| {}).await;
    let svc = TestService::opted_in("cluster_rollback", 1).await;
    let image = || svc.inspect("{{.Spec.TaskTemplate.ContainerSpec.Image}}");
    // a sees v1 (and keeps it for the cluster) while acting; then v2 rolls out.
    let scaled = post(&a, "TestHighCPU", &svc.name, "rb-1").await;
    assert_eq!(scaled["decision"], "executed", "{scaled}");
    svc.roll_out("swarmpilot-test/busybox:2").await;
    // A scale after the roll-out makes Swarm's PreviousSpec v2 as well: no help there.
    a.clock.advance(Duration::from_secs(301));
    let scaled = post(&a, "TestHighCPU", &svc.name, "rb-2").await;
    assert_eq!(scaled["decision"], "executed", "{scaled}");

    let back = post(&b, "TestBadRollout", &svc.name, "rb-3").await;
    assert_eq!(back["decision"], "executed", "{back}");
    assert_eq!(image(), TEST_IMAGE, "v1 is back");
    assert!(!label(&svc, "swarmpilot.rolled_back_from").is_empty());

    // a knows v2 was current; the cluster says it was rolled back from: never a target again.
    a.clock.advance(Duration::from_secs(61));
    let again = post(&a, "TestBadRollout", &svc.name, "rb-4").await;
    assert_eq!(again["decision"], "refused", "{again}");
    assert_eq!(image(), TEST_IMAGE);
    let kept = docker(&[
        "config",
        "ls",
        "--quiet",
        "--filter",
        &format!("label=swarmpilot.template.service={}", svc.name),
    ])
    .unwrap();
    assert_eq!(kept.lines().count(), 2, "v1 and v2 kept as configs");
    for id in kept.lines() {
        let _ = docker(&["config", "rm", id]);
    }
    drop((a.stop().await, b.stop().await));
}

#[tokio::test]
async fn without_its_engine_a_replica_answers_503_and_journals_nothing() {
    let register = Register::new("away");
    let proxy = DockerProxy::start(Path::new("/var/run/docker.sock")).await;
    let (a, _b) = two_replicas(&register, |s| s.docker.host = proxy.host()).await;
    let svc = TestService::opted_in("cluster_away", 1).await;
    proxy.set_fault(Fault::RefuseAll);
    let payload = alert_payload_fp("TestHighCPU", &svc.name, "away-1");
    let answer = a.post_webhook_to("webhook", &payload).await;
    assert_eq!(answer.status(), 503);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("cannot be read"),
        "{body}"
    );
    assert!(
        a.journal().is_empty(),
        "nothing admitted: {:?}",
        a.journal()
    );
    proxy.set_fault(Fault::None);
    let retried = post(&a, "TestHighCPU", &svc.name, "away-1").await;
    assert_eq!(retried["decision"], "executed", "{retried}");
    assert_eq!(svc.desired_replicas(), 3);
    forget_templates(&[&svc]);
}

/// A Swarm write of A's (the acting update, or with a budget the register's) lands but its answer
/// is lost (dropped, or held past A's wait): A acknowledges nothing it has not seen land —
/// `executed` only once a read proves it, else 503 — and the same delivery at B (Alertmanager's
/// retry, or the HA peer) is `duplicate` if A's update landed and `executed` if it did not; a
/// new alert then is `cooldown`. The service is scaled once whichever way: 1→3, never 1→3→5.
#[rstest::rstest]
#[case::dropped(Fault::DropUpdateAnswers, 0, "lost_drop")]
#[case::held_past_the_wait(Fault::DelayUpdateAnswers(Duration::from_secs(30)), 0, "lost_held")]
#[case::register_answer_dropped(Fault::DropUpdateAnswers, 30, "lost_reg_drop")]
#[case::register_answer_held(
    Fault::DelayUpdateAnswers(Duration::from_secs(30)),
    30,
    "lost_reg_held"
)]
#[tokio::test]
async fn an_update_answer_lost_at_one_replica_is_never_acted_on_twice(
    #[case] fault: Fault,
    #[case] actions_per_minute: u32,
    #[case] tag: &str,
) {
    let register = Register::new(tag);
    let proxy = DockerProxy::start(Path::new("/var/run/docker.sock")).await;
    let clock = ManualClock::default();
    let setup = |through_proxy: bool| {
        let (proxy_host, register) = (proxy.host(), register.0.clone());
        move |s: &mut Settings| {
            s.cluster.enabled = true;
            s.cluster.register_service = register.clone();
            s.limits.actions_per_minute = actions_per_minute;
            // ack_wait is 2 × this: the held answer outlasts it.
            s.docker.timeout = Duration::from_secs(2);
            if through_proxy {
                s.docker.host = proxy_host.clone();
            }
        }
    };
    let a = AppSetup::default()
        .clock(clock.clone())
        .spawn(setup(true))
        .await;
    let b = AppSetup::default().clock(clock).spawn(setup(false)).await;
    let svc = TestService::opted_in(&format!("cluster_{tag}"), 1).await;
    proxy.set_fault(fault);

    let payload = alert_payload_fp("TestHighCPU", &svc.name, "lost-1");
    let answer = a.post_webhook_to("webhook", &payload).await;
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap();
    let acknowledged = match status {
        200 => {
            assert_eq!(body["decisions"][0]["decision"], "executed", "{body}");
            assert_eq!(svc.desired_replicas(), 3, "acknowledged, so landed: {body}");
            true
        }
        503 => false,
        other => panic!("{other}: {body}"),
    };

    let retry = post(&b, "TestHighCPU", &svc.name, "lost-1").await;
    let expected: &[&str] = if acknowledged {
        &["duplicate"]
    } else {
        &["duplicate", "executed"]
    };
    assert!(
        expected.iter().any(|d| retry["decision"] == *d),
        "A answered {status} {body}; B: {retry}"
    );
    assert_eq!(svc.desired_replicas(), 3, "B's answer holds: {retry}");
    let next = post(&b, "TestHighCPU", &svc.name, "lost-2").await;
    assert_eq!(next["decision"], "cooldown", "{next}");
    // A keeps trying what it journaled; it must find the claim, not scale again.
    proxy.set_fault(Fault::None);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(svc.desired_replicas(), 3, "1→3 once, not 1→3→5");
    forget_templates(&[&svc]);
    drop((a.stop().await, b.stop().await));
}
