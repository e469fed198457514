//! `spawn_app()` starts swarmpilot in-process on port 0 against the real Docker engine, through
//! the composition root (`Application::build` with `Dependencies`), as `serve` does; a test edits
//! the real [`Settings`] with `spawn_app_with(|settings| …)`.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarmpilot::act::docker::DockerSwarm;
use swarmpilot::clock::ManualClock;
use swarmpilot::pipeline::Recovery;
use swarmpilot::settings::Settings;
use swarmpilot::startup::{Application, Dependencies};

use super::swarm::require_docker;

/// The bearer token of every test app and process.
pub const TOKEN: &str = "test-token-5f2a";
/// The Grafana token an app is given when a test sets `grafana.url`.
pub const GRAFANA_TOKEN: &str = "glsa_test_0123";

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

/// A stopped app's directory (data_dir, journal, token) and clock, for the next app to reuse.
pub type Stopped = (Arc<tempfile::TempDir>, ManualClock);

/// What a test app needs that is not a setting: rules besides the fixture's, and the directory
/// and clock of an earlier app (a restart).
#[derive(Default)]
pub struct AppSetup {
    extra_rules: String,
    reuse: Option<Stopped>,
    clock: Option<ManualClock>,
}

impl AppSetup {
    /// A second rules file next to the fixture's, for rules that name per-test services.
    pub fn extra_rules(mut self, text: impl Into<String>) -> Self {
        self.extra_rules = text.into();
        self
    }

    /// Start on the data_dir (and journal) and clock of an earlier app.
    pub fn reuse(mut self, stopped: Stopped) -> Self {
        self.reuse = Some(stopped);
        self
    }

    /// Keep the time of `clock` (shared with other apps: replicas of one cluster).
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Build the settings of a test app, let `configure` edit them, and start the app.
    pub async fn spawn(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let shared = self.clock;
        let (dir, clock) = self.reuse.unwrap_or_else(|| {
            let dir = tempfile::tempdir().expect("tempdir");
            (Arc::new(dir), shared.unwrap_or_default())
        });
        let mut settings = test_settings(dir.path(), &self.extra_rules);
        configure(&mut settings);
        if !settings.grafana.url.is_empty() && settings.grafana.token_file.is_empty() {
            let token = dir.path().join("grafana-token");
            std::fs::write(&token, GRAFANA_TOKEN).unwrap();
            settings.grafana.token_file = token.display().to_string();
        }
        start(&settings, dir, clock).await
    }
}

pub async fn spawn_app() -> TestApp {
    require_docker();
    spawn_app_with(|_| {}).await
}

/// As [`spawn_app`] after `configure` edits the settings: `spawn_app_with(|s| s.dry_run = true)`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    AppSetup::default().spawn(configure).await
}

static RULES_DIRS: AtomicUsize = AtomicUsize::new(0);

/// Settings on a fresh rules dir (the fixture's rules and `extra_rules`) in `dir`, with limits a
/// test's own traffic never reaches.
fn test_settings(dir: &std::path::Path, extra_rules: &str) -> Settings {
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let rules_dir = dir.join(format!(
        "rules-{}",
        RULES_DIRS.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::copy(fixture("rules/test.yml"), rules_dir.join("test.yml")).unwrap();
    if !extra_rules.is_empty() {
        std::fs::write(rules_dir.join("extra.yml"), extra_rules).unwrap();
    }
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        rules_dir,
        data_dir: dir.join("data"),
        ..Default::default()
    };
    settings.auth.bearer_token_file = token_file.display().to_string();
    settings.limits.requests_per_second_per_client = 1000;
    settings.limits.actions_per_service_per_hour = 100;
    settings.limits.actions_per_minute = 1000;
    settings
}

async fn start(settings: &Settings, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> TestApp {
    let swarm = DockerSwarm::connect(&settings.docker.host, settings.docker.timeout)
        .expect("docker client")
        .negotiate()
        .await;
    let deps = Dependencies {
        swarm: Arc::new(swarm),
        clock: Arc::new(clock.clone()),
    };
    let app = Application::build(settings, deps)
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

pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

impl TestApp {
    /// Stop this server (as a restart would) and keep its data_dir and clock for the next one.
    pub async fn stop(self) -> Stopped {
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

/// The one decision of a single-rule answer.
pub fn only(decisions: &[Value]) -> &Value {
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    &decisions[0]
}
