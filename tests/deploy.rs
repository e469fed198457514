//! The README's "Deploy on Swarm", followed on this machine's swarm: the shipped stacks, the
//! secrets and node labels as the README creates them, `swarmpilot deploy` in the README's order,
//! every service converged and healthy, Grafana's placeholder token rotated to a real one with
//! `swarmpilot secret rotate`; then an alert added with `amtool` inside the deployed
//! Alertmanager goes through the shipped route to the deployed swarmpilot, which scales the app.
//!
//! What differs from a production deploy, and why (this machine has no registry and a kernel
//! without ESP): swarmpilot's image is the one scripts/build-image.sh builds; Prometheus and
//! Alertmanager are Debian's binaries FROM scratch (scripts/build-monitoring-images.sh, busybox
//! beside them as in the prom/* images); every other image is a stand-in that serves the ports and
//! answers the health checks of the image it replaces (scripts/build-standin-image.sh);
//! `--resolve-image never` (no registry to ask); the overlays are not encrypted and services
//! are reached by DNS round robin with host-mode ports (no IPVS here); node-exporter's
//! root mount is not `rslave` (this machine's / is not a shared mount); every container's DNS
//! forwards to its own loopback (Docker's resolver would ask the host's for an unknown name);
//! the placeholder human receiver points into the overlay.

#[allow(dead_code)]
mod common;

use common::swarm::{desired_replicas_of, docker, remove_stacks, require_docker};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STACKS: [&str; 3] = ["backup", "monitoring", "app"];
const SECRETS: [&str; 4] = [
    "swarmpilot_token",
    "swarmpilot_grafana_token",
    "grafana_admin_password",
    "postgres_password",
];
const STANDIN: &str = "swarmpilot-test/standin:1";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str, env: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .arg(root().join("scripts").join(name))
        .envs(env.iter().copied())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(command: &str) {
    let out = Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stacks and what the README makes for them, gone (a leftover from an interrupted run, or
/// from tests/configs.rs, which deploys the same stack names).
fn clean_up() {
    remove_stacks(&STACKS);
    let versions = docker(&["secret", "ls", "--format", "{{.Name}}"]).unwrap_or_default();
    for secret in versions
        .lines()
        .filter(|s| {
            SECRETS
                .iter()
                .any(|base| s.starts_with(&format!("{base}_")))
        })
        .chain(SECRETS)
    {
        let _ = docker(&["secret", "rm", secret]);
    }
}

/// The repository's stacks, rules and Alertmanager files, adapted to this machine as the module
/// doc says.
fn adapted_copy(dir: &Path) {
    for part in ["stacks", "rules", "alertmanager"] {
        sh(&format!(
            "cp -r '{}' '{}'",
            root().join(part).display(),
            dir.display()
        ));
    }
    for stack in ["app.yml", "monitoring.yml"] {
        let path = dir.join("stacks").join(stack);
        let text = std::fs::read_to_string(&path).unwrap();
        let adapted: String = text
            .lines()
            .filter(|l| !l.contains("encrypted: \"true\""))
            .map(|l| match l {
                // No IPVS: a virtual IP does not route, and neither does the ingress mesh.
                "    deploy:" => "    deploy:\n      endpoint_mode: dnsrr\n".to_string(),
                // Docker's DNS forwards a name it does not know (a service whose task is not up
                // yet) to the host's resolver: point that at the container's own loopback, so
                // nothing leaves this machine.
                _ if l.starts_with("    image: ") => format!("{l}\n    dns: [\"127.0.0.1\"]\n"),
                _ => format!("{}\n", l.replace("mode: ingress", "mode: host")),
            })
            .collect();
        assert_ne!(adapted, text, "{stack}: nothing adapted");
        std::fs::write(&path, adapted).unwrap();
    }
    // node-exporter sees the host's later mounts through rslave propagation, which needs / to be
    // a shared mount (systemd makes it one); this machine's / is private.
    let monitoring = dir.join("stacks/monitoring.yml");
    let text = std::fs::read_to_string(&monitoring).unwrap();
    let adapted = text.replace("/:/host:ro,rslave", "/:/host:ro");
    assert_ne!(adapted, text, "node-exporter's rslave mount");
    std::fs::write(&monitoring, adapted).unwrap();
    let am = dir.join("alertmanager/alertmanager.yml");
    let text = std::fs::read_to_string(&am).unwrap();
    let adapted = text.replace(
        "http://human-notify.invalid/alertmanager",
        "http://grafana:3000/human",
    );
    assert_ne!(adapted, text, "the placeholder human receiver moved");
    std::fs::write(&am, adapted).unwrap();
}

struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        clean_up();
        let node = docker(&["node", "ls", "-q", "--filter", "role=manager"]).unwrap_or_default();
        for id in node.lines() {
            let _ = docker(&[
                "node",
                "update",
                "--label-rm",
                "postgres",
                "--label-rm",
                "backups",
                id,
            ]);
        }
    }
}

/// `amtool alert add` inside the deployed Alertmanager's container, against its own API.
fn add_alert_in_the_deployed_alertmanager() {
    let am = docker(&[
        "ps",
        "-q",
        "--filter",
        "label=com.docker.swarm.service.name=monitoring_alertmanager",
    ])
    .unwrap();
    let am = am.lines().next().expect("the Alertmanager container");
    docker(&[
        "exec",
        am,
        "amtool",
        "--alertmanager.url=http://127.0.0.1:9093",
        "alert",
        "add",
        "ServiceHighCPU",
        "service=app_web",
        "severity=warning",
    ])
    .unwrap_or_else(|e| panic!("amtool alert add: {e}"));
}

