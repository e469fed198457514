//! Target tracking's two halves agree on what "on target" is. The Prometheus alert that feeds a
//! `scale_to_target` rule fires outside a band written into its PromQL (`> 0.66`, `< 0.54`); the
//! rule leaves alone what lies within target × (1 ± tolerance). Both are written by hand, in two
//! files: a narrower alert band sends values the rule answers `no_change`, a wider one leaves
//! replicas off target. This reads both and holds them equal.

use std::collections::BTreeMap;
use swarmpilot::parse::{Alert, AlertStatus};
use swarmpilot::rules::{Action, RuleSet, ValueSource};

/// The `< lower` and `> upper` of a target alert's expression, each written exactly once.
pub fn alert_band(expr: &str) -> (f64, f64) {
    let comparison = regex::Regex::new(r"([<>])\s*([0-9]+(?:\.[0-9]+)?)").unwrap();
    let (mut lower, mut upper) = (Vec::new(), Vec::new());
    for c in comparison.captures_iter(expr) {
        let value: f64 = c[2].parse().unwrap();
        if &c[1] == "<" {
            lower.push(value);
        } else {
            upper.push(value);
        }
    }
    assert!(
        lower.len() == 1 && upper.len() == 1,
        "a target alert compares its value once with `>` and once with `<`: {expr}"
    );
    (lower[0], upper[0])
}

/// An alerting rule's labels (as YAML read into JSON), its `alertname` included.
pub fn labels_of(alert_rule: &serde_json::Value) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = alert_rule["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    if let Some(name) = alert_rule["alert"].as_str() {
        labels.insert("alertname".into(), name.into());
    }
    labels
}

/// For an alerting rule (a Prometheus rule file's entry, as YAML read into JSON) that reaches a
/// `scale_to_target` rule in `rules`: it reaches that one rule only, fires exactly outside the
/// rule's band, and carries the annotation the rule reads (if it reads one) as the raw
/// `{{ $value }}`. Returns the rule's name, or `None` when the alert reaches no `scale_to_target`
/// rule.
pub fn check_target_alert(alert_rule: &serde_json::Value, rules: &RuleSet) -> Option<String> {
    let name = alert_rule["alert"].as_str().expect("an alerting rule");
    let mut labels = labels_of(alert_rule);
    labels
        .entry("service".into())
        .or_insert_with(|| "app_web".into());
    let alert = Alert {
        status: AlertStatus::Firing,
        labels,
        ..Default::default()
    };
    let matched: Vec<_> = rules.matching(&alert).collect();
    let tracking = matched.iter().find_map(|r| match &r.action {
        Action::ScaleToTarget(t) => Some((r.name.clone(), t)),
        _ => None,
    });
    let (rule, tracking) = tracking?;
    assert_eq!(
        matched.len(),
        1,
        "{name} reaches {rule} and other rules: two logics on one service"
    );
    let expr = alert_rule["expr"].as_str().unwrap();
    let (lower, upper) = alert_band(expr);
    let (target, tolerance) = (tracking.target.get(), tracking.tolerance.get());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(
        close(lower, target * (1.0 - tolerance)) && close(upper, target * (1.0 + tolerance)),
        "{name} fires outside {lower}-{upper}, but {rule} leaves alone target {target} ± \
         tolerance {tolerance} = {}-{}: change them together",
        target * (1.0 - tolerance),
        target * (1.0 + tolerance)
    );
    // An annotation source reads the alert's value; a `query:` one asks Prometheus, but the
    // alert still decides when to look, so its band counts all the same.
    if let ValueSource::Annotation { name: annotation } = &tracking.value_from {
        assert_eq!(
            alert_rule["annotations"][annotation.as_str()].as_str(),
            Some("{{ $value }}"),
            "{name}: annotation {annotation} must be the raw {{{{ $value }}}} that {rule} parses"
        );
    }
    Some(rule)
}
