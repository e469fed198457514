//! Cluster mode's place in the flow (`[cluster] enabled`): several replicas serve one swarm, and
//! what the gate remembers lives on the services themselves, claimed by the very update that acts
//! ([`crate::gate::claims`]), plus the cluster's budget per minute on a register service
//! ([`crate::act::register`]). Nothing is admitted without a read of the service, and an answer
//! acknowledges an action only once its update (with its claim) has landed: until then the
//! webhook answers 503 and Alertmanager retries — at this replica or, from the other
//! Alertmanager of the pair, at another — and the retry finds the claim or acts.

use super::{delivery_of, Pipeline};
use crate::act::register::{Register, SpendError};
use crate::clock::saturating_add;
use crate::decision::Decision;
use crate::gate::budget::BudgetSpent;
use crate::gate::claims::{self, Claim};
use crate::gate::DeliveryKey;
use crate::gate::{owner_of, Refusal};
use crate::journal::{Intent, JournalError};
use crate::model::{Change, ServiceState, Stamp};
use crate::rules::ActionKind;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How cluster mode is set up; from `[cluster]` and `[docker]`.
#[derive(Debug, Clone)]
pub struct ClusterMode {
    /// The service whose labels hold the cluster's budget per minute.
    pub register_service: String,
    /// How long an answer waits for an admitted action's update to land before it is a 503.
    pub ack_wait: Duration,
}

/// Why a notification cannot be answered now: the webhook answers 503 and Alertmanager retries.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("could not journal the decision, nothing was done; retry: {0}")]
    Journal(#[from] JournalError),
    /// Cluster mode cannot claim (no read of the service, no quorum, an earlier action not yet
    /// landed); nothing this answer would acknowledge is known to hold.
    #[error("cluster mode: {0}; retry")]
    Unclaimed(String),
}

/// The running parts of cluster mode.
pub(super) struct Cluster {
    pub(super) register: Register,
    pub(super) ack_wait: Duration,
    /// Admitted actions whose answers wait for their update to land, by action id.
    landings: Mutex<HashMap<String, oneshot::Sender<Change>>>,
    /// The register units of admitted actions that have not landed, by action id: given back
    /// if they end without landing (a lost race, an expiry), so a race costs no budget.
    units: Mutex<HashMap<String, u64>>,
    /// One register write at a time from this replica: its own admissions never race each
    /// other on the register's version (only other replicas' can).
    register_turn: tokio::sync::Mutex<()>,
}

impl Cluster {
    pub(super) fn new(mode: &ClusterMode) -> Self {
        Self {
            register: Register::new(mode.register_service.clone()),
            ack_wait: mode.ack_wait,
            landings: Mutex::default(),
            units: Mutex::default(),
            register_turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The answer for action `id` waits on the receiver for its landing.
    pub(super) fn expect_landing(&self, id: &str) -> oneshot::Receiver<Change> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.to_string(), tx);
        rx
    }

    fn landed(&self, id: &str, change: Change) {
        self.units_lock().remove(id);
        if let Some(tx) = self.lock().remove(id) {
            let _ = tx.send(change);
        }
    }

