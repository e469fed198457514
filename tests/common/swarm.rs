//! The shared swarm as tests see it: the `docker` CLI as an independent observer, and
//! `TestService`, a uniquely named service removed when dropped. Every test service is created by
//! one function, [`create_unguarded`].

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};
use swarmpilot::act::docker::DockerSwarm;
use swarmpilot::act::Swarm;

pub const TEST_IMAGE: &str = "swarmpilot-test/busybox:1";

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

/// Whether the swarm answers through swarmpilot's own client (for tests without the CLI).
pub async fn engine_answers(host: &str) -> bool {
    match DockerSwarm::connect(host, Duration::from_secs(2)) {
        Ok(swarm) => swarm.ping().await.is_ok(),
        Err(_) => false,
    }
}

/// `docker service create` with the test label and no registry lookup, for a caller that removes
/// the service itself (a [`TestService`] does it on drop). The one place test services are made.
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

/// A service on the shared swarm with a unique name; removed on drop.
pub struct TestService {
    pub name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestService {
    /// A name no other test (of this process or another) uses: `sptest_<tag>_<pid>_<n>`.
    pub fn unique_name(tag: &str) -> String {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        format!("sptest_{tag}_{}_{n}", std::process::id())
    }

    /// Create a uniquely named service from raw `docker service create` arguments (image last),
    /// without waiting for its tasks.
    pub fn from_args(tag: &str, args: &[&str]) -> Self {
        Self::named(&Self::unique_name(tag), args)
    }

    /// As [`TestService::from_args`] with a chosen name (already unique), when the order of
    /// names matters.
    pub fn named(name: &str, args: &[&str]) -> Self {
        create_unguarded(name, args);
        Self {
            name: name.to_string(),
        }
    }

    /// An opted-in service (`swarmpilot.enable=true`, 1 s stop grace) of `image` with `extra`
    /// flags before it and `command` after it, without waiting for its tasks.
    pub fn opted_in_with(tag: &str, extra: &[&str], image: &str, command: &[&str]) -> Self {
        let mut args = vec![
            "--label",
            "swarmpilot.enable=true",
            "--stop-grace-period",
            "1s",
        ];
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(command);
        Self::from_args(tag, &args)
    }

    /// Create a replicated service of the test image with extra `--label`s and wait until its
    /// tasks run.
    pub async fn create(tag: &str, replicas: u64, labels: &[&str]) -> Self {
        let replicas_arg = replicas.to_string();
        let mut args = vec![
            "--replicas",
            &replicas_arg,
            "--stop-grace-period",
            "1s",
            "--update-parallelism",
            "0",
        ];
        for label in labels {
            args.extend(["--label", label]);
        }
        args.push(TEST_IMAGE);
        let service = Self::from_args(tag, &args);
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

    /// Roll the service onto `image` and wait until the update completed.
    pub async fn roll_out(&self, image: &str) {
        docker(&[
            "service",
            "update",
            "--detach",
            "--no-resolve-image",
            "--image",
            image,
            &self.name,
        ])
        .unwrap();
        super::wait_for(
            || self.update_state() == "completed",
            "the update rolled out",
        )
        .await;
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
        super::wait_for(|| self.update_state() == "paused", "bad rollout paused").await;
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        let _ = docker(&["service", "rm", &self.name]);
    }
}

/// Remove stacks and wait until their services, networks and volumes are gone (a volume is free
/// once its container is): what a test deploys under a stack's fixed name, or an interrupted
/// run left. Volumes too, since a journal or an Alertmanager notification log from an earlier
/// run would answer a new run's alert as already handled.
pub fn remove_stacks(names: &[&str]) {
    let _ = docker(&[&["stack", "rm"], names].concat());
    let deadline = Instant::now() + Duration::from_secs(120);
    for name in names {
        let label = format!("label=com.docker.stack.namespace={name}");
        loop {
            let left = docker(&["service", "ls", "-q", "--filter", &label]).unwrap_or_default();
            let nets = docker(&["network", "ls", "-q", "--filter", &label]).unwrap_or_default();
            let volumes = docker(&["volume", "ls", "-q", "--filter", &label]).unwrap_or_default();
            if left.is_empty() && nets.is_empty() && volumes.is_empty() {
                break;
            }
            for volume in volumes.lines() {
                let _ = docker(&["volume", "rm", volume]);
            }
            assert!(
                Instant::now() < deadline,
                "stack {name} not removed: {left} {nets} {volumes}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A service's desired replicas, 0 when it cannot be read.
pub fn desired_replicas_of(service: &str) -> u64 {
    docker(&[
        "service",
        "inspect",
        "--format",
        "{{.Spec.Mode.Replicated.Replicas}}",
        service,
    ])
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(0)
}
