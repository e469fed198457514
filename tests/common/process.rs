//! The real binary as a child process: started from a generated config, reached over loopback,
//! killed with SIGKILL when dropped, and measured (RSS) through /proc.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::app::TOKEN;
use super::net::free_port;

/// A swarmpilot process, killed (SIGKILL) when dropped.
pub struct Process {
    pub child: Child,
    pub address: String,
    pub port: u16,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB, as the kernel counts it.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Whether the process has exited (reaped).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
}

/// A data directory and token that outlive the processes started on them.
pub struct Instance {
    pub dir: tempfile::TempDir,
}

impl Default for Instance {
    fn default() -> Self {
        Self::new()
    }
}

impl Instance {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), TOKEN).unwrap();
        Self { dir }
    }

    /// Where every process started on this instance writes its log (appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("swarmpilot.log")
    }

    fn log_file(&self) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.dir.path().join("data/journal.jsonl")
    }

    pub fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.journal_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The shipped test rules (tests/fixtures/rules).
    pub fn test_rules() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules")
    }

    /// Start the binary with a config pointing Docker at `docker_host`.
    pub async fn start(&self, docker_host: &str) -> Process {
        self.start_with(docker_host, &Self::test_rules(), &[]).await
    }

    pub async fn start_with_rules(&self, docker_host: &str, rules: &Path) -> Process {
        self.start_with(docker_host, rules, &[]).await
    }

    /// Start with extra config: `(section, "key = value")`, `""` for top-level keys.
    pub async fn start_with(
        &self,
        docker_host: &str,
        rules: &Path,
        extra: &[(&str, &str)],
    ) -> Process {
        let mut process = self.spawn(docker_host, rules, extra);
        wait_healthy(&mut process, self).await;
        process
    }

    /// Start with `[tls]` lines; ready once the port accepts connections.
    pub async fn start_tls(&self, extra: &[(&str, &str)]) -> Process {
        let process = self.spawn("", &Self::test_rules(), extra);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", process.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "swarmpilot did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        process
    }

    /// `swarmpilot check` on a config with `extra`.
    pub fn check(&self, extra: &[(&str, &str)]) -> std::process::Output {
        let config = self.write_config(free_port(), "", &Self::test_rules(), extra);
        Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
            .args(["check", "--config", config.to_str().unwrap()])
            .output()
            .expect("swarmpilot check runs")
    }

    /// As [`Instance::start`] with extra environment variables for the process (`DOCKER_HOST`).
    pub async fn start_with_env(&self, docker_host: &str, env: &[(&str, &str)]) -> Process {
        let mut process = self.spawn_with_env(docker_host, &Self::test_rules(), &[], env);
        wait_healthy(&mut process, self).await;
        process
    }

    /// Start the binary without waiting for it.
    pub fn spawn(&self, docker_host: &str, rules: &Path, extra: &[(&str, &str)]) -> Process {
        self.spawn_with_env(docker_host, rules, extra, &[])
    }

    fn spawn_with_env(
        &self,
        docker_host: &str,
        rules: &Path,
        extra: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Process {
        let port = free_port();
        let config = self.write_config(port, docker_host, rules, extra);
        let child = Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
            .args(["serve", "--config", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(self.log_file())
            .spawn()
            .expect("swarmpilot starts");
        Process {
            child,
            address: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    fn write_config(
        &self,
        port: u16,
        docker_host: &str,
        rules: &Path,
        extra: &[(&str, &str)],
    ) -> PathBuf {
        let mut sections: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        sections.entry("").or_default().extend([
            format!("listen = \"127.0.0.1:{port}\""),
            format!("rules_dir = {rules:?}"),
            format!("data_dir = {:?}", self.dir.path().join("data")),
        ]);
        sections.entry("auth").or_default().push(format!(
            "bearer_token_file = {:?}",
            self.dir.path().join("token")
        ));
        sections
            .entry("docker")
            .or_default()
            .push(format!("host = {docker_host:?}"));
        for (section, line) in extra {
            sections.entry(section).or_default().push(line.to_string());
        }
        let mut text = String::new();
        for (section, lines) in &sections {
            if !section.is_empty() {
                text.push_str(&format!("[{section}]\n"));
            }
            for line in lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        let path = self.dir.path().join("swarmpilot.toml");
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// Wait for `/-/healthy`; a process that exits or never answers fails with its log.
async fn wait_healthy(process: &mut Process, instance: &Instance) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{}/-/healthy", process.address))
        .send()
        .await
        .is_err()
    {
        let log = || std::fs::read_to_string(instance.log_path()).unwrap_or_default();
        assert!(!process.exited(), "swarmpilot exited at start:\n{}", log());
        assert!(
            Instant::now() < deadline,
            "swarmpilot did not come up:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Limits that never refuse a test's own traffic.
pub const UNTHROTTLED: &[(&str, &str)] = &[("limits", "requests_per_second_per_client = 0")];

/// Wait until every intent in `instance`'s journal has exactly one outcome.
pub async fn wait_until_every_intent_finished(instance: &Instance, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let open = unbalanced_intents(&instance.journal());
        if open.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "unfinished after {within:?}: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Intents and outcomes of the journal by action id: every intent must end with exactly one outcome.
pub fn unbalanced_intents(journal: &[Value]) -> Vec<String> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in journal {
        let Some(id) = line["id"].as_str() else {
            continue;
        };
        let entry = counts.entry(id.to_string()).or_default();
        match line["type"].as_str() {
            Some("intent") => entry.0 += 1,
            Some("outcome") => entry.1 += 1,
            _ => {}
        }
    }
    counts
        .into_iter()
        .filter(|(_, (intents, outcomes))| *intents != 1 || *outcomes != 1)
        .map(|(id, (i, o))| format!("{id}: {i} intents, {o} outcomes"))
        .collect()
}
