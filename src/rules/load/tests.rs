use super::*;
use rstest::rstest;

fn errors_of(text: &str) -> Vec<String> {
    let (_, errors) = parse_rule_file(Path::new("r.yml"), text);
    errors.iter().map(ToString::to_string).collect()
}

const GOOD: &str = r#"
rules:
  - name: scale-up-on-cpu
    match:
      - alertname = "ServiceHighCPU"
      - severity =~ "warning|critical"
    action: scale_up
    step: 2
    max_replicas: 10
    cooldown: 5m
  - name: restart-unhealthy
    match: ['alertname="ServiceUnhealthy"']
    on: firing
    service_label: swarm_service
    action: restart
  - name: shrink
    match: [alertname=ServiceIdle]
    on: resolved
    action: scale_down
  - name: backup
    match: ['alertname="DiskFilling"']
    action: backup_now
    job: backup_job
"#;

#[test]
fn loads_every_field() {
    let (rules, errors) = parse_rule_file(Path::new("r.yml"), GOOD);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rules.len(), 4);
    let up = &rules[0];
    assert_eq!(up.name, "scale-up-on-cpu");
    assert_eq!(up.matchers.len(), 2);
    assert_eq!(
        up.action,
        Action::ScaleUp {
            step: 2,
            max_replicas: 10
        }
    );
    assert_eq!(up.cooldown, Duration::from_secs(300));
    assert_eq!(up.service_label, "service");
    assert_eq!((up.origin.line, up.origin.column), (3, 11));
    assert_eq!(rules[1].service_label, "swarm_service");
    assert_eq!(rules[1].action, Action::Restart);
    assert_eq!(rules[2].on, AlertStatus::Resolved);
    assert_eq!(
        rules[2].action,
        Action::ScaleDown {
            step: 1,
            min_replicas: 1
        }
    );
    assert_eq!(
        rules[3].action,
        Action::BackupNow {
            job: "backup_job".into()
        }
    );
}

#[rstest]
#[case::unknown_action(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: explode\n",
    "r.yml:4:13: unknown action \"explode\", expected one of scale_up, scale_down, scale_to_target, restart, rollback, backup_now"
)]
#[case::bad_duration(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    cooldown: 5 parsecs\n",
    "r.yml:5:15: invalid duration \"5 parsecs\": unknown time unit \"parsecs\", supported units:"
)]
#[case::bad_regex(
    "rules:\n  - name: a\n    match:\n      - 'x =~ \"(oops\"'\n    action: restart\n",
    "r.yml:4:10: invalid regex \"(oops\": error: unclosed group"
)]
#[case::bad_matcher_operator(
    "rules:\n  - name: a\n    match:\n      - alertname ~ Foo\n    action: restart\n",
    "r.yml:4:19: expected one of = != =~ !~"
)]
#[case::unknown_field(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    cooldwn: 5m\n",
    "r.yml:5:5: unknown field \"cooldwn\", expected one of name, match, on, service_label, action, step, max_replicas, min_replicas, cooldown, job, target, value_from, query, tolerance, scale_down_stabilization, max_step_up, max_step_down"
)]
#[case::step_not_number(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: scale_up\n    max_replicas: 3\n    step: two\n",
    "r.yml:6:11: step must be a whole number from 1 to 10000, not \"two\""
)]
#[case::scale_up_without_bound(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: scale_up\n",
    "r.yml:4:13: scale_up needs max_replicas, the bound it never exceeds"
)]
#[case::backup_without_job(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: backup_now\n",
    "r.yml:4:13: backup_now needs job, the job service to run"
)]
#[case::bound_on_wrong_action(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    max_replicas: 3\n",
    "r.yml:5:19: max_replicas does not apply to action restart"
)]
#[case::bad_on(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    on: sometimes\n",
    "r.yml:5:9: on must be firing or resolved, not \"sometimes\""
)]
#[case::resolved_scale_up(
    "rules:\n  - name: a\n    match: ['x=y']\n    on: resolved\n    action: scale_up\n    max_replicas: 3\n",
    "r.yml:4:9: on: resolved applies only to scale_down and backup_now; a resolved alert never triggers scale_up"
)]
#[case::resolved_restart(
    "rules:\n  - name: a\n    match: ['x=y']\n    on: resolved\n    action: restart\n",
    "r.yml:4:9: on: resolved applies only to scale_down and backup_now"
)]
#[case::empty_match(
    "rules:\n  - name: a\n    match: []\n    action: restart\n",
    "r.yml:3:12: match needs at least one matcher"
)]
#[case::bad_yaml(
    "rules:\n  - name: a\n    match: ['x=y'\n    action: restart\n",
    "r.yml:4:5: invalid YAML: invalid indentation"
)]
#[case::duplicate_key(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    action: restart\n",
    "r.yml:5:5: invalid YAML: duplicate key \"action\""
)]
#[case::missing_action("rules:\n  - name: a\n    match: ['x=y']\n", "missing field `action`")]
#[case::bad_name(
    "rules:\n  - name: 'a b'\n    match: ['x=y']\n    action: restart\n",
    "r.yml:2:11: rule name \"a b\" must start"
)]
#[case::value_missing_at_the_end_of_the_file(
    "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    cooldown: ",
    "r.yml:5:15: invalid duration \"\""
)]
#[case::lines_broken_by_cr_alone(
    "rules:\r  - name: a\r    match: ['x=y']\r    action: explode\r",
    "r.yml:4:13: unknown action \"explode\""
)]
fn reports_file_line_column(#[case] text: &str, #[case] expected: &str) {
    let errors = errors_of(text);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected {expected:?} in {errors:#?}"
    );
}

