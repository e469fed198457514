//! The reliability campaign against the real binary on the real swarm: hostile and malformed
//! payloads, slow clients, wrong tokens and TLS, a kill -9 in a burst, a storm over 200 services
//! and a short soak. Long variants run with `RELIABILITY_LONG=1` (see README, RELIABILITY).

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

mod auth;
mod crash;
mod mutate;
mod mutation;
mod slow_clients;
mod soak;
mod storm;
mod tls;

/// Whether the long variants were asked for. Not a `SWARMPILOT_*` variable: swarmpilot reads
/// those as config, and an unknown key stops it from starting.
#[allow(dead_code)]
pub fn long_run() -> bool {
    std::env::var("RELIABILITY_LONG").is_ok_and(|v| v == "1")
}

/// The heavy tests of this binary take turns: each measures latency or memory, and would measure
/// its neighbours instead if they ran at once.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    HEAVY.lock().await
}
