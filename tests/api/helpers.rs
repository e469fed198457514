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
use swarmpilot::receive::{Application, Dependencies};
use swarmpilot::settings::Settings;

pub const TOKEN: &str = "test-token-5f2a";
pub const TEST_IMAGE: &str = "swarmpilot-test/busybox:1";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    _dir: tempfile::TempDir,
}

pub struct AppOptions {
    pub docker_host: String,
    pub max_body_bytes: usize,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            docker_host: String::new(),
            max_body_bytes: 262_144,
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
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        rules_dir: fixture("rules"),
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    settings.auth.bearer_token_file = token_file.display().to_string();
    settings.limits.max_body_bytes = options.max_body_bytes;
    settings.docker.host = options.docker_host.clone();
    let swarm = DockerSwarm::connect(&options.docker_host, Duration::from_secs(10))
        .expect("docker client")
        .negotiate()
        .await;
    let clock = ManualClock::default();
    let deps = Dependencies {
        swarm: Arc::new(swarm),
        clock: Arc::new(clock.clone()),
    };
    let app = Application::build(&settings, deps).expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::new(),
        clock,
        _dir: dir,
    }
}

impl TestApp {
    /// POST a JSON body with the right token.
    pub async fn post_webhook(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/webhook", self.address))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POST and return the decisions of a 200 answer.
    pub async fn fire(&self, alertname: &str, service: &str) -> Vec<Value> {
        let response = self.post_webhook(&alert_payload(alertname, service)).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["decisions"].as_array().cloned().unwrap_or_default()
    }
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
    /// Create a replicated service with extra `--label`s and wait until its tasks run.
    pub async fn create(tag: &str, replicas: u64, labels: &[&str]) -> Self {
        require_docker();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("sptest_{tag}_{}_{n}", std::process::id());
        let mut args = vec![
            "service".to_string(),
            "create".into(),
            "--detach".into(),
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

    fn inspect(&self, format: &str) -> String {
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
