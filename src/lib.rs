//! swarmpilot turns Alertmanager webhooks into safe, audited remediation on Docker Swarm.
//!
//! # Layout
//!
//! The file tree follows the data flow of one notification:
//!
//! ```text
//! receive  HTTP server: auth, body limit, content type, JSON errors      (receive/)
//! parse    Alertmanager v4 payload, lenient about unknown fields         (parse.rs)
//! match    rule files with Alertmanager matchers → candidate actions     (rules/)
//! gate     opt-in label, cooldown, bounds: admit or refuse with a reason (gate/)
//! act      the Swarm behind a trait, bollard as the real engine          (act/)
//! record   one place that turns each decision into a log line           (record/)
//! ```
//!
//! [`pipeline`] wires match → gate → act for one payload; `receive` and the `plan` command both
//! drive it. [`settings`] loads `swarmpilot.toml` plus `SWARMPILOT_*` overrides; [`clock`] is the
//! injected time source that cooldowns use, so tests never sleep. [`memory`] hands the
//! allocator's freed pages back after the rare bursts (journal replay, a huge notification).
//!
//! [`companion`] holds the operator's tools beside the flow (`recommend`, `secret rotate` /
//! `prune`, `deploy`); they share the settings and the Docker client but none of the flow.

pub mod act;
pub mod cli;
pub mod clock;
pub mod companion;
pub mod decision;
pub mod gate;
pub mod journal;
pub mod memory;
pub mod model;
pub mod parse;
pub mod pipeline;
pub mod plan;
pub mod receive;
pub mod record;
pub mod rules;
pub mod settings;
pub mod startup;
