use super::*;
use crate::rules::Action;

fn intent(id: &str) -> Entry {
    Entry::Intent(Intent {
        id: id.into(),
        time_ms: 1,
        rule: "r".into(),
        alert: "A".into(),
        fingerprint: "f".into(),
        starts_at: "s".into(),
        status: "firing".into(),
        service: "web".into(),
        action: Action::ScaleUp {
            step: 2,
            max_replicas: 10,
        },
        cooldown_ms: 300_000,
        change: Some(Change::Replicas { from: 2, to: 4 }),
    })
}

fn outcome(id: &str) -> Entry {
    Entry::Outcome {
        id: id.into(),
        time_ms: 2,
        outcome: Outcome::Succeeded,
        reason: String::new(),
        change: Some(Change::Replicas { from: 2, to: 4 }),
    }
}

#[tokio::test]
async fn appends_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, replayed) = Journal::open(dir.path()).unwrap();
        assert!(replayed.entries.is_empty());
        journal.append(&[intent("a")]).await.unwrap();
        journal.append(&[outcome("a")]).await.unwrap();
    }
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    assert_eq!(replayed.entries, vec![intent("a"), outcome("a")]);
}

#[tokio::test]
async fn torn_last_line_is_cut_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    let mut text = serde_json::to_string(&intent("a")).unwrap();
    text.push('\n');
    text.push_str(r#"{"type":"outcome","id":"a","ti"#);
    std::fs::write(&path, text).unwrap();
    let (journal, replayed) = Journal::open(dir.path()).unwrap();
    assert_eq!(replayed.entries, vec![intent("a")]);
    assert_eq!(replayed.skipped.len(), 1, "{:?}", replayed.skipped);
    journal.append(&[outcome("a")]).await.unwrap();
    drop(journal);
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    assert_eq!(replayed.entries, vec![intent("a"), outcome("a")]);
    assert!(replayed.skipped.is_empty());
}

#[tokio::test]
async fn concurrent_appends_all_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = Journal::open(dir.path()).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let journal = journal.clone();
            tokio::spawn(async move { journal.append(&[intent(&format!("id{i}"))]).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    drop(journal);
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    let mut ids: Vec<String> = replayed
        .entries
        .iter()
        .filter_map(|e| e.id().map(String::from))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200);
}

#[test]
fn damaged_middle_line_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    let good = serde_json::to_string(&intent("a")).unwrap();
    std::fs::write(&path, format!("{good}\nnot json\n{good}\n")).unwrap();
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    assert_eq!(replayed.entries.len(), 2);
    assert_eq!(replayed.skipped.len(), 1);
}

/// An intent at `time_ms` with a cooldown of `cooldown_ms`, for `action`.
fn intent_at(id: &str, time_ms: u64, cooldown_ms: u64, action: Action) -> Entry {
    let Entry::Intent(mut i) = intent(id) else {
        unreachable!()
    };
    i.time_ms = time_ms;
    i.cooldown_ms = cooldown_ms;
    i.action = action;
    Entry::Intent(i)
}

fn outcome_of(id: &str, outcome: Outcome) -> Entry {
    Entry::Outcome {
        id: id.into(),
        time_ms: 3,
        outcome,
        reason: String::new(),
        change: None,
    }
}

fn template(service: &str, hash: u64) -> Entry {
    Entry::Template {
        service: service.into(),
        time_ms: 1,
        hash,
        template: Template::from_task_spec(&Default::default()),
    }
}

fn kept_ids(entries: &[Entry], now_ms: u64, keep_actions: usize) -> Vec<String> {
    let keep = compact::kept(entries, now_ms, keep_actions);
    entries
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(e, _)| match e {
            Entry::Template { service, hash, .. } => format!("template {service} {hash}"),
            Entry::Intent(i) => format!("intent {}", i.id),
            Entry::Target { id, .. } => format!("target {id}"),
            Entry::Outcome { id, .. } => format!("outcome {id}"),
        })
        .collect()
}

#[test]
fn compaction_keeps_what_a_start_needs_and_the_recent_history() {
    let scale = Action::ScaleUp {
        step: 1,
        max_replicas: 3,
    };
    let now = 10_000;
    let entries = vec![
        template("web", 1),
        // old, finished, cooldown over: dropped
        intent_at("old", 1, 100, scale.clone()),
        outcome_of("old", Outcome::Succeeded),
        template("web", 1),
        // cooldown still running at `now`: kept (cooldown and duplicate survive a restart)
        intent_at("cooling", 2, 60_000, scale.clone()),
        outcome_of("cooling", Outcome::Succeeded),
        // a failed one gave its cooldown back: dropped
        intent_at("failed", 3, 60_000, scale.clone()),
        outcome_of("failed", Outcome::Failed),
        // a rollback, long finished: kept (its bad template must stay known)
        intent_at("rolled", 4, 100, Action::Rollback),
        outcome_of("rolled", Outcome::Succeeded),
        // unfinished: kept, with its target
        intent_at("open", 5, 100, scale.clone()),
        Entry::Target {
            id: "open".into(),
            time_ms: 6,
            change: Change::Replicas { from: 1, to: 2 },
        },
        // an outcome whose intent is gone: dropped
        outcome_of("orphan", Outcome::Succeeded),
        // the most recent action: kept as history
        intent_at("recent", 7, 100, scale),
        outcome_of("recent", Outcome::Succeeded),
        template("api", 1),
    ];
    assert_eq!(
        kept_ids(&entries, now, 1),
        [
            "template web 1",
            "intent cooling",
            "outcome cooling",
            "intent rolled",
            "outcome rolled",
            "intent open",
            "target open",
            "intent recent",
            "outcome recent",
            "template api 1",
        ]
    );
    assert_eq!(
        kept_ids(&entries, now, 100).len(),
        entries.len() - 2,
        "history keeps every action; only the repeated template and the orphan go"
    );
}

