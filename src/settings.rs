//! `swarmpilot.toml` plus `SWARMPILOT_*` environment overrides (nested keys joined with `__`),
//! into typed settings. Every key has a default, so an empty file is a valid configuration.

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config: {0}")]
    Load(#[from] config::ConfigError),
    #[error("config: listen = {0:?} is not an address like 127.0.0.1:9095")]
    Listen(String),
    #[error(
        "config: listen = {0} is not loopback and no auth is configured; set auth.bearer_token_file \
         or auth.basic_username + auth.basic_password_file, or auth.allow_unauthenticated = true"
    )]
    Unauthenticated(SocketAddr),
    #[error("config: {what} {path}: {source}")]
    SecretFile {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("config: {what} {path} is empty")]
    EmptySecret { what: &'static str, path: String },
    #[error(
        "config: auth.protect_pages = true needs credentials to check; set auth.bearer_token_file \
         or auth.basic_username + auth.basic_password_file"
    )]
    PagesWithoutAuth,
    #[error("config: auth.basic_username and auth.basic_password_file go together")]
    HalfBasicAuth,
    #[error("config: grafana: {0}")]
    Grafana(String),
    #[error("config: prometheus.url {0:?} is not an http:// or https:// URL")]
    PrometheusUrl(String),
    #[error("config: tls.cert_file and tls.key_file go together{0}")]
    HalfTls(&'static str),
    #[error("config: cluster.register_service = {0:?} is not a valid Swarm service name")]
    RegisterService(String),
    #[error("config: {key} = {value} is out of range: {range}")]
    OutOfRange {
        key: &'static str,
        value: String,
        range: String,
    },
}

/// The shortest duration a timeout may be: zero would disable it (actix-web, reqwest) or fail
/// every call, neither of which an operator means.
const NONZERO: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The range of each duration key. Upper bounds keep every `now + value` far from overflow and
/// are well past any sensible setting: a timeout of a day is already a hang.
fn duration_bounds(s: &Settings) -> [(&'static str, Duration, Duration, Duration); 8] {
    [
        ("docker.timeout", s.docker.timeout, NONZERO, HOUR),
        (
            "docker.retry_for",
            s.docker.retry_for,
            Duration::ZERO,
            30 * DAY,
        ),
        (
            "limits.request_timeout",
            s.limits.request_timeout,
            NONZERO,
            HOUR,
        ),
        ("backup.timeout", s.backup.timeout, NONZERO, 30 * DAY),
        (
            "secrets.prune_interval",
            s.secrets.prune_interval,
            Duration::ZERO,
            30 * DAY,
        ),
        ("secrets.grace", s.secrets.grace, Duration::ZERO, 365 * DAY),
        ("prometheus.timeout", s.prometheus.timeout, NONZERO, HOUR),
        (
            "prometheus.query_timeout",
            s.prometheus.query_timeout,
            NONZERO,
            Duration::from_secs(60),
        ),
    ]
}

/// The largest request body: a notification of thousands of alerts is a few MiB; a bound keeps
/// one request from holding much memory.
pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// The largest per-client rate and action budgets. Budgets keep one timestamp per action in the
/// window, and a rate of N per second spreads over 1 s / N, so both must stay finite and sane.
pub const MAX_RATE: u64 = 100_000;
pub const MAX_BUDGET: u64 = 10_000;

/// The range of each numeric key (0 turns a limit off where the README says so).
fn number_bounds(s: &Settings) -> [(&'static str, u64, u64, u64); 4] {
    let l = &s.limits;
    [
        (
            "limits.max_body_bytes",
            u64::try_from(l.max_body_bytes).unwrap_or(u64::MAX),
            1,
            MAX_BODY_BYTES,
        ),
        (
            "limits.requests_per_second_per_client",
            l.requests_per_second_per_client.into(),
            0,
            MAX_RATE,
        ),
        (
            "limits.actions_per_minute",
            l.actions_per_minute.into(),
            0,
            MAX_BUDGET,
        ),
        (
            "limits.actions_per_service_per_hour",
            l.actions_per_service_per_hour.into(),
            0,
            MAX_BUDGET,
        ),
    ]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address of the HTTP server.
    pub listen: String,
    /// Directory of `*.yml` / `*.yaml` rule files.
    pub rules_dir: PathBuf,
    /// Journal and state.
    pub data_dir: PathBuf,
    /// Decide and record, never mutate.
    pub dry_run: bool,
    /// Only services with `<label>=true` are ever touched.
    pub opt_in_label: String,
    pub auth: AuthSettings,
    pub docker: DockerSettings,
    pub limits: LimitSettings,
    pub backup: BackupSettings,
    pub grafana: GrafanaSettings,
    pub tls: TlsSettings,
    pub secrets: SecretSettings,
    pub prometheus: PrometheusSettings,
    pub cluster: ClusterSettings,
}

/// Several replicas serving one swarm: cooldowns, delivery keys and the per-service budget are
/// claimed on the services themselves (labels set by the acting update, a compare-and-set through
/// Swarm's Raft), and the cluster's budget per minute on a service that runs nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    pub enabled: bool,
    /// The 0-replica service whose labels hold the cluster's budget of actions per minute;
    /// created by the first replica that needs it.
    pub register_service: String,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            register_service: "swarmpilot-register".into(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9095".into(),
            rules_dir: "rules".into(),
            data_dir: "data".into(),
            dry_run: false,
            opt_in_label: "swarmpilot.enable".into(),
            auth: AuthSettings::default(),
            docker: DockerSettings::default(),
            limits: LimitSettings::default(),
            backup: BackupSettings::default(),
            grafana: GrafanaSettings::default(),
            tls: TlsSettings::default(),
            secrets: SecretSettings::default(),
            prometheus: PrometheusSettings::default(),
            cluster: ClusterSettings::default(),
        }
    }
}

