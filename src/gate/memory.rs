//! What the gate remembers between deliveries: cooldown windows per (service, action), each with
//! the delivery that started it (dedupe) and the action that owns it, the task templates seen
//! per service (rollback's history), and target tracking's recommendations per (service, rule)
//! (scale-down stabilization). One trait, so that a cluster-wide store can replace this
//! process's memory without touching the pipeline; [`LocalMemory`] is today's, filled from the
//! journal at start and kept current by the pipeline.

use super::cooldown::{Cooldowns, Window};
use super::stabilization::{RecommendationKey, Recommendations};
use super::templates::TemplateHistory;
use super::DeliveryKey;
use crate::clock::Clock;
use crate::model::Template;
use crate::rules::ActionKind;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A (service, action) pair: what a cooldown is kept for.
pub type ActionKey = (String, ActionKind);

/// The gate's memory. Windows are owned: only the action that holds one may end it or give it
/// back (`owner` is [`super::owner_of`] of its id).
pub trait GateMemory: Send + Sync {
    /// The window on `key`, if one is active, and the delivery that started it.
    fn window(&self, key: &ActionKey) -> Option<(Window, DeliveryKey)>;
    /// An action was admitted: its window is held until its outcome.
    fn hold(&self, key: ActionKey, delivery: DeliveryKey, owner: u64);
    /// The owner's action landed: its window runs `cooldown` from now.
    fn landed(&self, key: &ActionKey, owner: u64, cooldown: Duration);
    /// The owner's action did not happen: its window is given back.
    fn not_landed(&self, key: &ActionKey, owner: u64);
    /// A window from the journal: running until `until`, or held (`None`) for an action that
    /// is being resumed.
    fn restore(&self, key: ActionKey, until: Option<SystemTime>, delivery: DeliveryKey, owner: u64);
    /// The active windows.
    fn windows(&self) -> Vec<(ActionKey, Window)>;

    /// Remember `template` as the newest of `service`; true when it was not known yet.
    fn observe_template(&self, service: &str, template: &Template) -> bool;
    /// A rollback moved `service` away from template `hash`: never a target again.
    fn mark_bad_template(&self, service: &str, hash: u64);
    /// What a rollback of `service` (now on `current`) restores, if anything.
    fn rollback_target(
        &self,
        service: &str,
        current: u64,
        previous: Option<&Template>,
    ) -> Option<u64>;
    /// A template seen on `service`, by hash.
    fn template(&self, service: &str, hash: u64) -> Option<Template>;

    /// Target tracking: remember `replicas` as `key`'s recommendation now (unless `record` is
    /// false: a dry run) and answer the highest of the last `window`, this one included.
    fn recommend(
        &self,
        key: &RecommendationKey,
        replicas: u64,
        window: Duration,
        record: bool,
    ) -> u64;
    /// A recommendation made `at`, from the journal (a scale_to_target that landed), kept while
    /// it is inside `window`.
    fn restore_recommendation(
        &self,
        key: &RecommendationKey,
        replicas: u64,
        at: SystemTime,
        window: Duration,
    );
}

/// This process's memory, made durable by the journal (recovery restores it).
pub struct LocalMemory {
    cooldowns: Cooldowns,
    templates: TemplateHistory,
    recommendations: Recommendations,
}

impl LocalMemory {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            cooldowns: Cooldowns::new(clock.clone()),
            templates: TemplateHistory::default(),
            recommendations: Recommendations::new(clock),
        }
    }
}

impl GateMemory for LocalMemory {
    fn window(&self, key: &ActionKey) -> Option<(Window, DeliveryKey)> {
        self.cooldowns
            .window(key)
            .map(|(window, tag)| (window, DeliveryKey(tag)))
    }

    fn hold(&self, key: ActionKey, delivery: DeliveryKey, owner: u64) {
        self.cooldowns.hold(key, delivery.0, owner);
    }

    fn landed(&self, key: &ActionKey, owner: u64, cooldown: Duration) {
        self.cooldowns.run_from_now(key, owner, cooldown);
    }

    fn not_landed(&self, key: &ActionKey, owner: u64) {
        self.cooldowns.give_back(key, owner);
    }

    fn restore(
        &self,
        key: ActionKey,
        until: Option<SystemTime>,
        delivery: DeliveryKey,
        owner: u64,
    ) {
        self.cooldowns.restore(key, until, delivery.0, owner);
    }

    fn windows(&self) -> Vec<(ActionKey, Window)> {
        self.cooldowns.active()
    }

    fn observe_template(&self, service: &str, template: &Template) -> bool {
        self.templates.observe(service, template)
    }

    fn mark_bad_template(&self, service: &str, hash: u64) {
        self.templates.mark_bad(service, hash);
    }

    fn rollback_target(
        &self,
        service: &str,
        current: u64,
        previous: Option<&Template>,
    ) -> Option<u64> {
        self.templates.rollback_target(service, current, previous)
    }

    fn template(&self, service: &str, hash: u64) -> Option<Template> {
        self.templates.get(service, hash)
    }

    fn recommend(
        &self,
        key: &RecommendationKey,
        replicas: u64,
        window: Duration,
        record: bool,
    ) -> u64 {
        self.recommendations
            .recommend(key, replicas, window, record)
    }

    fn restore_recommendation(
        &self,
        key: &RecommendationKey,
        replicas: u64,
        at: SystemTime,
        window: Duration,
    ) {
        self.recommendations.restore(key, replicas, at, window);
    }
}
