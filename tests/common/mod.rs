//! What every integration test crate shares, included the same way by each:
//! `mod common;` from a crate root in `tests/`, `#[path = "../common/mod.rs"] mod common;` from
//! a `tests/<crate>/main.rs`.
//!
//! - [`app`]: swarmpilot in-process on port 0 (`spawn_app`, `spawn_app_with(|settings| …)`) and
//!   the payloads tests send it.
//! - [`band`]: a target-tracking alert's band against its `scale_to_target` rule's.
//! - [`swarm`]: the shared swarm through the docker CLI; `TestService`, removed on drop.
//! - [`process`]: the real binary as a child process; [`command`]: one command at a time.
//! - [`docker_proxy`]: a proxy in front of the Docker socket that can lose or delay answers.
//! - [`grafana_standin`]: a recording stand-in for Grafana's HTTP API.
//! - [`net`]: the one free-port helper.
//! - [`multinode`]: the multi-node test bed (scripts/multinode.sh): nodes, swarmpilot's stack,
//!   opted-in services, requests from inside the bed, a clustered Alertmanager pair.

pub mod app;
pub mod band;
pub mod command;
pub mod docker_proxy;
pub mod grafana_standin;
pub mod multinode;
pub mod net;
pub mod process;
pub mod prometheus;
pub mod swarm;

// The most used names at `common::`; a crate that uses none of one leaves it unused.
#[allow(unused_imports)]
pub use {app::*, net::free_port, swarm::*};

use std::time::{Duration, Instant};

/// Poll a condition with a deadline instead of sleeping a fixed time.
pub async fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