#[tokio::test]
async fn a_compacted_journal_is_rewritten_once_it_would_halve_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, _) = Journal::open(dir.path()).unwrap();
        for i in 0..10 {
            let id = format!("a{i}");
            journal
                .append(&[intent_at(&id, i, 0, Action::Restart), outcome(&id)])
                .await
                .unwrap();
        }
    }
    let compaction = Compaction {
        now_ms: Arc::new(|| 1_000),
        keep_actions: 3,
        grow_to: GROW_TO,
    };
    let (journal, replayed) = Journal::open_compacted(dir.path(), compaction).unwrap();
    assert_eq!(replayed.entries.len(), 6, "the last 3 actions");
    journal.append(&[intent("b")]).await.unwrap();
    drop(journal);
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    let ids: Vec<&str> = replayed.entries.iter().filter_map(Entry::id).collect();
    assert_eq!(ids, ["a7", "a7", "a8", "a8", "a9", "a9", "b"]);
    assert!(!dir.path().join("journal.jsonl.compacting").exists());

    // 7 lines, 5 of them needed with keep_actions 3: not worth a rewrite yet.
    let compaction = Compaction {
        now_ms: Arc::new(|| 1_000),
        keep_actions: 3,
        grow_to: GROW_TO,
    };
    let (_, replayed) = Journal::open_compacted(dir.path(), compaction).unwrap();
    assert_eq!(replayed.entries.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_journal_is_compacted_as_it_grows_and_no_append_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let compaction = Compaction {
        now_ms: Arc::new(|| 1_000_000),
        keep_actions: 10,
        grow_to: 16 * 1024,
    };
    let (journal, _) = Journal::open_compacted(dir.path(), compaction).unwrap();
    let journal = Arc::new(journal);
    journal.append(&[intent("unfinished")]).await.unwrap();
    // 2,000 actions, 16 appending at once: compactions run while appends wait for the writer.
    let appends = (0..2_000).map(|i| {
        let journal = journal.clone();
        tokio::spawn(async move {
            let id = format!("a{i:04}");
            journal
                .append(&[intent_at(&id, i, 0, Action::Restart), outcome(&id)])
                .await
        })
    });
    for append in futures_util::future::join_all(appends).await {
        append.unwrap().expect("every append acknowledged");
    }
    journal.append(&[intent("last")]).await.unwrap();
    let size = std::fs::metadata(journal.path()).unwrap().len();
    drop(journal);
    assert!(
        size < 3 * 16 * 1024,
        "the journal stays bounded: {size} bytes"
    );
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    assert!(replayed.skipped.is_empty(), "{:?}", replayed.skipped);
    let ids: Vec<&str> = replayed.entries.iter().filter_map(Entry::id).collect();
    assert_eq!(
        ids.first(),
        Some(&"unfinished"),
        "an unfinished action is kept"
    );
    assert_eq!(ids.last(), Some(&"last"), "the newest append is there");
    assert!(
        ids.len() >= 2 * 10,
        "at least the last 10 actions: {}",
        ids.len()
    );
    assert!(!dir.path().join("journal.jsonl.compacting").exists());
}

/// Lines exactly as the release before scale_to_target wrote them: still read, unchanged.
#[test]
fn lines_from_before_target_tracking_still_replay() {
    let dir = tempfile::tempdir().unwrap();
    let old = [
        r#"{"type":"intent","id":"19ad4c0e6a2-000001","time_ms":1764662400000,"rule":"scale-up-on-cpu","alert":"ServiceHighCPU","fingerprint":"d3m0d3m0d3m0d3m0","starts_at":"2026-11-30T09:00:00.000Z","status":"firing","service":"demo_web","action":{"kind":"scale_up","step":2,"max_replicas":10},"cooldown_ms":300000,"change":{"kind":"replicas","from":2,"to":4}}"#,
        r#"{"type":"outcome","id":"19ad4c0e6a2-000001","time_ms":1764662400100,"outcome":"succeeded","reason":"scale_up demo_web","change":{"kind":"replicas","from":2,"to":4}}"#,
        r#"{"type":"intent","id":"19ad4c0e6a2-000002","time_ms":1764662400200,"rule":"backup","alert":"DiskFilling","fingerprint":"f2","starts_at":"s","status":"firing","service":"job","action":{"kind":"backup_now","job":"job"},"cooldown_ms":3600000,"change":null}"#,
    ];
    std::fs::write(dir.path().join(JOURNAL_FILE), old.join("\n") + "\n").unwrap();
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    assert!(replayed.skipped.is_empty(), "{:?}", replayed.skipped);
    assert_eq!(replayed.entries.len(), 3);
    let Entry::Intent(first) = &replayed.entries[0] else {
        panic!("{:?}", replayed.entries[0]);
    };
    assert_eq!(
        first.action,
        Action::ScaleUp {
            step: 2,
            max_replicas: 10
        }
    );
    // Written back the same: nothing about the old kinds changed.
    assert_eq!(serde_json::to_string(&replayed.entries[0]).unwrap(), old[0]);
}

