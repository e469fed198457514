//! The companion commands an operator runs beside the webhook service: `recommend` (resource
//! sizes from observed usage), `secret rotate` / `secret prune` (versioned Docker secrets rolled
//! through their services), `deploy` (stack files, waiting for convergence) and `check`'s look
//! at the swarm (placement against replica ceilings). They share the
//! config file, the Docker client of `docker.host` / `docker.timeout`, and the CLI's convention
//! of one error message and exit code 1.
//!
//! ```text
//! recommend   recommend.rs → stats.rs (sampling) or cadvisor.rs → sizing.rs (formulas, output)
//! secret      secret.rs (rotate, prune) → converge.rs
//! deploy      deploy.rs (docker stack deploy) → converge.rs
//! check       placement.rs (ceilings vs. eligible nodes × max_replicas_per_node)
//! ```

pub mod cadvisor;
pub mod converge;
pub mod deploy;
pub mod placement;
pub mod recommend;
pub mod secret;
pub mod sizing;
pub mod stats;

use crate::act::docker::DockerSwarm;
use crate::act::DockerError;
use crate::settings::DockerSettings;
use bollard::Docker;
use std::future::Future;
use std::time::Duration;

/// `--window 10m`, `--grace 24h`: the duration syntax of the config file.
pub fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// The bollard client as `serve` builds it, with the API version negotiated.
pub async fn connect(settings: &DockerSettings) -> Result<Docker, DockerError> {
    DockerSwarm::connect(&settings.host, settings.timeout)?
        .negotiate()
        .await
        .docker()
}

/// Why a companion command failed.
#[derive(Debug, thiserror::Error)]
pub enum CompanionError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The command's own message (each command words its failures for the operator).
    #[error("{0}")]
    Command(String),
}

/// Run one companion command on a fresh runtime with a connected client, printing its output.
pub fn block_on<F, Fut, E>(settings: DockerSettings, command: F) -> Result<(), CompanionError>
where
    F: FnOnce(Docker) -> Fut,
    Fut: Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    let runtime = tokio::runtime::Runtime::new().map_err(CompanionError::Runtime)?;
    runtime.block_on(async {
        let docker = connect(&settings).await?;
        let output = command(docker)
            .await
            .map_err(|e| CompanionError::Command(e.to_string()))?;
        print!("{output}");
        Ok(())
    })
}
