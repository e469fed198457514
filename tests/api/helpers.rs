//! `spawn_app()` starts swarmpilot on port 0 against the real Docker engine; `TestService` creates
//! a uniquely named service on the shared swarm and removes it when dropped.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};
use swarmpilot::act::docker::DockerSwarm;
use swarmpilot::act::Swarm;
use swarmpilot::clock::ManualClock;
use swarmpilot::pipeline::Recovery;
use swarmpilot::settings::Settings;
use swarmpilot::startup::{Application, Dependencies};

pub const TOKEN: &str = "test-token-5f2a";
pub const GRAFANA_TOKEN: &str = "glsa_test_0123";
pub const TEST_IMAGE: &str = "swarmpilot-test/busybox:1";

pub struct TestApp {
    pub address: String,
    pub rules_dir: PathBuf,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub data_dir: PathBuf,
    pub recovery: Recovery,
    handle: actix_web::dev::ServerHandle,
    _dir: Arc<tempfile::TempDir>,
}

#[derive(Clone)]
pub struct AppOptions {
    pub docker_host: String,
    pub max_body_bytes: usize,
    pub requests_per_second_per_client: u32,
    pub actions_per_service_per_hour: u32,
    pub actions_per_minute: u32,
    pub retry_for: Duration,
    /// A second rules file next to the fixture's, for rules that name per-test services.
    pub extra_rules: String,
    pub backup_timeout: Duration,
    /// Grafana base URL (a stand-in server in tests); the token is `GRAFANA_TOKEN`.
    pub grafana_url: String,
    pub dashboard_uid: String,
    /// Reuse a data_dir (and its journal) from an earlier app.
    pub reuse: Option<(Arc<tempfile::TempDir>, ManualClock)>,
    /// `auth.protect_pages`: the operator pages need the token too.
    pub protect_pages: bool,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            docker_host: String::new(),
            max_body_bytes: 262_144,
            requests_per_second_per_client: 1000,
            actions_per_service_per_hour: 100,
            actions_per_minute: 1000,
            retry_for: Duration::from_secs(600),
            extra_rules: String::new(),
            backup_timeout: Duration::from_secs(1800),
            grafana_url: String::new(),
            dashboard_uid: String::new(),
            reuse: None,
            protect_pages: false,
        }
    }
}

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

