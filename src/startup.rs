//! The composition root: the one place that wires swarmpilot together from its settings — rules,
//! auth, TLS, metrics, Grafana, the journal and its recovery, the pipeline, the HTTP server —
//! and runs it until it is told to stop. `main` (through `cli`) and the tests call it.

use crate::act::Swarm;
use crate::clock::Clock;
use crate::journal::{Compaction, Journal, JournalError};
use crate::pipeline::{ClusterMode, Pipeline, PipelineSettings, Records, Recovery};
use crate::prometheus::Prometheus;
use crate::receive::{serve, spawn_duties, tls, AppState, Auth};
use crate::record::grafana::Annotator;
use crate::record::metrics::Metrics;
use crate::rules::{load_rules_for, RuleErrors};
use crate::settings::{Settings, SettingsError};
use actix_web::dev::Server;
use actix_web::web;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("rules:\n{0}")]
    Rules(#[from] RuleErrors),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Prometheus(#[from] crate::prometheus::PrometheusError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// What the server talks to: the swarm and the clock are injected so tests can drive time.
pub struct Dependencies {
    pub swarm: Arc<dyn Swarm>,
    pub clock: Arc<dyn Clock>,
}

/// A bound, not yet running server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    recovery: Recovery,
    /// How long shutdown waits for actions inside a Docker call.
    drain_for: Duration,
}

impl Application {
    /// Load rules and secrets, open and recover the journal, bind the listener (port 0 picks a
    /// free port) and build the server.
    pub async fn build(settings: &Settings, deps: Dependencies) -> Result<Self, StartError> {
        let rules = load_rules_for(&settings.rules_dir, &settings.prometheus.url)?;
        tracing::info!(rules = rules.len(), dir = %settings.rules_dir.display(), "rules loaded");
        let auth = Auth::from_settings(&settings.auth)?;
        if auth.is_open() && !settings.tls.verifies_clients() {
            tracing::warn!("no auth configured: any local process may POST /webhook");
        }
        let tls = match settings.tls.enabled() {
            true => Some(tls::server_config(&settings.tls)?),
            false => None,
        };
        let metrics = Arc::new(Metrics::new());
        metrics.rules_loaded(rules.len());
        metrics.reload(true, crate::clock::unix_secs(SystemTime::now()));
        let annotator = Annotator::start(&settings.grafana, metrics.clone())?;
        let clock = deps.clock.clone();
        let compaction = Compaction {
            now_ms: Arc::new(move || crate::pipeline::unix_ms(clock.now())),
            keep_actions: crate::record::actions::KEEP,
            grow_to: crate::journal::GROW_TO,
        };
        let (journal, replayed) = Journal::open_compacted(&settings.data_dir, compaction)?;
        let records = Records {
            journal,
            metrics,
            annotator,
        };
        let pipeline = Arc::new(Pipeline::new(
            rules,
            deps.swarm,
            deps.clock,
            records,
            pipeline_settings(settings)?,
        ));
        let recovery = pipeline.recover(replayed).await?;
        let listener = TcpListener::bind(&settings.listen).map_err(|source| StartError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;
        let port = listener.local_addr().map_or(0, |a| a.port());
        let state = web::Data::new(AppState::new(pipeline, auth, settings));
        let server =
            serve(listener, state.clone(), settings, tls).map_err(|source| StartError::Bind {
                addr: settings.listen.clone(),
                source,
            })?;
        tracing::info!(port, tls = settings.tls.enabled(), "listening");
        Ok(Self {
            port,
            server,
            state,
            recovery,
            // One Docker call's timeout, plus the outcome's fsync.
            drain_for: settings
                .docker
                .timeout
                .saturating_add(Duration::from_secs(2)),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (tests restart swarmpilot on the same data_dir).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Becomes true when the server stops: what runs beside it (the secret pruner) stops too.
    pub fn stop_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.state.pipeline.stop_signal()
    }

    /// What start-up recovered from the journal.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Serve until SIGINT/SIGTERM (graceful: in-flight requests finish); SIGHUP reloads.
    /// Then the actions in flight get `drain_for` to finish their Docker call and journal its
    /// outcome; what is only waiting stays unfinished and is resumed at the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        spawn_duties(self.state.clone());
        let handle = self.server.handle();
        let pipeline = self.state.pipeline.clone();
        let drain_for = self.drain_for;
        // actix's own signal handling would stop its workers, and with them the actions they
        // run, before anything could wait for those: here the order is stop accepting, let the
        // actions in flight finish (bounded), then stop the workers.
        let on_signal = tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: no new connections; finishing the actions in flight");
            handle.pause().await;
            pipeline.drain(drain_for).await;
            handle.stop(true).await;
        });
        let served = self.server.await;
        on_signal.abort();
        // Stopped another way (a test's handle): ask the rest to stop too.
        if !self.state.pipeline.is_stopping() {
            self.state.pipeline.drain(self.drain_for).await;
        }
        served
    }
}

/// SIGTERM (Docker's stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT; stop swarmpilot with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn pipeline_settings(settings: &Settings) -> Result<PipelineSettings, StartError> {
    let prometheus = match settings.prometheus.url.is_empty() {
        true => None,
        false => Some(Arc::new(Prometheus::new(
            &settings.prometheus.url,
            settings.prometheus.query_timeout,
        )?)),
    };
    Ok(PipelineSettings {
        opt_in_label: settings.opt_in_label.clone(),
        retry_for: settings.docker.retry_for,
        admission_read_timeout: settings.docker.timeout.min(Duration::from_secs(2)),
        actions_per_minute: settings.limits.actions_per_minute,
        actions_per_service_per_hour: settings.limits.actions_per_service_per_hour,
        backup_timeout: settings.backup.timeout,
        cluster: settings.cluster.enabled.then(|| ClusterMode {
            register_service: settings.cluster.register_service.clone(),
            // An update is a read and a write, each bounded by docker.timeout.
            ack_wait: settings.docker.timeout.saturating_mul(2),
        }),
        prometheus,
    })
}