/// The last lines a service's tasks wrote, both streams.
fn service_logs(service: &str) -> String {
    let out = Command::new("docker")
        .args(["service", "logs", "--raw", "--tail", "30", service])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_readme_deploy_converges_and_an_alert_through_the_deployed_alertmanager_scales_the_app() {
    require_docker();
    script("build-image.sh", &[("SP_PROFILE", "dev")]);
    let monitoring = script("build-monitoring-images.sh", &[]);
    let image_of = |name: &str| {
        monitoring
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} image in {monitoring:?}"))
            .trim()
            .to_string()
    };
    let (prometheus, alertmanager) = (image_of("prometheus"), image_of("alertmanager"));
    script("build-standin-image.sh", &[]);
    clean_up();
    let _cleanup = Cleanup;

    let dir = tempfile::tempdir().unwrap();
    adapted_copy(dir.path());
    // README step 3, as written.
    for command in [
        "openssl rand -hex 32 | docker secret create swarmpilot_token -",
        "echo placeholder | docker secret create swarmpilot_grafana_token -",
        "openssl rand -hex 16 | docker secret create grafana_admin_password -",
        "openssl rand -hex 16 | docker secret create postgres_password -",
    ] {
        sh(command);
    }
    let node = docker(&["node", "ls", "-q", "--filter", "role=manager"]).unwrap();
    let node = node.lines().next().unwrap();
    sh(&format!(
        "docker node update --label-add postgres=true {node} >/dev/null && docker node update --label-add backups=true {node} >/dev/null"
    ));

    // README step 4, with the images this machine has.
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args([
            "deploy",
            "--resolve-image",
            "never",
            "--deadline",
            "3m",
            "stacks/app.yml",
            "stacks/monitoring.yml",
            "stacks/backup.yml",
        ])
        .current_dir(dir.path())
        .env_remove("DOCKER_HOST")
        .env("SP_IMAGE", "swarmpilot:local")
        .env("APP_IMAGE", STANDIN)
        .env("POSTGRES_IMAGE", STANDIN)
        .env("PROMETHEUS_IMAGE", &prometheus)
        .env("ALERTMANAGER_IMAGE", &alertmanager)
        .env("GRAFANA_IMAGE", STANDIN)
        .env("LOKI_IMAGE", STANDIN)
        .env("PROMTAIL_IMAGE", STANDIN)
        .env("CADVISOR_IMAGE", STANDIN)
        .env("NODE_EXPORTER_IMAGE", STANDIN)
        .env("BACKUP_TOOLS_IMAGE", STANDIN)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "swarmpilot deploy: {said}");
    eprintln!(
        "FIGURE deploy: 3 stacks converged in {:.1?}\n{said}",
        started.elapsed()
    );

    // Every long-running service runs healthy (a health check that never passes would have
    // kept its service from converging; this says which).
    for service in docker(&["service", "ls", "--format", "{{.Name}}"])
        .unwrap()
        .lines()
        .filter(|s| STACKS.iter().any(|st| s.starts_with(&format!("{st}_"))))
    {
        let tasks = docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
            service,
        ])
        .unwrap();
        assert!(
            tasks.lines().all(|t| t.starts_with("Running")),
            "{service}: {tasks}"
        );
    }
    let unhealthy = docker(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--filter",
        "label=com.docker.stack.namespace",
        "--format",
        "{{.Names}}",
    ])
    .unwrap();
    assert!(unhealthy.is_empty(), "unhealthy: {unhealthy}");

    // README step 5: Grafana's real token replaces the placeholder.
    let token = dir.path().join("grafana-token.txt");
    std::fs::write(&token, "glsa_test-token").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args([
            "secret",
            "rotate",
            "swarmpilot_grafana_token",
            "--from-file",
        ])
        .arg(&token)
        .args(["--deadline", "3m"])
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "secret rotate: {said}");
    let mounted = docker(&[
        "service",
        "inspect",
        "--format",
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
        "monitoring_swarmpilot",
    ])
    .unwrap();
    assert!(
        mounted
            .split_whitespace()
            .any(|s| s.starts_with("swarmpilot_grafana_token_")),
        "{mounted}\n{said}"
    );

    // An alert, through the deployed Alertmanager and its shipped route, to the deployed
    // swarmpilot: app_web 2→4 (scale-up-on-cpu, step 2).
    assert_eq!(desired_replicas_of("app_web"), 2);
    // As Prometheus does for a firing alert, the alert is sent again now and then: Alertmanager
    // keeps alerts in memory only, and a restarted task would have forgotten it.
    let fired = Instant::now();
    let mut sent: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while desired_replicas_of("app_web") != 4 {
        if sent.is_none_or(|at| at.elapsed() > Duration::from_secs(30)) {
            add_alert_in_the_deployed_alertmanager();
            sent = Some(Instant::now());
        }
        assert!(
            Instant::now() < deadline,
            "app_web not scaled: {} replicas; tasks:\n{}\nswarmpilot said:\n{}\nAlertmanager said:\n{}",
            desired_replicas_of("app_web"),
            docker(&["service", "ps", "--no-trunc", "--format", "{{.Name}} {{.CurrentState}} {{.Error}}", "monitoring_alertmanager", "monitoring_swarmpilot"]).unwrap_or_default(),
            service_logs("monitoring_swarmpilot"),
            service_logs("monitoring_alertmanager")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "FIGURE deploy: amtool alert add → app_web 2→4 in {:.1?} (group_wait 10 s)",
        fired.elapsed()
    );
}
