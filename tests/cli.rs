//! The command line as a user runs it: exit codes and what it prints.

#[allow(dead_code)]
mod common;

use common::command::text;
use common::free_port;
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

#[test]
fn check_accepts_the_shipped_rules() {
    let out = swarmpilot(&["check"], "rules");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: 7 rules in rules"),
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

/// Serve briefly (Docker pointed at nothing) and return what it logged.
fn serve_logs(log_format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .args(["--log-format", log_format, "serve"])
        .current_dir(root())
        .env("RUST_LOG", "info")
        .env("SWARMPILOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWARMPILOT_DATA_DIR", dir.path())
        .env("SWARMPILOT_DOCKER__HOST", "unix:///nonexistent/docker.sock")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let out = child.wait_with_output().unwrap();
    assert!(out.stdout.is_empty(), "logs go to stderr");
    text(&out.stderr)
}

#[test]
fn logs_are_logfmt_by_default_and_json_on_request() {
    let logfmt = serve_logs("logfmt");
    let line = logfmt
        .lines()
        .find(|l| l.contains("rules loaded"))
        .expect(&logfmt);
    assert!(
        line.contains("level=info")
            && line.contains("message=\"rules loaded\"")
            && line.contains("rules=7"),
        "{line}"
    );

    let json = serve_logs("json");
    let line = json
        .lines()
        .find(|l| l.contains("rules loaded"))
        .expect(&json);
    let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(value["level"], "INFO");
    assert_eq!(value["fields"]["message"], "rules loaded");
    assert_eq!(value["fields"]["rules"], 7);
}

/// `check` with `env` added to the process environment.
fn check_with_env(env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .arg("check")
        .current_dir(root())
        .env("SWARMPILOT_RULES_DIR", "rules")
        .env_remove("DOCKER_HOST")
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("swarmpilot runs")
}

#[test]
fn check_rejects_a_docker_host_it_cannot_reach_and_names_the_fix() {
    for (key, value) in [
        ("SWARMPILOT_DOCKER__HOST", "ssh://admin@manager"),
        ("SWARMPILOT_DOCKER__HOST", "docker.sock"),
        ("DOCKER_HOST", "npipe:////./pipe/docker_engine"),
    ] {
        let out = check_with_env(&[(key, value)]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key}={value}: {stderr}");
        assert!(stderr.contains(value), "{key}={value}: {stderr}");
        assert!(
            stderr.contains("use unix:///path/to/docker.sock"),
            "{key}={value}: {stderr}"
        );
    }
}

#[test]
fn check_accepts_a_plain_socket_path_in_docker_host() {
    let out = check_with_env(&[("DOCKER_HOST", "/var/run/docker.sock")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Numbers that used to wrap (step) or panic every matching webhook (cooldown) stop `check`.
#[test]
fn check_rejects_numbers_out_of_range_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edge.yml");
    std::fs::write(
        &file,
        "rules:\n  - name: huge-cooldown\n    match: ['alertname=\"A\"']\n    action: restart\n    cooldown: 18446744073709551615s\n  - name: huge-step\n    match: ['alertname=\"B\"']\n    action: scale_up\n    step: 18446744073709551615\n    max_replicas: 10\n",
    )
    .unwrap();
    let out = swarmpilot(&["check"], dir.path().to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    let file = file.display();
    for expected in [
        format!("{file}:5:15: cooldown \"18446744073709551615s\" is too long: at most 365d"),
        format!("{file}:9:11: step must be a whole number from 1 to 10000, not \"18446744073709551615\""),
    ] {
        assert!(stderr.contains(&expected), "missing {expected:?} in:\n{stderr}");
    }
}

/// `check` used to say "ok" while skipping these; a FIFO must not hang it either.
#[test]
fn check_reports_rule_entries_that_are_not_regular_files() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.yml"), dir.path().join("dangling.yml"))
        .unwrap();
    let fifo = dir.path().join("pipe.yaml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = swarmpilot(&["check"], dir.path().to_str().unwrap());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    for expected in [
        format!(
            "{}:1:1: is a dangling symlink: its target does not exist",
            dir.path().join("dangling.yml").display()
        ),
        format!("{}:1:1: is a FIFO, not a rule file", fifo.display()),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// `healthcheck` in `dir` (no swarmpilot.toml there) with `env` and `args`.
fn healthcheck(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
        .arg("healthcheck")
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("swarmpilot runs")
}

#[tokio::test]
async fn healthcheck_exits_0_when_the_server_of_its_config_answers() {
    let instance = common::process::Instance::new();
    let server = instance.start("unix:///nonexistent/docker.sock").await;
    let config = instance.dir.path().join("swarmpilot.toml");
    let out = healthcheck(
        instance.dir.path(),
        &["--config", config.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "healthy: http://127.0.0.1:{}/-/healthy answered 200\n",
            server.port
        )
    );
    // The same server found through the environment alone, as in a container with env overrides;
    // a wildcard listen address is probed on loopback.
    let listen = format!("0.0.0.0:{}", server.port);
    let elsewhere = tempfile::tempdir().unwrap();
    let out = healthcheck(
        elsewhere.path(),
        &[],
        &[
            ("SWARMPILOT_LISTEN", &listen),
            ("SWARMPILOT_AUTH__ALLOW_UNAUTHENTICATED", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn healthcheck_exits_1_with_one_line_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = healthcheck(
        dir.path(),
        &["--timeout", "2s"],
        &[("SWARMPILOT_LISTEN", &format!("127.0.0.1:{port}"))],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "swarmpilot: unhealthy: http://127.0.0.1:{port}/-/healthy: Connection refused"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = healthcheck(dir.path(), &["--url", "ftp://127.0.0.1/"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("only http:// and https:// are probed"),
        "{}",
        text(&out.stderr)
    );
}

/// `docker build .` where rust:1-bookworm can be pulled: its build stage must have every file the
/// manifest names (cargo reads every declared target), and .dockerignore must let them through.
/// Checked here without the image: the COPY sources into a directory, then `cargo fetch
/// --offline`, which parses every target like the build does.
#[test]
fn the_dockerfile_build_stage_copies_every_file_the_manifest_needs() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let build_stage: Vec<&str> = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM ") || !l.contains(" AS build"))
        .skip(1)
        .take_while(|l| !l.starts_with("FROM "))
        .collect();
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let context = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for line in build_stage.iter().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (sources, dest) = words.split_at(words.len() - 1);
        for source in sources {
            assert!(
                dest[0] == "./" || dest[0] == format!("./{source}"),
                "{line}: this test expects sources copied to the same place"
            );
            assert!(
                ignore.lines().any(|l| l.trim() == format!("!{source}")),
                ".dockerignore keeps {source} out of the context"
            );
            let status = Command::new("cp")
                .args(["-r", source])
                .arg(context.path())
                .current_dir(root())
                .status()
                .unwrap();
            assert!(status.success(), "cp {source}");
            copied += 1;
        }
    }
    assert!(
        copied >= 4,
        "found only {copied} COPY sources in:\n{dockerfile}"
    );
    let out = Command::new("cargo")
        .args(["fetch", "--offline", "--locked"])
        .current_dir(context.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `check` reads the swarm it is pointed at: a ceiling the placement cannot hold is a warning
/// with the arithmetic, the config still passes.
#[test]
fn check_warns_when_a_services_max_replicas_exceeds_what_its_placement_allows() {
    common::swarm::require_docker();
    let svc = common::swarm::TestService::opted_in_with(
        "placement",
        &[
            "--label",
            "swarmpilot.test=true",
            "--label",
            "swarmpilot.max_replicas=3",
            "--replicas",
            "0",
            "--replicas-max-per-node",
            "1",
            "--constraint",
            "node.role==manager",
        ],
        common::swarm::TEST_IMAGE,
        &[],
    );
    let nodes = common::swarm::docker(&["node", "ls", "-q"]).unwrap();
    let managers = nodes.lines().count();
    let out = check_with_env(&[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let expected = format!(
        "warning: service {}: label swarmpilot.max_replicas=3 exceeds what its placement allows on the current nodes: {managers} ({managers} eligible node(s) × max_replicas_per_node 1)",
        svc.name
    );
    assert!(stderr.contains(&expected), "{expected}\nnot in:\n{stderr}");
}

#[test]
fn check_without_a_reachable_engine_notes_it_and_passes() {
    let out = check_with_env(&[("SWARMPILOT_DOCKER__HOST", "unix:///nonexistent/docker.sock")]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("note: placement of opted-in services not checked"),
        "{stderr}"
    );
}
