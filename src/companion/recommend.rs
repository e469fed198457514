//! `swarmpilot recommend`: find the running tasks of opted-in services, observe their usage over a
//! window, and print reservations, limits and a replica range ([`super::sizing`] holds the
//! formulas). Usage comes from sampling the containers (only those on the node swarmpilot talks
//! to) or, with `prometheus.url`, from the cAdvisor series of the window that just ended
//! ([`super::cadvisor`]).

use super::sizing::{self, Observed};
use super::stats::{self, ContainerSamples};
use crate::act::docker::{classify, opted_in_services};
use crate::act::DockerError;
use crate::prometheus::{Prometheus, PrometheusError};
use crate::settings::Settings;
use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;
use bollard::Docker;
use clap::{Args, ValueEnum};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Config file (default: swarmpilot.toml if present).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// How long to sample (e.g. 30s, 10m).
    #[arg(long, default_value = "10m", value_parser = super::duration)]
    pub window: Duration,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Where usage comes from: `docker` samples the containers for the window, `prometheus`
    /// reads the window that just ended from `prometheus.url`. Default: prometheus when
    /// `prometheus.url` is set.
    #[arg(long, value_enum)]
    pub source: Option<Source>,
    /// Only these services (each must carry the opt-in label); repeatable. Default: every
    /// opted-in service.
    #[arg(long = "service", value_name = "NAME")]
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Compose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Source {
    Docker,
    Prometheus,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Docker => "docker",
            Source::Prometheus => "prometheus",
        }
    }

    /// What a service without a recommendation lacked.
    fn no_samples(self) -> &'static str {
        match self {
            Source::Docker => "no local running task sampled",
            Source::Prometheus => "no cAdvisor series in Prometheus for the window",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecommendError {
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
    #[error("--source prometheus needs prometheus.url in the config")]
    NoPrometheusUrl,
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("no service named {0:?} carries {1}=true")]
    NotManaged(String, String),
    #[error("no service carries {0}=true: nothing to sample")]
    NothingManaged(String),
}

/// One service and the containers of its running tasks.
struct Target {
    observed: Observed,
    containers: Vec<String>,
}

/// Run the command and return what to print.
pub async fn run(
    docker: &Docker,
    settings: &Settings,
    args: &RecommendArgs,
) -> Result<String, RecommendError> {
    let source = match args.source {
        Some(source) => source,
        None if settings.prometheus.url.is_empty() => Source::Docker,
        None => Source::Prometheus,
    };
    if source == Source::Prometheus && settings.prometheus.url.is_empty() {
        return Err(RecommendError::NoPrometheusUrl);
    }
    let targets = targets(docker, &settings.opt_in_label, &args.services).await?;
    let report = match source {
        Source::Docker => sample(docker, targets, args.window).await,
        Source::Prometheus => {
            let prometheus =
                Prometheus::new(&settings.prometheus.url, settings.prometheus.timeout)?;
            read(&prometheus, targets, args.window).await?
        }
    };
    Ok(match args.format {
        Format::Table => sizing::table(&report, source.no_samples()),
        Format::Json => format!(
            "{:#}\n",
            sizing::json(&report, args.window.as_secs(), source.name())
        ),
        Format::Compose => sizing::compose(&report, source.no_samples()),
    })
}

async fn targets(
    docker: &Docker,
    opt_in_label: &str,
    wanted: &[String],
) -> Result<Vec<Target>, RecommendError> {
    let services = opted_in_services(docker, opt_in_label).await?;
    let mut by_name: BTreeMap<String, Service> = services
        .into_iter()
        .filter_map(|s| Some((s.spec.as_ref()?.name.clone()?, s)))
        .collect();
    if !wanted.is_empty() {
        if let Some(missing) = wanted.iter().find(|w| !by_name.contains_key(*w)) {
            return Err(RecommendError::NotManaged(
                missing.clone(),
                opt_in_label.into(),
            ));
        }
        by_name.retain(|name, _| wanted.contains(name));
    }
    if by_name.is_empty() {
        return Err(RecommendError::NothingManaged(opt_in_label.into()));
    }
    let containers = running_containers(docker).await?;
    Ok(by_name
        .into_iter()
        .map(|(name, service)| {
            let id = service.id.clone().unwrap_or_default();
            Target {
                observed: observed_shell(&name, &service),
                containers: containers.get(&id).cloned().unwrap_or_default(),
            }
        })
        .collect())
}

