//! Metrics, Grafana annotations (against a stand-in that checks Grafana's request shape) and
//! reload through the real server and the real swarm.

use crate::common::grafana_standin::{Grafana, DASHBOARD_UID};
use crate::common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn metrics_count_alerts_decisions_actions_and_requests_by_route() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("metrics", 1).await;
    let d = app.fire("TestUnhealthy", &svc.name).await;
    assert_eq!(only(&d)["decision"], "executed");
    app.fire("NoSuchAlert", &svc.name).await;
    app.get("/api/v1/actions/whatever").await;

    let expect = [
        ("swarmpilot_alerts_received_total{status=\"firing\"}", 2.0),
        ("swarmpilot_decisions_total{action=\"restart\",decision=\"queued\",rule=\"test-restart\"}", 1.0),
        ("swarmpilot_decisions_total{action=\"\",decision=\"no_match\",rule=\"\"}", 1.0),
        ("swarmpilot_actions_total{action=\"restart\",outcome=\"succeeded\"}", 1.0),
        ("swarmpilot_action_duration_seconds_count{action=\"restart\"}", 1.0),
        ("swarmpilot_http_requests_total{method=\"POST\",route=\"/webhook\",status=\"200\"}", 2.0),
        ("swarmpilot_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}", 1.0),
        ("swarmpilot_rules_loaded", 5.0),
        ("swarmpilot_config_last_reload_successful", 1.0),
        ("swarmpilot_docker_up", 1.0),
    ];
    for (series, value) in expect {
        assert_eq!(app.metric(series).await, Some(value), "{series}");
    }
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("swarmpilot_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        !text.contains(&svc.name),
        "no service names in metric labels"
    );
}

