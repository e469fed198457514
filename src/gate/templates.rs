//! The task templates swarmpilot has seen per service, so rollback can restore the last distinct
//! one even after a scale made Swarm's own PreviousSpec useless. Journaled as they are first seen
//! and restored on start; templates swarmpilot rolled back from are never targets again.

use crate::model::Template;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// How many distinct templates are kept per service.
const KEEP: usize = 10;

#[derive(Default)]
struct Seen {
    /// Oldest first, distinct by hash.
    known: Vec<Template>,
    /// Templates a rollback moved away from.
    bad: HashSet<u64>,
}

#[derive(Default)]
pub struct TemplateHistory {
    services: Mutex<HashMap<String, Seen>>,
}

impl TemplateHistory {
    /// Remember `template` as the newest for `service`; true when it was not known yet.
    pub fn observe(&self, service: &str, template: &Template) -> bool {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let seen = services.entry(service.to_string()).or_default();
        let hash = template.hash();
        let existed = seen.known.iter().position(|t| t.hash() == hash);
        if let Some(i) = existed {
            let t = seen.known.remove(i);
            seen.known.push(t);
        } else {
            seen.known.push(template.clone());
            if seen.known.len() > KEEP {
                seen.known.remove(0);
            }
        }
        existed.is_none()
    }

    /// What a rollback of `service` (now on `current`) restores: the engine's PreviousSpec when
    /// it differs, else the newest other template seen; never one rolled back from.
    pub fn rollback_target(
        &self,
        service: &str,
        current: u64,
        previous: Option<&Template>,
    ) -> Option<u64> {
        let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        let bad = services.get(service).map(|s| &s.bad);
        let usable = |hash: u64| hash != current && !bad.is_some_and(|b| b.contains(&hash));
        if let Some(previous) = previous.filter(|p| usable(p.hash())) {
            return Some(previous.hash());
        }
        services
            .get(service)?
            .known
            .iter()
            .rev()
            .map(Template::hash)
            .find(|&h| usable(h))
    }

    pub fn get(&self, service: &str, hash: u64) -> Option<Template> {
        let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        services
            .get(service)?
            .known
            .iter()
            .find(|t| t.hash() == hash)
            .cloned()
    }

    pub fn mark_bad(&self, service: &str, hash: u64) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        services
            .entry(service.to_string())
            .or_default()
            .bad
            .insert(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{TaskSpec, TaskSpecContainerSpec};

    fn template(image: &str) -> Template {
        Template::from_task_spec(&TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn previous_spec_wins_when_it_differs() {
        let h = TemplateHistory::default();
        let (v1, v2, v3) = (template("a:1"), template("a:2"), template("a:3"));
        h.observe("web", &v1);
        h.observe("web", &v2);
        assert_eq!(
            h.rollback_target("web", v3.hash(), Some(&v2)),
            Some(v2.hash())
        );
    }

    #[test]
    fn after_a_scale_the_journaled_template_is_used() {
        let h = TemplateHistory::default();
        let (v1, v2) = (template("a:1"), template("a:2"));
        h.observe("web", &v1);
        h.observe("web", &v2);
        // A scale made PreviousSpec carry the current (bad) template.
        assert_eq!(
            h.rollback_target("web", v2.hash(), Some(&v2)),
            Some(v1.hash())
        );
        assert_eq!(h.get("web", v1.hash()), Some(v1));
    }

    #[test]
    fn never_back_to_a_template_rolled_back_from() {
        let h = TemplateHistory::default();
        let (v1, v2) = (template("a:1"), template("a:2"));
        h.observe("web", &v1);
        h.observe("web", &v2);
        h.mark_bad("web", v2.hash());
        h.observe("web", &v1);
        assert_eq!(h.rollback_target("web", v1.hash(), Some(&v2)), None);
    }

    #[test]
    fn nothing_known_is_none() {
        let h = TemplateHistory::default();
        assert_eq!(h.rollback_target("web", 1, None), None);
        assert!(h.observe("web", &template("a:1")));
        assert!(!h.observe("web", &template("a:1")));
    }
}