/// Container IDs of running tasks, by service ID.
async fn running_containers(docker: &Docker) -> Result<HashMap<String, Vec<String>>, DockerError> {
    let filters = HashMap::from([("desired-state", vec!["running"])]);
    let options = ListTasksOptionsBuilder::new().filters(&filters).build();
    let tasks = docker.list_tasks(Some(options)).await.map_err(classify)?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for task in tasks {
        if let (Some(service), Some(container)) =
            (task.service_id.clone(), running_container(&task))
        {
            out.entry(service).or_default().push(container);
        }
    }
    Ok(out)
}

fn running_container(task: &Task) -> Option<String> {
    let status = task.status.as_ref()?;
    if status.state != Some(TaskState::RUNNING) {
        return None;
    }
    status.container_status.as_ref()?.container_id.clone()
}

/// The name, stack and current CPU limit of a service, before any sample.
fn observed_shell(name: &str, service: &Service) -> Observed {
    let spec = service.spec.as_ref();
    let stack = spec
        .and_then(|s| s.labels.as_ref())
        .and_then(|l| l.get("com.docker.stack.namespace"))
        .cloned();
    let compose_name = stack
        .as_deref()
        .and_then(|s| name.strip_prefix(&format!("{s}_")))
        .unwrap_or(name)
        .to_string();
    let current_cpu_limit = spec
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.resources.as_ref())
        .and_then(|r| r.limits.as_ref())
        .and_then(|l| l.nano_cpus)
        .map(|n| n as f64 / 1e9);
    Observed {
        service: name.to_string(),
        compose_name,
        stack,
        current_cpu_limit,
        ..Default::default()
    }
}

/// Sample every container of every target at once over the window.
async fn sample(
    docker: &Docker,
    targets: Vec<Target>,
    window: Duration,
) -> Vec<(Observed, Option<sizing::Recommendation>)> {
    let until = crate::clock::saturating_add_instant(Instant::now(), window);
    let containers: usize = targets.iter().map(|t| t.containers.len()).sum();
    let what = format!("{containers} containers of {} services", targets.len());
    let streams = targets.iter().map(|t| {
        futures_util::future::join_all(
            t.containers
                .iter()
                .map(|c| stats::sample_container(docker, c, until)),
        )
    });
    let (results, ()) = tokio::join!(
        futures_util::future::join_all(streams),
        stats::show_progress(what, window)
    );
    targets
        .into_iter()
        .zip(results)
        .map(|(target, samples)| {
            let observed = fold(target.observed, samples);
            let recommendation = sizing::recommend(&observed);
            (observed, recommendation)
        })
        .collect()
}

/// Read every target's window from Prometheus, all at once.
async fn read(
    prometheus: &Prometheus,
    targets: Vec<Target>,
    window: Duration,
) -> Result<Vec<(Observed, Option<sizing::Recommendation>)>, PrometheusError> {
    let reads = targets
        .into_iter()
        .map(|t| super::cadvisor::observe(prometheus, t.observed, window));
    let observed = futures_util::future::try_join_all(reads).await?;
    Ok(observed
        .into_iter()
        .map(|o| {
            let recommendation = sizing::recommend(&o);
            (o, recommendation)
        })
        .collect())
}

fn fold(mut observed: Observed, containers: Vec<ContainerSamples>) -> Observed {
    for container in containers.into_iter().filter(|c| !c.not_local) {
        if container.samples.is_empty() {
            continue;
        }
        observed.tasks += 1;
        for s in container.samples {
            // Only samples with a CPU rate count, so CPU and memory percentiles share a base.
            if let (Some(cpu), Some(memory)) = (s.cpu_cores, s.memory_bytes) {
                observed.cpu.push(cpu);
                observed.memory.push(memory);
            }
        }
    }
    observed
}
