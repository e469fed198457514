use crate::rules::load::parse_rule_file;
use crate::rules::{Action, Finite, StepLimit, TargetTracking, ValueSource};
use rstest::rstest;
use std::path::Path;
use std::time::Duration;

fn errors_of(text: &str) -> Vec<String> {
    let (_, errors) = parse_rule_file(Path::new("r.yml"), text);
    errors.iter().map(ToString::to_string).collect()
}

/// A scale_to_target rule with `extra` lines (each `key: value`) after the required keys.
fn rule(extra: &[&str]) -> String {
    let mut text = String::from(
        "rules:\n  - name: cpu-target\n    match: ['alertname=\"ServiceCPUOffTarget\"']\n    action: scale_to_target\n",
    );
    for line in extra {
        text.push_str(&format!("    {line}\n"));
    }
    text
}

fn tracking_of(text: &str) -> TargetTracking {
    let (rules, errors) = parse_rule_file(Path::new("r.yml"), text);
    assert!(errors.is_empty(), "{errors:?}");
    match &rules[0].action {
        Action::ScaleToTarget(tracking) => (**tracking).clone(),
        other => panic!("{other:?}"),
    }
}

const REQUIRED: [&str; 3] = [
    "target: 0.6",
    "value_from: annotation:value",
    "max_replicas: 20",
];

/// The issue's example, every key set.
#[test]
fn loads_every_key() {
    let text = rule(&[
        "target: 0.6            # the per-replica value to hold",
        "value_from: annotation:value",
        "tolerance: 0.1",
        "min_replicas: 2",
        "max_replicas: 20",
        "scale_down_stabilization: 10m",
        "max_step_up: 4",
        "max_step_down: 50%",
        "cooldown: 1m",
    ]);
    let (rules, errors) = parse_rule_file(Path::new("r.yml"), &text);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(rules[0].cooldown, Duration::from_secs(60));
    assert_eq!(
        tracking_of(&text),
        TargetTracking {
            target: Finite::new(0.6).unwrap(),
            value_from: ValueSource::Annotation {
                name: "value".into()
            },
            tolerance: Finite::new(0.1).unwrap(),
            min_replicas: 2,
            max_replicas: 20,
            scale_down_stabilization_ms: 600_000,
            max_step_up: StepLimit::replicas(4),
            max_step_down: StepLimit::percent(50),
            reading: None,
        }
    );
}

#[test]
fn defaults_are_hpa_s() {
    let tracking = tracking_of(&rule(&REQUIRED));
    assert_eq!(tracking.tolerance.get(), 0.1);
    assert_eq!(tracking.min_replicas, 1);
    assert_eq!(
        tracking.scale_down_stabilization(),
        Duration::from_secs(300)
    );
    assert_eq!(tracking.max_step_up, StepLimit::DEFAULT_UP);
    assert_eq!(tracking.max_step_down, StepLimit::DEFAULT_DOWN);
}

#[rstest]
#[case::bounds_of_every_range(&["tolerance: 0", "min_replicas: 10000", "max_replicas: 10000", "scale_down_stabilization: 1h", "max_step_up: 1000%", "max_step_down: 100%"])]
#[case::zero_window(&["scale_down_stabilization: 0s", "max_step_up: 10000", "max_step_down: 1"])]
#[case::exponent_and_tiny_target(&["tolerance: 0.999"])]
fn values_at_the_edges_load(#[case] extra: &[&str]) {
    let mut lines: Vec<&str> = vec!["target: 1e-3", "value_from: annotation:value"];
    lines.extend_from_slice(extra);
    if !extra.iter().any(|l| l.starts_with("max_replicas")) {
        lines.push("max_replicas: 20");
    }
    tracking_of(&rule(&lines));
}

