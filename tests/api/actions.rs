//! rollback, backup_now and resolved alerts on the real swarm.

use crate::common::*;
use serde_json::Value;
use std::time::Duration;

const V1: &str = "swarmpilot-test/busybox:1";
const V2: &str = "swarmpilot-test/busybox:2";

fn image(svc: &TestService) -> String {
    svc.inspect("{{.Spec.TaskTemplate.ContainerSpec.Image}}")
}

#[tokio::test]
async fn rollback_after_a_scale_restores_v1_and_keeps_the_scaled_replicas() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("rollback", 2).await;
    assert_eq!(image(&svc), V1);
    svc.roll_out(V2).await;

    // A scale makes Swarm's PreviousSpec carry v2 too: `rollback=previous` would be a no-op now.
    assert_eq!(
        only(&app.fire("TestHighCPU", &svc.name).await)["change"],
        "replicas 2→4"
    );
    let d = app.fire("TestBadRollout", &svc.name).await;
    let d = only(&d);
    assert_eq!(d["decision"], "executed", "{d}");
    assert!(
        d["change"].as_str().unwrap().starts_with("template "),
        "{d}"
    );

    assert_eq!(image(&svc), V1, "v1 is back");
    assert_eq!(
        svc.desired_replicas(),
        4,
        "the scaled replica count is kept"
    );
    svc.wait_running(4).await;
}

#[tokio::test]
async fn rollback_with_no_earlier_template_is_refused() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("norollback", 1).await;
    let version = svc.version();
    let d = app.fire("TestBadRollout", &svc.name).await;
    let d = only(&d);
    assert_eq!(d["decision"], "refused", "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("nothing to roll back to"),
        "{d}"
    );
    assert_eq!(svc.version(), version);
}

#[tokio::test]
async fn rollback_is_allowed_on_a_paused_bad_rollout() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("rollback_paused", 2).await;
    svc.pause_with_bad_rollout(&["--image", V2]).await;

    let d = app.fire("TestBadRollout", &svc.name).await;
    assert_eq!(only(&d)["decision"], "executed", "{d:?}");
    assert_eq!(image(&svc), V1);
    assert_eq!(
        svc.inspect("{{json .Spec.TaskTemplate.ContainerSpec.Args}}"),
        "null"
    );
    svc.wait_running(2).await;
}

/// `docker.host` as a plain socket path (what `-v /var/run/docker.sock:…` users write): the raw
/// `PreviousSpec` read must reach the engine too, or every rollback is refused.
#[tokio::test]
async fn rollback_executes_with_a_plain_socket_path_as_docker_host() {
    let app = spawn_app_with(|s| s.docker.host = "/var/run/docker.sock".into()).await;
    let svc = TestService::opted_in("rollback_plain", 1).await;
    svc.roll_out(V2).await;

    let d = app.fire("TestBadRollout", &svc.name).await;
    assert_eq!(only(&d)["decision"], "executed", "{d:?}");
    assert_eq!(image(&svc), V1, "v1 is back");
}

fn backup_rule(name: &str, alert: &str, job: &str) -> String {
    format!(
        "rules:\n  - name: {name}\n    match: ['alertname=\"{alert}\"']\n    action: backup_now\n    job: {job}\n    cooldown: 0s\n"
    )
}

/// A job service: replicated, 0 replicas, restart condition none, opted in.
fn job(tag: &str, script: &str, extra: &[&str]) -> TestService {
    let mut flags = vec!["--replicas", "0", "--restart-condition", "none"];
    flags.extend_from_slice(extra);
    TestService::opted_in_with(tag, &flags, V1, &["sh", "-c", script])
}

