//! End to end with a real Alertmanager (Debian's prometheus-alertmanager) on loopback, using the
//! shipped route pointed at the test server: `amtool alert add` → notification → scale on the
//! real swarm, a journal line, a metric and a Grafana annotation. Then two Alertmanager peers in
//! cluster mode, both routing to swarmpilot: one alert gives exactly one action.

#[allow(dead_code)]
mod common;

use common::grafana_standin::Grafana;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An Alertmanager process, stopped when dropped.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped alertmanager.yml with its receiver URL and token file pointed at `receiver`.
fn shipped_config_for(receiver: &str, dir: &Path) -> std::path::PathBuf {
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("alertmanager/alertmanager.yml"),
    )
    .unwrap();
    let config = shipped
        .replace(
            "http://swarmpilot:9095/webhook",
            &format!("{receiver}/webhook"),
        )
        .replace("/run/secrets/swarmpilot_token", token.to_str().unwrap());
    assert_ne!(
        config, shipped,
        "the shipped route was pointed at the test server"
    );
    let path = dir.join("alertmanager.yml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Start Alertmanager; `cluster` is (own gossip port, peer gossip ports), or None for a single one.
async fn start(app: &TestApp, cluster: Option<(u16, &[u16])>) -> Alertmanager {
    start_for(&app.address, cluster).await
}

/// Start Alertmanager delivering to `receiver` (a base URL).
async fn start_for(receiver: &str, cluster: Option<(u16, &[u16])>) -> Alertmanager {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_config_for(receiver, dir.path());
    let port = free_port();
    let mut args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    match cluster {
        None => args.push("--cluster.listen-address=".into()),
        Some((own, peers)) => {
            args.push(format!("--cluster.listen-address=127.0.0.1:{own}"));
            args.push(format!("--cluster.advertise-address=127.0.0.1:{own}"));
            args.extend(
                peers
                    .iter()
                    .map(|p| format!("--cluster.peer=127.0.0.1:{p}")),
            );
            args.extend(
                [
                    "--cluster.peer-timeout=2s",
                    "--cluster.settle-timeout=3s",
                    "--cluster.gossip-interval=100ms",
                ]
                .map(String::from),
            );
        }
    }
    let child = Command::new("prometheus-alertmanager")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager installed (scripts/test.sh installs it)");
    let url = format!("http://127.0.0.1:{port}");
    let am = Alertmanager {
        child,
        url,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{}/-/ready", am.url)).await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    am
}

fn amtool_add(am: &Alertmanager, labels: &[String]) {
    let out = Command::new("amtool")
        .arg("alert")
        .arg("add")
        .args(labels)
        .arg(format!("--alertmanager.url={}", am.url))
        .output()
        .expect("amtool installed");
    assert!(
        out.status.success(),
        "amtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The labels of a ServiceHighCPU alert about `service`.
fn high_cpu(service: &str, severity: &str) -> [String; 3] {
    [
        "alertname=ServiceHighCPU".into(),
        format!("service={service}"),
        format!("severity={severity}"),
    ]
}

fn shipped_scaling_rules() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/scaling.yml"))
        .unwrap()
}

fn intents_for(app: &TestApp, service: &str) -> Vec<serde_json::Value> {
    app.journal()
        .into_iter()
        .filter(|l| l["type"] == "intent" && l["service"] == service)
        .collect()
}

#[tokio::test]
async fn amtool_alert_scales_the_service_with_journal_metric_and_annotation() {
    let (grafana, grafana_url) = Grafana::start();
    let app = AppSetup::default()
        .extra_rules(shipped_scaling_rules())
        .spawn(|s| s.grafana.url = grafana_url)
        .await;
    let svc = TestService::opted_in("am_e2e", 2).await;
    let am = start(&app, None).await;

    amtool_add(&am, &high_cpu(&svc.name, "warning"));
    wait_for(
        || svc.desired_replicas() == 4,
        "Alertmanager's notification scaled 2→4",
    )
    .await;
    svc.wait_running(4).await;

    let intents = intents_for(&app, &svc.name);
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0]["rule"], "scale-up-on-cpu");
    let outcome = app.outcome(intents[0]["id"].as_str().unwrap()).await;
    assert_eq!(outcome["outcome"], "succeeded");
    let series = "swarmpilot_actions_total{action=\"scale_up\",outcome=\"succeeded\"}";
    assert_eq!(app.metric(series).await, Some(1.0));
    let deadline = Instant::now() + Duration::from_secs(10);
    while grafana.annotations().is_empty() {
        assert!(Instant::now() < deadline, "no annotation");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = grafana.annotations()[0].body["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("scale_up {}: replicas 2→4 — succeeded", svc.name)),
        "{text}"
    );
}

#[tokio::test]
async fn two_alertmanager_peers_give_exactly_one_action() {
    let app = AppSetup::default()
        .extra_rules(shipped_scaling_rules())
        .spawn(|_| {})
        .await;
    let svc = TestService::opted_in("am_ha", 2).await;
    let (g1, g2) = (free_port(), free_port());
    let first = start(&app, Some((g1, &[g2]))).await;
    let second = start(&app, Some((g2, &[g1]))).await;

    // Prometheus sends every alert to every Alertmanager of the cluster.
    let labels = high_cpu(&svc.name, "critical");
    amtool_add(&first, &labels);
    amtool_add(&second, &labels);
    wait_for(|| svc.desired_replicas() == 4, "scaled once").await;

    // Long enough for the second peer to deliver too (group_wait + peer timeout, with margin).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let deliveries = app
        .metric("swarmpilot_http_requests_total{method=\"POST\",route=\"/webhook\",status=\"200\"}")
        .await
        .unwrap_or(0.0);
    eprintln!("webhook deliveries from the two peers: {deliveries}");
    assert!(deliveries >= 1.0);
    assert_eq!(
        intents_for(&app, &svc.name).len(),
        1,
        "one action for {deliveries} deliveries"
    );
    assert_eq!(svc.desired_replicas(), 4, "never 6");
}

/// A receiver in front of swarmpilot that answers 503 to the first `failures` deliveries, then
/// forwards each delivery and returns swarmpilot's answer.
struct FlakyReceiver {
    failures_left: AtomicUsize,
    deliveries: AtomicUsize,
    target: String,
    client: reqwest::Client,
}

async fn flaky_webhook(
    req: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<FlakyReceiver>,
) -> actix_web::HttpResponse {
    state.deliveries.fetch_add(1, Ordering::SeqCst);
    let fail = state
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        return actix_web::HttpResponse::ServiceUnavailable().body("injected fault");
    }
    let mut forward = state
        .client
        .post(format!("{}/webhook", state.target))
        .body(body);
    for name in ["authorization", "content-type"] {
        if let Some(value) = req.headers().get(name) {
            forward = forward.header(name, value.as_bytes());
        }
    }
    let answer = forward.send().await.expect("swarmpilot answers");
    let status = answer.status().as_u16();
    let body = answer.bytes().await.unwrap();
    actix_web::HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(body)
}

/// Start the flaky receiver on loopback; its base URL and its state.
fn start_flaky(target: &str, failures: usize) -> (String, actix_web::web::Data<FlakyReceiver>) {
    let state = actix_web::web::Data::new(FlakyReceiver {
        failures_left: AtomicUsize::new(failures),
        deliveries: AtomicUsize::new(0),
        target: target.to_string(),
        client: reqwest::Client::new(),
    });
    let data = state.clone();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(data.clone())
            .route("/webhook", actix_web::web::post().to(flaky_webhook))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), state)
}

#[tokio::test]
async fn a_receiver_failing_four_times_with_503_gives_exactly_one_action_once_it_recovers() {
    let app = AppSetup::default()
        .extra_rules(shipped_scaling_rules())
        .spawn(|_| {})
        .await;
    let svc = TestService::opted_in("am_503", 2).await;
    let (receiver, flaky) = start_flaky(&app.address, 4);
    let am = start_for(&receiver, None).await;

    amtool_add(&am, &high_cpu(&svc.name, "warning"));
    wait_for(
        || svc.desired_replicas() == 4,
        "Alertmanager retried past the 503s and swarmpilot scaled 2→4",
    )
    .await;
    let deliveries = flaky.deliveries.load(Ordering::SeqCst);
    assert!(
        deliveries >= 5,
        "4 failed deliveries, then the one that acted: {deliveries}"
    );
    // Later retries or repeats of this group must not act again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(intents_for(&app, &svc.name).len(), 1, "exactly one action");
    assert_eq!(svc.desired_replicas(), 4);
    eprintln!("503 × 4 then recovery: {deliveries} deliveries, 1 action");
}
