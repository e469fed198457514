//! `swarmpilot plan`: which rules match which alerts of a payload and what each would do, read
//! from the rules alone. It never contacts Docker, like `amtool config routes test`.

use crate::parse::{Alert, Notification};
use crate::rules::{Action, Rule, RuleSet};
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
            action_text(&rule.action),
            humantime::format_duration(rule.cooldown),
        );
    }
}

fn action_text(action: &Action) -> String {
    match action {
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
