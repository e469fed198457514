//! The matching cost curve (1 → 10,000 rules), the cost of a 200-alert notification, and the
//! repeat-notification hot path (every alert in cooldown) through the whole pipeline.
//! `cargo bench --bench matching`; `cargo test --benches` runs each once.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use swarmpilot::act::{DockerError, Swarm, SwarmFuture};
use swarmpilot::clock::SystemClock;
use swarmpilot::journal::{Entry, Intent, Journal, Outcome, Replayed};
use swarmpilot::model::{Change, JobTask, ServiceState, ServiceSummary, Stamp, Template};
use swarmpilot::parse::{parse_notification, Notification};
use swarmpilot::pipeline::{ClusterMode, Mode, Pipeline, PipelineSettings, Records};
use swarmpilot::rules::load::parse_rule_file;
use swarmpilot::rules::{Action, RuleSet};

/// `n` rules, each pinned to its own alertname, half with a second (regex) matcher.
fn rules(n: usize) -> RuleSet {
    let mut yaml = String::from("rules:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: rule-{i}\n    match: ['alertname=\"Alert{i}\"'{}]\n    action: scale_up\n    max_replicas: 10\n",
            if i % 2 == 0 { ", 'severity=~\"warning|critical\"'" } else { "" }
        ));
    }
    let (rules, errors) = parse_rule_file(Path::new("bench.yml"), &yaml);
    assert!(errors.is_empty());
    RuleSet::new(rules)
}

/// A notification of `alerts` alerts for `alertname`, one service each.
fn notification(alerts: usize, alertname: &str) -> Notification {
    let alert = |i: usize| {
        format!(
            r#"{{"status":"firing","labels":{{"alertname":"{alertname}","service":"bench_svc{i}","severity":"warning","instance":"10.0.1.{i}:8080","job":"cadvisor","env":"production","team":"platform"}},"annotations":{{"summary":"{alertname} on bench_svc{i}"}},"startsAt":"2026-11-30T09:00:00.000Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph","fingerprint":"{i:016x}"}}"#
        )
    };
    let body = format!(
        r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"{alertname}\"}}","truncatedAlerts":0,"status":"firing","receiver":"swarmpilot","groupLabels":{{}},"commonLabels":{{}},"commonAnnotations":{{}},"externalURL":"http://alertmanager:9093","alerts":[{}]}}"#,
        (0..alerts).map(alert).collect::<Vec<_>>().join(",")
    );
    parse_notification(body.as_bytes()).unwrap()
}

fn matching_cost_curve(c: &mut Criterion) {
    let mut group = c.benchmark_group("match_one_alert");
    for n in [1, 100, 1_000, 10_000] {
        let set = rules(n);
        let note = notification(1, &format!("Alert{}", n / 2));
        let alert = &note.alerts[0];
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(set.matching(black_box(alert)).count()))
        });
    }
    group.finish();
    // What the index saves: the same question answered by visiting every rule.
    let mut group = c.benchmark_group("match_one_alert_full_scan");
    for n in [100, 10_000] {
        let set = rules(n);
        let note = notification(1, &format!("Alert{}", n / 2));
        let alert = &note.alerts[0];
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    set.iter()
                        .filter(|r| r.applies_to(black_box(alert)))
                        .count(),
                )
            })
        });
    }
    group.finish();
}

fn notification_of_200(c: &mut Criterion) {
    let note = notification(200, "Alert50");
    let body = serde_json_body(200);
    let set = rules(100);
    let mut group = c.benchmark_group("notification_200_alerts");
    group.throughput(Throughput::Elements(200));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(parse_notification(black_box(body.as_bytes())).unwrap()))
    });
    group.bench_function("match_100_rules", |b| {
        b.iter(|| {
            note.alerts
                .iter()
                .map(|a| set.matching(a).count())
                .sum::<usize>()
        })
    });
    group.finish();
}

fn serde_json_body(alerts: usize) -> String {
    let note = notification(alerts, "Alert50");
    // Re-serialize what was parsed: the same shape Alertmanager sends.
    let alerts: Vec<serde_json::Value> = note
        .alerts
        .iter()
        .map(|a| {
            serde_json::json!({"status": "firing", "labels": a.labels,
                "annotations": {"summary": "bench"}, "startsAt": a.starts_at,
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint})
        })
        .collect();
    serde_json::json!({"version": "4", "status": "firing", "receiver": "swarmpilot", "alerts": alerts})
        .to_string()
}

/// A swarm that must never be called: the hot path decides from cooldowns alone.
struct Untouched;