/// Every bad value at its own line and column, with the range or form it must have.
#[rstest]
#[case::target_zero(
    "target: 0",
    "5:13: target must be a finite number greater than 0, not \"0\""
)]
#[case::target_negative(
    "target: -0.6",
    "5:13: target must be a finite number greater than 0, not \"-0.6\""
)]
#[case::target_nan(
    "target: NaN",
    "5:13: target must be a finite number greater than 0, not \"NaN\""
)]
#[case::target_inf(
    "target: .inf",
    "5:13: target must be a finite number greater than 0, not \".inf\""
)]
#[case::target_overflow(
    "target: 1e999",
    "5:13: target must be a finite number greater than 0, not \"1e999\""
)]
#[case::target_text(
    "target: sixty",
    "5:13: target must be a finite number greater than 0, not \"sixty\""
)]
#[case::tolerance_one(
    "tolerance: 1",
    "5:16: tolerance must be a number from 0 up to (not including) 1, not \"1\""
)]
#[case::tolerance_negative(
    "tolerance: -0.1",
    "5:16: tolerance must be a number from 0 up to (not including) 1, not \"-0.1\""
)]
#[case::tolerance_nan(
    "tolerance: nan",
    "5:16: tolerance must be a number from 0 up to (not including) 1, not \"nan\""
)]
#[case::tolerance_percent(
    "tolerance: 10%",
    "5:16: tolerance must be a number from 0 up to (not including) 1, not \"10%\""
)]
#[case::value_from_query("value_from: query:up", "5:17: value_from must be annotation:<name>, the alert annotation that holds the value (a label name), not \"query:up\"")]
#[case::value_from_no_name(
    "value_from: 'annotation:'",
    "5:17: value_from must be annotation:<name>"
)]
#[case::value_from_bad_name(
    "value_from: annotation:cpu-value",
    "5:17: value_from must be annotation:<name>"
)]
#[case::value_from_bare("value_from: value", "5:17: value_from must be annotation:<name>")]
#[case::min_zero(
    "min_replicas: 0",
    "5:19: min_replicas must be a whole number from 1 to 10000, not \"0\""
)]
#[case::min_huge(
    "min_replicas: 18446744073709551615",
    "5:19: min_replicas must be a whole number from 1 to 10000"
)]
#[case::window_too_long(
    "scale_down_stabilization: 2h",
    "5:31: scale_down_stabilization \"2h\" is too long: at most 1h"
)]
#[case::window_overflow(
    "scale_down_stabilization: 99999999999999999999s",
    "5:31: scale_down_stabilization \"99999999999999999999s\" is too long: at most 1h"
)]
#[case::window_not_a_duration("scale_down_stabilization: soon", "5:31: invalid duration \"soon\"")]
#[case::step_up_zero("max_step_up: 0", "5:18: max_step_up must be a whole number of replicas from 1 to 10000 or a whole percent from 1% to 1000%, not \"0\"")]
#[case::step_up_zero_percent("max_step_up: 0%", "5:18: max_step_up must be a whole number of replicas from 1 to 10000 or a whole percent from 1% to 1000%, not \"0%\"")]
#[case::step_up_past_percent("max_step_up: 1001%", "5:18: max_step_up must be")]
#[case::step_up_past_replicas("max_step_up: 10001", "5:18: max_step_up must be")]
#[case::step_up_fraction("max_step_up: 1.5", "5:18: max_step_up must be")]
#[case::step_up_negative("max_step_up: -2", "5:18: max_step_up must be")]
#[case::step_down_past_all("max_step_down: 101%", "5:20: max_step_down must be a whole number of replicas from 1 to 10000 or a whole percent from 1% to 100%, not \"101%\"")]
#[case::step_down_text("max_step_down: half", "5:20: max_step_down must be")]
fn bad_values_are_reported_where_they_are(#[case] line: &str, #[case] expected: &str) {
    let key = line.split(':').next().unwrap();
    let mut lines = vec![line];
    lines.extend(REQUIRED.iter().filter(|r| !r.starts_with(key)));
    let errors = errors_of(&rule(&lines));
    let expected = format!("r.yml:{expected}");
    assert!(
        errors.len() == 1 && errors[0].starts_with(&expected),
        "expected {expected:?}, got {errors:#?}"
    );
}

#[rstest]
#[case::no_target(
    "target",
    "r.yml:4:13: scale_to_target needs target, the per-replica value to hold"
)]
#[case::no_value_from("value_from", "r.yml:4:13: scale_to_target needs value_from (annotation:<name>, the alert annotation that holds the value) or query (PromQL for it)")]
#[case::no_max(
    "max_replicas",
    "r.yml:4:13: scale_to_target needs max_replicas, the bound it never exceeds"
)]
fn required_keys_are_named_at_the_action(#[case] missing: &str, #[case] expected: &str) {
    let lines: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|r| !r.starts_with(missing))
        .collect();
    assert_eq!(errors_of(&rule(&lines)), [expected]);
}

#[test]
fn max_below_min_is_reported_at_max() {
    let errors = errors_of(&rule(&[
        "target: 0.6",
        "value_from: annotation:value",
        "min_replicas: 5",
        "max_replicas: 3",
    ]));
    assert_eq!(
        errors,
        ["r.yml:8:19: max_replicas 3 is below min_replicas 5"]
    );
}

#[test]
fn every_faulty_key_is_reported_at_once() {
    let errors = errors_of(&rule(&[
        "target: 0",
        "value_from: nowhere",
        "tolerance: 2",
        "max_replicas: 0",
        "max_step_down: 0",
    ]));
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

#[rstest]
#[case::step("step: 2", "r.yml:8:11: step does not apply to action scale_to_target")]
#[case::job(
    "job: backup",
    "r.yml:8:10: job does not apply to action scale_to_target"
)]
fn other_actions_keys_do_not_apply(#[case] line: &str, #[case] expected: &str) {
    let mut lines = REQUIRED.to_vec();
    lines.push(line);
    assert_eq!(errors_of(&rule(&lines)), [expected]);
}

