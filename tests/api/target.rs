//! Target tracking (`scale_to_target`) end to end: real HTTP, the value in the payload's
//! annotations as Alertmanager sends `{{ $value }}`, the real swarm observed through the docker
//! CLI, time moved with the app's injected clock.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// The issue's rule (cooldown 1m, stabilization at its default of 5m), on a test alert name.
const RULE: &str = r#"
rules:
  - name: cpu-target
    match: ['alertname="TestCPUOffTarget"']
    action: scale_to_target
    target: 0.6
    value_from: annotation:value
    tolerance: 0.1
    min_replicas: 1
    max_replicas: 10
    cooldown: 1m
"#;

async fn app() -> TestApp {
    AppSetup::default().extra_rules(RULE).spawn(|_| {}).await
}

/// A TestCPUOffTarget alert for `service` carrying `value` (no annotation at all: `None`).
fn off_target(service: &str, fingerprint: &str, value: Option<&str>) -> Value {
    let mut payload = alert_payload_fp("TestCPUOffTarget", service, fingerprint);
    let annotations = &mut payload["alerts"][0]["annotations"];
    if let Some(value) = value {
        annotations["value"] = json!(value);
    }
    payload
}

/// The replicas of the spec before the last update: which count an update started from.
fn previous_replicas(svc: &TestService) -> u64 {
    svc.inspect("{{.PreviousSpec.Mode.Replicated.Replicas}}")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn load_times_three_is_one_update_a_dip_is_held_and_a_lasting_drop_is_one_scale_down() {
    let app = app().await;
    let svc = TestService::opted_in("target", 2).await;

    // Load ×3 (1.8 against 0.6 per replica): one update, straight from 2 to 6.
    let up = app
        .fire_payload(&off_target(&svc.name, "t-1", Some("1.8")))
        .await;
    let up = only(&up);
    assert_eq!(up["decision"], "executed", "{up}");
    assert_eq!(up["action"], "scale_to_target");
    assert_eq!(up["change"], "replicas 2→6");
    assert_eq!(up["reason"], "value 1.8 vs target 0.6 (×3), tolerance 0.1");
    assert_eq!(svc.desired_replicas(), 6);
    assert_eq!(previous_replicas(&svc), 2, "one update from 2, not 2→4→6");
    let intent = app
        .journal()
        .into_iter()
        .find(|l| l["type"] == "intent")
        .unwrap();
    // since_ms: the fixture's startsAt, 2026-11-30T09:00:00Z.
    assert_eq!(
        intent["action"]["reading"],
        json!({"value": 1.8, "replicas": 2, "since_ms": 1_796_029_200_000_u64})
    );
    assert_eq!(
        intent["change"],
        json!({"kind": "replicas", "from": 2, "to": 6})
    );
    svc.wait_running(6).await;
    let version = svc.version();

    // Two minutes later (past the cooldown) the load dips to a third: 2 replicas would do, but 6
    // were wanted within the stabilization window. Nothing is sent.
    app.clock.advance(Duration::from_secs(120));
    let dip = app
        .fire_payload(&off_target(&svc.name, "t-2", Some("0.2")))
        .await;
    let dip = only(&dip);
    assert_eq!(dip["decision"], "no_change", "{dip}");
    assert_eq!(
        dip["reason"],
        "value 0.2 vs target 0.6 (×0.33) recommends 2, but 6 was recommended within scale_down_stabilization 5m: 6 replicas stay"
    );
    // It stays down; still inside 5m of the scale-up: still held.
    app.clock.advance(Duration::from_secs(120));
    let still = app
        .fire_payload(&off_target(&svc.name, "t-3", Some("0.2")))
        .await;
    assert_eq!(only(&still)["decision"], "no_change", "{still:?}");
    assert_eq!(svc.version(), version, "no update while held");
    assert_eq!(svc.desired_replicas(), 6);

    // Past the window: one scale-down, straight to 2 (6 × 0.2 / 0.6, which is
    // 2.0000000000000004 in floating point: not 3).
    app.clock.advance(Duration::from_secs(61));
    let down = app
        .fire_payload(&off_target(&svc.name, "t-4", Some("0.2")))
        .await;
    let down = only(&down);
    assert_eq!(down["decision"], "executed", "{down}");
    assert_eq!(down["change"], "replicas 6→2");
    assert_eq!(
        down["reason"],
        "value 0.2 vs target 0.6 (×0.33), tolerance 0.1, stabilized over 5m"
    );
    assert_eq!(svc.desired_replicas(), 2);
    assert_eq!(previous_replicas(&svc), 6, "one update from 6");
    let updates = app
        .journal()
        .into_iter()
        .filter(|l| l["type"] == "outcome" && l["outcome"] == "succeeded")
        .count();
    assert_eq!(updates, 2, "two actions in all: up once, down once");
}

#[tokio::test]
async fn a_value_within_the_tolerance_changes_nothing() {
    let app = app().await;
    let svc = TestService::opted_in("target_tol", 2).await;
    let version = svc.version();
    let d = app
        .fire_payload(&off_target(&svc.name, "tol-1", Some("0.65")))
        .await;
    let d = only(&d);
    assert_eq!(d["decision"], "no_change", "{d}");
    assert_eq!(
        d["reason"],
        "value 0.65 vs target 0.6 (×1.08) is within tolerance 0.1: 2 replicas stay"
    );
    assert_eq!(svc.version(), version);
}

/// Missing, unparsable, NaN, infinite and negative values are refusals with their reason,
/// never an action; nothing is journaled.
#[tokio::test]
async fn bad_values_are_refused_and_touch_nothing() {
    let app = app().await;
    let svc = TestService::opted_in("target_bad", 2).await;
    let version = svc.version();
    for (n, (value, reason)) in [
        (None, "the alert has no annotation \"value\" (value_from annotation:value): nothing to scale on"),
        (Some("NaN"), "annotation value = \"NaN\" is not a finite number"),
        (Some("+Inf"), "annotation value = \"+Inf\" is not a finite number"),
        (Some("-Inf"), "annotation value = \"-Inf\" is not a finite number"),
        (Some("-0.3"), "annotation value = \"-0.3\" is negative: a value per replica never is"),
        (Some("1.2k"), "annotation value = \"1.2k\" is not a number"),
    ]
    .into_iter()
    .enumerate()
    {
        let d = app
            .fire_payload(&off_target(&svc.name, &format!("bad-{n}"), value))
            .await;
        let d = only(&d);
        assert_eq!(d["decision"], "refused", "{value:?}: {d}");
        assert_eq!(d["reason"], reason);
        assert!(d.get("change").is_none(), "{d}");
    }
    assert_eq!(svc.version(), version);
    assert!(app.journal().iter().all(|l| l["type"] != "intent"));
}

/// The service's own bound label narrows the rule's, as for scale_up.
#[tokio::test]
async fn the_tighter_of_the_rule_and_the_label_bounds_the_target() {
    let app = app().await;
    let svc = TestService::create(
        "target_label",
        2,
        &["swarmpilot.enable=true", "swarmpilot.max_replicas=3"],
    )
    .await;
    let d = app
        .fire_payload(&off_target(&svc.name, "lab-1", Some("1.8")))
        .await;
    let d = only(&d);
    assert_eq!(d["change"], "replicas 2→3", "{d}");
    assert_eq!(
        d["reason"],
        "value 1.8 vs target 0.6 (×3), tolerance 0.1; max_replicas 3 (label swarmpilot.max_replicas)"
    );
    assert_eq!(svc.desired_replicas(), 3);
}

/// Cluster mode: the claim of scale_to_target rides on its acting update, under its own kind,
/// so another replica refuses the same delivery (duplicate) and any other within the cooldown.
#[tokio::test]
async fn cluster_mode_claims_scale_to_target_on_the_service() {
    let register = Register(TestService::unique_name("register_target"));
    let register = &register.0;
    let clock = swarmpilot::clock::ManualClock::default();
    let setup = |s: &mut swarmpilot::settings::Settings| {
        s.cluster.enabled = true;
        s.cluster.register_service = register.clone();
    };
    let a = AppSetup::default()
        .extra_rules(RULE)
        .clock(clock.clone())
        .spawn(setup)
        .await;
    let b = AppSetup::default()
        .extra_rules(RULE)
        .clock(clock)
        .spawn(setup)
        .await;
    let svc = TestService::opted_in("cluster_target", 2).await;
    // Without ?wait: in cluster mode the answer itself waits for the claim to land.
    let post = |app: &TestApp, fingerprint: &str, value: &str| {
        let payload = off_target(&svc.name, fingerprint, Some(value));
        let app = app.client.clone().post(format!("{}/webhook", app.address));
        async move {
            let answer = app.bearer_auth(TOKEN).json(&payload).send().await.unwrap();
            assert_eq!(answer.status(), 200);
            let body: Value = answer.json().await.unwrap();
            body["decisions"][0].clone()
        }
    };

    let first = post(&a, "ct-1", "1.8").await;
    assert_eq!(first["decision"], "executed", "{first}");
    assert_eq!(first["change"], "replicas 2→6");
    assert_eq!(
        first["reason"],
        "value 1.8 vs target 0.6 (×3), tolerance 0.1; its update landed (claimed on the service)"
    );
    let label = |name: &str| svc.inspect(&format!("{{{{index .Spec.Labels \"{name}\"}}}}"));
    assert!(!label("swarmpilot.cooldown.scale_to_target").is_empty());
    assert!(!label("swarmpilot.delivery.scale_to_target").is_empty());

    let again = post(&b, "ct-1", "1.8").await;
    assert_eq!(again["decision"], "duplicate", "{again}");
    let other = post(&b, "ct-2", "3.0").await;
    assert_eq!(other["decision"], "cooldown", "{other}");
    assert_eq!(svc.desired_replicas(), 6, "scaled once");

    // Templates the replicas kept for the cluster, and the register: this test's own.
    let kept = format!("label=swarmpilot.template.service={}", svc.name);
    for id in docker(&["config", "ls", "--quiet", "--filter", &kept])
        .unwrap_or_default()
        .lines()
    {
        let _ = docker(&["config", "rm", id]);
    }
    drop((a.stop().await, b.stop().await));
}

/// The budget register of the cluster test: removed when the test ends, passed or not.
struct Register(String);

impl Drop for Register {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.0]);
    }
}

