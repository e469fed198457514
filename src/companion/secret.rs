//! `swarmpilot secret rotate` and `secret prune`: Docker secrets are immutable, so a rotation
//! creates a new version `NAME_<UTC YYYYMMDDHHMMSS>` and moves every service that mounts any
//! version of the family (`NAME` itself or `NAME_<timestamp>`) to it, one rolling update at a
//! time, at the same target file, uid, gid and mode. A service that does not converge is put
//! back on its previous spec and the rotation stops. Old versions go once no service uses them
//! and they are older than the grace period; `serve` prunes on `secrets.prune_interval` too.
//! Secret values are never printed or logged.

use super::converge::{self, WaitError};
use crate::act::docker::classify;
use crate::act::DockerError;
use crate::settings::{SecretSettings, Settings};
use base64::Engine;
use bollard::models::{SecretSpec, Service, ServiceSpec, Task};
use bollard::query_parameters::{ListServicesOptions, UpdateServiceOptions};
use bollard::Docker;
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Label naming the family a version belongs to; prune only ever looks at labelled secrets.
pub const FAMILY_LABEL: &str = "swarmpilot.secret.family";
/// Label with the RFC 3339 creation time, for people reading `docker secret inspect`.
pub const CREATED_LABEL: &str = "swarmpilot.secret.created";

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create a new version of a secret and roll every service using the family onto it.
    Rotate(RotateArgs),
    /// Remove old versions that no service uses and that are older than the grace period.
    Prune(PruneArgs),
}

