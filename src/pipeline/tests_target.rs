//! Target tracking through the pipeline over the in-memory swarm: what only the fake can force
//! (a replica count that moves between admission and the worker's read, a restart with a
//! journal) and what must not touch Docker at all (a bad value). The real engine and HTTP are
//! `tests/api/target.rs`.

use super::tests::{FakeSwarm, ENABLED};
use super::*;
use crate::clock::ManualClock;
use crate::journal::{Journal, Replayed};
use crate::parse::{AlertStatus, LabelSet};
use crate::rules::load::parse_rule_file;
use std::path::Path;
use std::time::Duration;

const RULES: &str = r#"
rules:
  - name: cpu-target
    match: ['alertname="CPUOffTarget"']
    action: scale_to_target
    target: 0.6
    value_from: annotation:value
    max_replicas: 20
    cooldown: 1m
"#;

struct Harness {
    pipeline: Arc<Pipeline>,
    dir: tempfile::TempDir,
}

fn pipeline(swarm: Arc<FakeSwarm>, clock: &ManualClock) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    Harness {
        pipeline: start(swarm, clock, dir.path()).0,
        dir,
    }
}

/// A pipeline on the journal in `dir`, and what the journal held.
fn start(swarm: Arc<FakeSwarm>, clock: &ManualClock, dir: &Path) -> (Arc<Pipeline>, Replayed) {
    let (rules, errors) = parse_rule_file(Path::new("t.yml"), RULES);
    assert!(errors.is_empty(), "{errors:?}");
    let (journal, replayed) = Journal::open(dir).unwrap();
    let pipeline = Pipeline::new(
        RuleSet::new(rules),
        swarm,
        Arc::new(clock.clone()),
        Records::journal_only(journal),
        super::tests::settings(),
    );
    (Arc::new(pipeline), replayed)
}