/// Alertmanager sends nothing while a service is on target. A dip after such a quiet spell is a
/// new alert, started a minute ago: the quiet time before it is within the window and held the
/// service's replicas, so nothing is removed until the alert has fired the whole window.
#[tokio::test]
async fn a_dip_after_a_quiet_spell_waits_for_the_window_from_the_alerts_start() {
    let app = app().await;
    let svc = TestService::opted_in("tquiet", 4).await;
    let started = swarmpilot::clock::Clock::now(&app.clock) - Duration::from_secs(60);
    let mut dip = off_target(&svc.name, "q-1", Some("0.2"));
    dip["alerts"][0]["startsAt"] = json!(humantime::format_rfc3339_millis(started).to_string());
    let held = app.fire_payload(&dip).await;
    let held = only(&held);
    assert_eq!(held["decision"], "no_change", "{held}");
    assert_eq!(
        held["reason"],
        "value 0.2 vs target 0.6 (×0.33) recommends 2, but it has been off target only 1m (the alert's startsAt), less than scale_down_stabilization 5m: before that it was on target at these replicas, 4 stay"
    );
    // The same alert, still firing 4 minutes on (its startsAt unchanged): 5m off target.
    app.clock.advance(Duration::from_secs(240));
    let down = app.fire_payload(&dip).await;
    let down = only(&down);
    assert_eq!(down["decision"], "executed", "{down}");
    assert_eq!(down["change"], "replicas 4→2");
    assert_eq!(svc.desired_replicas(), 2);
}
