//! `swarmpilot plan`: which rules match which alerts of a payload and what each would do, read
//! from the rules alone. It never contacts Docker, like `amtool config routes test`.

use crate::gate::target::{ratio, read_value, within_tolerance};
use crate::parse::{Alert, Notification};
use crate::rules::{Action, Rule, RuleSet, TargetTracking};
use std::fmt::Write;

/// A readable report, one block per alert.
pub fn describe(rules: &RuleSet, notification: &Notification) -> String {
    let mut out = String::new();
    for alert in &notification.alerts {
        describe_alert(&mut out, rules, alert);
    }
    if notification.truncated_alerts > 0 {
        let _ = writeln!(
            out,
            "warning: {} alerts were truncated by Alertmanager (set max_alerts: 0)",
            notification.truncated_alerts
        );
    }
    out
}

fn describe_alert(out: &mut String, rules: &RuleSet, alert: &Alert) {
    let labels: Vec<String> = alert
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let _ = writeln!(
        out,
        "{} [{}] {{{}}}",
        alert.name(),
        alert.status.as_str(),
        labels.join(", ")
    );
    let matched: Vec<&Rule> = rules.matching(alert).collect();
    if matched.is_empty() {
        let _ = writeln!(out, "  no rule matches");
    }
    for rule in matched {
        let target = match alert.labels.get(&rule.service_label) {
            Some(service) => format!("service {service}"),
            None => format!(
                "no service: the alert has no {:?} label",
                rule.service_label
            ),
        };
        let _ = writeln!(
            out,
            "  rule {} ({}:{}) → {} on {target}, cooldown {}",
            rule.name,
            rule.origin.file.display(),
            rule.origin.line,
            action_text(&rule.action, alert),
            humantime::format_duration(rule.cooldown),
        );
    }
}

fn action_text(action: &Action, alert: &Alert) -> String {
    match action {
        Action::ScaleToTarget(tracking) => target_text(tracking, alert),
        Action::ScaleUp { step, max_replicas } => {
            format!("scale_up by {step} (max {max_replicas})")
        }
        Action::ScaleDown { step, min_replicas } => {
            format!("scale_down by {step} (min {min_replicas})")
        }
        Action::Restart => "restart (force update)".into(),
        Action::Rollback => "rollback".into(),
        Action::BackupNow { job } => format!("backup_now running job {job}"),
    }
}

/// What target tracking would do with this alert's value, without the replica count (plan never
/// reads Docker): the ratio, or why the value would be refused.
fn target_text(tracking: &TargetTracking, alert: &Alert) -> String {
    let rule = format!(
        "tolerance {}, replicas {}–{}, scale_down_stabilization {}, max_step_up {}, max_step_down {}",
        tracking.tolerance,
        tracking.min_replicas,
        tracking.max_replicas,
        humantime::format_duration(tracking.scale_down_stabilization()),
        tracking.max_step_up,
        tracking.max_step_down,
    );
    let verdict = match read_value(tracking, alert) {
        None => "its value is the query's answer at decision time (plan does not ask Prometheus)"
            .to_string(),
        Some(Err(refusal)) => format!("would be refused: {}", refusal.reason),
        Some(Ok(value)) => {
            let times = value.get() / tracking.target.get();
            let what = if within_tolerance(times, tracking.tolerance.get()) {
                "within the tolerance: no change".to_string()
            } else {
                format!("replicas → ⌈replicas × {}⌉", ratio(times))
            };
            format!(
                "value {value} from {} vs target {} (×{}): {what}",
                tracking.value_from,
                tracking.target,
                ratio(times)
            )
        }
    };
    format!("scale_to_target ({rule}); {verdict}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_notification;
    use crate::rules::load::parse_rule_file;
    use rstest::rstest;
    use std::path::Path;

    const RULE: &str = "rules:\n  - name: cpu-target\n    match: ['alertname=\"ServiceCPUOffTarget\"']\n    action: scale_to_target\n    target: 0.6\n    value_from: annotation:value\n    min_replicas: 2\n    max_replicas: 20\n    cooldown: 1m\n";

    fn describe_value(annotations: &str) -> String {
        let (rules, errors) = parse_rule_file(Path::new("t.yml"), RULE);
        assert!(errors.is_empty(), "{errors:?}");
        let payload = format!(
            r#"{{"alerts":[{{"labels":{{"alertname":"ServiceCPUOffTarget","service":"web"}},"annotations":{annotations}}}]}}"#
        );
        describe(
            &RuleSet::new(rules),
            &parse_notification(payload.as_bytes()).unwrap(),
        )
    }

    #[rstest]
    #[case::scales(
        r#"{"value":"1.05"}"#,
        "value 1.05 from annotation:value vs target 0.6 (×1.75): replicas → ⌈replicas × 1.75⌉"
    )]
    #[case::within(r#"{"value":"0.62"}"#, "(×1.03): within the tolerance: no change")]
    #[case::refused(
        r#"{"value":"NaN"}"#,
        "would be refused: annotation value = \"NaN\" is not a finite number"
    )]
    #[case::absent("{}", "would be refused: the alert has no annotation \"value\"")]
    fn says_what_target_tracking_would_do(#[case] annotations: &str, #[case] expected: &str) {
        let text = describe_value(annotations);
        assert!(
            text.contains("rule cpu-target (t.yml:2) → scale_to_target (tolerance 0.1, replicas 2–20, scale_down_stabilization 5m, max_step_up 100% or 4, whichever is more, max_step_down 100%);"),
            "{text}"
        );
        assert!(text.contains(expected), "{expected} in {text}");
        assert!(text.contains("on service web, cooldown 1m"), "{text}");
    }

    #[test]
    fn a_query_rule_says_its_value_is_read_when_deciding() {
        let rule = RULE.replace(
            "value_from: annotation:value",
            "query: 'avg(load{service=\"$service\"})'",
        );
        let (rules, errors) = parse_rule_file(Path::new("t.yml"), &rule);
        assert!(errors.is_empty(), "{errors:?}");
        let payload =
            r#"{"alerts":[{"labels":{"alertname":"ServiceCPUOffTarget","service":"web"}}]}"#;
        let text = describe(
            &RuleSet::new(rules),
            &parse_notification(payload.as_bytes()).unwrap(),
        );
        assert!(
            text.contains(
                "its value is the query's answer at decision time (plan does not ask Prometheus)"
            ),
            "{text}"
        );
    }
}
