//! The gate step: everything that may refuse an action before it touches the swarm.
//!
//! `cooldown` holds deadlines per key (cooldowns per (service, action), the dedupe window per
//! delivery); `budget` the action rates of `[limits]`; `change` turns an action and a fresh read of
//! the service into an absolute target or a refusal (not opted in, busy, at a bound);
//! `service_name` keeps label values that cannot be Swarm service names away from Docker.

pub mod budget;
pub mod change;
pub mod cooldown;
pub mod service_name;

pub use budget::Budgets;
pub use change::{plan_change, Context, Refusal};
pub use cooldown::{Cooldowns, Deadlines};
pub use service_name::is_valid_service_name;

/// One delivery of one alert to one rule: Alertmanager retries and HA peers repeat it exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    pub rule: String,
    pub service: String,
    pub fingerprint: String,
    pub starts_at: String,
    pub status: String,
}

/// The dedupe window: deliveries admitted within their rule's cooldown.
pub type Dedupe = Deadlines<DeliveryKey>;
