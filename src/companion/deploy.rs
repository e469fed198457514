//! `swarmpilot deploy STACK_FILE…`: deploy stack files in the order given through `docker stack
//! deploy` (Docker's own compose parser), and after each one wait until every service of the
//! stack has converged (see [`super::converge`]) before the next. A stack that does not
//! converge within the deadline stops the run, naming its services that did not.

use super::converge::{self, Progress, Settle};
use crate::act::docker::classify;
use crate::act::endpoint::Endpoint;
use crate::act::DockerError;
use crate::settings::Settings;
use bollard::models::Service;
use bollard::query_parameters::ListServicesOptionsBuilder;
use bollard::Docker;
use clap::Args;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Config file (default: swarmpilot.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Stack files, deployed in this order; each stack is named after its file (app.yml → app).
    #[arg(required = true, value_name = "STACK_FILE")]
    pub files: Vec<PathBuf>,
    /// The stack name, instead of the file name (only with one file).
    #[arg(long)]
    pub name: Option<String>,
    /// How long each stack may take to converge.
    #[arg(long, default_value = "5m", value_parser = super::duration)]
    pub deadline: Duration,
    /// Passed to `docker stack deploy --resolve-image`: `never` when nodes must not query a
    /// registry (images built locally).
    #[arg(long, default_value = "always", value_parser = ["always", "changed", "never"])]
    pub resolve_image: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("--name names one stack; give one file with it, or none and the files name them")]
    NameWithManyFiles,
    #[error("{0}: no stack name can be derived from the file name; use --name")]
    NoName(String),
    #[error("{0}: {1}")]
    File(String, std::io::Error),
    #[error("docker stack deploy could not run: {0}")]
    Spawn(std::io::Error),
    #[error("docker stack deploy -c {file} {stack} failed: {output}")]
    Deploy {
        file: String,
        stack: String,
        output: String,
    },
    #[error("stack {0} has no services after deploying it")]
    Empty(String),
    #[error("stack {stack}: {} did not converge{}: {}", .names.join(", "), .within, .details.join("; "))]
    NotConverged {
        stack: String,
        names: Vec<String>,
        within: String,
        details: Vec<String>,
    },
}

/// Deploy every file and return the report to print.
pub async fn run(
    docker: &Docker,
    settings: &Settings,
    args: &DeployArgs,
) -> Result<String, DeployError> {
    if args.name.is_some() && args.files.len() > 1 {
        return Err(DeployError::NameWithManyFiles);
    }
    let endpoint = Endpoint::configured(&settings.docker.host).map_err(DockerError::from)?;
    let mut out = String::new();
    for file in &args.files {
        let stack = match &args.name {
            Some(name) => name.clone(),
            None => stack_name(file)?,
        };
        std::fs::metadata(file).map_err(|e| DeployError::File(file.display().to_string(), e))?;
        stack_deploy(&endpoint, file, &stack, &args.resolve_image).await?;
        let converged = wait_stack(docker, &stack, args.deadline).await?;
        let _ = writeln!(
            out,
            "stack {stack} ({}): {} services converged: {}",
            file.display(),
            converged.len(),
            converged.join(", ")
        );
    }
    Ok(out)
}

/// `stacks/app.yml` → `app`.
pub fn stack_name(file: &Path) -> Result<String, DeployError> {
    file.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| DeployError::NoName(file.display().to_string()))
}

/// The docker CLI on the very engine swarmpilot uses: always told the endpoint explicitly, in the
/// URL form the CLI understands (it rejects a plain socket path in `DOCKER_HOST`).
async fn stack_deploy(
    endpoint: &Endpoint,
    file: &Path,
    stack: &str,
    resolve_image: &str,
) -> Result<(), DeployError> {
    let mut command = Command::new("docker");
    command
        .args(["stack", "deploy", "--resolve-image", resolve_image, "-c"])
        .arg(file)
        .arg(stack);
    command.env("DOCKER_HOST", endpoint.url());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| DeployError::Spawn(std::io::Error::other(e)))?
        .map_err(DeployError::Spawn)?;
    if output.status.success() {
        return Ok(());
    }
    Err(DeployError::Deploy {
        file: file.display().to_string(),
        stack: stack.into(),
        output: String::from_utf8_lossy(&output.stderr).trim().to_string(),
    })
}