#[tokio::test]
async fn each_action_outcome_is_annotated_in_grafana_shape() {
    let (grafana, url) = Grafana::start();
    let app = spawn_app_with(|s| {
        s.grafana.url = url;
        s.grafana.dashboard_uid = DASHBOARD_UID.into();
    })
    .await;
    require_docker();
    let svc = TestService::opted_in("annotated", 1).await;
    let started_ms = app.clock_ms();
    let d = app.fire("TestUnhealthy", &svc.name).await;
    assert_eq!(only(&d)["decision"], "executed");

    let deadline = Instant::now() + Duration::from_secs(10);
    while grafana.annotations().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no annotation: {:?}",
            grafana.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = &grafana.annotations()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.authorization, format!("Bearer {GRAFANA_TOKEN}"));
    assert!(seen.content_type.starts_with("application/json"));
    let body = &seen.body;
    assert!(
        body["time"].as_u64().unwrap() >= started_ms,
        "time in ms: {body}"
    );
    assert_eq!(body["dashboardUID"], DASHBOARD_UID);
    let tags: Vec<&str> = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        ["swarmpilot", "restart", svc.name.as_str(), "succeeded"]
    );
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with(&format!(
            "restart {}: force_update 0→1 — succeeded (rule test-restart, alert TestUnhealthy)",
            svc.name
        )),
        "{text}"
    );
    // The dashboard UID was checked at start.
    assert!(grafana
        .requests()
        .iter()
        .any(|s| s.path == format!("/api/dashboards/uid/{DASHBOARD_UID}")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .metric("swarmpilot_grafana_annotations_sent_total")
        .await
        != Some(1.0)
    {
        assert!(
            Instant::now() < deadline,
            "annotation never counted as sent"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn grafana_down_never_blocks_or_fails_an_action() {
    // A port nobody listens on: Grafana is down.
    let url = format!("http://127.0.0.1:{}", free_port());
    let app = spawn_app_with(|s| s.grafana.url = url).await;
    require_docker();
    let svc = TestService::opted_in("grafana_down", 1).await;
    let d = app.fire("TestUnhealthy", &svc.name).await;
    assert_eq!(only(&d)["decision"], "executed", "{d:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while app
        .metric("swarmpilot_grafana_annotations_dropped_total")
        .await
        != Some(1.0)
    {
        assert!(
            Instant::now() < deadline,
            "annotation never counted as dropped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn reload(app: &TestApp) -> reqwest::Response {
    app.client
        .post(format!("{}/-/reload", app.address))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn reload_swaps_rules_atomically_and_keeps_them_when_a_file_is_broken() {
    let app = spawn_app().await;
    let unauthenticated = app
        .client
        .post(format!("{}/-/reload", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    std::fs::write(
        app.rules_dir.join("more.yml"),
        "rules:\n  - name: reload-added\n    match: ['alertname=\"TestReloaded\"']\n    action: restart\n",
    )
    .unwrap();
    let r = reload(&app).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["rules"], 6);
    let d = app.fire("TestReloaded", "no-such-service-xyz").await;
    assert_eq!(only(&d)["rule"], "reload-added");

    std::fs::write(
        app.rules_dir.join("broken.yml"),
        "rules:\n  - name: broken\n    match: ['alertname=\"X\"']\n    action: explode\n",
    )
    .unwrap();
    let r = reload(&app).await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("broken.yml:4:13: unknown action \"explode\""),
        "{error}"
    );
    assert_eq!(
        app.metric("swarmpilot_config_last_reload_successful").await,
        Some(0.0)
    );
    // The previous rules stay in force.
    let d = app
        .fire_fp("TestReloaded", "no-such-service-xyz", "00000000000000aa")
        .await;
    assert_eq!(only(&d)["rule"], "reload-added");
    assert_eq!(app.metric("swarmpilot_rules_loaded").await, Some(6.0));
}

#[tokio::test]
async fn reload_refuses_a_rule_file_over_the_size_limit_and_keeps_the_old_rules() {
    let app = spawn_app().await;
    let before = app.metric("swarmpilot_rules_loaded").await;
    let rule =
        "rules:\n  - name: too-big\n    match: ['alertname=\"TestTooBig\"']\n    action: restart\n";
    let padding = "#".repeat(1024 * 1024 + 1 - rule.len());
    std::fs::write(app.rules_dir.join("big.yml"), format!("{rule}{padding}")).unwrap();

    let r = reload(&app).await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    let expected = format!(
        "{}:1:1: file is 1048577 bytes, more than the limit of 1048576 bytes per rule file; split it into several files",
        app.rules_dir.join("big.yml").display()
    );
    assert!(error.contains(&expected), "{error}");
    assert_eq!(app.metric("swarmpilot_rules_loaded").await, before);
    let d = app.fire("TestTooBig", "no-such-service-xyz").await;
    assert_eq!(only(&d)["decision"], "no_match");
}

/// Write `files` × `per_file` rules (in bound, with regex matchers so that parsing takes a while in a debug
/// build) over several files.
fn write_many_rules(dir: &std::path::Path, files: usize, per_file: usize) {
    for f in 0..files {
        let mut text = String::from("rules:\n");
        for i in 0..per_file {
            let n = f * per_file + i;
            text.push_str(&format!(
                "  - name: load-{n}\n    match:\n      - alertname = \"Load{n}\"\n      - instance =~ \"host-{n}-(a|b|c)[0-9]+\\\\.example\\\\.(com|org)\"\n    action: scale_up\n    step: 2\n    max_replicas: 10\n"
            ));
        }
        std::fs::write(dir.join(format!("load-{f:02}.yml")), text).unwrap();
    }
}

/// A reload used to parse on the HTTP worker that received it: a large rules directory stalled
/// `/-/healthy` for the whole load (two reloads stalled both workers). Now loading runs on the
/// blocking pool and the workers keep answering.
#[tokio::test]
async fn healthy_keeps_answering_while_a_large_reload_runs() {
    let app = spawn_app().await;
    write_many_rules(&app.rules_dir, 12, 500);
    let started = Instant::now();
    let reloads: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (app.client.clone(), format!("{}/-/reload", app.address));
            tokio::spawn(async move { client.post(url).bearer_auth(TOKEN).send().await })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    while !reloads.iter().all(|r| r.is_finished()) {
        let asked = Instant::now();
        let r = app.get("/-/healthy").await;
        assert_eq!(r.status(), 200);
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    for reload in reloads {
        let r = reload.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["rules"], 6005);
    }
    assert!(
        slowest < Duration::from_secs(1) && slowest * 4 < took,
        "/-/healthy took up to {slowest:?} while the reloads took {took:?}"
    );
}
