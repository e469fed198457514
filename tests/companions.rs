//! The companion commands as a user runs them — the real binary against the real swarm:
//! `recommend` measures known loads, `secret rotate` / `prune` move real services to a new secret
//! (and back when they cannot converge), `deploy` deploys stack files and names what did not
//! converge. Every service, secret and stack is uniquely named and removed at the end.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{require_docker, TestService, TEST_IMAGE};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// Run the binary in an empty directory (so no `swarmpilot.toml` is picked up).
fn swarmpilot(args: &[&str]) -> Output {
    swarmpilot_in(&std::env::temp_dir(), args)
}

fn swarmpilot_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("swarmpilot runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------- recommend

/// An opted-in service running `script` with extra `docker service create` flags.
async fn opted_in_running(tag: &str, flags: &[&str], script: Option<&str>) -> TestService {
    let name = TestService::unique_name(tag);
    let mut args = vec![
        "--label",
        "swarmpilot.enable=true",
        "--stop-grace-period",
        "1s",
    ];
    args.extend_from_slice(flags);
    args.push(TEST_IMAGE);
    if let Some(script) = script {
        args.extend_from_slice(&["sh", "-c", script]);
    }
    let service = TestService::from_args(&name, &args);
    service.wait_running(1).await;
    service
}

fn recommendation<'a>(report: &'a Value, service: &str) -> &'a Value {
    report["services"]
        .as_array()
        .expect("services array")
        .iter()
        .find(|s| s["service"] == service)
        .unwrap_or_else(|| panic!("{service} missing from {report:#}"))
}

#[tokio::test]
async fn recommend_measures_a_cpu_burner_at_its_limit_and_an_idle_service_near_zero() {
    let burner = opted_in_running(
        "sp8burn",
        &["--limit-cpu", "0.5"],
        Some("while :; do :; done"),
    )
    .await;
    let idle = opted_in_running("sp8idle", &[], None).await;

    let out = swarmpilot(&[
        "recommend",
        "--window",
        "6s",
        "--format",
        "json",
        "--service",
        &burner.name,
        "--service",
        &idle.name,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    eprintln!("{report:#}");
    assert_eq!(report["services"].as_array().unwrap().len(), 2);

    let busy = recommendation(&report, &burner.name);
    assert_eq!(busy["tasks"], 1);
    assert!(busy["samples"].as_u64().unwrap() >= 3, "{busy}");
    let p95 = busy["cpu"]["p95"].as_f64().unwrap();
    assert!(
        (0.4..=0.6).contains(&p95),
        "burner p95 CPU {p95}, expected ≈ 0.5"
    );
    // Limit = p95 × 1.25 rounded up to 0.05: 0.55 to 0.75 for p95 in 0.4..0.6.
    let limit = busy["limits"]["cpus"].as_f64().unwrap();
    assert!((0.5..=0.75).contains(&limit), "burner CPU limit {limit}");
    assert_eq!(busy["throttled"], true, "p95 at --limit-cpu 0.5 is flagged");

    let calm = recommendation(&report, &idle.name);
    let p95 = calm["cpu"]["p95"].as_f64().unwrap();
    assert!(p95 < 0.05, "idle p95 CPU {p95}, expected ≈ 0");
    assert_eq!(calm["reservations"]["cpus"], 0.05, "floor");
    assert_eq!(calm["limits"]["cpus"], 0.1, "floor");
    assert_eq!(calm["limits"]["memory_bytes"], 32 * 1024 * 1024, "floor");
    assert_eq!(calm["replicas"]["min"], 1);
}

#[tokio::test]
async fn recommend_prints_a_compose_deploy_block() {
    let idle = opted_in_running("sp8cmp", &[], None).await;
    let out = swarmpilot(&[
        "recommend",
        "--window",
        "3s",
        "--format",
        "compose",
        "--service",
        &idle.name,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let expected = format!("services:\n  {0}:  # {0}: 1 task(s), ", idle.name);
    assert!(yaml.starts_with(&expected), "{yaml}");
    assert!(
        yaml.contains(
            "    deploy:\n      resources:\n        limits: {cpus: '0.10', memory: 32M}\n        \
             reservations: {cpus: '0.05', memory: 16M}\n"
        ),
        "{yaml}"
    );
}

#[tokio::test]
async fn recommend_refuses_a_service_that_is_not_opted_in() {
    require_docker();
    let name = TestService::unique_name("sp8plain");
    let plain = TestService::from_args(&name, &[TEST_IMAGE]);
    let out = swarmpilot(&["recommend", "--window", "1s", "--service", &plain.name]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        format!("swarmpilot: no service named \"{name}\" carries swarmpilot.enable=true")
    );
}
