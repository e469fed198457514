//! Admission of one (alert, rule): the gate's checks in order — dedupe and cooldown (before and
//! under the service's lock), the budgets, a fresh read of the service and the decision on it —
//! then the intent journaled (fsynced) and its window held before the answer, and execution
//! handed to the service's worker.

use super::{truncate, unix_ms, Admitted, Mode, Pending, Pipeline, Unavailable};
use crate::act::DockerError;
use crate::decision::{Decision, DecisionRecord};
use crate::gate::{is_valid_service_name, owner_of, DeliveryKey, Refusal};
use crate::journal::{Entry, Intent, JournalError};
use crate::model::{Change, Planned, ServiceMode, ServiceState};
use crate::parse::Alert;
use crate::prometheus::ServiceQuery;
use crate::rules::{Action, ActionKind, Finite, Reading, Rule, ValueSource};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Why an alert was not admitted: a refusal is an answer; a journal that cannot be written, or
/// in cluster mode a claim that cannot be made now, is a 503 (Alertmanager retries).
pub(super) enum NotAdmitted {
    Refused(Refusal),
    Journal(JournalError),
    Unavailable(String),
}

impl From<Refusal> for NotAdmitted {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<JournalError> for NotAdmitted {
    fn from(e: JournalError) -> Self {
        Self::Journal(e)
    }
}

/// One (alert, rule) before admission: refused already, or what admission needs.
pub(super) enum Early<'a> {
    Refused(NotAdmitted),
    Admissible {
        name: &'a str,
        delivery: DeliveryKey,
    },
}

/// The record of one (alert, rule) as admission left it.
pub(super) fn conclude(
    mut record: DecisionRecord,
    admitted: Result<Admission, NotAdmitted>,
) -> Result<Admitted, Unavailable> {
    let finished = match admitted {
        Ok(admission) => {
            record.decision = admission.decision;
            record.reason = admission.reason;
            record.change = admission.planned.map(|p| p.change.to_string());
            record.action_id = admission.action_id;
            admission.finished
        }
        Err(NotAdmitted::Refused(refusal)) => {
            record.decision = refusal.decision;
            record.reason = refusal.reason;
            None
        }
        Err(NotAdmitted::Journal(e)) => return Err(e.into()),
        Err(NotAdmitted::Unavailable(why)) => return Err(Unavailable::Unclaimed(why)),
    };
    Ok((record, finished))
}

/// An admitted (or, in dry-run, would-be) action.
pub(super) struct Admission {
    decision: Decision,
    reason: String,
    planned: Option<Planned>,
    action_id: Option<String>,
    finished: Option<Pending>,
}

impl Pipeline {
    /// One (alert, rule) to its decision record; `Err` when the answer must be a retry (the
    /// journal cannot be written; in cluster mode, nothing can be claimed now).
    pub(super) async fn handle_rule(
        self: &Arc<Self>,
        alert: &Alert,
        rule: &Rule,
        mode: Mode,
    ) -> Result<Admitted, Unavailable> {
        let (record, early) = self.before_admission(alert, rule);
        let admitted = match early {
            Early::Refused(not) => Err(not),
            Early::Admissible { name, delivery } => {
                Box::pin(self.admit(alert, rule, name, delivery, mode)).await
            }
        };
        conclude(record, admitted)
    }