/// Each numeric field outside its range is an error at the value, naming the range: huge values
/// used to wrap in `current ± step` (scale_up 6→5) or panic the HTTP worker (cooldown).
#[rstest]
#[case::step_zero(
    "scale_up",
    "step: 0",
    "step must be a whole number from 1 to 10000, not \"0\""
)]
#[case::step_u64_max(
    "scale_up",
    "step: 18446744073709551615",
    "step must be a whole number from 1 to 10000, not \"18446744073709551615\""
)]
#[case::step_2_pow_63(
    "scale_down",
    "step: 9223372036854775808",
    "step must be a whole number from 1 to 10000, not \"9223372036854775808\""
)]
#[case::step_past_u64(
    "scale_up",
    "step: 99999999999999999999",
    "step must be a whole number from 1 to 10000, not \"99999999999999999999\""
)]
#[case::step_negative(
    "scale_down",
    "step: -1",
    "step must be a whole number from 1 to 10000, not \"-1\""
)]
#[case::step_just_over(
    "scale_up",
    "step: 10001",
    "step must be a whole number from 1 to 10000, not \"10001\""
)]
#[case::max_zero(
    "scale_up",
    "max_replicas: 0",
    "max_replicas must be a whole number from 1 to 10000, not \"0\""
)]
#[case::max_u64_max(
    "scale_up",
    "max_replicas: 18446744073709551615",
    "max_replicas must be a whole number from 1 to 10000, not \"18446744073709551615\""
)]
#[case::min_just_over(
    "scale_down",
    "min_replicas: 10001",
    "min_replicas must be a whole number from 0 to 10000, not \"10001\""
)]
#[case::min_negative(
    "scale_down",
    "min_replicas: -3",
    "min_replicas must be a whole number from 0 to 10000, not \"-3\""
)]
#[case::cooldown_u64_seconds(
    "restart",
    "cooldown: 18446744073709551615s",
    "cooldown \"18446744073709551615s\" is too long: at most 365d"
)]
#[case::cooldown_past_a_year(
    "scale_up",
    "cooldown: 366d",
    "cooldown \"366d\" is too long: at most 365d"
)]
#[case::cooldown_past_duration(
    "restart",
    "cooldown: 99999999999999999999s",
    "cooldown \"99999999999999999999s\" is too long: at most 365d"
)]
fn rejects_numbers_out_of_range(#[case] action: &str, #[case] field: &str, #[case] expected: &str) {
    let bound = if action == "scale_up" {
        "    max_replicas: 3\n"
    } else {
        ""
    };
    let bound = if field.starts_with("max_replicas") {
        ""
    } else {
        bound
    };
    let text = format!(
        "rules:\n  - name: a\n    match: ['x=y']\n    action: {action}\n{bound}    {field}\n"
    );
    let line = 5 + usize::from(!bound.is_empty());
    let column = 5 + field.find(": ").unwrap() + 2;
    let expected = format!("r.yml:{line}:{column}: {expected}");
    assert_eq!(errors_of(&text), [expected]);
}

