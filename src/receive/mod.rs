//! The receive step: the HTTP server. It authenticates, bounds and parses the request, hands the
//! notification to the pipeline and answers with the decisions.

pub mod auth;
pub mod body;
pub mod error;
pub mod routes;

use crate::act::Swarm;
use crate::clock::Clock;
use crate::gate::budget::{keyed, InjectedClock, Keyed};
use crate::pipeline::{Pipeline, PipelineSettings, Recovery};
use crate::record::journal::{Journal, JournalError};
use crate::rules::{load_rules_dir, RuleErrors};
use crate::settings::{Settings, SettingsError};
use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpServer};
pub use auth::Auth;
use error::ApiError;
use governor::clock::Clock as _;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// Shared by every worker.
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub auth: Auth,
    pub max_body_bytes: usize,
    pub dry_run: bool,
    /// `limits.requests_per_second_per_client`, keyed by the peer address.
    client_rate: Option<Keyed<IpAddr>>,
    rate_clock: InjectedClock,
}

impl AppState {
    /// 429 with Retry-After for a client over its rate; checked before auth so guessing tokens
    /// is slow too.
    pub fn check_client_rate(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let (Some(limiter), Some(peer)) = (&self.client_rate, req.peer_addr()) else {
            return Ok(());
        };
        limiter.check_key(&peer.ip()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.rate_clock.now());
            ApiError::TooManyRequests(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("rules:\n{0}")]
    Rules(#[from] RuleErrors),
    #[error(transparent)]
    Journal(#[from] JournalError),
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
    pipeline: Arc<Pipeline>,
    recovery: Recovery,
}

impl Application {
    /// Load rules and secrets, open and recover the journal, bind the listener (port 0 picks a
    /// free port) and build the server.
    pub async fn build(settings: &Settings, deps: Dependencies) -> Result<Self, StartError> {
        let rules = load_rules_dir(&settings.rules_dir)?;
        tracing::info!(rules = rules.len(), dir = %settings.rules_dir.display(), "rules loaded");
        let auth = Auth::from_settings(&settings.auth)?;
        if auth.is_open() {
            tracing::warn!("no auth configured: any local process may POST /webhook");
        }
        let (journal, replayed) = Journal::open(&settings.data_dir)?;
        let rate_clock = InjectedClock(deps.clock.clone());
        let pipeline = Arc::new(Pipeline::new(
            rules,
            deps.swarm,
            deps.clock,
            journal,
            pipeline_settings(settings),
        ));
        let recovery = pipeline.recover(replayed).await?;
        let listener = TcpListener::bind(&settings.listen).map_err(|source| StartError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;
        let port = listener.local_addr().map_or(0, |a| a.port());
        let state = web::Data::new(AppState {
            pipeline: pipeline.clone(),
            auth,
            max_body_bytes: settings.limits.max_body_bytes,
            dry_run: settings.dry_run,
            client_rate: keyed(
                settings.limits.requests_per_second_per_client,
                Duration::from_secs(1),
                &rate_clock,
            ),
            rate_clock,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/webhook", web::post().to(routes::webhook))
                .route("/-/healthy", web::get().to(routes::healthy))
                .route("/-/ready", web::get().to(routes::ready))
                .route("/api/v1/actions", web::get().to(routes::actions))
                .default_service(web::to(routes::not_found))
        })
        .workers(2)
        .listen(listener)
        .map_err(|source| StartError::Bind {
            addr: settings.listen.clone(),
            source,
        })?
        .run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            pipeline,
            recovery,
        })
    }

    /// A handle to stop the server (tests restart swarmpilot on the same data_dir).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// What start-up recovered from the journal.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pipeline(&self) -> Arc<Pipeline> {
        self.pipeline.clone()
    }

    /// Serve until SIGINT/SIGTERM (graceful: in-flight requests finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn pipeline_settings(settings: &Settings) -> PipelineSettings {
    PipelineSettings {
        opt_in_label: settings.opt_in_label.clone(),
        retry_for: settings.docker.retry_for,
        admission_read_timeout: settings.docker.timeout.min(Duration::from_secs(2)),
        actions_per_minute: settings.limits.actions_per_minute,
        actions_per_service_per_hour: settings.limits.actions_per_service_per_hour,
        backup_timeout: settings.backup.timeout,
    }
}