pub async fn spawn_app() -> TestApp {
    require_docker();
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let (dir, clock) = match options.reuse.clone() {
        Some(reused) => reused,
        None => (
            Arc::new(tempfile::tempdir().expect("tempdir")),
            ManualClock::default(),
        ),
    };
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let rules_dir = dir
        .path()
        .join(format!("rules-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::copy(fixture("rules/test.yml"), rules_dir.join("test.yml")).unwrap();
    if !options.extra_rules.is_empty() {
        std::fs::write(rules_dir.join("extra.yml"), &options.extra_rules).unwrap();
    }
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        rules_dir,
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    settings.auth.bearer_token_file = token_file.display().to_string();
    settings.auth.protect_pages = options.protect_pages;
    settings.limits.max_body_bytes = options.max_body_bytes;
    settings.limits.requests_per_second_per_client = options.requests_per_second_per_client;
    settings.limits.actions_per_service_per_hour = options.actions_per_service_per_hour;
    settings.limits.actions_per_minute = options.actions_per_minute;
    settings.docker.retry_for = options.retry_for;
    settings.backup.timeout = options.backup_timeout;
    if !options.grafana_url.is_empty() {
        let token = dir.path().join("grafana-token");
        std::fs::write(&token, GRAFANA_TOKEN).unwrap();
        settings.grafana.url = options.grafana_url.clone();
        settings.grafana.token_file = token.display().to_string();
        settings.grafana.dashboard_uid = options.dashboard_uid.clone();
    }
    settings.docker.host = options.docker_host.clone();
    let swarm = DockerSwarm::connect(&options.docker_host, Duration::from_secs(10))
        .expect("docker client")
        .negotiate()
        .await;
    let deps = Dependencies {
        swarm: Arc::new(swarm),
        clock: Arc::new(clock.clone()),
    };
    let app = Application::build(&settings, deps)
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let recovery = app.recovery().clone();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        clock,
        data_dir: settings.data_dir.clone(),
        rules_dir: settings.rules_dir.clone(),
        recovery,
        handle,
        _dir: dir,
    }
}

impl TestApp {
    /// Stop this server (as a restart would) and keep its data_dir and clock for the next one.
    pub async fn stop(self) -> (Arc<tempfile::TempDir>, ManualClock) {
        self.handle.stop(true).await;
        (self._dir, self.clock)
    }

    /// GET a path of this server.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// The injected clock as Unix milliseconds.
    pub fn clock_ms(&self) -> u64 {
        use swarmpilot::clock::Clock;
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// The value of one metric line (`name{labels}` exactly as exposed), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
    }

    /// Wait for the outcome line of an action.
    pub async fn outcome(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self
                .journal()
                .into_iter()
                .find(|l| l["id"] == id && l["type"] == "outcome")
            {
                return line;
            }
            assert!(Instant::now() < deadline, "no outcome for {id}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The journal's lines, parsed.
    pub fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.data_dir.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("journal line is JSON"))
            .collect()
    }

    /// POST a JSON body with the right token; the answer waits for outcomes.
    pub async fn post_webhook(&self, body: &Value) -> reqwest::Response {
        self.post_webhook_to("webhook?wait=true", body).await
    }

    pub async fn post_webhook_to(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/{path}", self.address))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POST and return the decisions of a 200 answer.
    pub async fn fire(&self, alertname: &str, service: &str) -> Vec<Value> {
        self.fire_payload(&alert_payload(alertname, service)).await
    }

    /// As [`TestApp::fire`] for a distinct alert (another fingerprint), not a redelivery.
    pub async fn fire_fp(&self, alertname: &str, service: &str, fingerprint: &str) -> Vec<Value> {
        self.fire_payload(&alert_payload_fp(alertname, service, fingerprint))
            .await
    }

    pub async fn fire_payload(&self, payload: &Value) -> Vec<Value> {
        let response = self.post_webhook(payload).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["decisions"].as_array().cloned().unwrap_or_default()
    }
}

/// As [`alert_payload`] with a chosen fingerprint: a distinct alert, not a redelivery.
pub fn alert_payload_fp(alertname: &str, service: &str, fingerprint: &str) -> Value {
    let mut payload = alert_payload(alertname, service);
    payload["alerts"][0]["fingerprint"] = json!(fingerprint);
    payload
}

/// A one-alert firing notification built from the fixture, with a given alertname and service.
pub fn alert_payload(alertname: &str, service: &str) -> Value {
    let text = std::fs::read_to_string(fixture("firing.json")).unwrap();
    let mut payload: Value = serde_json::from_str(&text).unwrap();
    let alert = &mut payload["alerts"][0];
    alert["labels"]["alertname"] = json!(alertname);
    alert["labels"]["service"] = json!(service);
    payload
}

/// Fail loudly, never skip, when there is no engine.
pub fn require_docker() {
    static CHECKED: Once = Once::new();
    CHECKED.call_once(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .output();
        let state = match info {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
            Ok(out) => panic!(
                "Docker engine not reachable ({}): run scripts/test.sh, which installs and starts it",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) => panic!("docker CLI not found ({e}): run scripts/test.sh"),
        };
        assert_eq!(state, "active", "Docker is not in swarm mode: run scripts/setup-swarm.sh");
        let image = docker(&["image", "inspect", "--format", "{{.Id}}", TEST_IMAGE]);
        assert!(image.is_ok(), "test image {TEST_IMAGE} missing: run scripts/setup-swarm.sh");
    });
}

/// Run the docker CLI, an observer independent of swarmpilot's own client.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// A service on the shared swarm with a unique name; removed on drop.
pub struct TestService {
    pub name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestService {
    /// A unique name for a test service.
    pub fn unique_name(tag: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        format!("sptest_{tag}_{}_{n}", std::process::id())
    }

    /// Create a service from raw `docker service create` arguments (name and test label added).
    pub fn from_args(name: &str, args: &[&str]) -> Self {
        create_unguarded(name, args);
        Self {
            name: name.to_string(),
        }
    }

    /// Create a replicated service with extra `--label`s and wait until its tasks run.
    pub async fn create(tag: &str, replicas: u64, labels: &[&str]) -> Self {
        require_docker();
        let name = Self::unique_name(tag);
        let mut args = vec![
            "service".to_string(),
            "create".into(),
            "--detach".into(),
            "--no-resolve-image".into(),
            "--name".into(),
            name.clone(),
            "--replicas".into(),
            replicas.to_string(),
            "--stop-grace-period".into(),
            "1s".into(),
            "--update-parallelism".into(),
            "0".into(),
            "--label".into(),
            "swarmpilot.test=true".into(),
        ];
        for label in labels {
            args.push("--label".into());
            args.push(label.to_string());
        }
        args.push(TEST_IMAGE.into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&argv).unwrap_or_else(|e| panic!("docker service create {name}: {e}"));
        let service = Self { name };
        service.wait_running(replicas).await;
        service
    }

    pub async fn opted_in(tag: &str, replicas: u64) -> Self {
        Self::create(tag, replicas, &["swarmpilot.enable=true"]).await
    }

    pub fn inspect(&self, format: &str) -> String {
        docker(&["service", "inspect", "--format", format, &self.name])
            .unwrap_or_else(|e| panic!("inspect {}: {e}", self.name))
    }

    pub fn desired_replicas(&self) -> u64 {
        self.inspect("{{.Spec.Mode.Replicated.Replicas}}")
            .parse()
            .unwrap()
    }

    pub fn version(&self) -> u64 {
        self.inspect("{{.Version.Index}}").parse().unwrap()
    }

    pub fn update_state(&self) -> String {
        self.inspect("{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}")
    }

    pub fn force_update(&self) -> u64 {
        self.inspect("{{.Spec.TaskTemplate.ForceUpdate}}")
            .parse()
            .unwrap()
    }

    pub fn running_tasks(&self) -> usize {
        docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
            &self.name,
        ])
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("Running"))
        .count()
    }

    /// Poll (no fixed sleeps) until `n` tasks run, with a deadline.
    pub async fn wait_running(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let running = self.running_tasks();
            if running == n as usize {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {running} tasks running, expected {n}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl TestService {
    /// Start an update whose new tasks exit at once, with `--update-failure-action pause`, and
    /// wait until Swarm has paused it (the old task keeps running). `extra` adds update flags.
    pub async fn pause_with_bad_rollout(&self, extra: &[&str]) {
        let mut args = vec![
            "service",
            "update",
            "--detach",
            "--no-resolve-image",
            "--update-failure-action",
            "pause",
            "--update-monitor",
            "5s",
            "--update-parallelism",
            "1",
            "--update-delay",
            "20s",
            "--args",
            "sh -c 'exit 3'",
        ];
        args.extend_from_slice(extra);
        args.push(&self.name);
        docker(&args).expect("start a failing update");
        wait_for(|| self.update_state() == "paused", "bad rollout paused").await;
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `docker service create` with the test label and no registry lookup, for a caller that removes
/// the service itself (a [`TestService`] does it on drop).
pub fn create_unguarded(name: &str, args: &[&str]) {
    require_docker();
    let mut argv = vec![
        "service",
        "create",
        "--detach",
        // No registry here: resolving the image's digest only waits for a timeout.
        "--no-resolve-image",
        "--name",
        name,
        "--label",
        "swarmpilot.test=true",
    ];
    argv.extend_from_slice(args);
    docker(&argv).unwrap_or_else(|e| panic!("docker service create {name}: {e}"));
}

impl Drop for TestService {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.name]);
    }
}

/// The one decision of a single-rule answer.
pub fn only(decisions: &[Value]) -> &Value {
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    &decisions[0]
}

/// Whether the swarm answers through swarmpilot's own client (for tests without the CLI).
pub async fn engine_answers(host: &str) -> bool {
    match DockerSwarm::connect(host, Duration::from_secs(2)) {
        Ok(swarm) => swarm.ping().await.is_ok(),
        Err(_) => false,
    }
}

/// Poll a condition with a deadline instead of sleeping a fixed time.
pub async fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
