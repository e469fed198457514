//! The server's own endpoints and its behaviour when the engine is away.

use crate::common::*;
use serde_json::Value;

#[tokio::test]
async fn health_ready_and_json_404() {
    let app = spawn_app().await;
    let healthy = app.get("/-/healthy").await;
    assert_eq!(healthy.status(), 200);
    let ready = app.get("/-/ready").await;
    assert_eq!(ready.status(), 200);
    let missing = app.get("/nope").await;
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "no route for GET /nope");
}

#[tokio::test]
async fn dry_run_query_decides_without_acting() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("dry", 1).await;
    let version = svc.version();
    let response = app
        .client
        .post(format!("{}/webhook?dry_run=true&wait=true", app.address))
        .bearer_auth(TOKEN)
        .json(&alert_payload("TestHighCPU", &svc.name))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["decisions"][0]["decision"], "dry_run", "{body}");
    assert_eq!(body["decisions"][0]["change"], "replicas 1→3");
    assert_eq!(svc.version(), version);
}

#[tokio::test]
async fn unmatched_and_truncated_alerts_are_answered() {
    let app = spawn_app().await;
    let text = std::fs::read_to_string(fixture("truncated.json")).unwrap();
    let payload: Value = serde_json::from_str(&text).unwrap();
    let response = app.post_webhook(&payload).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let decisions = body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions.iter().all(|d| d["decision"] == "no_match"));
    assert!(body["warning"]
        .as_str()
        .unwrap()
        .contains("left out 5 alerts"));
}

#[tokio::test]
async fn engine_unreachable_queues_and_ready_says_why() {
    let host = "unix:///nonexistent/docker.sock";
    assert!(!engine_answers(host).await);
    let app = spawn_app_with(|s| s.docker.host = host.into()).await;
    let response = app
        .post_webhook_to("webhook", &alert_payload("TestHighCPU", "web"))
        .await;
    // Admitted and journaled: the worker applies it once the engine answers.
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["decisions"][0]["decision"], "queued", "{body}");
    let journal = app.journal();
    assert_eq!(journal[0]["type"], "intent");
    assert_eq!(journal[0]["change"], Value::Null);
    let ready = app.get("/-/ready").await;
    assert_eq!(ready.status(), 503);
}

#[tokio::test]
async fn a_hung_engine_is_cut_off_by_docker_timeout() {
    use std::time::{Duration, Instant};
    use swarmpilot::act::{docker::DockerSwarm, DockerError, Swarm};
    // A socket that accepts and never answers: an engine that hangs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hung.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let _holder = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    let host = format!("unix://{}", path.display());
    let swarm = DockerSwarm::connect(&host, Duration::from_secs(1)).unwrap();
    let started = Instant::now();
    let result = swarm.find_service("web").await;
    assert!(
        matches!(result, Err(DockerError::Unreachable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
