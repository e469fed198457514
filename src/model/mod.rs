//! The swarm's own types, below every step: a service as read ([`ServiceState`]), the absolute
//! target of an action ([`Change`]) and a task template ([`Template`]). The gate decides on them,
//! the journal records them and act applies them, so none of those depends on another for them.

pub mod change;
pub mod service;
pub mod template;

pub use change::Change;
pub use service::{
    is_busy_update_state, JobTask, ServiceMode, ServiceState, ServiceSummary, ACTION_LABEL,
};
pub use template::Template;