fn outcome_of(app: &TestApp, id: &str) -> Value {
    app.journal()
        .into_iter()
        .find(|l| l["id"] == id && l["type"] == "outcome")
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn backup_job_writes_into_its_volume_and_returns_to_zero() {
    let volume = TestService::unique_name("vol");
    let mount =
        format!("type=volume,source={volume},target=/data,volume-label=swarmpilot.test=true");
    let job = job(
        "backup_ok",
        "echo dump > /data/backup.sql",
        &["--mount", &mount],
    );
    let app = AppSetup::default()
        .extra_rules(backup_rule("backup-ok", "TestBackupOk", &job.name))
        .spawn(|_| {})
        .await;

    let d = app.fire("TestBackupOk", "any-service").await;
    let d = only(&d);
    assert_eq!(d["decision"], "executed", "{d}");
    assert_eq!(d["service"], job.name.as_str());
    assert_eq!(d["reason"], format!("job {} completed", job.name));
    let id = d["action_id"].as_str().unwrap();
    assert_eq!(outcome_of(&app, id)["outcome"], "succeeded");

    let mountpoint =
        docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", &volume]).unwrap();
    let written = std::fs::read_to_string(format!("{mountpoint}/backup.sql")).unwrap();
    assert_eq!(written, "dump\n");
    assert_eq!(job.desired_replicas(), 0, "back to 0 replicas");
}

#[tokio::test]
async fn failing_backup_job_is_journaled_with_its_exit_code() {
    let job = job("backup_fail", "exit 7", &[]);
    let app = AppSetup::default()
        .extra_rules(backup_rule("backup-fail", "TestBackupFail", &job.name))
        .spawn(|_| {})
        .await;
    let d = app.fire("TestBackupFail", "any").await;
    let d = only(&d);
    assert_eq!(d["decision"], "failed", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(reason.contains("exit code 7"), "{reason}");
    let id = d["action_id"].as_str().unwrap();
    let outcome = outcome_of(&app, id);
    assert_eq!(outcome["outcome"], "failed");
    assert!(outcome["reason"].as_str().unwrap().contains("exit code 7"));
    assert_eq!(job.desired_replicas(), 0);
}

#[tokio::test]
async fn a_trigger_during_a_run_is_busy_and_a_run_past_the_timeout_is_timed_out() {
    let job = job("backup_slow", "sleep 300", &[]);
    let app = AppSetup::default()
        .extra_rules(backup_rule("backup-slow", "TestBackupSlow", &job.name))
        .spawn(|s| s.backup.timeout = Duration::from_secs(60))
        .await;
    let first = app
        .post_webhook_to("webhook", &alert_payload("TestBackupSlow", "x"))
        .await;
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["decisions"][0]["decision"], "queued", "{first}");
    let id = first["decisions"][0]["action_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(|| job.running_tasks() == 1, "the run started").await;

    let second = app.fire_fp("TestBackupSlow", "x", "00000000000000f2").await;
    assert_eq!(only(&second)["decision"], "busy", "{second:?}");

    app.clock.advance(Duration::from_secs(61));
    assert_eq!(app.outcome(&id).await["outcome"], "timed_out");
    assert_eq!(job.desired_replicas(), 0, "back to 0 replicas");
}

#[tokio::test]
async fn replicated_job_mode_runs_once_per_trigger() {
    let job = TestService::from_args(
        "backup_job_mode",
        &[
            "--mode",
            "replicated-job",
            "--label",
            "swarmpilot.enable=true",
            V1,
            "sh",
            "-c",
            "true",
        ],
    );
    let completed = || {
        docker(&["service", "ps", "--format", "{{.CurrentState}}", &job.name])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Complete"))
            .count()
    };
    wait_for(|| completed() == 1, "first run").await;
    let app = AppSetup::default()
        .extra_rules(backup_rule(
            "backup-jobmode",
            "TestBackupJobMode",
            &job.name,
        ))
        .spawn(|_| {})
        .await;
    let d = app.fire("TestBackupJobMode", "x").await;
    assert_eq!(only(&d)["decision"], "executed", "{d:?}");
    assert_eq!(job.force_update(), 1);
    assert_eq!(completed(), 2, "one more run");
}

fn resolved(alertname: &str, service: &str) -> Value {
    let mut payload = alert_payload(alertname, service);
    payload["status"] = "resolved".into();
    payload["alerts"][0]["status"] = "resolved".into();
    payload["alerts"][0]["endsAt"] = "2026-11-30T09:10:00.000Z".into();
    payload
}

#[tokio::test]
async fn resolved_alerts_only_reach_rules_that_ask_for_them() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("resolved", 2).await;
    let version = svc.version();
    for alert in ["TestHighCPU", "TestUnhealthy", "TestBadRollout"] {
        let d = app.fire_payload(&resolved(alert, &svc.name)).await;
        assert_eq!(only(&d)["decision"], "no_match", "{alert}: {d:?}");
    }
    assert_eq!(
        svc.version(),
        version,
        "a resolved notification changed nothing"
    );

    // A firing TestLoadGone matches no rule; its resolution scales down.
    let d = app.fire("TestLoadGone", &svc.name).await;
    assert_eq!(only(&d)["decision"], "no_match");
    let d = app.fire_payload(&resolved("TestLoadGone", &svc.name)).await;
    assert_eq!(only(&d)["change"], "replicas 2→1", "{d:?}");
}