#[rstest]
#[case::target("scale_up", "target: 0.6", "target does not apply to action scale_up")]
#[case::value_from(
    "restart",
    "value_from: annotation:value",
    "value_from does not apply to action restart"
)]
#[case::tolerance(
    "scale_down",
    "tolerance: 0.1",
    "tolerance does not apply to action scale_down"
)]
#[case::window(
    "scale_down",
    "scale_down_stabilization: 5m",
    "scale_down_stabilization does not apply to action scale_down"
)]
#[case::step_up(
    "scale_up",
    "max_step_up: 4",
    "max_step_up does not apply to action scale_up"
)]
#[case::step_down(
    "rollback",
    "max_step_down: 50%",
    "max_step_down does not apply to action rollback"
)]
fn target_keys_apply_to_scale_to_target_only(
    #[case] action: &str,
    #[case] line: &str,
    #[case] expected: &str,
) {
    let bound = if action == "scale_up" {
        "    max_replicas: 3\n"
    } else {
        ""
    };
    let text = format!(
        "rules:\n  - name: a\n    match: ['x=y']\n    action: {action}\n{bound}    {line}\n"
    );
    let errors = errors_of(&text);
    assert!(
        errors.len() == 1 && errors[0].ends_with(expected),
        "{errors:#?}"
    );
}

const QUERY: &str = r#"query: 'avg(rate(cpu{service="$service"}[1m]))'"#;

#[test]
fn a_query_is_where_the_value_comes_from() {
    let text = rule(&["target: 0.6", QUERY, "max_replicas: 20"]);
    let tracking = tracking_of(&text);
    let ValueSource::Query { query } = &tracking.value_from else {
        panic!("{:?}", tracking.value_from)
    };
    assert_eq!(query.as_str(), r#"avg(rate(cpu{service="$service"}[1m]))"#);
    assert_eq!(
        query.for_service("app_web"),
        r#"avg(rate(cpu{service="app_web"}[1m]))"#
    );
}

#[test]
fn a_query_may_span_lines() {
    let text = rule(&[
        "target: 0.6",
        "query: |",
        "      sum(rate(cpu{service=\"$service\"}[1m]))",
        "        / count(up{service=\"$service\"})",
        "max_replicas: 20",
    ]);
    assert!(matches!(
        tracking_of(&text).value_from,
        ValueSource::Query { .. }
    ));
}

#[rstest]
#[case::not_promql("query: avg(rate(cpu[1m])", "7:12: query is not PromQL")]
#[case::no_service(
    "query: avg(rate(cpu[1m]))",
    "7:12: query must select the service with a label matcher whose value is \"$service\""
)]
#[case::range(
    "query: 'cpu{service=\"$service\"}[1m]'",
    "7:12: query must return an instant vector or a scalar"
)]
fn a_bad_query_is_reported_at_its_key(#[case] line: &str, #[case] expected: &str) {
    let errors = errors_of(&rule(&["target: 0.6", "max_replicas: 20", line]));
    assert!(
        errors.len() == 1 && errors[0].starts_with(&format!("r.yml:{expected}")),
        "{errors:#?}"
    );
}

#[test]
fn query_and_value_from_are_one_or_the_other() {
    let mut lines = REQUIRED.to_vec();
    lines.push(QUERY);
    let errors = errors_of(&rule(&lines));
    assert!(
        errors.len() == 1
            && errors[0].starts_with(
                "r.yml:8:12: query and value_from both say where the value comes from"
            ),
        "{errors:#?}"
    );
}

#[test]
fn a_query_on_another_action_is_refused() {
    let errors = errors_of(&format!(
        "rules:\n  - name: a\n    match: ['x=y']\n    action: restart\n    {QUERY}\n"
    ));
    assert!(
        errors.len() == 1 && errors[0].ends_with("query does not apply to action restart"),
        "{errors:#?}"
    );
}

#[test]
fn a_resolved_alert_never_scales_to_target() {
    let mut lines = vec!["on: resolved"];
    lines.extend(REQUIRED);
    let errors = errors_of(&rule(&lines));
    assert_eq!(
        errors,
        ["r.yml:5:9: on: resolved applies only to scale_down and backup_now; a resolved alert never triggers scale_to_target"]
    );
}

#[test]
fn a_query_rule_needs_a_prometheus_to_ask() {
    let dir = tempfile::tempdir().unwrap();
    let text = rule(&["target: 0.6", QUERY, "max_replicas: 20"]);
    std::fs::write(dir.path().join("r.yml"), text).unwrap();
    let errors = crate::rules::load_rules_for(dir.path(), "").unwrap_err();
    let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].ends_with("r.yml:2:11: rule cpu-target reads its value with query: set [prometheus] url (SWARMPILOT_PROMETHEUS__URL) to the Prometheus to ask"),
        "{errors:#?}"
    );
    let rules = crate::rules::load_rules_for(dir.path(), "http://127.0.0.1:9090").unwrap();
    assert_eq!(rules.len(), 1);
}
