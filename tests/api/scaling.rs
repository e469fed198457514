use crate::common::*;
use std::time::Duration;

#[tokio::test]
async fn alert_scales_opted_in_service_from_2_to_4_then_cooldown_holds() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("scale", 2).await;

    let decisions = app.fire("TestHighCPU", &svc.name).await;
    let d = only(&decisions);
    assert_eq!(d["decision"], "executed", "{d}");
    assert_eq!(d["rule"], "test-scale-up");
    assert_eq!(d["action"], "scale_up");
    assert_eq!(d["service"], svc.name.as_str());
    assert_eq!(d["change"], "replicas 2→4");
    assert_eq!(svc.desired_replicas(), 4);
    svc.wait_running(4).await;

    // The same alert delivered again is a duplicate; another alert inside the cooldown is refused.
    let version = svc.version();
    let d = app.fire("TestHighCPU", &svc.name).await;
    assert_eq!(only(&d)["decision"], "duplicate", "{d:?}");
    app.clock.advance(Duration::from_secs(299));
    let d = app
        .fire_fp("TestHighCPU", &svc.name, "0000000000000002")
        .await;
    assert_eq!(only(&d)["decision"], "cooldown", "{d:?}");
    assert_eq!(svc.version(), version);
    assert_eq!(svc.desired_replicas(), 4);
}

#[tokio::test]
async fn scale_up_at_the_service_label_bound_answers_at_bound() {
    let app = spawn_app().await;
    let svc = TestService::create(
        "bound",
        2,
        &["swarmpilot.enable=true", "swarmpilot.max_replicas=2"],
    )
    .await;
    let version = svc.version();
    let d = app.fire("TestHighCPU", &svc.name).await;
    let d = only(&d);
    assert_eq!(d["decision"], "at_bound", "{d}");
    assert!(
        d["reason"].as_str().unwrap().contains("max_replicas is 2"),
        "{d}"
    );
    assert_eq!(svc.version(), version);
}

#[tokio::test]
async fn service_without_opt_in_label_is_never_touched() {
    let app = spawn_app().await;
    let svc = TestService::create("unlabelled", 1, &[]).await;
    let version = svc.version();
    for alert in ["TestHighCPU", "TestUnhealthy", "TestLowCPU"] {
        let d = app.fire(alert, &svc.name).await;
        assert_eq!(only(&d)["decision"], "not_managed", "{alert}: {d:?}");
    }
    assert_eq!(svc.version(), version);
}

#[tokio::test]
async fn service_is_looked_up_by_exact_name_only() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("exact", 1).await;
    let version = svc.version();
    // A prefix of a real name, and the service's ID, are not its name.
    let prefix = &svc.name[..svc.name.len() - 1];
    let id = docker(&["service", "inspect", "--format", "{{.ID}}", &svc.name]).unwrap();
    for label in [prefix, id.as_str()] {
        let d = app.fire("TestHighCPU", label).await;
        assert_eq!(only(&d)["decision"], "no_service", "{label}: {d:?}");
    }
    assert_eq!(svc.version(), version);
}

#[tokio::test]
async fn scale_down_respects_min_replicas() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("down", 2).await;
    let d = app.fire("TestLowCPU", &svc.name).await;
    assert_eq!(only(&d)["change"], "replicas 2→1", "{d:?}");
    svc.wait_running(1).await;
    app.clock.advance(Duration::from_secs(3600));
    let d = app
        .fire_fp("TestLowCPU", &svc.name, "0000000000000002")
        .await;
    assert_eq!(only(&d)["decision"], "at_bound", "{d:?}");
    assert_eq!(svc.desired_replicas(), 1);
}
