use super::*;
use crate::rules::load::parse_rule_file;
use bollard::models::TaskSpecPlacement;
use bollard::models::{ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec};
use rstest::rstest;

fn node(hostname: &str, role: &str, labels: &[(&str, &str)]) -> NodeFacts {
    NodeFacts {
        id: format!("id-{hostname}"),
        hostname: hostname.into(),
        role: role.into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        engine_labels: HashMap::new(),
        schedulable: true,
    }
}

/// Three managers (one of them labelled ssd), two workers, one worker drained.
fn nodes() -> Vec<NodeFacts> {
    let mut drained = node("w3", "worker", &[]);
    drained.schedulable = false;
    vec![
        node("m1", "manager", &[("disk", "ssd")]),
        node("m2", "manager", &[]),
        node("m3", "manager", &[]),
        node("w1", "worker", &[("disk", "SSD")]),
        node("w2", "worker", &[]),
        drained,
    ]
}

#[rstest]
#[case::none(&[], 5)]
#[case::managers(&["node.role==manager"], 3)]
#[case::spaces_and_case(&["Node.Role == Manager"], 3)]
#[case::not_manager(&["node.role!=manager"], 2)]
#[case::label_case_insensitive(&["node.labels.disk==ssd"], 2)]
#[case::missing_label_is_empty(&["node.labels.disk!=ssd"], 3)]
#[case::both(&["node.role==manager", "node.labels.disk==ssd"], 1)]
#[case::hostname(&["node.hostname==w2"], 1)]
#[case::never(&["node.labels.never==true"], 0)]
#[case::platform(&["node.platform.os==linux", "node.platform.arch!=arm64"], 5)]
fn eligible_nodes_as_the_scheduler_counts_them(
    #[case] constraints: &[&str],
    #[case] eligible: u64,
) {
    let parsed: Vec<Constraint> = constraints
        .iter()
        .map(|c| Constraint::parse(c).unwrap())
        .collect();
    let cap = capacity(&parsed, Some(2), &nodes()).unwrap().unwrap();
    assert_eq!(cap.eligible_nodes, eligible);
    assert_eq!(cap.replicas, eligible * 2);
}

#[test]
fn without_max_replicas_per_node_nothing_bounds_the_placement() {
    assert_eq!(capacity(&[], None, &nodes()).unwrap(), None);
    assert_eq!(capacity(&[], Some(0), &nodes()).unwrap(), None);
}

#[rstest]
#[case("node.role", "neither == nor !=")]
#[case("==manager", "lacks a key")]
#[case("node.role==", "lacks a key or a value")]
fn malformed_constraints_are_named(#[case] text: &str, #[case] why: &str) {
    let err = Constraint::parse(text).unwrap_err();
    assert!(err.contains(why), "{err}");
}

#[test]
fn an_unknown_key_is_an_error_not_a_guess() {
    let c = Constraint::parse("node.colour==blue").unwrap();
    assert!(capacity(&[c], Some(1), &nodes())
        .unwrap_err()
        .contains("node.colour"));
}

fn service(
    name: &str,
    label_max: Option<&str>,
    constraints: &[&str],
    per_node: Option<i64>,
) -> Service {
    let mut labels = HashMap::from([("swarmpilot.enable".to_string(), "true".to_string())]);
    if let Some(max) = label_max {
        labels.insert(MAX_REPLICAS_LABEL.into(), max.into());
    }
    Service {
        spec: Some(ServiceSpec {
            name: Some(name.into()),
            labels: Some(labels),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(2) }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                placement: Some(TaskSpecPlacement {
                    constraints: Some(constraints.iter().map(|c| c.to_string()).collect()),
                    max_replicas: per_node,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rules() -> RuleSet {
    let text = "rules:\n  - name: up\n    match: ['alertname=\"A\"']\n    action: scale_up\n    step: 1\n    max_replicas: 10\n    cooldown: 1m\n";
    let (rules, errors) = parse_rule_file(std::path::Path::new("up.yml"), text);
    assert!(errors.is_empty(), "{errors:?}");
    RuleSet::new(rules)
}

#[test]
fn a_label_past_the_placement_is_warned_about_with_the_arithmetic() {
    // stacks/app.yml's old app_web: 8 allowed, 2 per node on 3 nodes.
    let svc = service("app_web", Some("8"), &["node.role==manager"], Some(2));
    let warnings = warnings(&[svc], &nodes(), &rules());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    for needle in [
        "app_web",
        "swarmpilot.max_replicas=8",
        "6 (3 eligible node(s) × max_replicas_per_node 2)",
    ] {
        assert!(w.contains(needle), "{needle} in {w}");
    }
}

#[test]
fn without_a_label_the_rules_ceiling_is_the_one_checked() {
    let svc = service("app_api", None, &["node.role==worker"], Some(1));
    let warnings = warnings(&[svc], &nodes(), &rules());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("rule up's max_replicas 10"),
        "{}",
        warnings[0]
    );
}

#[rstest]
#[case::fits(Some("6"), Some(2))]
#[case::unbounded_placement(Some("8"), None)]
#[case::label_above_rule_but_rule_fits(Some("50"), Some(4))]
fn what_fits_is_not_warned_about(#[case] label: Option<&str>, #[case] per_node: Option<i64>) {
    let svc = service("ok", label, &["node.role==manager"], per_node);
    assert_eq!(warnings(&[svc], &nodes(), &rules()), Vec::<String>::new());
}

#[test]
fn a_constraint_it_cannot_evaluate_is_said_not_skipped() {
    let svc = service("odd", Some("3"), &["node.ip==10.0.0.0/8"], Some(1));
    let warnings = warnings(&[svc], &nodes(), &rules());
    assert!(
        warnings[0].contains("placement not checked"),
        "{warnings:?}"
    );
}

#[test]
fn a_target_tracking_rule_s_ceiling_is_checked_too() {
    let text = "rules:\n  - name: up\n    match: ['alertname=\"A\"']\n    action: scale_up\n    max_replicas: 4\n  - name: cpu-target\n    match: ['alertname=\"B\"']\n    action: scale_to_target\n    target: 0.6\n    value_from: annotation:value\n    max_replicas: 20\n";
    let (rules, errors) = parse_rule_file(std::path::Path::new("t.yml"), text);
    assert!(errors.is_empty(), "{errors:?}");
    let svc = service("app_api", None, &["node.role==worker"], Some(1));
    let warnings = warnings(&[svc], &nodes(), &RuleSet::new(rules));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("rule cpu-target's max_replicas 20"),
        "{}",
        warnings[0]
    );
}