    /// The action ended: its answer stops waiting for a landing, and the register unit of one
    /// that never landed is returned to be given back.
    pub(super) fn ended(&self, id: &str) -> Option<u64> {
        self.lock().remove(id);
        self.units_lock().remove(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Change>>> {
        self.landings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn units_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Pipeline {
    /// Cluster mode: the claims on a fresh read of the service refuse what another replica
    /// already did; what they show is remembered locally, so repeat notifications are refused
    /// on the hot path without a read.
    pub(super) fn check_claims(
        &self,
        service: &ServiceState,
        kind: ActionKind,
        delivery: DeliveryKey,
    ) -> Result<(), Refusal> {
        let now = self.clock.now();
        for seen in [kind, ActionKind::ScaleUp] {
            if let Some(claim) = Claim::read(&service.labels, seen) {
                if claim.until > now {
                    let key = (service.name.clone(), seen);
                    self.gate
                        .memory()
                        .restore(key, Some(claim.until), claim.delivery, 0);
                }
            }
        }
        claims::check(
            &service.labels,
            &service.name,
            kind,
            delivery,
            self.settings.actions_per_service_per_hour,
            now,
        )
    }

    /// Cluster mode: take one unit of the cluster's budget per minute from the register for
    /// action `id`.
    pub(super) async fn spend_cluster_budget(
        &self,
        cluster: &Cluster,
        id: &str,
    ) -> Result<(), super::admit::NotAdmitted> {
        let limit = self.settings.actions_per_minute;
        let turn = cluster.register_turn.lock().await;
        let spent = cluster
            .register
            .spend(&*self.swarm, limit, self.clock.now())
            .await;
        drop(turn);
        match spent {
            Ok(unit) => {
                if let Some(unit) = unit {
                    cluster.units_lock().insert(id.to_string(), unit);
                }
                Ok(())
            }
            Err(SpendError::Spent { next_in }) => Err(Refusal::new(
                Decision::RateLimited,
                BudgetSpent::Cluster { next_in }.to_string(),
            )
            .into()),
            Err(SpendError::Unavailable(e)) => {
                self.note_docker::<()>(&Err(e.clone()));
                Err(super::admit::NotAdmitted::Unavailable(format!(
                    "the budget register {} cannot be written: {e}",
                    cluster.register.name()
                )))
            }
        }
    }

    /// The worker's claim check on its fresh read (see [`crate::act::worker::Steps::claimed`]).
    pub(super) fn claimed_by_other(
        &self,
        intent: &Intent,
        service: &ServiceState,
    ) -> Result<(), Refusal> {
        if self.cluster.is_none() {
            return Ok(());
        }
        claims::check(
            &service.labels,
            &service.name,
            intent.action.kind(),
            delivery_of(intent),
            self.settings.actions_per_service_per_hour,
            self.clock.now(),
        )
    }

    /// The labels an acting update writes (see [`crate::act::worker::Steps::stamp`]).
    pub(super) fn stamp_for(
        &self,
        intent: &Intent,
        service: &ServiceState,
        change: Change,
    ) -> Stamp {
        let mut stamp = Stamp::id(&intent.id);
        if self.cluster.is_some() {
            let now = self.clock.now();
            let claim = Claim {
                until: saturating_add(now, Duration::from_millis(intent.cooldown_ms)),
                delivery: delivery_of(intent),
            };
            stamp.labels = claims::stamp(
                &service.labels,
                intent.action.kind(),
                claim,
                self.settings.actions_per_service_per_hour,
                now,
            );
            if let Change::Template { from, .. } = change {
                stamp
                    .labels
                    .push(claims::rolled_back_from(&service.labels, from));
            }
        }
        stamp
    }

    /// Cluster mode: the templates any replica rolled back from (labels of the fresh read) are
    /// never rollback targets here either.
    pub(crate) fn learn_bad_templates(&self, service: &ServiceState) {
        if self.cluster.is_none() {
            return;
        }
        for hash in claims::bad_templates(&service.labels) {
            self.gate.memory().mark_bad_template(&service.name, hash);
        }
    }

    /// Cluster mode: action `id` ended (`landed` or not). A unit of one that never landed goes
    /// back to the register, in the background: the outcome does not wait for it.
    pub(super) fn cluster_ended(self: &Arc<Self>, id: &str) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let Some(unit) = cluster.ended(id) else {
            return;
        };
        let pipeline = self.clone();
        tokio::spawn(async move {
            let Some(cluster) = &pipeline.cluster else {
                return;
            };
            let now = pipeline.clock.now();
            if let Err(e) = cluster
                .register
                .give_back(&*pipeline.swarm, unit, now)
                .await
            {
                tracing::warn!(register = cluster.register.name(), error = %e, "could not give a budget unit back");
            }
        });
    }

    /// The action's update holds: in cluster mode its cooldown runs from now (its claim is on the
    /// service for every replica to see) and its answer is released.
    pub(super) fn on_landed(&self, intent: &Intent, change: Change) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let cooldown = Duration::from_millis(intent.cooldown_ms);
        self.gate.finished(
            &super::action_key(intent),
            owner_of(&intent.id),
            true,
            cooldown,
        );
        cluster.landed(&intent.id, change);
    }

    /// Cluster mode: wait (up to `ack_wait`) until every admitted action of the answer has
    /// landed or ended; one that has neither makes the answer a 503.
    pub(super) async fn await_claims(
        &self,
        cluster: &Cluster,
        records: &mut [crate::decision::DecisionRecord],
        pending: &mut [(usize, super::Pending)],
    ) -> Result<(), Unavailable> {
        let deadline = tokio::time::Instant::now() + cluster.ack_wait;
        for (index, waiting) in pending.iter_mut() {
            let record = &mut records[*index];
            let Some(landing) = waiting.landing.take() else {
                continue;
            };
            match tokio::time::timeout_at(deadline, landing).await {
                Ok(Ok(change)) => {
                    record.change = Some(change.to_string());
                    if let Change::Job { .. } = change {
                        record.reason = "its run started (claimed on the service); it is followed in the background".into();
                    } else {
                        let landed = "its update landed (claimed on the service)";
                        record.decision = Decision::Executed;
                        record.reason = match &waiting.why {
                            Some(why) => format!("{why}; {landed}"),
                            None => landed.into(),
                        };
                    }
                }
                // Ended without landing: the outcome says how.
                Ok(Err(_)) => {
                    match tokio::time::timeout_at(deadline, &mut waiting.finished).await {
                        Ok(Ok(finished)) => {
                            super::apply_finished(record, finished);
                            waiting.done = true;
                        }
                        _ => return Err(not_landed(record)),
                    }
                }
                Err(_) => return Err(not_landed(record)),
            }
        }
        Ok(())
    }
}

fn not_landed(record: &crate::decision::DecisionRecord) -> Unavailable {
    Unavailable::Unclaimed(format!(
        "action {} on {} is admitted but its update has not landed yet (it keeps trying; a retry finds its claim or acts)",
        record.action_id.as_deref().unwrap_or("?"),
        record.service.as_deref().unwrap_or("?"),
    ))
}
