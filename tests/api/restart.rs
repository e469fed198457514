use crate::common::*;

#[tokio::test]
async fn restart_alert_bumps_force_update_on_the_real_swarm() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("restart", 1).await;
    let before = svc.force_update();
    let d = app.fire("TestUnhealthy", &svc.name).await;
    let d = only(&d);
    assert_eq!(d["decision"], "executed", "{d}");
    assert_eq!(d["change"], format!("force_update {before}→{}", before + 1));
    assert_eq!(svc.force_update(), before + 1);
    assert_eq!(
        svc.desired_replicas(),
        1,
        "a restart keeps the replica count"
    );
}