/// What Alertmanager's `http_config` sends. Secrets are only read from files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub bearer_token_file: String,
    pub basic_username: String,
    pub basic_password_file: String,
    pub allow_unauthenticated: bool,
    /// `/`, `/api/v1/actions` and `/metrics` need the same credentials as `/webhook`
    /// (`/-/healthy` and `/-/ready` stay open for container health checks).
    pub protect_pages: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSettings {
    /// Empty: `DOCKER_HOST`, else the local socket.
    pub host: String,
    /// Per Docker API call.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// How long an admitted action keeps retrying while Docker is unreachable.
    #[serde(deserialize_with = "duration")]
    pub retry_for: Duration,
}

impl Default for DockerSettings {
    fn default() -> Self {
        Self {
            host: String::new(),
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub requests_per_second_per_client: u32,
    pub actions_per_minute: u32,
    pub actions_per_service_per_hour: u32,
    /// How long a client may take to send a request's head, and again its body; a slower client
    /// gets 408 and its connection is closed.
    #[serde(deserialize_with = "duration")]
    pub request_timeout: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 262_144,
            requests_per_second_per_client: 50,
            actions_per_minute: 30,
            actions_per_service_per_hour: 12,
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1800),
        }
    }
}

/// HTTPS instead of HTTP when `cert_file` and `key_file` are set; with `client_ca_file` every
/// client must also present a certificate signed by that CA (mutual TLS).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM: the server certificate, then its chain.
    pub cert_file: String,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM: the CA(s) client certificates must chain to; empty: no client certificate asked.
    pub client_ca_file: String,
}

impl TlsSettings {
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }

    pub fn verifies_clients(&self) -> bool {
        self.enabled() && !self.client_ca_file.is_empty()
    }
}

/// Annotations are off unless `url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrafanaSettings {
    pub url: String,
    pub token_file: String,
    pub dashboard_uid: String,
    pub tags: Vec<String>,
}

impl Default for GrafanaSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            token_file: String::new(),
            dashboard_uid: String::new(),
            tags: vec!["swarmpilot".into()],
        }
    }
}

/// Versioned Docker secrets made by `swarmpilot secret rotate`, and their pruning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretSettings {
    /// How often `serve` removes unused old versions; `0s` turns the background prune off.
    #[serde(deserialize_with = "duration")]
    pub prune_interval: Duration,
    /// An old version is removed only once no service uses it and it is at least this old, so a
    /// rollback to the previous version stays possible for that long.
    #[serde(deserialize_with = "duration")]
    pub grace: Duration,
}

