//! `swarmpilot check`'s look at the swarm: whether each opted-in service's replica ceiling (its
//! `swarmpilot.max_replicas` label, or the scale-up rules' `max_replicas` without one) fits what
//! its placement allows on the nodes there are now. Swarm leaves replicas it cannot place
//! pending without an error, so a ceiling past the placement lets swarmpilot "scale" to tasks
//! that never run. Constraints are evaluated as swarmkit's scheduler evaluates them (keys and
//! values compared case-insensitively, a missing label is ""); resource reservations are not
//! counted, so the figure is an upper bound.

use crate::act::docker::opted_in_services;
use crate::act::DockerError;
use crate::gate::change::MAX_REPLICAS_LABEL;
use crate::rules::{Action, RuleSet};
use bollard::models::{Node, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState, Service};
use bollard::Docker;
use std::collections::HashMap;

/// What the scheduler looks at on a node.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    pub id: String,
    pub hostname: String,
    pub role: String,
    pub os: String,
    pub arch: String,
    pub labels: HashMap<String, String>,
    pub engine_labels: HashMap<String, String>,
    /// Active and ready: the scheduler places new tasks there.
    pub schedulable: bool,
}

impl NodeFacts {
    fn from_node(node: &Node) -> Self {
        let spec = node.spec.clone().unwrap_or_default();
        let description = node.description.clone().unwrap_or_default();
        let platform = description.platform.unwrap_or_default();
        let ready = node.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY);
        let role = match spec.role {
            Some(NodeSpecRoleEnum::MANAGER) => "manager",
            Some(NodeSpecRoleEnum::WORKER) => "worker",
            _ => "",
        };
        Self {
            id: node.id.clone().unwrap_or_default(),
            hostname: description.hostname.unwrap_or_default(),
            role: role.into(),
            os: platform.os.unwrap_or_default(),
            arch: platform.architecture.unwrap_or_default(),
            labels: spec.labels.unwrap_or_default(),
            engine_labels: description
                .engine
                .and_then(|e| e.labels)
                .unwrap_or_default(),
            schedulable: ready && spec.availability == Some(NodeSpecAvailabilityEnum::ACTIVE),
        }
    }

    /// The node's value for a constraint key; `None` for a key the scheduler does not know
    /// (swarmkit then places nothing).
    fn value_of(&self, key: &str) -> Option<&str> {
        let lower = key.to_ascii_lowercase();
        fn label<'a>(key: &str, prefix: &str, labels: &'a HashMap<String, String>) -> &'a str {
            labels.get(&key[prefix.len()..]).map_or("", String::as_str)
        }
        match lower.as_str() {
            "node.id" => Some(&self.id),
            "node.hostname" => Some(&self.hostname),
            "node.role" => Some(&self.role),
            "node.platform.os" => Some(&self.os),
            "node.platform.arch" => Some(&self.arch),
            _ if lower.starts_with("node.labels.") && lower.len() > 12 => {
                Some(label(key, "node.labels.", &self.labels))
            }
            _ if lower.starts_with("engine.labels.") && lower.len() > 14 => {
                Some(label(key, "engine.labels.", &self.engine_labels))
            }
            _ => None,
        }
    }
}

/// One placement constraint, `key==value` or `key!=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    key: String,
    equal: bool,
    value: String,
}

impl Constraint {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (key, equal, value) = if let Some((k, v)) = text.split_once("==") {
            (k, true, v)
        } else if let Some((k, v)) = text.split_once("!=") {
            (k, false, v)
        } else {
            return Err(format!("constraint {text:?} has neither == nor !="));
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            return Err(format!("constraint {text:?} lacks a key or a value"));
        }
        Ok(Self {
            key: key.into(),
            equal,
            value: value.into(),
        })
    }

    fn holds_on(&self, node: &NodeFacts) -> Result<bool, String> {
        let actual = node
            .value_of(&self.key)
            .ok_or_else(|| format!("unknown constraint key {:?}", self.key))?;
        Ok(actual.eq_ignore_ascii_case(&self.value) == self.equal)
    }
}