impl SecretCommand {
    pub fn config(&self) -> Option<PathBuf> {
        match self {
            Self::Rotate(a) => a.config.clone(),
            Self::Prune(a) => a.config.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Config file (default: swarmpilot.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The secret family: the name services mount, without a version suffix.
    pub name: String,
    /// Length of the random alphanumeric value (from the OS RNG).
    #[arg(long, default_value_t = 32, conflicts_with = "from_file")]
    pub length: usize,
    /// Take the value from a file (`-`: standard input) instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// How long each service may take to converge on the new version.
    #[arg(long, default_value = "5m", value_parser = super::duration)]
    pub deadline: Duration,
    /// Prune versions of this family older than this afterwards (default: secrets.grace).
    #[arg(long, value_parser = super::duration)]
    pub grace: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Config file (default: swarmpilot.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only this family (default: every family swarmpilot created).
    pub name: Option<String>,
    /// Keep versions younger than this (default: secrets.grace).
    #[arg(long, value_parser = super::duration)]
    pub grace: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("secret name {name:?}: {why}")]
    BadName { name: String, why: String },
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: empty; a secret needs a value")]
    Empty(String),
    #[error("--length must be between 16 and 4096, not {0}")]
    Length(usize),
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("service {service} did not converge on secret {secret}: {reason}; {rollback}{done}")]
    NotConverged {
        service: String,
        secret: String,
        reason: String,
        rollback: String,
        done: String,
    },
}

/// The spec with every reference to the family pointed at the new version, file options kept;
/// `None` when the service does not use the family.
pub fn retarget(spec: &ServiceSpec, family: &str, id: &str, name: &str) -> Option<ServiceSpec> {
    let mut spec = spec.clone();
    let secrets = spec
        .task_template
        .as_mut()?
        .container_spec
        .as_mut()?
        .secrets
        .as_mut()?;
    let mut changed = false;
    for secret in secrets.iter_mut() {
        if secret
            .secret_name
            .as_deref()
            .is_some_and(|n| is_of_family(n, family))
        {
            secret.secret_id = Some(id.into());
            secret.secret_name = Some(name.into());
            changed = true;
        }
    }
    changed.then_some(spec)
}

/// Secret IDs a task spec (or a service's task template) mounts.
fn mounted(spec: Option<&bollard::models::TaskSpec>) -> impl Iterator<Item = &str> {
    spec.and_then(|s| s.container_spec.as_ref())
        .and_then(|c| c.secrets.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|s| s.secret_id.as_deref())
}

fn task_mounts(task: &Task, id: &str) -> bool {
    mounted(task.spec.as_ref()).any(|m| m == id)
}

// ------------------------------------------------------------------------------ the commands

/// Run `secret rotate` or `secret prune` and return what to print.
pub async fn run(
    docker: &Docker,
    settings: &Settings,
    command: &SecretCommand,
) -> Result<String, SecretError> {
    match command {
        SecretCommand::Rotate(args) => rotate(docker, &settings.secrets, args).await,
        SecretCommand::Prune(args) => {
            if let Some(family) = &args.name {
                check_family(family)?;
            }
            let grace = args.grace.unwrap_or(settings.secrets.grace);
            let removed = prune(docker, args.name.as_deref(), grace).await?;
            Ok(pruned_lines(&removed, grace))
        }
    }
}

fn pruned_lines(removed: &[String], grace: Duration) -> String {
    if removed.is_empty() {
        return format!(
            "nothing to prune (versions in use, the newest, or younger than {})\n",
            humantime::format_duration(grace)
        );
    }
    removed.iter().map(|n| format!("pruned {n}\n")).collect()
}

async fn rotate(
    docker: &Docker,
    defaults: &SecretSettings,
    args: &RotateArgs,
) -> Result<String, SecretError> {
    check_family(&args.name)?;
    let value = match &args.from_file {
        Some(path) => read_value(path)?,
        None => random_value(args.length)?,
    };
    let (id, name) = create_version(docker, &args.name, value).await?;
    let mut out = format!("created secret {name}\n");
    let users = users_of(docker, &args.name).await?;
    if users.is_empty() {
        let _ = writeln!(out, "no service mounts {} or a version of it", args.name);
    }
    let mut done: Vec<String> = Vec::new();
    for service in users {
        if std::io::stderr().is_terminal() {
            eprintln!("rolling {} onto {name} …", service_name(&service));
        }
        let line = move_service(docker, &service, &args.name, (&id, &name), args.deadline)
            .await
            .map_err(|e| with_done(e, &done))?;
        out.push_str(&line);
        out.push('\n');
        done.push(service_name(&service).to_string());
    }
    let grace = args.grace.unwrap_or(defaults.grace);
    let removed = prune(docker, Some(&args.name), grace).await?;
    out.push_str(&pruned_lines(&removed, grace));
    Ok(out)
}

fn with_done(error: SecretError, done: &[String]) -> SecretError {
    match error {
        SecretError::NotConverged {
            service,
            secret,
            reason,
            rollback,
            ..
        } => SecretError::NotConverged {
            done: if done.is_empty() {
                String::new()
            } else {
                format!("; already on {secret}: {}", done.join(", "))
            },
            service,
            secret,
            reason,
            rollback,
        },
        other => other,
    }
}

fn read_value(path: &PathBuf) -> Result<Vec<u8>, SecretError> {
    let shown = path.display().to_string();
    let read_error = |source| SecretError::Read {
        path: shown.clone(),
        source,
    };
    let value = if shown == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(read_error)?;
        buf
    } else {
        std::fs::read(path).map_err(read_error)?
    };
    if value.is_empty() {
        return Err(SecretError::Empty(shown));
    }
    Ok(value)
}

/// Create the next version; two rotations within one second would collide on the name, so a
/// conflict waits for the next second once.
async fn create_version(
    docker: &Docker,
    family: &str,
    value: Vec<u8>,
) -> Result<(String, String), SecretError> {
    let data = base64::engine::general_purpose::STANDARD.encode(&value);
    drop(value);
    match try_create(docker, family, &data).await {
        Err(DockerError::Api { status: 409, .. }) => {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            Ok(try_create(docker, family, &data).await?)
        }
        other => Ok(other?),
    }
}

async fn try_create(
    docker: &Docker,
    family: &str,
    data: &str,
) -> Result<(String, String), DockerError> {
    let now = SystemTime::now();
    let name = version_name(family, now);
    let spec = SecretSpec {
        name: Some(name.clone()),
        labels: Some(HashMap::from([
            (FAMILY_LABEL.to_string(), family.to_string()),
            (
                CREATED_LABEL.to_string(),
                humantime::format_rfc3339_seconds(now).to_string(),
            ),
        ])),
        data: Some(data.to_string()),
        ..Default::default()
    };
    let created = docker.create_secret(spec).await.map_err(classify)?;
    Ok((created.id, name))
}

/// Every service mounting the family, by name.
async fn users_of(docker: &Docker, family: &str) -> Result<Vec<Service>, DockerError> {
    let mut users: Vec<Service> = list_services(docker)
        .await?
        .into_iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|spec| retarget(spec, family, "", ""))
                .is_some()
        })
        .collect();
    users.sort_by(|a, b| service_name(a).cmp(service_name(b)));
    Ok(users)
}

