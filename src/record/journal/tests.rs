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