/// A CPUOffTarget alert for `service` whose `value` annotation is `value` (absent: `None`).
fn alert(service: &str, fingerprint: &str, value: Option<&str>) -> Notification {
    let mut labels = LabelSet::new();
    labels.insert("alertname".into(), "CPUOffTarget".into());
    labels.insert("service".into(), service.into());
    let mut annotations = LabelSet::new();
    if let Some(value) = value {
        annotations.insert("value".into(), value.into());
    }
    Notification {
        alerts: vec![Alert {
            status: AlertStatus::Firing,
            labels,
            annotations,
            fingerprint: fingerprint.into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn one(p: &Arc<Pipeline>, notification: &Notification, mode: Mode) -> DecisionRecord {
    let mut records = p.handle(notification, mode, true).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    records.remove(0)
}

#[tokio::test]
async fn a_bad_value_is_refused_before_docker_is_asked() {
    let swarm = Arc::new(FakeSwarm::with("web", 4, ENABLED));
    let h = pipeline(swarm.clone(), &ManualClock::default());
    for (n, value) in [None, Some("NaN"), Some("-1"), Some("+Inf"), Some("lots")]
        .into_iter()
        .enumerate()
    {
        let record = one(
            &h.pipeline,
            &alert("web", &format!("f{n}"), value),
            Mode::Act,
        )
        .await;
        assert_eq!(record.decision, Decision::Refused, "{value:?}: {record:?}");
        assert_eq!(record.change, None);
    }
    assert_eq!(swarm.reads.lock().unwrap().1, 0, "no read for a bad value");
    assert!(swarm.updates.lock().unwrap().is_empty());
    assert!(
        h.pipeline.journal_lines(&h.dir).is_empty(),
        "nothing journaled"
    );
}

#[tokio::test]
async fn one_update_to_the_count_with_the_reason_and_the_reading_journaled() {
    let swarm = Arc::new(FakeSwarm::with("web", 4, ENABLED));
    let h = pipeline(swarm.clone(), &ManualClock::default());
    let record = one(&h.pipeline, &alert("web", "f1", Some("1.05")), Mode::Act).await;
    assert_eq!(record.decision, Decision::Executed, "{record:?}");
    assert_eq!(record.action, Some("scale_to_target"));
    assert_eq!(record.change.as_deref(), Some("replicas 4→7"));
    assert_eq!(
        record.reason,
        "value 1.05 vs target 0.6 (×1.75), tolerance 0.1"
    );
    assert_eq!(
        *swarm.updates.lock().unwrap(),
        vec![Change::Replicas { from: 4, to: 7 }]
    );
    let lines = h.pipeline.journal_lines(&h.dir);
    let intent = &lines[0];
    assert_eq!(intent["action"]["kind"], "scale_to_target");
    assert_eq!(intent["action"]["reading"]["value"], 1.05);
    assert_eq!(intent["action"]["reading"]["replicas"], 4);
    assert_eq!(intent["change"]["to"], 7);
}

/// Between admission's read (4) and the worker's (someone else made it 5), the value's load is
/// kept: the update goes from 5, to the same 7 — never from a stale 4, never compounded to 9.
#[tokio::test]
async fn the_worker_recomputes_on_its_fresh_read_from_the_count_it_finds() {
    let swarm = Arc::new(FakeSwarm::with("web", 4, ENABLED));
    *swarm.out_of_sequence.lock().unwrap() = 1;
    let h = pipeline(swarm.clone(), &ManualClock::default());
    let record = one(&h.pipeline, &alert("web", "f1", Some("1.05")), Mode::Act).await;
    assert_eq!(record.decision, Decision::Executed, "{record:?}");
    assert_eq!(record.change.as_deref(), Some("replicas 5→7"));
    assert_eq!(
        record.reason,
        "value 1.05 at 4 replicas (0.84 now) vs target 0.6 (×1.4), tolerance 0.1"
    );
    assert_eq!(
        *swarm.updates.lock().unwrap(),
        vec![Change::Replicas { from: 5, to: 7 }]
    );
    let target = h
        .pipeline
        .journal_lines(&h.dir)
        .into_iter()
        .find(|l| l["type"] == "target")
        .expect("the recomputed target is journaled before it is sent");
    assert_eq!(target["change"]["from"], 5);
}

#[tokio::test]
async fn a_dry_run_leaves_no_recommendation_behind() {
    let swarm = Arc::new(FakeSwarm::with("web", 6, ENABLED));
    let clock = ManualClock::default();
    let h = pipeline(swarm.clone(), &clock);
    // A dry run at load ×3 would want 18; it must not hold the real scale-down that follows.
    let dry = one(&h.pipeline, &alert("web", "f1", Some("1.8")), Mode::DryRun).await;
    assert_eq!(dry.decision, Decision::DryRun);
    assert_eq!(dry.change.as_deref(), Some("replicas 6→12"));
    assert!(
        dry.reason
            .starts_with("would scale_to_target web: value 1.8"),
        "{}",
        dry.reason
    );
    let down = one(&h.pipeline, &alert("web", "f2", Some("0.2")), Mode::Act).await;
    assert_eq!(down.change.as_deref(), Some("replicas 6→2"), "{down:?}");
}

/// A restart within the window of a scale-up must not let the next dip remove what it added:
/// the journaled action is a recommendation again.
#[tokio::test]
async fn a_restart_keeps_the_window_of_a_landed_scale_up() {
    let swarm = Arc::new(FakeSwarm::with("web", 2, ENABLED));
    let clock = ManualClock::default();
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = start(swarm.clone(), &clock, dir.path());
    let up = one(&first, &alert("web", "f1", Some("1.8")), Mode::Act).await;
    assert_eq!(up.change.as_deref(), Some("replicas 2→6"));
    drop(first);

    clock.advance(Duration::from_secs(120));
    let (second, replayed) = start(swarm.clone(), &clock, dir.path());
    second.recover(replayed).await.unwrap();
    let held = one(&second, &alert("web", "f2", Some("0.2")), Mode::Act).await;
    assert_eq!(held.decision, Decision::NoChange, "{held:?}");
    assert!(
        held.reason
            .ends_with("but 6 was recommended within scale_down_stabilization 5m: 6 replicas stay"),
        "{}",
        held.reason
    );
    // Once the window is over the drop goes through.
    clock.advance(Duration::from_secs(181));
    let down = one(&second, &alert("web", "f3", Some("0.2")), Mode::Act).await;
    assert_eq!(down.change.as_deref(), Some("replicas 6→2"), "{down:?}");
    assert_eq!(swarm.replicas("web"), 2);
}

impl Pipeline {
    /// The journal's lines as JSON (tests).
    fn journal_lines(&self, dir: &tempfile::TempDir) -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.path().join(crate::journal::JOURNAL_FILE))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