/// How many replicas a placement allows on `nodes`: `None` when nothing bounds it (no
/// `max_replicas_per_node`).
pub fn capacity(
    constraints: &[Constraint],
    max_per_node: Option<u64>,
    nodes: &[NodeFacts],
) -> Result<Option<Capacity>, String> {
    let Some(per_node) = max_per_node.filter(|&n| n > 0) else {
        return Ok(None);
    };
    let mut eligible = 0u64;
    for node in nodes.iter().filter(|n| n.schedulable) {
        let mut fits = true;
        for constraint in constraints {
            fits &= constraint.holds_on(node)?;
        }
        eligible += u64::from(fits);
    }
    Ok(Some(Capacity {
        eligible_nodes: eligible,
        per_node,
        replicas: eligible.saturating_mul(per_node),
    }))
}

/// What a placement allows: eligible nodes × replicas per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub eligible_nodes: u64,
    pub per_node: u64,
    pub replicas: u64,
}

/// The highest replica count swarmpilot may scale a service to, and where that ceiling comes
/// from: the tighter of its label and the highest bound of a rule that scales up (scale_up,
/// scale_to_target), as the gate bounds it.
fn ceiling(labels: &HashMap<String, String>, rules: &RuleSet) -> Option<(u64, String)> {
    let (rule_max, rule) = rules
        .iter()
        .filter_map(|r| match &r.action {
            Action::ScaleUp { max_replicas, .. } => Some((*max_replicas, r.name.as_str())),
            // Target tracking scales up to its max_replicas too.
            Action::ScaleToTarget(tracking) => Some((tracking.max_replicas, r.name.as_str())),
            _ => None,
        })
        .max_by_key(|(max, _)| *max)?;
    let label = labels
        .get(MAX_REPLICAS_LABEL)
        .and_then(|v| v.trim().parse::<u64>().ok());
    Some(match label {
        Some(max) if max <= rule_max => (max, format!("label {MAX_REPLICAS_LABEL}={max}")),
        _ => (rule_max, format!("rule {rule}'s max_replicas {rule_max}")),
    })
}

/// A warning for each service whose ceiling its placement cannot hold on `nodes`.
pub fn warnings(services: &[Service], nodes: &[NodeFacts], rules: &RuleSet) -> Vec<String> {
    let mut out = Vec::new();
    for service in services {
        let spec = service.spec.clone().unwrap_or_default();
        let name = spec.name.clone().unwrap_or_default();
        let replicated = spec.mode.as_ref().is_some_and(|m| m.replicated.is_some());
        let labels = spec.labels.clone().unwrap_or_default();
        let (Some((max, source)), true) = (ceiling(&labels, rules), replicated) else {
            continue;
        };
        let placement = spec.task_template.and_then(|t| t.placement);
        let per_node = placement
            .as_ref()
            .and_then(|p| p.max_replicas)
            .and_then(|n| u64::try_from(n).ok());
        let texts = placement.and_then(|p| p.constraints).unwrap_or_default();
        let parsed: Result<Vec<Constraint>, String> =
            texts.iter().map(|c| Constraint::parse(c)).collect();
        match parsed.and_then(|c| capacity(&c, per_node, nodes)) {
            Ok(Some(cap)) if cap.replicas < max => out.push(format!(
                "service {name}: {source} exceeds what its placement allows on the current nodes: \
                 {} ({} eligible node(s) × max_replicas_per_node {}); replicas past it stay pending",
                cap.replicas, cap.eligible_nodes, cap.per_node
            )),
            Ok(_) => {}
            Err(why) => out.push(format!(
                "service {name}: placement not checked: {why}"
            )),
        }
    }
    out
}

/// Read the opted-in services and the nodes, and warn as [`warnings`] does.
pub async fn check(
    docker: &Docker,
    opt_in_label: &str,
    rules: &RuleSet,
) -> Result<Vec<String>, DockerError> {
    let services = opted_in_services(docker, opt_in_label).await?;
    let nodes = docker
        .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
        .await
        .map_err(crate::act::docker::classify)?;
    let facts: Vec<NodeFacts> = nodes.iter().map(NodeFacts::from_node).collect();
    Ok(warnings(&services, &facts, rules))
}

#[cfg(test)]
#[path = "placement/tests.rs"]
mod tests;