#[test]
fn numbers_at_the_bounds_load() {
    let text = "rules:\n  - name: up\n    match: ['x=y']\n    action: scale_up\n    step: 10000\n    max_replicas: 10000\n    cooldown: 365d\n  - name: down\n    match: ['x=y']\n    action: scale_down\n    step: 10000\n    min_replicas: 0\n    cooldown: 0s\n";
    let (rules, errors) = parse_rule_file(Path::new("r.yml"), text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        rules[0].action,
        Action::ScaleUp {
            step: 10_000,
            max_replicas: 10_000
        }
    );
    assert_eq!(rules[0].cooldown, MAX_COOLDOWN);
    assert_eq!(
        rules[1].action,
        Action::ScaleDown {
            step: 10_000,
            min_replicas: 0
        }
    );
}

#[test]
fn reports_every_error_of_a_rule() {
    let text = "rules:\n  - name: a\n    match: ['x=~\"(\"']\n    action: scale_up\n    max_replicas: 2\n    cooldown: forever\n";
    assert_eq!(errors_of(text).len(), 2, "{:?}", errors_of(text));
}

#[test]
fn duplicate_names_across_files_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "rules:\n  - name: same\n    match: ['x=y']\n    action: restart\n";
    std::fs::write(dir.path().join("a.yml"), rule).unwrap();
    std::fs::write(dir.path().join("b.yaml"), rule).unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not rules").unwrap();
    let errors = load_rules_dir(dir.path()).unwrap_err().to_string();
    let b = dir.path().join("b.yaml");
    let a = dir.path().join("a.yml");
    assert_eq!(
        errors,
        format!(
            "{}:2:11: duplicate rule name \"same\", first defined at {}:2",
            b.display(),
            a.display()
        )
    );
}

#[test]
fn missing_dir_is_an_error() {
    let err = load_rules_dir(Path::new("/nonexistent/rules")).unwrap_err();
    assert!(err.to_string().contains("cannot read rules_dir"), "{err}");
}

#[test]
fn shipped_rules_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let rules = load_rules_dir(&dir).expect("shipped rules are valid");
    assert!(rules.len() >= 3);
}

/// Deterministic byte mutations of the shipped rule files, each loaded as production loads them
/// (written into a rules dir, read by `load_rules_dir`): the loader never panics, and every error
/// names the file and points inside it (line and column from 1).
#[test]
fn mutated_rule_files_give_positioned_errors_never_a_panic() {
    let shipped = [
        include_str!("../../../rules/scaling.yml"),
        include_str!("../../../rules/healing.yml"),
        include_str!("../../../rules/backup.yml"),
    ];
    const TOKENS: &[&str] = &[
        ":",
        "- ",
        "\n",
        "  ",
        "[",
        "]",
        "{",
        "}",
        "'",
        "\"",
        "&a",
        "*a",
        "!!str ",
        "=~",
        "!=",
        "~",
        "null",
        "-1",
        "99999999999999999999",
        "1e9",
        "\t",
        "#",
        "|",
        ">",
        "\u{0}",
        "é",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n.max(1) as u64) as usize
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yml");
    for round in 0..3_000 {
        let mut text = shipped[round % shipped.len()].as_bytes().to_vec();
        for _ in 0..1 + next(3) {
            let at = next(text.len() + 1);
            match next(4) {
                0 => {
                    let end = (at + next(16)).min(text.len());
                    text.drain(at..end);
                }
                1 => {
                    text.splice(at..at, TOKENS[next(TOKENS.len())].bytes());
                }
                2 if at < text.len() => text[at] = b"abz09:-[ \n"[next(10)],
                _ => {
                    let end = (at + next(40)).min(text.len());
                    let copy = text[at..end].to_vec();
                    text.splice(at..at, copy);
                }
            }
        }
        let text = String::from_utf8_lossy(&text);
        // A new file each round: truncating one in place makes ext4 flush it on close.
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, text.as_bytes()).unwrap();
        let Err(RuleErrors(errors)) = load_rules_dir(dir.path()) else {
            continue;
        };
        let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
        for error in errors {
            assert_eq!(error.file, file, "round {round}: {error}");
            assert!(
                error.line >= 1 && error.line <= lines && error.column >= 1,
                "round {round}: {error} outside the file of {lines} lines:\n{text:?}"
            );
        }
    }
}

