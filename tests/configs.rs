//! The shipped configuration, validated by the real tools: amtool for the Alertmanager route,
//! promtool for the alert rules and their unit tests, the Docker engine for the stack files, and
//! swarmpilot's own loader for the rules those alerts reach.

#[allow(dead_code)]
mod common;

use common::{docker, remove_stacks, require_docker};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use swarmpilot::parse::{Alert, AlertStatus};
use swarmpilot::rules::load_rules_dir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("{program} not installed ({e}): run scripts/test.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

#[test]
fn alertmanager_config_passes_amtool() {
    let text = run("amtool", &["check-config", "alertmanager/alertmanager.yml"]);
    assert!(text.contains("SUCCESS"), "{text}");
    let config = std::fs::read_to_string(root().join("alertmanager/alertmanager.yml")).unwrap();
    for needle in [
        "max_alerts: 0",
        "send_resolved: true",
        "credentials_file: /run/secrets/swarmpilot_token",
        "url: http://swarmpilot:9095/webhook",
    ] {
        assert!(config.contains(needle), "alertmanager.yml lacks {needle}");
    }
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    run("promtool", &["check", "rules", "alertmanager/alerts.yml"]);
    let text = run(
        "promtool",
        &["test", "rules", "alertmanager/alerts_test.yml"],
    );
    assert!(text.contains("SUCCESS"), "{text}");
}

/// Labels of every alert in alerts.yml as its rule gives them, with the alert's name.
fn shipped_alerts() -> Vec<(String, BTreeMap<String, String>)> {
    let text = std::fs::read_to_string(root().join("alertmanager/alerts.yml")).unwrap();
    let doc: serde_json::Value = marked_yaml::from_yaml(0, &text).unwrap();
    let mut alerts = Vec::new();
    for group in doc["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts.push((name.to_string(), common::band::labels_of(rule)));
        }
    }
    alerts
}

