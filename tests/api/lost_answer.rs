//! Docker applies an update but its answer is lost (a dropped connection), and the engine then
//! stays away past `docker.retry_for`. The outcome is decided by a re-read of the service — the
//! update carries `swarmpilot.action=<id>` — never called `expired` on a guess, so the cooldown
//! holds and the next alert does not scale again. The same after a restart past `retry_for`.

use crate::common::docker_proxy::{DockerProxy, Fault};
use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use swarmpilot::settings::Settings;

const SOCKET: &str = "/var/run/docker.sock";

/// Post without waiting; the one decision.
async fn post(app: &TestApp, fingerprint: &str, service: &str) -> Value {
    let payload = alert_payload_fp("TestHighCPU", service, fingerprint);
    let answer = app.post_webhook_to("webhook", &payload).await;
    assert_eq!(answer.status(), 200);
    let body: Value = answer.json().await.unwrap();
    body["decisions"][0].clone()
}

/// Lose the answer of the scale-up, then take Docker away; returns the action id once Docker
/// has applied the update. The answer is held until Docker vanishes, which closes the
/// connection it was held on: so no read can slip in between and see the update early.
async fn scale_up_and_lose_the_answer(
    app: &TestApp,
    proxy: &DockerProxy,
    service: &TestService,
) -> String {
    proxy.set_fault(Fault::DelayUpdateAnswers(Duration::from_secs(120)));
    let first = post(app, "lost-1", &service.name).await;
    assert_eq!(first["decision"], "queued", "{first}");
    wait_for(
        || service.desired_replicas() == 3,
        "Docker applied the update",
    )
    .await;
    proxy.set_fault(Fault::RefuseAll);
    first["action_id"].as_str().unwrap().to_string()
}

fn outcome_of(app: &TestApp, id: &str) -> Option<Value> {
    app.journal()
        .into_iter()
        .find(|l| l["id"] == id && l["type"] == "outcome")
}

#[tokio::test]
async fn a_lost_answer_past_retry_for_is_succeeded_by_a_read_and_the_cooldown_holds() {
    let service = TestService::opted_in("lost_answer", 1).await;
    let proxy = DockerProxy::start(Path::new(SOCKET)).await;
    let app = spawn_app_with(|s| s.docker.host = proxy.host()).await;
    let id = scale_up_and_lose_the_answer(&app, &proxy, &service).await;
    app.clock.advance(Duration::from_secs(601));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(outcome_of(&app, &id), None, "no outcome without a read");
    let during = post(&app, "lost-2", &service.name).await;
    assert_eq!(during["decision"], "busy", "{during}");

    proxy.set_fault(Fault::None);
    let outcome = app.outcome(&id).await;
    assert_eq!(outcome["outcome"], "succeeded", "{outcome}");
    assert!(
        outcome["reason"].as_str().unwrap().contains("landed"),
        "{outcome}"
    );
    let after = post(&app, "lost-3", &service.name).await;
    assert_eq!(after["decision"], "cooldown", "{after}");
    assert_eq!(service.desired_replicas(), 3, "scaled once");
    assert_eq!(
        service.inspect("{{index .Spec.Labels \"swarmpilot.action\"}}"),
        id
    );
    drop(app.stop().await);
}

#[tokio::test]
async fn a_restart_past_retry_for_reads_the_service_instead_of_expiring() {
    let service = TestService::opted_in("lost_restart", 1).await;
    let proxy = DockerProxy::start(Path::new(SOCKET)).await;
    let behind_proxy = |s: &mut Settings| s.docker.host = proxy.host();
    let app = spawn_app_with(behind_proxy).await;
    let id = scale_up_and_lose_the_answer(&app, &proxy, &service).await;
    let reuse = app.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        swarmpilot_journal_outcome(&reuse.0, &id),
        None,
        "stopped with the action unfinished"
    );

    reuse.1.advance(Duration::from_secs(601));
    proxy.set_fault(Fault::None);
    let app = AppSetup::default().reuse(reuse).spawn(behind_proxy).await;
    assert_eq!(app.recovery.resumed, 1);
    let outcome = app.outcome(&id).await;
    assert_eq!(outcome["outcome"], "succeeded", "{outcome}");
    let after = post(&app, "lost-restart-2", &service.name).await;
    assert_eq!(after["decision"], "cooldown", "{after}");
    assert_eq!(service.desired_replicas(), 3, "scaled once");
    drop(app.stop().await);
}

fn swarmpilot_journal_outcome(dir: &tempfile::TempDir, id: &str) -> Option<Value> {
    std::fs::read_to_string(dir.path().join("data/journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["id"] == id && l["type"] == "outcome")
}
