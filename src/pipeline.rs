//! Match → gate → act for one notification. The HTTP receiver and the `plan` command both drive
//! this; each (alert, rule) pair ends as exactly one [`DecisionRecord`].

use crate::act::{Change, DockerError, ServiceState, Swarm};
use crate::decision::{Decision, DecisionRecord};
use crate::gate::{is_valid_service_name, plan_change, Cooldowns, Refusal};
use crate::parse::{Alert, Notification};
use crate::record::record_decision;
use crate::rules::{Rule, RuleSet};
use futures_util::future::join_all;
use moka::sync::Cache;
use std::sync::{Arc, RwLock};
use tokio::sync::Mutex;

/// How many times an update is recomputed after "update out of sequence" before giving up.
const MAX_UPDATE_ATTEMPTS: usize = 5;

/// Whether decisions may touch the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Act,
    DryRun,
}

/// The long-lived state that gating needs, shared by every request.
pub struct Pipeline {
    rules: RwLock<Arc<RuleSet>>,
    swarm: Arc<dyn Swarm>,
    cooldowns: Cooldowns,
    /// One lock per service so concurrent alerts for a service are decided and applied in turn.
    service_locks: Cache<String, Arc<Mutex<()>>>,
    opt_in_label: String,
}

impl Pipeline {
    pub fn new(
        rules: RuleSet,
        swarm: Arc<dyn Swarm>,
        cooldowns: Cooldowns,
        opt_in_label: String,
    ) -> Self {
        Self {
            rules: RwLock::new(Arc::new(rules)),
            swarm,
            cooldowns,
            service_locks: Cache::builder().max_capacity(10_000).build(),
            opt_in_label,
        }
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swap in a new rule set atomically.
    pub fn replace_rules(&self, rules: RuleSet) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    pub fn swarm(&self) -> &Arc<dyn Swarm> {
        &self.swarm
    }

    /// Decide (and unless `mode` is dry-run, act on) every alert of a notification. Alerts for
    /// different services proceed concurrently.
    pub async fn handle(&self, notification: &Notification, mode: Mode) -> Vec<DecisionRecord> {
        let rules = self.rules();
        let per_alert = notification
            .alerts
            .iter()
            .map(|alert| self.handle_alert(&rules, alert, mode));
        join_all(per_alert).await.into_iter().flatten().collect()
    }

    async fn handle_alert(
        &self,
        rules: &RuleSet,
        alert: &Alert,
        mode: Mode,
    ) -> Vec<DecisionRecord> {
        let matched: Vec<&Rule> = rules.matching(alert).collect();
        let records = if matched.is_empty() {
            vec![no_match(alert)]
        } else {
            let mut records = Vec::with_capacity(matched.len());
            for rule in matched {
                records.push(self.handle_rule(alert, rule, mode).await);
            }
            records
        };
        records.iter().for_each(record_decision);
        records
    }

    async fn handle_rule(&self, alert: &Alert, rule: &Rule, mode: Mode) -> DecisionRecord {
        let service = alert.labels.get(&rule.service_label).cloned();
        let outcome = match &service {
            None => Err(Refusal {
                decision: Decision::NoService,
                reason: format!("alert has no {:?} label", rule.service_label),
            }),
            Some(name) if !is_valid_service_name(name) => Err(Refusal {
                decision: Decision::NoService,
                reason: format!("{:?} is not a valid service name", truncate(name)),
            }),
            Some(name) => self.gate_and_act(name, rule, mode).await,
        };
        let mut record = DecisionRecord {
            rule: Some(rule.name.clone()),
            alert: alert.name().to_string(),
            fingerprint: alert.fingerprint.clone(),
            service: service.map(|s| truncate(&s)),
            action: Some(rule.action.kind().as_str().to_string()),
            decision: Decision::Executed,
            reason: String::new(),
            change: None,
            retryable: false,
        };
        match outcome {
            Ok(done) => {
                record.decision = done.decision;
                record.reason = done.reason;
                record.change = Some(done.change.to_string());
            }
            Err(refusal) => {
                record.decision = refusal.decision;
                record.retryable = refusal.decision == Decision::Failed
                    && refusal.reason.starts_with("Docker engine unreachable");
                record.reason = refusal.reason;
            }
        }
        record
    }

    async fn gate_and_act(&self, name: &str, rule: &Rule, mode: Mode) -> Result<Done, Refusal> {
        let lock = self
            .service_locks
            .get_with_by_ref(name, || Arc::new(Mutex::new(())));
        let _turn = lock.lock().await;
        let kind = rule.action.kind();
        if let Some(left) = self.cooldowns.remaining(name, kind) {
            return Err(Refusal {
                decision: Decision::Cooldown,
                reason: format!(
                    "{kind} on {name} ran recently; {} of cooldown left",
                    humantime::format_duration(round_secs(left))
                ),
            });
        }
        let service = self.read_service(name).await?;
        let change = plan_change(&rule.action, &service, &self.opt_in_label)?;
        if mode == Mode::DryRun {
            return Ok(Done {
                decision: Decision::DryRun,
                reason: format!("would {kind} {name}"),
                change,
            });
        }
        let change = self.apply_with_retry(service, change, rule).await?;
        self.cooldowns.start(name, kind, rule.cooldown);
        Ok(Done {
            decision: Decision::Executed,
            reason: format!("{kind} {name}"),
            change,
        })
    }

    async fn read_service(&self, name: &str) -> Result<ServiceState, Refusal> {
        match self.swarm.find_service(name).await {
            Ok(Some(service)) => Ok(service),
            Ok(None) => Err(Refusal {
                decision: Decision::NoService,
                reason: format!("no service named {name}"),
            }),
            Err(e) => Err(failed(e)),
        }
    }

    /// Apply with the version index read; when the spec moved meanwhile, read it again and
    /// recompute the absolute target from the new state.
    async fn apply_with_retry(
        &self,
        mut service: ServiceState,
        mut change: Change,
        rule: &Rule,
    ) -> Result<Change, Refusal> {
        for _ in 1..MAX_UPDATE_ATTEMPTS {
            match self.swarm.apply(&service, change).await {
                Ok(()) => return Ok(change),
                Err(DockerError::OutOfSequence) => {
                    service = self.read_service(&service.name).await?;
                    change = plan_change(&rule.action, &service, &self.opt_in_label)?;
                }
                Err(e) => return Err(failed(e)),
            }
        }
        self.swarm
            .apply(&service, change)
            .await
            .map(|()| change)
            .map_err(failed)
    }
}

struct Done {
    decision: Decision,
    reason: String,
    change: Change,
}

fn failed(e: DockerError) -> Refusal {
    Refusal {
        decision: Decision::Failed,
        reason: e.to_string(),
    }
}

fn no_match(alert: &Alert) -> DecisionRecord {
    DecisionRecord {
        rule: None,
        alert: alert.name().to_string(),
        fingerprint: alert.fingerprint.clone(),
        service: None,
        action: None,
        decision: Decision::NoMatch,
        reason: format!("no rule matches this {} alert", alert.status.as_str()),
        change: None,
        retryable: false,
    }
}

fn round_secs(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

/// Label values can be huge; answers and logs carry a bounded prefix.
fn truncate(s: &str) -> String {
    const MAX: usize = 128;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
