//! A is queued while Docker is away for longer than its cooldown (with the defaults, cooldown
//! 5m < retry_for 10m, this happens in a real outage). B arriving then must not be admitted
//! behind it, A's expiry must not clear a window it does not own, and once A has ended the next
//! alert acts exactly once and starts its own cooldown.

use crate::common::docker_proxy::{DockerProxy, Fault};
use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

async fn post(app: &TestApp, fingerprint: &str, service: &str) -> Value {
    let payload = alert_payload_fp("TestUnhealthy", service, fingerprint);
    let answer = app.post_webhook_to("webhook", &payload).await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    body["decisions"][0].clone()
}

#[tokio::test]
async fn an_action_queued_past_its_cooldown_holds_it_and_its_expiry_clears_only_its_own() {
    let service = TestService::opted_in("cooldown_owner", 1).await;
    let proxy = DockerProxy::start(Path::new("/var/run/docker.sock")).await;
    // The fixture's restart rule has a 10m cooldown; retry_for is longer, as 10m is than 5m.
    let app = spawn_app_with(|s| {
        s.docker.host = proxy.host();
        s.docker.retry_for = Duration::from_secs(15 * 60);
    })
    .await;
    proxy.set_fault(Fault::RefuseAll);
    let a = post(&app, "owner-a", &service.name).await;
    assert_eq!(a["decision"], "queued", "{a}");
    let a_id = a["action_id"].as_str().unwrap().to_string();

    app.clock.advance(Duration::from_secs(11 * 60));
    let b = post(&app, "owner-b", &service.name).await;
    assert_eq!(b["decision"], "busy", "behind an unfinished restart: {b}");

    app.clock.advance(Duration::from_secs(5 * 60));
    let expired = app.outcome(&a_id).await;
    assert_eq!(expired["outcome"], "expired", "{expired}");
    assert_eq!(service.force_update(), 0, "nothing reached Docker");

    proxy.set_fault(Fault::None);
    let c = only(&app.fire_fp("TestUnhealthy", &service.name, "owner-c").await).clone();
    assert_eq!(c["decision"], "executed", "{c}");
    let d = post(&app, "owner-d", &service.name).await;
    assert_eq!(d["decision"], "cooldown", "{d}");
    assert_eq!(service.force_update(), 1, "restarted exactly once");
    drop(app.stop().await);
}