/// Wait for every service of `stack`; the names of its services once all converged.
async fn wait_stack(
    docker: &Docker,
    stack: &str,
    timeout: Duration,
) -> Result<Vec<String>, DeployError> {
    let deadline = crate::clock::saturating_add_instant(Instant::now(), timeout);
    let mut settles = HashMap::new();
    let mut progress = stack_progress(docker, stack, &mut settles).await?;
    if progress.is_empty() {
        return Err(DeployError::Empty(stack.into()));
    }
    loop {
        let settled = progress
            .iter()
            .all(|(_, p)| !matches!(p, Progress::Pending(_)));
        if settled || Instant::now() >= deadline {
            break;
        }
        if std::io::stderr().is_terminal() {
            let pending = progress
                .iter()
                .filter(|(_, p)| matches!(p, Progress::Pending(_)))
                .count();
            eprint!(
                "\rstack {stack}: waiting for {pending} of {} services   ",
                progress.len()
            );
        }
        tokio::time::sleep(converge::POLL).await;
        progress = stack_progress(docker, stack, &mut settles).await?;
    }
    if std::io::stderr().is_terminal() {
        eprint!("\r{:60}\r", "");
    }
    report(stack, progress, timeout)
}

fn report(
    stack: &str,
    progress: Vec<(String, Progress)>,
    timeout: Duration,
) -> Result<Vec<String>, DeployError> {
    let (converged, stuck): (Vec<_>, Vec<_>) = progress
        .into_iter()
        .partition(|(_, p)| *p == Progress::Converged);
    if stuck.is_empty() {
        return Ok(converged.into_iter().map(|(name, _)| name).collect());
    }
    let pending = stuck.iter().any(|(_, p)| matches!(p, Progress::Pending(_)));
    Err(DeployError::NotConverged {
        stack: stack.into(),
        names: stuck.iter().map(|(name, _)| name.clone()).collect(),
        within: if pending {
            format!(" within {}", humantime::format_duration(timeout))
        } else {
            String::new()
        },
        details: stuck
            .into_iter()
            .map(|(name, p)| match p {
                Progress::Pending(why) | Progress::Failed(why) => format!("{name} {why}"),
                Progress::Converged => name,
            })
            .collect(),
    })
}

/// Every service of the stack and how far it is, by name.
async fn stack_progress(
    docker: &Docker,
    stack: &str,
    settles: &mut HashMap<String, Settle>,
) -> Result<Vec<(String, Progress)>, DockerError> {
    let label = format!("com.docker.stack.namespace={stack}");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = ListServicesOptionsBuilder::new().filters(&filters).build();
    let mut services = docker
        .list_services(Some(options))
        .await
        .map_err(classify)?;
    services.sort_by_key(name_of);
    let mut out = Vec::with_capacity(services.len());
    for service in services {
        let tasks = converge::tasks_of(docker, service.id.as_deref().unwrap_or_default()).await?;
        let current = |t: &bollard::models::Task| converge::runs_current_template(&service, t);
        let progress = converge::assess(&service, &tasks, &current, false);
        let name = name_of(&service);
        let settle = settles
            .entry(name.clone())
            .or_insert_with(|| Settle::new(converge::STABLE));
        out.push((name, settle.observe(progress, &tasks, Instant::now())));
    }
    Ok(out)
}

fn name_of(service: &Service) -> String {
    service
        .spec
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("stacks/app.yml", Some("app"))]
    #[case("monitoring.yaml", Some("monitoring"))]
    #[case("/x/backup", Some("backup"))]
    #[case("/", None)]
    fn stack_names_come_from_the_file(#[case] file: &str, #[case] name: Option<&str>) {
        assert_eq!(stack_name(Path::new(file)).ok().as_deref(), name);
    }

    #[test]
    fn the_report_names_every_service_that_did_not_converge() {
        let progress = vec![
            ("s_ok".to_string(), Progress::Converged),
            (
                "s_crash".to_string(),
                Progress::Pending("0/1 tasks running: task: non-zero exit (1)".into()),
            ),
            (
                "s_paused".to_string(),
                Progress::Failed("update paused".into()),
            ),
        ];
        let error = report("s", progress, Duration::from_secs(20)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "stack s: s_crash, s_paused did not converge within 20s: s_crash 0/1 tasks running: \
             task: non-zero exit (1); s_paused update paused"
        );
    }

    #[test]
    fn a_converged_stack_lists_its_services() {
        let progress = vec![("s_a".to_string(), Progress::Converged)];
        assert_eq!(
            report("s", progress, Duration::from_secs(1)).unwrap(),
            ["s_a"]
        );
    }
}