/// A scale_to_target intent journals the rule as admitted with the alert's reading (value and
/// the replicas it was read against) and its absolute target, and reads back equal.
#[test]
fn a_target_tracking_intent_round_trips_with_its_reading() {
    use crate::rules::{Finite, Reading, StepLimit, TargetTracking, ValueSource};
    let tracking = TargetTracking {
        target: Finite::new(0.6).unwrap(),
        value_from: ValueSource::Annotation {
            name: "value".into(),
        },
        tolerance: Finite::new(0.1).unwrap(),
        min_replicas: 2,
        max_replicas: 20,
        scale_down_stabilization_ms: 300_000,
        max_step_up: StepLimit::DEFAULT_UP,
        max_step_down: StepLimit::percent(50),
        reading: Some(Reading {
            since_ms: None,
            value: Finite::new(1.05).unwrap(),
            replicas: Some(4),
        }),
    };
    let Entry::Intent(mut entry) = intent("t") else {
        unreachable!()
    };
    entry.action = Action::ScaleToTarget(Box::new(tracking));
    entry.change = Some(Change::Replicas { from: 4, to: 7 });
    let line = serde_json::to_string(&Entry::Intent(entry.clone())).unwrap();
    assert!(
        line.contains(r#""action":{"kind":"scale_to_target","target":0.6,"value_from":{"from":"annotation","name":"value"},"tolerance":0.1,"min_replicas":2,"max_replicas":20,"scale_down_stabilization_ms":300000,"max_step_up":{"replicas":4,"percent":100},"max_step_down":{"percent":50},"reading":{"value":1.05,"replicas":4}}"#),
        "{line}"
    );
    assert!(line.contains(r#""change":{"kind":"replicas","from":4,"to":7}"#));
    let back: Entry = serde_json::from_str(&line).unwrap();
    assert_eq!(back, Entry::Intent(entry));
}

/// A hand-edited or damaged line cannot smuggle a non-finite number in: it is skipped.
#[test]
fn a_target_line_with_an_impossible_number_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let line = r#"{"type":"intent","id":"x","time_ms":1,"rule":"r","alert":"A","fingerprint":"f","starts_at":"s","status":"firing","service":"web","action":{"kind":"scale_to_target","target":1e999,"value_from":{"from":"annotation","name":"value"},"tolerance":0.1,"min_replicas":1,"max_replicas":5,"scale_down_stabilization_ms":0,"max_step_up":{"percent":100},"max_step_down":{"percent":100}},"cooldown_ms":0,"change":null}"#;
    std::fs::write(dir.path().join(JOURNAL_FILE), format!("{line}\n")).unwrap();
    let (_, replayed) = Journal::open(dir.path()).unwrap();
    assert_eq!((replayed.entries.len(), replayed.skipped.len()), (0, 1));
}

/// A scale_to_target past its cooldown but inside its stabilization window is kept: recovery
/// makes its count a recommendation again. Once the window is over it goes like any other.
#[test]
fn compaction_keeps_a_scale_to_target_while_its_window_runs() {
    use crate::rules::{Finite, StepLimit, TargetTracking, ValueSource};
    let tracking = TargetTracking {
        target: Finite::new(0.6).unwrap(),
        value_from: ValueSource::Annotation {
            name: "value".into(),
        },
        tolerance: Finite::new(0.1).unwrap(),
        min_replicas: 1,
        max_replicas: 10,
        scale_down_stabilization_ms: 300_000,
        max_step_up: StepLimit::DEFAULT_UP,
        max_step_down: StepLimit::DEFAULT_DOWN,
        reading: None,
    };
    let entries = vec![
        intent_at(
            "target",
            1,
            60_000,
            Action::ScaleToTarget(Box::new(tracking)),
        ),
        outcome_of("target", Outcome::Succeeded),
        intent_at("later", 4, 100, Action::Restart),
        outcome_of("later", Outcome::Succeeded),
    ];
    // The outcome landed at 3: cooldown until 60_003, window until 300_003.
    assert_eq!(
        kept_ids(&entries, 200_000, 1),
        [
            "intent target",
            "outcome target",
            "intent later",
            "outcome later"
        ]
    );
    assert_eq!(
        kept_ids(&entries, 300_004, 1),
        ["intent later", "outcome later"]
    );
}