    /// One (alert, rule) as far as it goes without waiting for anything: its record, and either
    /// its refusal or what admission needs. Repeat notifications are the common case and end
    /// here, without the service's lock and without admission's (large) future.
    pub(super) fn before_admission<'a>(
        &self,
        alert: &'a Alert,
        rule: &'a Rule,
    ) -> (DecisionRecord, Early<'a>) {
        // backup_now acts on its job service, whatever service the alert is about.
        let service = match &rule.action {
            Action::BackupNow { job } => Some(job),
            _ => alert.labels.get(&rule.service_label),
        };
        let record = DecisionRecord {
            rule: Some(rule.name.clone()),
            alert: alert.name().to_string(),
            fingerprint: alert.fingerprint.clone(),
            service: service.map(|s| truncate(s)),
            action: Some(rule.action.kind().as_str()),
            decision: Decision::Queued,
            reason: String::new(),
            change: None,
            action_id: None,
        };
        let refused = |decision, reason| Early::Refused(Refusal::new(decision, reason).into());
        let early = match service {
            None => refused(
                Decision::NoService,
                format!("alert has no {:?} label", rule.service_label),
            ),
            Some(name) if !is_valid_service_name(name) => refused(
                Decision::NoService,
                format!("{:?} is not a valid service name", truncate(name)),
            ),
            Some(name) => {
                let delivery = DeliveryKey::new(
                    &rule.name,
                    name,
                    &alert.fingerprint,
                    &alert.starts_at,
                    alert.status.as_str(),
                );
                match self.recent(alert, name, rule.action.kind(), delivery) {
                    Err(not) => Early::Refused(not),
                    Ok(()) => Early::Admissible { name, delivery },
                }
            }
        };
        (record, early)
    }

    /// The gate for one service, then the journal, then the worker (boxed by the caller: its
    /// future is large, and the repeat notifications that never get here should not carry it).
    async fn admit(
        self: &Arc<Self>,
        alert: &Alert,
        rule: &Rule,
        name: &str,
        delivery: DeliveryKey,
        mode: Mode,
    ) -> Result<Admission, NotAdmitted> {
        let kind = rule.action.kind();
        let lock = self.admit_locks.get(name);
        let _turn = lock.lock().await;
        // Again under the lock: a concurrent admission for this service may just have finished.
        self.recent(alert, name, kind, delivery)?;
        // A spent budget refuses before Docker is asked: in a storm most alerts end here.
        if mode == Mode::Act {
            self.gate.budget_left(name)?;
        }
        let mut action = self.action_for(rule, alert, name).await?;
        let planned = self
            .target_at_admission(rule, &mut action, name, delivery, mode)
            .await?;
        // Target tracking's numbers explain the decision; other actions' say nothing more.
        let why = planned.as_ref().and_then(|p| p.why.clone());
        if mode == Mode::DryRun {
            let reason = match &why {
                Some(why) => format!("would {kind} {name}: {why}"),
                None => format!("would {kind} {name}"),
            };
            return Ok(Admission {
                decision: Decision::DryRun,
                reason,
                planned,
                action_id: None,
                finished: None,
            });
        }
        let spent = self.gate.spend(name)?;
        let change = planned.as_ref().map(|p| p.change);
        let intent = self.intent(alert, rule, action, name, change);
        if let Some(cluster) = &self.cluster {
            if let Err(not) = self.spend_cluster_budget(cluster, &intent.id).await {
                self.gate.refund(name, spent);
                return Err(not);
            }
        }
        if let Err(e) = self.append(&[Entry::Intent(intent.clone())]).await {
            // Not admitted (the webhook answers 503 and Alertmanager retries): nothing spent.
            self.gate.refund(name, spent);
            self.cluster_ended(&intent.id);
            return Err(e.into());
        }
        self.actions.apply(&Entry::Intent(intent.clone()));
        // Held until the action's outcome: no second action is admitted behind one still queued.
        self.gate
            .admitted((name.to_string(), kind), delivery, owner_of(&intent.id));
        let (tx, rx) = oneshot::channel();
        let id = intent.id.clone();
        let landing = self.cluster.as_ref().map(|c| c.expect_landing(&id));
        self.spawn_counted(self.clone().execute(intent, change, Some(tx)));
        let queued = format!("{kind} {name} journaled; its service worker applies it");
        Ok(Admission {
            decision: Decision::Queued,
            reason: match &why {
                Some(why) => format!("{why}; {queued}"),
                None => queued,
            },
            planned,
            action_id: Some(id),
            finished: Some(Pending {
                finished: rx,
                landing,
                why,
                done: false,
            }),
        })
    }

    /// The action an intent journals: the rule's, and for target tracking with its value read
    /// into it (the alert's, or Prometheus' answer now) — a bad value is refused here, before
    /// Docker is asked.
    async fn action_for(&self, rule: &Rule, alert: &Alert, name: &str) -> Result<Action, Refusal> {
        let mut action = rule.action.clone();
        if let Action::ScaleToTarget(tracking) = &mut action {
            let value = match &tracking.value_from {
                ValueSource::Annotation { name: annotation } => {
                    self.gate.annotation_value(annotation, alert)?
                }
                ValueSource::Query { query } => self.query_value(query, name).await?,
            };
            tracking.reading = Some(Reading {
                value,
                replicas: None,
                since_ms: alert.starts_at_ms(),
            });
        }
        Ok(action)
    }

    /// A `query:` rule's value for `name`, asked of Prometheus now (within
    /// `[prometheus] query_timeout`).
    async fn query_value(&self, query: &ServiceQuery, name: &str) -> Result<Finite, Refusal> {
        let Some(prometheus) = &self.settings.prometheus else {
            // The loader refuses query rules without a Prometheus; a refusal, not a panic, if
            // a rule set ever gets here without one.
            return Err(Refusal::new(
                Decision::Refused,
                "the rule reads its value with query, and [prometheus] url is not set".to_string(),
            ));
        };
        let started = std::time::Instant::now();
        let answer = prometheus.instant(&query.for_service(name)).await;
        self.metrics
            .query_seconds(answer.is_ok(), started.elapsed().as_secs_f64());
        self.gate.query_value(answer, name)
    }

    /// Dedupe, cooldown and anti-flap from what this process remembers. In cluster mode a
    /// window held by an action that has not landed yet is no answer (`busy` or `duplicate`
    /// would tell Alertmanager it was delivered while that action may never land): a 503,
    /// retried here or by the other Alertmanager elsewhere, until the claim is on the service.
    fn recent(
        &self,
        alert: &Alert,
        name: &str,
        kind: ActionKind,
        delivery: DeliveryKey,
    ) -> Result<(), NotAdmitted> {
        match self.gate.recent_window(alert, name, kind, delivery) {
            Ok(()) => Ok(()),
            Err((_, true)) if self.cluster.is_some() => Err(NotAdmitted::Unavailable(format!(
                "an earlier {kind} on {name} is admitted here but has not landed yet"
            ))),
            Err((refusal, _)) => Err(refusal.into()),
        }
    }

    /// The gate's decision on a fresh read; `None` when Docker is away (admitted now, the target
    /// is computed when it answers again). In cluster mode the read's claims are checked first,
    /// and without a read nothing is admitted (nothing could be claimed). Target tracking's
    /// reading notes the replicas it was read against.
    async fn target_at_admission(
        &self,
        rule: &Rule,
        action: &mut Action,
        name: &str,
        delivery: DeliveryKey,
        mode: Mode,
    ) -> Result<Option<Planned>, NotAdmitted> {
        match self.read_for_admission(name).await {
            Ok(Some(service)) => {
                if self.cluster.is_some() {
                    self.check_claims(&service, rule.action.kind(), delivery)?;
                }
                let previous = match rule.action {
                    Action::Rollback => self.observe_templates(&service).await,
                    _ => None,
                };
                if let (Action::ScaleToTarget(tracking), ServiceMode::Replicated { replicas }) =
                    (&mut *action, service.mode)
                {
                    if let Some(reading) = &mut tracking.reading {
                        reading.replicas = Some(replicas);
                    }
                }
                let record = mode == Mode::Act;
                let planned = self
                    .plan(&rule.name, action, &service, previous.as_ref(), record)
                    .await?;
                Ok(Some(planned))
            }
            Ok(None) => {
                Err(Refusal::new(Decision::NoService, format!("no service named {name}")).into())
            }
            Err(e) if self.cluster.is_some() => Err(NotAdmitted::Unavailable(format!(
                "the service {name} cannot be read, so nothing can be claimed: {e}"
            ))),
            Err(e) => {
                tracing::warn!(service = name, error = %e, "queuing without a read of the service");
                Ok(None)
            }
        }
    }

    async fn read_for_admission(&self, name: &str) -> Result<Option<ServiceState>, DockerError> {
        if self.absent.contains_key(name) {
            return Ok(None);
        }
        let read = self.swarm.find_service(name);
        let result = match tokio::time::timeout(self.settings.admission_read_timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(DockerError::Unreachable("read timed out".into())),
        };
        self.note_docker(&result);
        if let Ok(None) = result {
            self.absent.insert(name.to_string(), ());
        }
        result
    }

    fn intent(
        &self,
        alert: &Alert,
        rule: &Rule,
        action: Action,
        name: &str,
        change: Option<Change>,
    ) -> Intent {
        Intent {
            id: self.ids.next(),
            time_ms: unix_ms(self.clock.now()),
            rule: rule.name.clone(),
            alert: alert.name().to_string(),
            fingerprint: alert.fingerprint.clone(),
            starts_at: alert.starts_at.clone(),
            status: alert.status.as_str().to_string(),
            service: name.to_string(),
            action,
            cooldown_ms: crate::clock::duration_ms(rule.cooldown),
            change,
        }
    }
}