async fn list_services(docker: &Docker) -> Result<Vec<Service>, DockerError> {
    docker
        .list_services(None::<ListServicesOptions>)
        .await
        .map_err(classify)
}

fn service_name(service: &Service) -> &str {
    service
        .spec
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .unwrap_or("?")
}

/// One rolling update onto the new version, and back if it does not converge.
async fn move_service(
    docker: &Docker,
    service: &Service,
    family: &str,
    (id, name): (&str, &str),
    deadline: Duration,
) -> Result<String, SecretError> {
    let service_id = service.id.clone().unwrap_or_default();
    let old = service.spec.clone().unwrap_or_default();
    let new = retarget(&old, family, id, name).unwrap_or_else(|| old.clone());
    update(docker, &service_id, new, version_of(service)).await?;
    let on_new = |t: &Task| task_mounts(t, id);
    match converge::wait(docker, &service_id, deadline, &on_new, false).await {
        Ok(()) => Ok(format!(
            "service {} now mounts {name}: converged",
            service_name(service)
        )),
        Err(WaitError::Docker(e)) => Err(e.into()),
        Err(e) => Err(SecretError::NotConverged {
            service: service_name(service).into(),
            secret: name.into(),
            reason: e.to_string(),
            rollback: roll_back(docker, &service_id, old, id, deadline).await,
            done: String::new(),
        }),
    }
}

/// Put the service back on the spec it had before the rotation; says how that went.
async fn roll_back(
    docker: &Docker,
    service_id: &str,
    old: ServiceSpec,
    new_id: &str,
    deadline: Duration,
) -> String {
    let result: Result<_, WaitError> = async {
        let fresh = docker
            .inspect_service(service_id, None)
            .await
            .map_err(classify)?;
        let current = fresh.spec.as_ref().and_then(|s| s.task_template.as_ref());
        // After Swarm's own failure_action=rollback the template is already the old one.
        if mounted(current).any(|m| m == new_id) {
            update(docker, service_id, old, version_of(&fresh)).await?;
        }
        let on_old = |t: &Task| !task_mounts(t, new_id);
        converge::wait(docker, service_id, deadline, &on_old, true).await
    }
    .await;
    match result {
        Ok(()) => "rolled back to its previous spec".into(),
        Err(e) => format!("rolling it back to its previous spec did not converge either: {e}"),
    }
}

fn version_of(service: &Service) -> i32 {
    service
        .version
        .as_ref()
        .and_then(|v| v.index)
        .and_then(|i| i32::try_from(i).ok())
        .unwrap_or(0)
}

async fn update(
    docker: &Docker,
    service_id: &str,
    spec: ServiceSpec,
    version: i32,
) -> Result<(), DockerError> {
    let options = UpdateServiceOptions {
        version,
        ..Default::default()
    };
    let response = docker
        .update_service(service_id, spec, options, None)
        .await
        .map_err(classify)?;
    for warning in response.warnings.unwrap_or_default() {
        tracing::debug!(service_id, %warning, "Docker warned about the update");
    }
    Ok(())
}

mod prune;
mod version;

pub use prune::{prunable, prune, spawn_pruner};
pub use version::{check_family, is_of_family, random_value, version_name, Version};

#[cfg(test)]
mod tests;
