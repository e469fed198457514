//! The command line as a user runs it: exit codes and what it prints.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn swarmpilot(args: &[&str], rules_dir: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args(args)
        .current_dir(root())
        .env("SWARMPILOT_RULES_DIR", rules_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("swarmpilot runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_shipped_rules() {
    let out = swarmpilot(&["check"], "rules");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 6 rules in rules"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_reports_each_broken_rule_with_file_line_column_and_exits_1() {
    let out = swarmpilot(&["check"], "tests/fixtures/rules_broken");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let file = "tests/fixtures/rules_broken/bad.yml";
    for expected in [
        format!("{file}:4:13: unknown action \"explode\""),
        format!("{file}:7:9: invalid regex \"(warning\""),
        format!("{file}:9:15: invalid duration \"5 fortnights\""),
        format!("{file}:10:11: duplicate rule name \"explode-on-cpu\", first defined at {file}:2"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn check_reports_a_bad_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("swarmpilot.toml");
    std::fs::write(&config, "rules_dri = \"rules\"\n").unwrap();
    let out = swarmpilot(&["check", "--config", config.to_str().unwrap()], "rules");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown field `rules_dri`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_shows_which_rule_matches_which_alert() {
    let out = swarmpilot(&["plan", "tests/fixtures/mixed.json"], "rules");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("rule scale-up-on-cpu (rules/scaling.yml:4) → scale_up by 2 (max 10) on service demo_web, cooldown 5m"), "{stdout}");
    // The resolved alert matches no firing rule.
    assert!(stdout.contains("ServiceHighCPU [resolved]"), "{stdout}");
    assert!(stdout.contains("no rule matches"), "{stdout}");
}

#[test]
fn plan_refuses_a_malformed_payload() {
    let out = swarmpilot(&["plan", "tests/fixtures/malformed.json"], "rules");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("malformed Alertmanager payload"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_refuses_an_open_listener_without_auth() {
    let out = Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args(["serve"])
        .current_dir(root())
        .env("SWARMPILOT_LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not loopback and no auth"),
        "{}",
        text(&out.stderr)
    );
}