impl Default for SecretSettings {
    fn default() -> Self {
        Self {
            prune_interval: Duration::from_secs(3600),
            grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// The Prometheus that keeps the monitoring stack's series: `recommend` reads cAdvisor's from
/// here instead of sampling when `url` is set, and target tracking's `query:` rules their value.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusSettings {
    pub url: String,
    /// `recommend`'s range queries over a window (a week of series takes a while).
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// A `query:` rule's instant query, inside the webhook's answer: Alertmanager gives a
    /// notification at least 15 s, and a decision waits for its value.
    #[serde(deserialize_with = "duration")]
    pub query_timeout: Duration,
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(5),
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
}

/// The default config file, used when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "swarmpilot.toml";

impl Settings {
    /// Load from `file` (required when given explicitly) and the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_with_env(file, None)
    }

    /// As [`Settings::load`], with `env` standing in for the process environment when given.
    pub fn load_with_env(
        file: Option<&Path>,
        env: Option<std::collections::HashMap<String, String>>,
    ) -> Result<Self, SettingsError> {
        let (path, required) = match file {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let settings: Settings = config::Config::builder()
            .add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(required),
            )
            .add_source(
                config::Environment::with_prefix("SWARMPILOT")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .source(env),
            )
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The listen address, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, SettingsError> {
        self.listen
            .parse()
            .map_err(|_| SettingsError::Listen(self.listen.clone()))
    }

    fn validate(&self) -> Result<(), SettingsError> {
        self.validate_ranges()?;
        let addr = self.listen_addr()?;
        let register = &self.cluster.register_service;
        if !crate::model::is_valid_service_name(register) {
            return Err(SettingsError::RegisterService(register.clone()));
        }
        let a = &self.auth;
        if a.basic_username.is_empty() != a.basic_password_file.is_empty() {
            return Err(SettingsError::HalfBasicAuth);
        }
        let url = &self.prometheus.url;
        if !url.is_empty()
            && reqwest::Url::parse(url).map_or(true, |u| !u.scheme().starts_with("http"))
        {
            return Err(SettingsError::PrometheusUrl(url.clone()));
        }
        let t = &self.tls;
        if t.cert_file.is_empty() != t.key_file.is_empty() {
            return Err(SettingsError::HalfTls(""));
        }
        if !t.client_ca_file.is_empty() && !t.enabled() {
            return Err(SettingsError::HalfTls(
                "; tls.client_ca_file needs them to serve HTTPS",
            ));
        }
        // A verified client certificate is authentication too.
        let has_auth =
            !a.bearer_token_file.is_empty() || !a.basic_username.is_empty() || t.verifies_clients();
        // Protecting the pages with no credentials would silently protect nothing.
        if a.protect_pages && a.bearer_token_file.is_empty() && a.basic_username.is_empty() {
            return Err(SettingsError::PagesWithoutAuth);
        }
        if !addr.ip().is_loopback() && !has_auth && !a.allow_unauthenticated {
            return Err(SettingsError::Unauthenticated(addr));
        }
        Ok(())
    }
}

impl Settings {
    /// Every duration and number within its range, or an error naming the first key that is not.
    fn validate_ranges(&self) -> Result<(), SettingsError> {
        for (key, value, min, max) in duration_bounds(self) {
            if !(min..=max).contains(&value) {
                return Err(SettingsError::OutOfRange {
                    key,
                    value: show(value),
                    range: format!("from {} to {}", show(min), show(max)),
                });
            }
        }
        for (key, value, min, max) in number_bounds(self) {
            if !(min..=max).contains(&value) {
                return Err(SettingsError::OutOfRange {
                    key,
                    value: value.to_string(),
                    range: format!("from {min} to {max}"),
                });
            }
        }
        Ok(())
    }
}

/// A duration in its largest whole unit ("30d", "1h", "90s"), the way an operator writes it;
/// humantime's own format counts months of 30.44 days.
fn show(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        return humantime::format_duration(d).to_string();
    }
    let unit = [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(size, _)| secs != 0 && secs.is_multiple_of(*size));
    match unit {
        Some((size, suffix)) => format!("{}{suffix}", secs / size),
        None => format!("{secs}s"),
    }
}

/// Read a secret from a file, trimming the trailing newline editors and `docker secret` leave.
pub fn read_secret(what: &'static str, path: &str) -> Result<String, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::SecretFile {
        what,
        path: path.into(),
        source,
    })?;
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(SettingsError::EmptySecret {
            what,
            path: path.into(),
        });
    }
    Ok(secret)
}

#[cfg(test)]
mod tests;
