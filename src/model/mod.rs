//! The swarm's own types, below every step: a service as read ([`ServiceState`]), the absolute
//! target of an action ([`Change`]) and a task template ([`Template`]). The gate decides on them,
//! the journal records them and act applies them (and which names can be service names at all), so none of those depends on another for them.

pub mod change;
pub mod service;
pub mod service_name;
pub mod template;

pub use change::{Change, Planned};
pub use service::{
    is_busy_update_state, JobTask, ServiceMode, ServiceState, ServiceSummary, Stamp, ACTION_LABEL,
};
pub use service_name::is_valid_service_name;
pub use template::Template;
