use super::load::parse_rule_file;
use super::*;
use crate::parse::LabelSet;
use std::path::Path;

const RULES: &str = r#"
rules:
  - {name: a, match: ['alertname="HighCPU"'], action: restart}
  - {name: b, match: ['severity="critical"'], action: restart}
  - {name: c, match: ['alertname=~"High.*"'], action: restart}
  - {name: d, match: ['alertname="HighCPU"', 'team="x"'], action: restart}
  - {name: e, match: ['alertname="Other"'], action: restart}
  - {name: f, match: ['alertname!="HighCPU"'], action: restart}
"#;

fn alert(pairs: &[(&str, &str)]) -> Alert {
    let labels: LabelSet = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Alert {
        labels,
        ..Default::default()
    }
}

#[test]
fn the_index_finds_exactly_what_a_full_scan_finds_in_file_order() {
    let (rules, errors) = parse_rule_file(Path::new("r.yml"), RULES);
    assert!(errors.is_empty(), "{errors:?}");
    let all = rules.clone();
    let set = RuleSet::new(rules);
    let alerts = [
        alert(&[("alertname", "HighCPU")]),
        alert(&[
            ("alertname", "HighCPU"),
            ("team", "x"),
            ("severity", "critical"),
        ]),
        alert(&[("alertname", "Other"), ("severity", "critical")]),
        alert(&[("alertname", "HighMemory")]),
        alert(&[("severity", "critical")]),
        alert(&[]),
    ];
    for a in &alerts {
        let indexed: Vec<&str> = set.matching(a).map(|r| r.name.as_str()).collect();
        let scanned: Vec<&str> = all
            .iter()
            .filter(|r| r.applies_to(a))
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(indexed, scanned, "{:?}", a.labels);
    }
    let names: Vec<&str> = set.matching(&alerts[1]).map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c", "d"]);
}
