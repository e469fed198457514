//! A real Prometheus (Debian's) on loopback whose storage holds series written by the test with
//! `promtool tsdb create-blocks-from openmetrics`: no exporter runs, and what a query sees is
//! exactly what the test wrote.

use super::command::text;
use super::free_port;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Killed on drop.
pub struct BackfilledPrometheus {
    child: Child,
    pub url: String,
    pub dir: tempfile::TempDir,
}

impl BackfilledPrometheus {
    /// A Prometheus whose storage holds `openmetrics` (OpenMetrics text, ending in `# EOF`).
    pub async fn start(openmetrics: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("series.om");
        std::fs::write(&metrics, openmetrics).unwrap();
        let data = dir.path().join("data");
        run_ok(
            Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&metrics)
                .arg(&data),
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian's `prometheus` package; scripts/test.sh installs it)");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = format!("{}/-/ready", self.url);
        while Instant::now() < deadline {
            if reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("prometheus at {} not ready within 30 s", self.url);
    }

    /// A config file pointing `prometheus.url` here.
    pub fn config(&self) -> PathBuf {
        let path = self.dir.path().join("swarmpilot.toml");
        std::fs::write(&path, format!("[prometheus]\nurl = \"{}\"\n", self.url)).unwrap();
        path
    }
}

impl Drop for BackfilledPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gauge's samples every 15 s over the last 15 minutes, each `(labels, value)` one series
/// (`labels` as written inside the braces), in OpenMetrics text.
pub fn gauge_openmetrics(name: &str, series: &[(&str, &str)]) -> String {
    let now = unix_now();
    let mut out = format!("# TYPE {name} gauge\n");
    for (labels, value) in series {
        for time in (now - 900..=now).step_by(15) {
            out.push_str(&format!("{name}{{{labels}}} {value} {time}\n"));
        }
    }
    out.push_str("# EOF\n");
    out
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn run_ok(command: &mut Command) {
    let out = command.output().expect("runs");
    assert!(out.status.success(), "{command:?}: {}", text(&out.stderr));
}
