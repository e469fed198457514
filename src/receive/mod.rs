//! The receive step: the HTTP server. It authenticates, bounds and parses the request, hands the
//! notification to the pipeline and answers with the decisions.

pub mod auth;
pub mod body;
pub mod error;
pub mod routes;

use crate::act::Swarm;
use crate::clock::Clock;
use crate::gate::Cooldowns;
use crate::pipeline::Pipeline;
use crate::rules::{load_rules_dir, RuleErrors};
use crate::settings::{Settings, SettingsError};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
pub use auth::Auth;
use std::net::TcpListener;
use std::sync::Arc;

/// Shared by every worker.
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub auth: Auth,
    pub max_body_bytes: usize,
    pub dry_run: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("rules:\n{0}")]
    Rules(#[from] RuleErrors),
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
}

impl Application {
    /// Load rules and secrets, bind the listener (port 0 picks a free port) and build the server.
    pub fn build(settings: &Settings, deps: Dependencies) -> Result<Self, StartError> {
        let rules = load_rules_dir(&settings.rules_dir)?;
        tracing::info!(rules = rules.len(), dir = %settings.rules_dir.display(), "rules loaded");
        let auth = Auth::from_settings(&settings.auth)?;
        if auth.is_open() {
            tracing::warn!("no auth configured: any local process may POST /webhook");
        }
        let cooldowns = Cooldowns::new(deps.clock);
        let pipeline = Arc::new(Pipeline::new(
            rules,
            deps.swarm,
            cooldowns,
            settings.opt_in_label.clone(),
        ));
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
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/webhook", web::post().to(routes::webhook))
                .route("/-/healthy", web::get().to(routes::healthy))
                .route("/-/ready", web::get().to(routes::ready))
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
        })
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
