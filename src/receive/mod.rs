//! The receive step: the HTTP server. It authenticates, bounds and parses the request, hands the
//! notification to the pipeline and answers with the decisions; it also serves the operator's
//! endpoints (metrics, health, reload, recent actions, the status page).

pub mod auth;
pub mod body;
pub mod error;
mod limit;
mod observe;
pub mod routes;
pub mod status;
pub mod tls;

use crate::act::Swarm;
use crate::clock::Clock;
use crate::gate::rate::{keyed, InjectedClock, Keyed};
use crate::journal::{Compaction, Journal, JournalError};
use crate::pipeline::{Pipeline, PipelineSettings, Records, Recovery};
use crate::record::grafana::Annotator;
use crate::record::metrics::Metrics;
use crate::rules::{load_rules_dir, RuleErrors, RuleSet};
use crate::settings::{AuthSettings, Settings, SettingsError};
use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpRequest, HttpServer};
pub use auth::Auth;
use error::ApiError;
use governor::clock::Clock as _;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Shared by every worker.
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    auth: RwLock<Auth>,
    pub max_body_bytes: usize,
    /// `limits.request_timeout`, for the body (actix-web enforces it for the head).
    pub request_timeout: Duration,
    pub dry_run: bool,
    /// `limits.requests_per_second_per_client`, keyed by the peer address.
    client_rate: Option<Keyed<IpAddr>>,
    rate_clock: InjectedClock,
    rules_dir: PathBuf,
    auth_settings: AuthSettings,
    opt_in_label: String,
    /// `auth.protect_pages`: `/`, `/api/v1/actions` and `/metrics` need the webhook's credentials.
    protect_pages: bool,
    /// Held for the whole of a reload, so reloads never overlap (each holds a full rule set).
    reloading: tokio::sync::Mutex<()>,
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
            ApiError::TooManyRequests(crate::clock::whole_secs_up(wait))
        })
    }

    /// The webhook's auth on an operator page, when `auth.protect_pages` asks for it.
    pub fn check_page_auth(&self, req: &HttpRequest) -> Result<(), ApiError> {
        match self.protect_pages {
            true => self.check_auth(req),
            false => Ok(()),
        }
    }

    pub fn check_auth(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let auth = self.auth.read().unwrap_or_else(|e| e.into_inner());
        auth.check(header).map_err(ApiError::Unauthorized)
    }

    /// Reload the rules and the auth secrets atomically: all of it or none of it. A broken rule
    /// file keeps the old set and is reported with file:line:col. Reading and parsing run on
    /// tokio's blocking pool, never on an HTTP worker, and one reload runs at a time: a reload
    /// asked for meanwhile waits for it, then reads the files afresh.
    pub async fn reload(&self) -> Result<usize, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let metrics = self.pipeline.metrics();
        match self.load_rules_and_auth().await {
            Ok((rules, auth)) => {
                let count = rules.len();
                self.pipeline.replace_rules(rules);
                *self.auth.write().unwrap_or_else(|e| e.into_inner()) = auth;
                metrics.rules_loaded(count);
                metrics.reload(true, unix_secs());
                tracing::info!(rules = count, "reloaded");
                Ok(count)
            }
            Err(error) => {
                metrics.reload(false, unix_secs());
                for line in error.to_string().lines() {
                    tracing::error!(error = %line, "reload failed; keeping the previous rules");
                }
                Err(error)
            }
        }
    }

    async fn load_rules_and_auth(&self) -> Result<(RuleSet, Auth), ReloadError> {
        let rules_dir = self.rules_dir.clone();
        let auth_settings = self.auth_settings.clone();
        tokio::task::spawn_blocking(move || {
            let rules = load_rules_dir(&rules_dir)?;
            let auth = Auth::from_settings(&auth_settings)?;
            Ok((rules, auth))
        })
        .await?
    }
}

/// Why a reload kept the previous rules.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Rules(#[from] RuleErrors),
    #[error("{0}")]
    Auth(#[from] SettingsError),
    /// The loading task panicked or was cancelled (the runtime shutting down).
    #[error("the reload task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
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
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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
        let rules = load_rules_dir(&settings.rules_dir)?;
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
        metrics.reload(true, unix_secs());
        let annotator = Annotator::start(&settings.grafana, metrics.clone())?;
        let clock = deps.clock.clone();
        let compaction = Compaction {
            now_ms: Arc::new(move || crate::pipeline::unix_ms(clock.now())),
            keep_actions: crate::record::actions::KEEP,
            grow_to: crate::journal::GROW_TO,
        };
        let (journal, replayed) = Journal::open_compacted(&settings.data_dir, compaction)?;
        let rate_clock = InjectedClock(deps.clock.clone());
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
            pipeline_settings(settings),
        ));
        let recovery = pipeline.recover(replayed).await?;
        let listener = TcpListener::bind(&settings.listen).map_err(|source| StartError::Bind {
            addr: settings.listen.clone(),
            source,
        })?;
        let port = listener.local_addr().map_or(0, |a| a.port());
        let state = web::Data::new(AppState {
            pipeline,
            auth: RwLock::new(auth),
            max_body_bytes: settings.limits.max_body_bytes,
            request_timeout: settings.limits.request_timeout,
            dry_run: settings.dry_run,
            client_rate: keyed(
                settings.limits.requests_per_second_per_client,
                Duration::from_secs(1),
                &rate_clock,
            ),
            rate_clock,
            rules_dir: settings.rules_dir.clone(),
            auth_settings: settings.auth.clone(),
            opt_in_label: settings.opt_in_label.clone(),
            protect_pages: settings.auth.protect_pages,
            reloading: tokio::sync::Mutex::new(()),
        });
        let server = serve(listener, state.clone(), settings, tls)?;
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

    /// What start-up recovered from the journal.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Serve until SIGINT/SIGTERM (graceful: in-flight requests finish); SIGHUP reloads.
    /// Then the actions in flight get `drain_for` to finish their Docker call and journal its
    /// outcome; what is only waiting stays unfinished and is resumed at the next start.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        observe::spawn_docker_probe(self.state.pipeline.clone());
        observe::spawn_reload_on_sighup(self.state.clone());
        let served = self.server.await;
        self.state.pipeline.drain(self.drain_for).await;
        served
    }
}

fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Settings,
    tls: Option<rustls::ServerConfig>,
) -> Result<Server, StartError> {
    let addr = settings.listen.as_str();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Registered first, so it runs inside the metrics middleware: 429s are counted.
            .wrap(middleware::from_fn(limit::client_rate))
            .wrap(middleware::from_fn(observe::http_metrics))
            .route("/webhook", web::post().to(routes::webhook))
            .route("/metrics", web::get().to(routes::metrics))
            .route("/-/healthy", web::get().to(routes::healthy))
            .route("/-/ready", web::get().to(routes::ready))
            .route("/-/reload", web::post().to(routes::reload))
            .route("/api/v1/actions", web::get().to(routes::actions))
            .route("/", web::get().to(status::page))
            .default_service(web::to(routes::not_found))
    })
    .workers(2)
    .client_request_timeout(settings.limits.request_timeout);
    let bound = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config),
        None => server.listen(listener),
    };
    let server = bound
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .run();
    Ok(server)
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
