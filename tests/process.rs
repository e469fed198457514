//! The real binary as a process, against the real swarm. Killed with SIGKILL between an intent
//! and its outcome, then started again: every journaled intent ends with exactly one outcome, the
//! action runs at most once, and cooldowns persist. SIGTERM in the middle of an update waits for
//! its answer and journals the outcome before exiting. SIGHUP reloads the rules.

#[allow(dead_code)]
mod common;

use common::docker_proxy::{DockerProxy, Fault};
use common::process::{Instance, Process};
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

async fn post(process: &Process, payload: &Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}/webhook", process.address))
        .bearer_auth(TOKEN)
        .json(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn lines_for<'a>(journal: &'a [Value], id: &str, kind: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|l| l["id"] == id && l["type"] == kind)
        .collect()
}

#[tokio::test]
async fn killed_while_queued_resumes_once_after_restart_and_keeps_the_cooldown() {
    let svc = TestService::opted_in("crash", 2).await;
    let instance = Instance::new();

    // First life: Docker unreachable, so the admitted action waits in the worker.
    let first = instance.start("unix:///nonexistent/docker.sock").await;
    let answer = post(&first, &alert_payload("TestHighCPU", &svc.name)).await;
    assert_eq!(answer["decisions"][0]["decision"], "queued", "{answer}");
    let id = answer["decisions"][0]["action_id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(first); // SIGKILL

    let journal = instance.journal();
    assert_eq!(lines_for(&journal, &id, "intent").len(), 1);
    assert!(lines_for(&journal, &id, "outcome").is_empty());
    assert_eq!(svc.desired_replicas(), 2);

    // Second life, with the engine: the intent is resumed and applied once.
    let second = instance.start("").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_for(&instance.journal(), &id, "outcome").is_empty() {
        assert!(Instant::now() < deadline, "no outcome for {id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let journal = instance.journal();
    let outcomes = lines_for(&journal, &id, "outcome");
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["outcome"], "succeeded", "{:?}", outcomes[0]);
    assert_eq!(svc.desired_replicas(), 4);
    svc.wait_running(4).await;

    // The cooldown admitted in the first life still holds.
    let answer = post(
        &second,
        &alert_payload_fp("TestHighCPU", &svc.name, "00000000000000c2"),
    )
    .await;
    assert_eq!(answer["decisions"][0]["decision"], "cooldown", "{answer}");
    let answer = post(&second, &alert_payload("TestHighCPU", &svc.name)).await;
    assert_eq!(answer["decisions"][0]["decision"], "duplicate", "{answer}");
    assert_eq!(svc.desired_replicas(), 4);
}

#[tokio::test]
async fn an_update_that_landed_before_the_crash_is_not_sent_again() {
    // The swarm already shows the target (the update was sent, the outcome never written).
    let svc = TestService::opted_in("landed", 4).await;
    let version = svc.version();
    let instance = Instance::new();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let intent = json!({
        "type": "intent", "id": "crashed-000001", "time_ms": now_ms, "rule": "test-scale-up",
        "alert": "TestHighCPU", "fingerprint": "00000000000000d1",
        "starts_at": "2026-11-30T09:00:00.000Z", "status": "firing", "service": svc.name,
        "action": {"kind": "scale_up", "step": 2, "max_replicas": 10}, "cooldown_ms": 300000,
        "change": {"kind": "replicas", "from": 2, "to": 4}
    });
    std::fs::create_dir_all(instance.dir.path().join("data")).unwrap();
    // A torn half line after it, as a crash mid-write leaves.
    std::fs::write(
        instance.journal_path(),
        format!("{intent}\n{{\"type\":\"outcome\",\"id\":\"crashed-0"),
    )
    .unwrap();

    let _process = instance.start("").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines_for(&instance.journal(), "crashed-000001", "outcome").is_empty() {
        assert!(Instant::now() < deadline, "no outcome");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let journal = instance.journal();
    let outcome = lines_for(&journal, "crashed-000001", "outcome")[0];
    assert_eq!(outcome["outcome"], "succeeded");
    assert_eq!(outcome["reason"], "target already reached; nothing sent");
    assert_eq!(svc.version(), version, "no second update");
    assert_eq!(svc.desired_replicas(), 4);
}

#[tokio::test]
async fn an_intent_older_than_retry_for_is_expired_on_start_not_run() {
    let svc = TestService::opted_in("stale", 1).await;
    let version = svc.version();
    let instance = Instance::new();
    let hour_ago = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 3_600_000;
    let intent = json!({
        "type": "intent", "id": "stale-000001", "time_ms": hour_ago, "rule": "test-restart",
        "alert": "TestUnhealthy", "fingerprint": "00000000000000e1",
        "starts_at": "2026-11-30T08:00:00.000Z", "status": "firing", "service": svc.name,
        "action": {"kind": "restart"}, "cooldown_ms": 600000,
        "change": {"kind": "force_update", "from": 0, "to": 1}
    });
    std::fs::create_dir_all(instance.dir.path().join("data")).unwrap();
    std::fs::write(instance.journal_path(), format!("{intent}\n")).unwrap();

    let process = instance.start("").await;
    // Not expired blindly: a read of the service proves the update never landed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let journal = loop {
        let journal = instance.journal();
        if !lines_for(&journal, "stale-000001", "outcome").is_empty() {
            break journal;
        }
        assert!(Instant::now() < deadline, "no outcome for the stale intent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let outcome = lines_for(&journal, "stale-000001", "outcome");
    assert_eq!(outcome.len(), 1);
    assert_eq!(outcome[0]["outcome"], "expired");
    assert!(
        outcome[0]["reason"]
            .as_str()
            .unwrap()
            .contains("did not land"),
        "{}",
        outcome[0]
    );
    assert_eq!(svc.version(), version, "never run");
    // Its cooldown long passed: a new alert acts.
    let answer = post(&process, &alert_payload("TestUnhealthy", &svc.name)).await;
    assert_eq!(answer["decisions"][0]["decision"], "queued", "{answer}");
}

#[tokio::test]
async fn sighup_reloads_the_rules_and_a_broken_file_keeps_the_old_ones() {
    let instance = Instance::new();
    let rules = instance.dir.path().join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("tests/fixtures/rules/test.yml"),
        rules.join("test.yml"),
    )
    .unwrap();
    let process = instance.start_with_rules("", &rules).await;
    let metric = |name: &'static str| {
        let address = process.address.clone();
        async move {
            let text = reqwest::get(format!("{address}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        }
    };
    assert_eq!(metric("swarmpilot_rules_loaded").await, "5");

    std::fs::write(
        rules.join("more.yml"),
        "rules:\n  - name: added\n    match: ['alertname=\"X\"']\n    action: restart\n",
    )
    .unwrap();
    hangup(&process);
    wait_until(|| async { metric("swarmpilot_rules_loaded").await == "6" }).await;

    std::fs::write(
        rules.join("more.yml"),
        "rules:\n  - name: added\n    action: restart\n",
    )
    .unwrap();
    hangup(&process);
    wait_until(|| async { metric("swarmpilot_config_last_reload_successful").await == "0" }).await;
    assert_eq!(
        metric("swarmpilot_rules_loaded").await,
        "6",
        "old rules kept"
    );
}

fn hangup(process: &Process) {
    let status = Command::new("kill")
        .args(["-HUP", &process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_until<F, Fut>(mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "condition not reached");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_mid_update_waits_for_the_answer_and_journals_the_outcome() {
    let svc = TestService::opted_in("sigterm", 1).await;
    let proxy = DockerProxy::start(Path::new("/var/run/docker.sock")).await;
    let instance = Instance::new();
    let mut process = instance.start(&proxy.host()).await;
    proxy.set_fault(Fault::DelayUpdateAnswers(Duration::from_secs(3)));
    let answer = post(&process, &alert_payload("TestHighCPU", &svc.name)).await;
    let decision = &answer["decisions"][0];
    assert_eq!(decision["decision"], "queued", "{answer}");
    let id = decision["action_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.count("/update") == 0 {
        assert!(Instant::now() < deadline, "the update was never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    process.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !process.exited() {
        assert!(
            Instant::now() < deadline,
            "swarmpilot did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let journal = instance.journal();
    let outcome = lines_for(&journal, &id, "outcome");
    assert_eq!(outcome.len(), 1, "the outcome is journaled before the exit");
    assert_eq!(outcome[0]["outcome"], "succeeded", "{}", outcome[0]);
    assert_eq!(svc.desired_replicas(), 3);
}

/// `DOCKER_HOST` as a plain socket path: the real binary reaches Docker with it for every call,
/// the service update and the raw `PreviousSpec` read of a rollback alike.
#[tokio::test]
async fn a_plain_socket_path_in_docker_host_reaches_docker() {
    let svc = TestService::opted_in("envhost", 1).await;
    svc.roll_out("swarmpilot-test/busybox:2").await;
    let instance = Instance::new();
    let process = instance
        .start_with_env("", &[("DOCKER_HOST", "/var/run/docker.sock")])
        .await;

    let answer: Value = reqwest::Client::new()
        .post(format!("{}/webhook?wait=true", process.address))
        .bearer_auth(TOKEN)
        .json(&alert_payload("TestBadRollout", &svc.name))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["decisions"][0]["decision"], "executed", "{answer}");
    assert_eq!(
        svc.inspect("{{.Spec.TaskTemplate.ContainerSpec.Image}}"),
        "swarmpilot-test/busybox:1"
    );
}
