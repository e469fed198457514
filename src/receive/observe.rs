//! Background duties of the server: HTTP metrics per request, a periodic Docker probe for
//! `swarmpilot_docker_up`, and SIGHUP as a reload.

use super::AppState;
use crate::pipeline::Pipeline;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROBE_EVERY: Duration = Duration::from_secs(15);

/// Count and time every request by method, route pattern (never the raw path) and status.
pub async fn http_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let metrics = state.pipeline.metrics().clone();
    let method = req.method().as_str().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    metrics.http_started();
    let result = next.call(req).await;
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    metrics.http_finished(&method, &route, status, started.elapsed());
    result
}

/// Until the pipeline stops (then it lets go of it).
pub fn spawn_docker_probe(pipeline: Arc<Pipeline>) {
    tokio::spawn(async move {
        loop {
            let result = pipeline.swarm_view().ping().await;
            pipeline.note_docker(&result);
            if !pipeline.pause(PROBE_EVERY).await {
                return;
            }
        }
    });
}

pub fn spawn_reload_on_sighup(state: web::Data<AppState>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload");
        return;
    };
    let mut stop = state.pipeline.stop_signal();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                hangup = hangups.recv() => if hangup.is_none() { return },
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
            tracing::info!("SIGHUP: reloading");
            // A failure is logged and counted by reload itself.
            let _ = state.reload().await;
        }
    });
}
