//! The command line: `serve`, `check`, `plan` and `healthcheck` (in [`crate::healthcheck`]), and
//! the companion commands `recommend`, `secret` and `deploy` (in [`crate::companion`]), sharing
//! one way to load config and rules.
//! Errors reach the user as one clear message and exit code 1, never as a panic.

use crate::act::docker::DockerSwarm;
use crate::act::endpoint::{Endpoint, EndpointError};
use crate::act::DockerError;
use crate::clock::SystemClock;
use crate::companion::{self, CompanionError};
use crate::healthcheck::{HealthError, Target};
use crate::parse::{parse_notification, ParseError};
use crate::receive::tls::TlsError;
use crate::receive::Auth;
use crate::rules::{load_rules_for, RuleErrors};
use crate::settings::{Settings, SettingsError};
use crate::startup::{Application, Dependencies, StartError};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "swarmpilot",
    version,
    about = "Alertmanager webhooks → safe remediation on Docker Swarm"
)]
pub struct Cli {
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the webhook receiver.
    Serve {
        /// Config file (default: swarmpilot.toml if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Decide and record, but never change the swarm.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate the config and every rule file; exit 1 on any error.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show which rules match which alerts of a payload file, touching nothing.
    Plan {
        #[arg(long)]
        config: Option<PathBuf>,
        /// An Alertmanager webhook payload (JSON).
        payload: PathBuf,
    },
    /// Sample opted-in services and recommend deploy.resources and a replica range.
    Recommend(companion::recommend::RecommendArgs),
    /// Rotate a Docker secret through the services that use it, or prune old versions.
    Secret {
        #[command(subcommand)]
        command: companion::secret::SecretCommand,
    },
    /// Deploy stack files in order and wait until every service has converged.
    Deploy(companion::deploy::DeployArgs),
    /// GET this server's /-/healthy (the container health check): exit 0 healthy, 1 otherwise.
    Healthcheck {
        /// Config file whose `listen` and `[tls]` say where `serve` answers.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Probe this http:// or https:// URL instead.
        #[arg(long, conflicts_with = "config")]
        url: Option<String>,
        /// Give up after this long (connect, send, answer).
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

/// Why a command failed: printed as one line `swarmpilot: …` before exiting with 1. Each
/// variant keeps its source, so the message says what went wrong where.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("config: {0}")]
    Endpoint(#[from] EndpointError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Rules(#[from] RuleErrors),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Companion(#[from] CompanionError),
    #[error("unhealthy: {0}")]
    Unhealthy(#[from] HealthError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("the server stopped with an error: {0}")]
    Serve(#[source] std::io::Error),
    #[error("{}: {source}", path.display())]
    PayloadRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    PayloadParse { path: PathBuf, source: ParseError },
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    init_logging(cli.log_format);
    match cli.command {
        Command::Serve { config, dry_run } => serve(config, dry_run),
        Command::Check { config } => check(config),
        Command::Plan { config, payload } => plan(config, payload),
        Command::Healthcheck {
            config,
            url,
            timeout,
        } => healthcheck(config, url, timeout),
        Command::Recommend(args) => {
            let settings = settings(args.config.clone())?;
            Ok(companion::block_on(
                settings.docker.clone(),
                move |docker| async move { companion::recommend::run(&docker, &settings, &args).await },
            )?)
        }
        Command::Secret { command } => {
            let settings = settings(command.config())?;
            Ok(companion::block_on(
                settings.docker.clone(),
                move |docker| async move { companion::secret::run(&docker, &settings, &command).await },
            )?)
        }
        Command::Deploy(args) => {
            let settings = settings(args.config.clone())?;
            Ok(companion::block_on(
                settings.docker.clone(),
                move |docker| async move { companion::deploy::run(&docker, &settings, &args).await },
            )?)
        }
    }
}

fn settings(config: Option<PathBuf>) -> Result<Settings, SettingsError> {
    Settings::load(config.as_deref())
}

fn serve(config: Option<PathBuf>, dry_run: bool) -> Result<(), CliError> {
    let mut settings = settings(config)?;
    settings.dry_run |= dry_run;
    let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let swarm = DockerSwarm::connect(&settings.docker.host, settings.docker.timeout)?
            .negotiate()
            .await;
        let deps = Dependencies {
            swarm: Arc::new(swarm),
            clock: Arc::new(SystemClock),
        };
        let app = Application::build(&settings, deps).await?;
        // Replaying the journal needs memory in proportion to its length: without this a long
        // journal meant a large process for good.
        crate::memory::give_back(true);
        if settings.dry_run {
            tracing::warn!("dry run: decisions are made and recorded, the swarm is never changed");
        }
        companion::secret::spawn_pruner(
            settings.docker.clone(),
            settings.secrets.clone(),
            settings.dry_run,
            app.stop_signal(),
        );
        app.run_until_stopped().await.map_err(CliError::Serve)
    })
}

fn check(config: Option<PathBuf>) -> Result<(), CliError> {
    let settings = settings(config)?;
    Auth::from_settings(&settings.auth)?;
    // The same parse `serve` and the companions use, so what passes here connects there.
    Endpoint::configured(&settings.docker.host)?;
    if settings.tls.enabled() {
        crate::receive::tls::server_config(&settings.tls)?;
    }
    let rules = load_rules_for(&settings.rules_dir, &settings.prometheus.url)?;
    println!(
        "ok: {} rules in {}",
        rules.len(),
        settings.rules_dir.display()
    );
    check_placement(&settings, &rules);
    Ok(())
}

/// Warnings, never errors: a config is valid whether or not the swarm is reachable from where
/// `check` runs (CI, a laptop), so an unreachable engine is a note on stderr.
fn check_placement(settings: &Settings, rules: &crate::rules::RuleSet) {
    let read = || -> Result<Vec<String>, CliError> {
        let runtime = tokio::runtime::Runtime::new().map_err(CliError::Runtime)?;
        Ok(runtime.block_on(async {
            let docker = companion::connect(&settings.docker).await?;
            companion::placement::check(&docker, &settings.opt_in_label, rules).await
        })?)
    };
    match read() {
        Ok(warnings) => {
            for warning in warnings {
                eprintln!("warning: {warning}");
            }
        }
        Err(e) => eprintln!("note: placement of opted-in services not checked: {e}"),
    }
}

fn plan(config: Option<PathBuf>, payload: PathBuf) -> Result<(), CliError> {
    let settings = settings(config)?;
    let rules = load_rules_for(&settings.rules_dir, &settings.prometheus.url)?;
    let body = std::fs::read(&payload).map_err(|source| CliError::PayloadRead {
        path: payload.clone(),
        source,
    })?;
    let notification = parse_notification(&body).map_err(|source| CliError::PayloadParse {
        path: payload,
        source,
    })?;
    print!("{}", crate::plan::describe(&rules, &notification));
    Ok(())
}

fn healthcheck(
    config: Option<PathBuf>,
    url: Option<String>,
    timeout: std::time::Duration,
) -> Result<(), CliError> {
    let target = match url {
        Some(url) => Target::from_url(&url)?,
        None => Target::from_settings(&settings(config).map_err(HealthError::from)?)?,
    };
    println!("{}", target.probe(timeout)?);
    Ok(())
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
