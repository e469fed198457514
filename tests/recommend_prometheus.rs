//! `swarmpilot recommend` reading usage from a real Prometheus (Debian's) instead of sampling:
//! the cAdvisor series are written into its storage with `promtool tsdb create-blocks-from
//! openmetrics` (no cAdvisor runs here), for services that really exist on the swarm.

#[allow(dead_code)]
mod common;

use common::command::{swarmpilot_in, text};
use common::prometheus::{unix_now, BackfilledPrometheus};
use common::{free_port, require_docker, TestService, TEST_IMAGE};
use serde_json::Value;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// One task's steady usage: cores and bytes.
struct TaskUsage<'a> {
    service: &'a str,
    task: &'a str,
    cores: f64,
    memory: u64,
}

fn openmetrics(tasks: &[TaskUsage<'_>], now: u64) -> String {
    let times: Vec<u64> = (now - 900..=now).step_by(15).collect();
    let labels = |t: &TaskUsage<'_>| {
        format!(
            "{{container_label_com_docker_swarm_service_name=\"{}\",\
             container_label_com_docker_swarm_task_name=\"{}\",id=\"/docker/{}\"}}",
            t.service, t.task, t.task
        )
    };
    let mut out = String::from("# TYPE container_cpu_usage_seconds counter\n");
    for t in tasks {
        for time in &times {
            let used = t.cores * (time - times[0]) as f64;
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{} {used:.3} {time}",
                labels(t)
            );
        }
    }
    out.push_str("# TYPE container_memory_working_set_bytes gauge\n");
    for t in tasks {
        for time in &times {
            let _ = writeln!(
                out,
                "container_memory_working_set_bytes{} {} {time}",
                labels(t),
                t.memory
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

fn opted_in(tag: &str) -> TestService {
    TestService::opted_in_with(tag, &[], TEST_IMAGE, &[])
}

fn entry<'a>(report: &'a Value, service: &str) -> &'a Value {
    report["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["service"] == service)
        .unwrap_or_else(|| panic!("{service} missing from {report:#}"))
}

#[tokio::test]
async fn recommend_reads_every_tasks_usage_from_prometheus() {
    require_docker();
    let web = opted_in("sp8prom");
    let quiet = opted_in("sp8noseries");
    let prometheus = BackfilledPrometheus::start(&openmetrics(
        &[
            TaskUsage {
                service: &web.name,
                task: &format!("{}.1.task1", web.name),
                cores: 0.2,
                memory: 48 * MIB,
            },
            TaskUsage {
                service: &web.name,
                task: &format!("{}.2.task2", web.name),
                cores: 0.4,
                memory: 64 * MIB,
            },
        ],
        unix_now(),
    ))
    .await;
    let config = prometheus.config();
    let started = Instant::now();
    let out = swarmpilot_in(
        prometheus.dir.path(),
        &[
            "recommend",
            "--config",
            config.to_str().unwrap(),
            "--window",
            "5m",
            "--format",
            "json",
            "--service",
            &web.name,
            "--service",
            &quiet.name,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a 5-minute window is read, not waited for"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(report["source"], "prometheus");
    assert_eq!(report["window_seconds"], 300);

    // Two tasks, half the samples at 0.2 cores / 48 MiB and half at 0.4 / 64 MiB.
    let web = entry(&report, &web.name);
    assert_eq!(web["tasks"], 2, "{web:#}");
    assert!(web["samples"].as_u64().unwrap() >= 2 * 19, "{web:#}");
    assert_eq!(web["cpu"]["p50"], 0.2);
    assert_eq!(web["cpu"]["p95"], 0.4);
    assert_eq!(web["memory_bytes"]["p50"], 48 * MIB);
    assert_eq!(web["memory_bytes"]["p95"], 64 * MIB);
    assert_eq!(web["reservations"]["cpus"], 0.2);
    assert_eq!(web["reservations"]["memory_bytes"], 48 * MIB);
    assert_eq!(web["limits"]["cpus"], 0.5, "p95 0.4 × 1.25");
    assert_eq!(web["limits"]["memory_bytes"], 80 * MIB, "p95 64 MiB × 1.25");
    // T = 0.7 × 0.5 = 0.35 cores per replica: min ⌈2 × 0.2 / 0.35⌉, max ⌈2 × 2 × 0.4 / 0.35⌉.
    assert_eq!(web["replicas"]["min"], 2);
    assert_eq!(web["replicas"]["max"], 5);

    let quiet = entry(&report, &quiet.name);
    assert_eq!(quiet["samples"], 0, "no series, no samples: {quiet:#}");
    assert!(quiet.get("limits").is_none(), "{quiet:#}");
}

#[tokio::test]
async fn an_unreachable_prometheus_is_a_clear_error() {
    require_docker();
    let web = opted_in("sp8promdown");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    std::fs::write(
        dir.path().join("swarmpilot.toml"),
        format!("[prometheus]\nurl = \"{url}\"\ntimeout = \"2s\"\n"),
    )
    .unwrap();
    let out = swarmpilot_in(dir.path(), &["recommend", "--service", &web.name]);
    assert_eq!(out.status.code(), Some(1));
    let message = text(&out.stderr);
    assert!(
        message.starts_with(&format!(
            "swarmpilot: prometheus {url}/api/v1/query_range: "
        )),
        "{message}"
    );

    // Asked for Prometheus without one configured.
    let empty = tempfile::tempdir().unwrap();
    let out = swarmpilot_in(
        empty.path(),
        &[
            "recommend",
            "--source",
            "prometheus",
            "--service",
            &web.name,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "swarmpilot: --source prometheus needs prometheus.url in the config"
    );
}