/// The receivers the shipped route picks for `labels`, in route order, as amtool resolves them.
fn receivers(labels: &BTreeMap<String, String>) -> Vec<String> {
    let mut args: Vec<String> = [
        "config",
        "routes",
        "test",
        "--config.file=alertmanager/alertmanager.yml",
    ]
    .map(String::from)
    .into();
    args.extend(labels.iter().map(|(k, v)| format!("{k}={v}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // stdout (the receivers, comma-separated) comes before amtool's stderr warnings.
    let text = run("amtool", &args);
    let line = text.lines().next().unwrap_or_default();
    line.split(',').map(String::from).collect()
}

/// Every shipped alert is routed by the shipped alertmanager.yml as it should be: a remediation
/// alert to swarmpilot, where a shipped rule acts on it (and to the human receiver as well when
/// it carries cc="human"); a meta-alert (notify="human") to the human receiver only. A
/// remediation alert without a rule, or a meta-alert without its label, fails here.
#[test]
fn every_shipped_alert_reaches_a_shipped_rule_or_only_a_person() {
    let rules = load_rules_dir(&root().join("rules")).unwrap();
    let (mut remediation, mut human_only) = (0, 0);
    for (name, mut labels) in shipped_alerts() {
        if labels.get("notify").map(String::as_str) == Some("human") {
            assert_eq!(receivers(&labels), ["human"], "{name} is for a person only");
            human_only += 1;
            continue;
        }
        // cAdvisor's series give the service; PostgresDiskFilling names its job itself.
        labels
            .entry("service".into())
            .or_insert_with(|| "app_web".into());
        let expected: &[&str] = match labels.get("cc").map(String::as_str) {
            Some("human") => &["human", "swarmpilot"],
            _ => &["swarmpilot"],
        };
        assert_eq!(receivers(&labels), expected, "{name}");
        let alert = Alert {
            status: AlertStatus::Firing,
            labels,
            ..Default::default()
        };
        let matched: Vec<&str> = rules.matching(&alert).map(|r| r.name.as_str()).collect();
        assert!(
            !matched.is_empty(),
            "alert {name} reaches swarmpilot but no rule in rules/"
        );
        remediation += 1;
    }
    assert_eq!((remediation, human_only), (7, 6));
}

/// Every alert in alerts.yml that reaches a `scale_to_target` rule reaches no other rule, fires
/// exactly outside that rule's target ± tolerance and carries the raw value the rule reads. That
/// the fixed-step alerts leave its services out is alerts_test.yml's to show.
#[test]
fn target_alerts_fire_outside_their_rules_band() {
    let rules = load_rules_dir(&root().join("rules")).unwrap();
    let text = std::fs::read_to_string(root().join("alertmanager/alerts.yml")).unwrap();
    let doc: serde_json::Value = marked_yaml::from_yaml(0, &text).unwrap();
    let alert_rules: Vec<&serde_json::Value> = doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter(|r| r["alert"].is_string())
        .collect();
    let tracked: Vec<String> = alert_rules
        .iter()
        .filter_map(|r| common::band::check_target_alert(r, &rules))
        .collect();
    assert_eq!(tracked, ["cpu-target"]);
}

/// The route's contract on hand-written labels, whatever alerts.yml holds: amtool's
/// --verify.receivers fails on any other answer.
#[test]
fn route_sends_remediation_to_swarmpilot_and_meta_alerts_to_a_person_only() {
    for (labels, expected) in [
        (
            "alertname=ServiceHighCPU service=app_web severity=warning",
            "swarmpilot",
        ),
        (
            "alertname=ServiceRolloutFailing service=app_web severity=critical cc=human",
            "human,swarmpilot",
        ),
        (
            "alertname=SwarmpilotDown job=swarmpilot notify=human",
            "human",
        ),
        // A meta-alert never reaches swarmpilot, even one that names a service.
        (
            "alertname=SwarmpilotActionsFailing service=app_web cc=human notify=human",
            "human",
        ),
        // An alert nobody wrote a rule for: swarmpilot answers no_match and counts it.
        ("alertname=SomethingElse service=app_web", "swarmpilot"),
    ] {
        let verify = format!("--verify.receivers={expected}");
        let mut args = vec![
            "config",
            "routes",
            "test",
            "--config.file=alertmanager/alertmanager.yml",
            verify.as_str(),
        ];
        args.extend(labels.split(' '));
        run("amtool", &args);
    }
}

/// cAdvisor exports only the container labels it is told to (`--whitelisted_container_labels`
/// in monitoring.yml), as `container_label_<name>` with every other character than a letter,
/// digit or `_` made `_`: a label alerts.yml reads that is not on the list is never there, and
/// the rules that select by it (swarmpilot.scaling: target tracking or fixed steps) silently
/// match nothing.
#[test]
fn every_container_label_the_alerts_read_is_one_cadvisor_exports() {
    // The stack file uses YAML anchors, which marked_yaml does not read: the flag from its text.
    let stack = std::fs::read_to_string(root().join("stacks/monitoring.yml")).unwrap();
    let flag = regex::Regex::new(r#""--whitelisted_container_labels=([^"]*)""#).unwrap();
    let mut flags = flag.captures_iter(&stack);
    let whitelist = flags
        .next()
        .expect("cadvisor's --whitelisted_container_labels")[1]
        .to_string();
    assert!(
        flags.next().is_none(),
        "one cAdvisor command in monitoring.yml"
    );
    let exported: Vec<String> = whitelist
        .split(',')
        .map(|l| {
            let name: String = l
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("container_label_{name}")
        })
        .collect();
    let rules = std::fs::read_to_string(root().join("alertmanager/alerts.yml")).unwrap();
    let read = regex::Regex::new(r"container_label_[a-zA-Z0-9_]+").unwrap();
    let mut seen = 0;
    for label in read.find_iter(&rules) {
        assert!(
            exported.iter().any(|e| e == label.as_str()),
            "alerts.yml reads {}, which cAdvisor does not export ({exported:?})",
            label.as_str()
        );
        seen += 1;
    }
    assert!(seen > 0, "alerts.yml reads no container label");
}

/// The Grafana dashboard plots recording rules by name: each must be one alerts.yml records.
#[test]
fn dashboard_queries_use_recorded_series() {
    let rules = std::fs::read_to_string(root().join("alertmanager/alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(
        root().join("stacks/monitoring/grafana/dashboards/swarmpilot.json"),
    )
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let recorded = regex::Regex::new(r"[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+").unwrap();
    let mut seen = 0;
    for panel in doc["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            for name in recorded.find_iter(expr) {
                let name = name.as_str();
                assert!(
                    rules.contains(&format!("- record: {name}\n")),
                    "the dashboard plots {name}, which alerts.yml does not record"
                );
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "the dashboard plots no recording rule");
}

fn secret(name: &str) {
    if docker(&["secret", "inspect", name]).is_err() {
        let status = Command::new("sh")
            .args([
                "-c",
                &format!("printf test-secret | docker secret create {name} -"),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "could not create secret {name}");
    }
}

fn deploy(file: &Path, stack: &str) -> String {
    docker(&[
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        "--detach=true",
        "-c",
        file.to_str().unwrap(),
        stack,
    ])
    .unwrap_or_else(|e| panic!("{} does not deploy: {e}", file.display()))
}

fn inspect(service: &str, format: &str) -> String {
    docker(&["service", "inspect", "--format", format, service])
        .unwrap_or_else(|e| panic!("{service}: {e}"))
}

/// The stacks parse and deploy on the real swarm (images are not pulled: no registry here), in
/// the order an operator deploys them, and carry what swarmpilot and the operator rely on.
#[test]
fn shipped_stacks_deploy_on_the_swarm() {
    require_docker();
    let stacks = ["backup", "monitoring", "app"];
    remove_stacks(&stacks);
    for name in [
        "swarmpilot_token",
        "swarmpilot_grafana_token",
        "grafana_admin_password",
        "postgres_password",
    ] {
        secret(name);
    }
    let dir = root().join("stacks");
    deploy(&dir.join("app.yml"), "app");
    deploy(&dir.join("monitoring.yml"), "monitoring");
    deploy(&dir.join("backup.yml"), "backup");

    // Application: opted in with bounds, rollback-safe updates, spread, encrypted networks.
    assert_eq!(
        inspect("app_web", "{{index .Spec.Labels \"swarmpilot.enable\"}}"),
        "true"
    );
    assert_eq!(
        inspect(
            "app_web",
            "{{index .Spec.Labels \"swarmpilot.max_replicas\"}}"
        ),
        "6",
        "2 per node on 3 nodes"
    );
    assert_eq!(
        inspect("app_web", "{{.Spec.UpdateConfig.FailureAction}}"),
        "rollback"
    );
    assert_eq!(
        inspect("app_web", "{{.Spec.RollbackConfig.FailureAction}}"),
        "pause"
    );
    assert_eq!(
        inspect("app_web", "{{.Spec.TaskTemplate.Placement.MaxReplicas}}"),
        "2"
    );
    assert_eq!(
        inspect("app_db", "{{index .Spec.Labels \"swarmpilot.enable\"}}"),
        "",
        "stateful db is never automated"
    );
    let data = docker(&[
        "network",
        "inspect",
        "--format",
        "{{.Internal}} {{index .Options \"encrypted\"}}",
        "app_data",
    ])
    .unwrap();
    assert_eq!(data, "true true");
    let front = docker(&[
        "network",
        "inspect",
        "--format",
        "{{index .Options \"encrypted\"}}",
        "app_frontend",
    ])
    .unwrap();
    assert_eq!(front, "true");

    // Monitoring: every component, swarmpilot on a manager with the socket and its secrets.
    for service in [
        "swarmpilot",
        "prometheus",
        "alertmanager",
        "grafana",
        "loki",
        "promtail",
        "cadvisor",
        "node-exporter",
    ] {
        inspect(&format!("monitoring_{service}"), "{{.ID}}");
    }
    let swarmpilot = "monitoring_swarmpilot";
    assert_eq!(
        inspect(
            swarmpilot,
            "{{json .Spec.TaskTemplate.Placement.Constraints}}"
        ),
        "[\"node.role == manager\"]"
    );
    let mounts = inspect(
        swarmpilot,
        "{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Target}} {{end}}",
    );
    assert!(mounts.contains("/var/run/docker.sock"), "{mounts}");
    let secrets = inspect(
        swarmpilot,
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
    );
    let mut secrets: Vec<&str> = secrets.split_whitespace().collect();
    secrets.sort();
    assert_eq!(secrets, ["swarmpilot_grafana_token", "swarmpilot_token"]);
    assert_eq!(
        inspect(
            "monitoring_cadvisor",
            "{{if .Spec.Mode.Global}}global{{end}}"
        ),
        "global"
    );

    // Every long-running service: a pinned image, a health check (Loki's distroless image has
    // no way to run one: Prometheus scrapes it instead), limits, and updates that roll back.
    for service in [
        "app_web",
        "app_api",
        "app_db",
        "monitoring_swarmpilot",
        "monitoring_prometheus",
        "monitoring_alertmanager",
        "monitoring_grafana",
        "monitoring_loki",
        "monitoring_promtail",
        "monitoring_cadvisor",
        "monitoring_node-exporter",
    ] {
        let image = inspect(service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}");
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest" && !tag.contains('/'),
            "{service}: image {image} is not pinned to a version"
        );
        let health = inspect(
            service,
            "{{if .Spec.TaskTemplate.ContainerSpec.Healthcheck}}{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}{{end}}",
        );
        assert_eq!(
            health.is_empty(),
            service == "monitoring_loki",
            "{service}: health check {health:?}"
        );
        let limits = inspect(
            service,
            "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
        );
        assert!(
            limits.parse::<u64>().is_ok_and(|b| b > 0),
            "{service}: no memory limit ({limits})"
        );
        assert_eq!(
            inspect(service, "{{.Spec.UpdateConfig.FailureAction}}"),
            "rollback",
            "{service}"
        );
        assert!(
            !inspect(service, "{{.Spec.RollbackConfig.FailureAction}}").is_empty(),
            "{service}: no rollback_config"
        );
    }
    // Nothing started by hand joins the networks that reach Alertmanager or the database.
    for network in ["monitoring_monitoring", "app_data"] {
        assert_eq!(
            docker(&["network", "inspect", "--format", "{{.Attachable}}", network]).unwrap(),
            "false",
            "{network}"
        );
    }

    // Backup: job services swarmpilot can run, on the app's data network.
    for job in ["backup_postgres-dump", "backup_volume-tar"] {
        assert_eq!(inspect(job, "{{.Spec.Mode.Replicated.Replicas}}"), "0");
        assert_eq!(
            inspect(job, "{{.Spec.TaskTemplate.RestartPolicy.Condition}}"),
            "none"
        );
        assert_eq!(
            inspect(job, "{{index .Spec.Labels \"swarmpilot.enable\"}}"),
            "true"
        );
    }
    let args = inspect(
        "backup_postgres-dump",
        "{{json .Spec.TaskTemplate.ContainerSpec.Args}}",
    );
    assert!(
        args.contains("-mtime +7 -delete"),
        "7-day retention: {args}"
    );

    a_changed_config_deploys_under_a_new_version_only();
    remove_stacks(&stacks);
}

/// README "Changing configuration later", as written: an edited file under the same
/// SP_CONFIG_VERSION is refused by Swarm, under a new one the services move to the new config.
fn a_changed_config_deploys_under_a_new_version_only() {
    let copy = tempfile::tempdir().unwrap();
    for dir in ["stacks", "rules", "alertmanager"] {
        let status = Command::new("cp")
            .args(["-r", root().join(dir).to_str().unwrap()])
            .arg(copy.path())
            .status()
            .unwrap();
        assert!(status.success(), "cp {dir}");
    }
    let toml = copy.path().join("stacks/monitoring/swarmpilot.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str("\n# edited by the operator\n");
    std::fs::write(&toml, text).unwrap();
    let redeploy = |version: Option<&str>| {
        let mut command = Command::new("docker");
        command
            .args([
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "--detach=true",
                "-c",
            ])
            .arg(copy.path().join("stacks/monitoring.yml"))
            .arg("monitoring")
            .env_remove("SP_CONFIG_VERSION");
        if let Some(version) = version {
            command.env("SP_CONFIG_VERSION", version);
        }
        command.output().unwrap()
    };
    let same = redeploy(None);
    let said = String::from_utf8_lossy(&same.stderr);
    assert!(
        !same.status.success() && said.contains("only updates to Labels are allowed"),
        "an edited config under the same name: {said}"
    );
    let next = redeploy(Some("2"));
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    let configs = inspect(
        "monitoring_swarmpilot",
        "{{range .Spec.TaskTemplate.ContainerSpec.Configs}}{{.ConfigName}} {{end}}",
    );
    assert!(
        configs.contains("monitoring_swarmpilot_toml_v2"),
        "{configs}"
    );
}