impl Swarm for Untouched {
    fn find_service<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<ServiceState>> {
        Box::pin(async { unreachable!("a cooldown decision reads no service") })
    }
    fn apply<'a>(&'a self, _: &'a ServiceState, _: Change, _: &'a Stamp) -> SwarmFuture<'a, ()> {
        Box::pin(async { unreachable!("no write on the hot path") })
    }
    fn restore_template<'a>(
        &'a self,
        _: &'a ServiceState,
        _: &'a Template,
        _: &'a Stamp,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async { unreachable!() })
    }
    fn set_labels<'a>(
        &'a self,
        _: &'a ServiceState,
        _: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async { unreachable!() })
    }
    fn create_register<'a>(&'a self, _: &'a str, _: &'a [(String, String)]) -> SwarmFuture<'a, ()> {
        Box::pin(async { unreachable!() })
    }
    fn save_template<'a>(&'a self, _: &'a str, _: &'a Template) -> SwarmFuture<'a, ()> {
        Box::pin(async { unreachable!() })
    }
    fn saved_templates<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Vec<Template>> {
        Box::pin(async { unreachable!() })
    }
    fn previous_template<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<Template>> {
        Box::pin(async { unreachable!() })
    }
    fn previous_action<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Option<String>> {
        Box::pin(async { unreachable!() })
    }
    fn job_tasks<'a>(&'a self, _: &'a str, _: u64) -> SwarmFuture<'a, Vec<JobTask>> {
        Box::pin(async { unreachable!() })
    }
    fn managed_services<'a>(&'a self, _: &'a str) -> SwarmFuture<'a, Vec<ServiceSummary>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn ping(&self) -> SwarmFuture<'_, ()> {
        Box::pin(async { Err(DockerError::Unreachable("bench".into())) })
    }
}

/// The whole pipeline for a 10-alert notification whose services are all in cooldown (another
/// alert acted), and for the same notification repeated (every alert a duplicate).
fn hot_path_in_cooldown(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let note = notification(10, "Alert50");
    // Cluster mode refuses repeats from the same memory; its only extra is the check that a
    // refused window is not held by an action of its own that has not landed.
    for (name, journal, decision, cluster) in [
        (
            "hot_path_10_alerts_in_cooldown",
            cooldowns_for(10, None),
            "cooldown",
            false,
        ),
        (
            "hot_path_10_alerts_duplicate",
            cooldowns_for(10, Some(&note)),
            "duplicate",
            false,
        ),
        (
            "hot_path_10_alerts_in_cooldown_cluster_mode",
            cooldowns_for(10, None),
            "cooldown",
            true,
        ),
        (
            "hot_path_10_alerts_duplicate_cluster_mode",
            cooldowns_for(10, Some(&note)),
            "duplicate",
            true,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = warm_pipeline(&runtime, dir.path(), journal, cluster);
        c.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let records = pipeline.handle(&note, Mode::Act, false).await.unwrap();
                assert_eq!(records[0].decision.as_str(), decision);
                black_box(records)
            })
        });
    }
}

fn warm_pipeline(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    journal: Replayed,
    cluster: bool,
) -> Arc<Pipeline> {
    runtime.block_on(async {
        let (writer, _) = Journal::open(dir).unwrap();
        let pipeline = Arc::new(Pipeline::new(
            rules(100),
            Arc::new(Untouched),
            Arc::new(SystemClock),
            Records::journal_only(writer),
            PipelineSettings {
                opt_in_label: "swarmpilot.enable".into(),
                retry_for: Duration::from_secs(600),
                admission_read_timeout: Duration::from_secs(2),
                actions_per_minute: 0,
                actions_per_service_per_hour: 0,
                backup_timeout: Duration::from_secs(60),
                cluster: cluster.then(|| ClusterMode {
                    register_service: "bench-register".into(),
                    ack_wait: Duration::from_secs(20),
                }),
                prometheus: None,
            },
        ));
        pipeline.recover(journal).await.unwrap();
        pipeline
    })
}

/// Journal entries saying bench_svc0.. were just scaled, with an hour of cooldown: by an earlier
/// alert, or by the alerts of `same` (which then arrive as duplicates).
fn cooldowns_for(services: usize, same: Option<&Notification>) -> Replayed {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut entries = Vec::new();
    for i in 0..services {
        let id = format!("bench-{i}");
        entries.push(Entry::Intent(Intent {
            id: id.clone(),
            time_ms: now,
            rule: "rule-50".into(),
            alert: "Alert50".into(),
            fingerprint: same.map_or("earlier".into(), |n| n.alerts[i].fingerprint.clone()),
            starts_at: same.map_or("2026-11-30T08:00:00.000Z".into(), |n| {
                n.alerts[i].starts_at.clone()
            }),
            status: "firing".into(),
            service: format!("bench_svc{i}"),
            action: Action::ScaleUp {
                step: 1,
                max_replicas: 10,
            },
            cooldown_ms: 3_600_000,
            change: Some(Change::Replicas { from: 1, to: 2 }),
        }));
        entries.push(Entry::Outcome {
            id,
            time_ms: now,
            outcome: Outcome::Succeeded,
            reason: String::new(),
            change: Some(Change::Replicas { from: 1, to: 2 }),
        });
    }
    Replayed {
        entries,
        skipped: Vec::new(),
    }
}

criterion_group!(
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = matching_cost_curve, notification_of_200, hot_path_in_cooldown
);
criterion_main!(benches);