const ONE_RULE: &str = "rules:\n  - name: ok\n    match: ['x=y']\n    action: restart\n";

fn rules_dir_with(entries: impl FnOnce(&Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yml"), ONE_RULE).unwrap();
    entries(dir.path());
    dir
}

fn load_errors(dir: &Path, limits: RuleLimits) -> Vec<String> {
    match load_rules_dir_with(dir, limits) {
        Ok(rules) => panic!("loaded {} rules, expected errors", rules.len()),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

/// Each rule-file entry that is not a readable regular file is an error naming it and what it
/// is; `check` used to skip them silently and say "ok". A FIFO is never opened (it would block).
#[rstest]
#[case::dangling_symlink(
    |d: &Path| std::os::unix::fs::symlink(d.join("gone.yml"), d.join("x.yml")).unwrap(),
    "is a dangling symlink: its target does not exist"
)]
#[case::symlink_loop(
    |d: &Path| {
        std::os::unix::fs::symlink(d.join("y.yml"), d.join("x.yml")).unwrap();
        std::os::unix::fs::symlink(d.join("x.yml"), d.join("y.yml")).unwrap();
    },
    "is a symlink loop: following it never reaches a file"
)]
#[case::self_loop(
    |d: &Path| std::os::unix::fs::symlink("x.yml", d.join("x.yml")).unwrap(),
    "is a symlink loop: following it never reaches a file"
)]
#[case::fifo(|d: &Path| mkfifo(&d.join("x.yml")), "is a FIFO, not a rule file; rule files must be regular files (or symlinks to them)")]
#[case::symlink_to_fifo(
    |d: &Path| {
        mkfifo(&d.join("pipe"));
        std::os::unix::fs::symlink(d.join("pipe"), d.join("x.yml")).unwrap();
    },
    "is a symlink to a FIFO, not a rule file; rule files must be regular files (or symlinks to them)"
)]
#[case::device(
    |d: &Path| std::os::unix::fs::symlink("/dev/null", d.join("x.yml")).unwrap(),
    "is a symlink to a character device, not a rule file; rule files must be regular files (or symlinks to them)"
)]
#[case::directory(
    |d: &Path| std::fs::create_dir(d.join("x.yml")).unwrap(),
    "is a directory, not a rule file; rule files must be regular files (or symlinks to them)"
)]
#[case::socket(
    |d: &Path| drop(std::os::unix::net::UnixListener::bind(d.join("x.yml")).unwrap()),
    "is a socket, not a rule file; rule files must be regular files (or symlinks to them)"
)]
fn reports_entries_that_are_not_regular_files(#[case] make: fn(&Path), #[case] expected: &str) {
    let dir = rules_dir_with(make);
    let errors = load_errors(dir.path(), RuleLimits::DEFAULT);
    let file = dir.path().join("x.yml");
    let mut expected = vec![format!("{}:1:1: {expected}", file.display())];
    if errors.len() == 2 {
        // The loop's other link is reported too.
        expected.push(errors[1].clone());
        assert!(
            errors[1].contains("y.yml:1:1: is a symlink loop"),
            "{errors:?}"
        );
    }
    assert_eq!(errors, expected);
}

