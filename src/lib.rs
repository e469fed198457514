//! swarmpilot turns Alertmanager webhooks into safe, audited remediation on Docker Swarm.
//!
//! # Layout
//!
//! The file tree follows the data flow of one notification:
//!
//! ```text
//! receive  HTTP server: auth, body limit, per-client rate, JSON errors   (receive/)
//! parse    Alertmanager v4 payload, lenient about unknown fields         (parse.rs)
//! match    rule files with Alertmanager matchers → candidate actions     (rules/)
//! gate     dedupe, cooldown, budgets, opt-in, bounds, target tracking:   (gate/)
//!          admit or refuse; its memory (cooldowns, delivery keys,
//!          templates, recommendations) one trait
//! journal  durable intents and outcomes, one reader of their history     (journal/)
//! act      the swarm behind a trait, bollard as the real engine; how an  (act/)
//!          update is sent, read back, retried and a job followed
//! record   metrics, Grafana annotations, the recent-actions view, logs   (record/)
//! ```
//!
//! [`pipeline`] only puts the steps in order: admission (`pipeline/admit.rs`) asks the gate,
//! journals the intent and hands it to the service's worker (`pipeline/worker.rs`), which asks
//! act and journals the outcome. [`startup`] is the one place that wires it all from
//! [`settings`]; [`model`] holds the swarm's own types (a service as read, a change, a template)
//! below every step; [`clock`] is the injected time source (deadlines and sleeps), so tests
//! never wait for a cooldown. [`memory`] hands the allocator's freed pages back after the rare
//! bursts (journal replay, a huge notification).
//!
//! [`healthcheck`] is the container's health check: the binary GETs its own `/-/healthy`.
//!
//! [`companion`] holds the operator's tools beside the flow (`recommend`, `secret rotate` /
//! `prune`, `deploy`); they share the settings and the Docker client but none of the flow.

pub mod act;
pub mod cli;
pub mod clock;
pub mod companion;
pub mod decision;
pub mod gate;
pub mod healthcheck;
pub mod journal;
pub mod memory;
pub mod model;
pub mod parse;
pub mod pipeline;
pub mod plan;
pub mod prometheus;
pub mod receive;
pub mod record;
pub mod rules;
pub mod settings;
pub mod startup;
