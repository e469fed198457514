//! `data_dir` on a full filesystem (a small tmpfs filled to the last byte). A write that fits
//! only in part must not leave a fragment that the next acknowledged line joins: while the disk
//! is full the webhook answers 503 and admits nothing, once space returns it recovers without a
//! restart, and after a restart every acknowledged intent, its cooldown and its delivery key are
//! there. (Needs root for `mount`, as the whole suite does for dockerd.)

use crate::common::*;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use swarmpilot::clock::ManualClock;

/// A tmpfs mounted for one test, unmounted however the test ends.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount a tmpfs at {}", at.display());
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Take every free byte of the filesystem holding `dir`.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = [0u8; 512];
    while file.write_all(&chunk).is_ok() {}
    for _ in 0..512 {
        if file.write_all(&[0]).is_err() {
            break;
        }
    }
    let _ = file.sync_all();
    path
}

const RULES: &str = r#"
rules:
  - name: disk-up
    match: ['alertname="DiskTestUp"']
    action: scale_up
    step: 1
    max_replicas: 3
    cooldown: 1m
  - name: disk-down
    match: ['alertname="DiskTestDown"']
    action: scale_down
    step: 1
    min_replicas: 1
    cooldown: 1m
"#;

fn journal_len(app: &TestApp) -> u64 {
    std::fs::metadata(app.data_dir.join("journal.jsonl"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// Bytes of the journal's last intent line, newline included.
fn last_intent_len(app: &TestApp) -> u64 {
    let text = std::fs::read_to_string(app.data_dir.join("journal.jsonl")).unwrap();
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(r#""type":"intent""#))
        .expect("an intent line");
    line.len() as u64 + 1
}

#[tokio::test]
async fn a_full_disk_answers_503_leaves_no_fragment_and_recovers_without_a_restart() {
    let service = TestService::opted_in("diskfull", 1).await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let tmpfs = Tmpfs::mount(&dir.path().join("data"), "256k");
    let clock = ManualClock::default();
    let setup = || {
        AppSetup::default()
            .extra_rules(RULES)
            .reuse((dir.clone(), clock.clone()))
    };
    let app = setup().spawn(|_| {}).await;

    // Act (alternating up and down, a minute apart) until the journal's last page has less room
    // than an intent line: on a full disk, the next intent then fits only in part.
    let mut up = true;
    let mut n = 0;
    loop {
        clock.advance(Duration::from_secs(61));
        let alert = if up { "DiskTestUp" } else { "DiskTestDown" };
        let decision = only(&app.fire_fp(alert, &service.name, &format!("fp{n}")).await).clone();
        assert_eq!(decision["decision"], "executed", "{decision}");
        (up, n) = (!up, n + 1);
        let room = (4096 - journal_len(&app) % 4096) % 4096;
        if room > 0 && room + 64 < last_intent_len(&app) {
            break;
        }
        assert!(
            n < 60,
            "the journal's last page never came short of an intent line"
        );
    }
    let replicas = service.desired_replicas();
    let filler = fill(&tmpfs.0);
    let before = journal_len(&app);

    clock.advance(Duration::from_secs(61));
    let alert = if up { "DiskTestUp" } else { "DiskTestDown" };
    let payload = alert_payload_fp(alert, &service.name, "while-full");
    for _ in 0..2 {
        let answer = app.post_webhook(&payload).await;
        assert_eq!(answer.status(), 503, "a full disk admits nothing");
        let body: Value = answer.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("journal"),
            "{body}"
        );
        assert_eq!(
            journal_len(&app),
            before,
            "a failed write leaves no fragment"
        );
    }
    assert_eq!(service.desired_replicas(), replicas, "nothing acted");

    std::fs::remove_file(filler).unwrap();
    let decision = only(&app.fire_payload(&payload).await).clone();
    assert_eq!(decision["decision"], "executed", "{decision}");
    let acted = service.desired_replicas();
    assert_ne!(acted, replicas);
    let id = decision["action_id"].as_str().unwrap().to_string();
    assert_eq!(app.outcome(&id).await["outcome"], "succeeded");

    // Every line is whole (`journal()` parses each), and a restart finds them all.
    let lines = app.journal().len();
    drop(app.stop().await);
    let app = setup().spawn(|_| {}).await;
    assert_eq!(app.recovery.skipped_lines, 0, "no line was damaged");
    assert_eq!(app.recovery.entries, lines);
    let again = only(&app.fire_payload(&payload).await).clone();
    assert_eq!(again["decision"], "duplicate", "{again}");
    let other = only(&app.fire_fp(alert, &service.name, "after-restart").await).clone();
    assert_eq!(other["decision"], "cooldown", "{other}");
    assert_eq!(service.desired_replicas(), acted);
    drop(app.stop().await);
}
