//! The Docker engine goes away: `/webhook` keeps answering (decisions journaled as queued),
//! `/-/ready` reports the outage, the action completes exactly once when dockerd is back, and an
//! action past `docker.retry_for` is recorded as expired. dockerd killed (SIGKILL) in the middle
//! of a rolling restart: the rollout finishes after the engine is back, and nothing is doubled.
//! These tests stop and restart the shared dockerd, so they take turns within this binary (and
//! cargo runs test binaries one by one).

#[allow(dead_code)]
mod common;

use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// The tests of this file take turns: each takes the engine away.
static ENGINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn engine_up() -> bool {
    docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).is_ok_and(|s| s == "active")
}

/// Brings dockerd back however the test ends.
struct DockerdBack;

impl Drop for DockerdBack {
    fn drop(&mut self) {
        if !engine_up() {
            start_dockerd();
        }
    }
}

fn stop_dockerd() {
    signal_dockerd("TERM");
}

/// Send `signal` to dockerd and wait until the process is gone.
fn signal_dockerd(signal: &str) {
    let pid = std::fs::read_to_string("/var/run/docker.pid").expect("dockerd pid file");
    let status = Command::new("kill")
        .args([&format!("-{signal}"), pid.trim()])
        .status()
        .unwrap();
    assert!(status.success(), "could not signal dockerd");
    // Gone means the process has exited, not only that the API stopped answering: a new
    // dockerd refuses to start while the old one still holds its pid file.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Command::new("kill")
        .args(["-0", pid.trim()])
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "dockerd did not stop");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(docker(&["info"]).is_err());
}

fn start_dockerd() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-swarm.sh");
    let status = Command::new("bash").arg(script).status().unwrap();
    assert!(
        status.success(),
        "setup-swarm.sh failed to bring dockerd back"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !engine_up() {
        assert!(Instant::now() < deadline, "swarm not active after restart");
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn wait_outcome(app: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let journal = app.journal();
        let outcomes: Vec<&Value> = journal
            .iter()
            .filter(|l| l["id"] == id && l["type"] == "outcome")
            .collect();
        if let Some(first) = outcomes.first() {
            assert_eq!(outcomes.len(), 1, "exactly one outcome: {outcomes:?}");
            return (*first).clone();
        }
        assert!(Instant::now() < deadline, "no outcome for {id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn queue(app: &TestApp, service: &str) -> String {
    let started = Instant::now();
    let response = app
        .post_webhook_to("webhook", &alert_payload("TestUnhealthy", service))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered fast: {:?}",
        started.elapsed()
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["decisions"][0]["decision"], "queued", "{body}");
    body["decisions"][0]["action_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn docker_outage_delays_actions_and_never_drops_or_doubles_them() {
    let _turn = ENGINE.lock().await;
    let resumes = TestService::opted_in("outage_resume", 1).await;
    let expires = TestService::opted_in("outage_expire", 1).await;
    let patient = spawn_app().await;
    let hasty = spawn_app_with(|s| s.docker.retry_for = Duration::from_secs(60)).await;

    let _back = DockerdBack;
    stop_dockerd();

    let resume_id = queue(&patient, &resumes.name).await;
    let expire_id = queue(&hasty, &expires.name).await;
    let ready = patient.get("/-/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Docker engine unreachable"),
        "{body}"
    );

    // Past retry_for while Docker is still away: recorded as expired.
    hasty.clock.advance(Duration::from_secs(61));
    let expired = wait_outcome(&hasty, &expire_id).await;
    assert_eq!(expired["outcome"], "expired", "{expired}");

    start_dockerd();
    let done = wait_outcome(&patient, &resume_id).await;
    assert_eq!(done["outcome"], "succeeded", "{done}");
    assert_eq!(resumes.force_update(), 1, "applied exactly once");
    assert_eq!(expires.force_update(), 0, "the expired action never ran");
    let ready = patient.get("/-/ready").await;
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn dockerd_killed_during_a_rolling_restart_the_rollout_completes_once() {
    let _turn = ENGINE.lock().await;
    require_docker();
    let svc = TestService::opted_in_with(
        "killed_rollout",
        &[
            "--replicas",
            "3",
            "--update-parallelism",
            "1",
            "--update-delay",
            "2s",
        ],
        TEST_IMAGE,
        &[],
    );
    svc.wait_running(3).await;
    let app = spawn_app().await;

    let answer = app.fire("TestUnhealthy", &svc.name).await;
    assert_eq!(answer[0]["decision"], "executed", "{answer:?}");
    let id = answer[0]["action_id"].as_str().unwrap().to_string();
    wait_for(
        || svc.update_state() == "updating",
        "the rolling restart started",
    )
    .await;

    let _back = DockerdBack;
    signal_dockerd("KILL");
    start_dockerd();

    let deadline = Instant::now() + Duration::from_secs(180);
    while svc.update_state() != "completed" {
        assert!(
            Instant::now() < deadline,
            "rollout did not complete: {}",
            svc.update_state()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    svc.wait_running(3).await;
    assert_eq!(svc.force_update(), 1, "restarted exactly once");
    let journal = app.journal();
    let lines: Vec<&Value> = journal.iter().filter(|l| l["id"] == id.as_str()).collect();
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "outcome").count(),
        1,
        "{lines:?}"
    );
    // Alertmanager delivers the same alert again after the outage: a duplicate, not a restart.
    let again = app.fire("TestUnhealthy", &svc.name).await;
    assert_eq!(again[0]["decision"], "duplicate", "{again:?}");
    assert_eq!(svc.force_update(), 1);
}
