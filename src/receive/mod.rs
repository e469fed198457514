//! The receive step: the HTTP server. It authenticates, bounds and parses the request, hands the
//! notification to the pipeline and answers with the decisions; it also serves the operator's
//! endpoints (metrics, health, reload, recent actions, the status page).

pub mod auth;
pub mod body;
pub mod error;
mod limit;
mod observe;
pub mod rate;
pub mod routes;
pub mod status;
pub mod tls;

use crate::pipeline::Pipeline;
use crate::receive::rate::{keyed, InjectedClock, Keyed};
use crate::rules::{load_rules_for, RuleErrors, RuleSet};
use crate::settings::{AuthSettings, Settings, SettingsError};
use actix_web::dev::Server;
use actix_web::{middleware, web, App, HttpRequest, HttpServer};
pub use auth::Auth;
use error::ApiError;
use governor::clock::Clock as _;
use std::net::{IpAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

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
    /// `[prometheus] url`: `query:` rules need it.
    prometheus_url: String,
    auth_settings: AuthSettings,
    opt_in_label: String,
    /// `auth.protect_pages`: `/`, `/api/v1/actions` and `/metrics` need the webhook's credentials.
    protect_pages: bool,
    /// Held for the whole of a reload, so reloads never overlap (each holds a full rule set).
    reloading: tokio::sync::Mutex<()>,
}

impl AppState {
    /// The state every HTTP worker shares, from the pipeline and the settings.
    pub fn new(pipeline: Arc<Pipeline>, auth: Auth, settings: &Settings) -> Self {
        let rate_clock = InjectedClock(pipeline.clock().clone());
        Self {
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
            prometheus_url: settings.prometheus.url.clone(),
            auth_settings: settings.auth.clone(),
            opt_in_label: settings.opt_in_label.clone(),
            protect_pages: settings.auth.protect_pages,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

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
                metrics.reload(true, crate::clock::unix_secs(SystemTime::now()));
                tracing::info!(rules = count, "reloaded");
                Ok(count)
            }
            Err(error) => {
                metrics.reload(false, crate::clock::unix_secs(SystemTime::now()));
                for line in error.to_string().lines() {
                    tracing::error!(error = %line, "reload failed; keeping the previous rules");
                }
                Err(error)
            }
        }
    }

    async fn load_rules_and_auth(&self) -> Result<(RuleSet, Auth), ReloadError> {
        let rules_dir = self.rules_dir.clone();
        let prometheus_url = self.prometheus_url.clone();
        let auth_settings = self.auth_settings.clone();
        tokio::task::spawn_blocking(move || {
            let rules = load_rules_for(&rules_dir, &prometheus_url)?;
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

/// The HTTP server on `listener`, not yet running.
pub fn serve(
    listener: TcpListener,
    state: web::Data<AppState>,
    settings: &Settings,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<Server> {
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
    // startup handles SIGTERM/SIGINT: actions in flight finish before the workers stop.
    .disable_signals()
    .client_request_timeout(settings.limits.request_timeout);
    let bound = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config),
        None => server.listen(listener),
    };
    Ok(bound?.run())
}

/// The server's background duties: the Docker probe behind `swarmpilot_docker_up` and SIGHUP
/// as a reload. Both stop when the pipeline is asked to stop.
pub fn spawn_duties(state: web::Data<AppState>) {
    observe::spawn_docker_probe(state.pipeline.clone());
    observe::spawn_reload_on_sighup(state);
}
