//! Any bytes as a webhook body: parsing never panics, and a payload that parses is matched against
//! the shipped rules and described by `plan` without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::OnceLock;
use swarmpilot::parse::parse_notification;
use swarmpilot::rules::load::parse_rule_file;
use swarmpilot::rules::RuleSet;

fn shipped_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut all = Vec::new();
        for (name, text) in [
            ("scaling.yml", include_str!("../../rules/scaling.yml")),
            ("healing.yml", include_str!("../../rules/healing.yml")),
            ("backup.yml", include_str!("../../rules/backup.yml")),
        ] {
            let (rules, errors) = parse_rule_file(Path::new(name), text);
            assert!(errors.is_empty(), "shipped rules load");
            all.extend(rules);
        }
        RuleSet::new(all)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(notification) = parse_notification(data) {
        let rules = shipped_rules();
        for alert in &notification.alerts {
            let _ = rules.matching(alert).count();
        }
        let _ = swarmpilot::plan::describe(rules, &notification);
    }
});