#[test]
fn symlinks_to_rule_files_and_other_entries_are_fine() {
    let dir = rules_dir_with(|d| {
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/real.yaml"), ONE_RULE.replace("ok", "linked")).unwrap();
        std::os::unix::fs::symlink(d.join("sub/real.yaml"), d.join("linked.yaml")).unwrap();
        std::os::unix::fs::symlink(d.join("gone"), d.join("README")).unwrap();
        mkfifo(&d.join("pipe.txt"));
    });
    assert_eq!(load_rules_dir(dir.path()).unwrap().len(), 2);
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
    let dir = rules_dir_with(|d| {
        let padding = "#".repeat(MAX_RULE_FILE_BYTES as usize - ONE_RULE.len() + 1);
        std::fs::write(d.join("big.yml"), format!("{ONE_RULE}{padding}")).unwrap();
    });
    let big = dir.path().join("big.yml");
    assert_eq!(
        load_errors(dir.path(), RuleLimits::DEFAULT),
        [format!(
            "{}:1:1: file is 1048577 bytes, more than the limit of 1048576 bytes per rule file; split it into several files",
            big.display()
        )]
    );
    // Exactly at the limit loads.
    std::fs::write(
        &big,
        format!("{}\n", "#".repeat(MAX_RULE_FILE_BYTES as usize - 1)),
    )
    .unwrap();
    assert!(load_rules_dir(dir.path()).is_ok());
}

#[test]
fn a_file_that_grows_after_its_size_was_checked_is_refused() {
    let dir = rules_dir_with(|_| {});
    let file = dir.path().join("good.yml");
    assert!(read_bounded(&file, ONE_RULE.len() as u64).is_ok());
    let error = read_bounded(&file, 10).unwrap_err();
    assert_eq!(
        error,
        "file is 11 bytes, more than the limit of 10 bytes per rule file; split it into several files"
    );
}

#[test]
fn too_many_files_is_an_error_naming_the_limit() {
    let dir = rules_dir_with(|d| {
        for i in 0..3 {
            std::fs::write(d.join(format!("r{i}.yaml")), "").unwrap();
        }
    });
    let limits = RuleLimits {
        max_files: 3,
        ..RuleLimits::DEFAULT
    };
    assert_eq!(
        load_errors(dir.path(), limits),
        [format!(
            "{}:0:0: rules_dir holds 4 rule files, more than the limit of 3; merge them into fewer files",
            dir.path().display()
        )]
    );
    let limits = RuleLimits {
        max_files: 4,
        ..RuleLimits::DEFAULT
    };
    assert!(load_rules_dir_with(dir.path(), limits).is_ok());
}

#[test]
fn too_many_rules_is_an_error_at_the_first_rule_past_the_limit() {
    let rule = |name: &str| format!("  - name: {name}\n    match: ['x=y']\n    action: restart\n");
    let dir = rules_dir_with(|d| {
        let text = format!("rules:\n{}{}", rule("a"), rule("b"));
        std::fs::write(d.join("more.yml"), text).unwrap();
        // Never read: loading stops at the file that passes the limit.
        std::fs::write(d.join("z.yml"), "rules: [oops").unwrap();
    });
    let limits = RuleLimits {
        max_rules: 2,
        ..RuleLimits::DEFAULT
    };
    let more = dir.path().join("more.yml");
    assert_eq!(
        load_errors(dir.path(), limits),
        [format!(
            "{}:5:11: more than 2 rules in rules_dir (the limit); remove unused or generated rules, or match several services with one rule",
            more.display()
        )]
    );
    let limits = RuleLimits {
        max_rules: 3,
        ..RuleLimits::DEFAULT
    };
    std::fs::remove_file(dir.path().join("z.yml")).unwrap();
    assert_eq!(load_rules_dir_with(dir.path(), limits).unwrap().len(), 3);
}

#[test]
fn the_default_limits_are_the_documented_ones() {
    assert_eq!(MAX_RULE_FILE_BYTES, 1_048_576);
    assert_eq!(MAX_RULE_FILES, 1_000);
    assert_eq!(MAX_RULES, 10_000);
}

/// A value missing at the very end of a file: the YAML scanner places it on the line after the
/// last; `check`, startup and reload (all `load_rules_dir`) point at the end of the last line.
#[test]
fn an_error_at_the_end_of_a_file_points_inside_it_when_loaded_from_the_dir() {
    let dir = rules_dir_with(|dir| {
        let text =
            "rules:\n  - name: late\n    match: ['x=y']\n    action: restart\n    cooldown: ";
        std::fs::write(dir.join("late.yml"), text).unwrap();
    });
    let file = dir.path().join("late.yml");
    assert_eq!(
        load_errors(dir.path(), RuleLimits::DEFAULT),
        [format!(
            "{}:5:15: invalid duration \"\": value was empty",
            file.display()
        )]
    );
}
