//! The gate step: everything that may refuse an action before it touches the swarm.
//!
//! `cooldown` remembers when an action last ran per (service, action); `change` turns an action
//! and a fresh read of the service into an absolute target (or a refusal: not opted in, busy, at a
//! bound); `service_name` keeps label values that cannot be Swarm service names away from Docker.

pub mod change;
pub mod cooldown;
pub mod service_name;

pub use change::{plan_change, Refusal};
pub use cooldown::Cooldowns;
pub use service_name::is_valid_service_name;
