//! The HTTP endpoints. Handlers only translate between HTTP and the pipeline.

use super::body::{read_limited, require_json};
use super::error::{json_error, ApiError};
use super::AppState;
use crate::decision::DecisionRecord;
use crate::memory::{give_back, LARGE_BODY};
use crate::parse::parse_notification;
use crate::pipeline::{Mode, Unavailable};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WebhookQuery {
    /// Hold the answer until the outcomes of admitted actions are known.
    wait: bool,
    /// Decide without acting.
    dry_run: bool,
}

#[derive(Serialize)]
struct WebhookAnswer {
    decisions: Vec<DecisionRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<String>,
}

/// `POST /webhook`: Alertmanager's notification in, one decision per (alert, rule) out.
pub async fn webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_auth(&req)?;
    let query = web::Query::<WebhookQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadQuery(e.to_string()))?;
    require_json(&req)?;
    let body = read_limited(&req, payload, state.max_body_bytes, state.request_timeout).await?;
    let large = body.len() >= LARGE_BODY;
    let answer = answer_webhook(&state, body, &query).await;
    if large {
        give_back(true);
    }
    answer
}

async fn answer_webhook(
    state: &AppState,
    body: web::Bytes,
    query: &WebhookQuery,
) -> Result<HttpResponse, ApiError> {
    let notification = parse_notification(&body)?;
    drop(body);
    let mode = if state.dry_run || query.dry_run {
        Mode::DryRun
    } else {
        Mode::Act
    };
    let decisions = state
        .pipeline
        .handle(&notification, mode, query.wait)
        .await
        .map_err(|e| match e {
            Unavailable::Journal(e) => ApiError::JournalUnwritable(e.to_string()),
            Unavailable::Unclaimed(why) => ApiError::Unclaimed(why),
        })?;
    let warning = (notification.truncated_alerts > 0).then(|| {
        format!(
            "Alertmanager left out {} alerts of this group (max_alerts); set max_alerts: 0 on the swarmpilot receiver",
            notification.truncated_alerts
        )
    });
    if let Some(w) = &warning {
        tracing::warn!(group_key = %notification.group_key, "{w}");
    }
    Ok(HttpResponse::Ok().json(WebhookAnswer { decisions, warning }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_page_auth(&req)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.pipeline.metrics().render()))
}

/// `POST /-/reload`: reload rules and secrets (the same as SIGHUP); authenticated like /webhook.
pub async fn reload(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_auth(&req)?;
    let rules = state.reload().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "reloaded", "rules": rules
    })))
}

/// `GET /-/healthy`: the process answers.
pub async fn healthy() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "healthy" }))
}

/// `GET /-/ready`: rules are loaded and the Docker engine answers (as of at most a second ago:
/// probes from every replica and load balancer share one ping). Open even with
/// `auth.protect_pages`: container health checks carry no credentials.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let rules = state.pipeline.rules().len();
    let ping = state.pipeline.swarm_view().ping().await;
    state.pipeline.note_docker(&ping);
    match ping {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready", "rules": rules, "docker": "up"
        })),
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct ActionsQuery {
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

/// `GET /api/v1/actions?limit=N`: recent actions from the journal, newest first (N ≤ 1000).
pub async fn actions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_page_auth(&req)?;
    let query = web::Query::<ActionsQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::BadQuery(e.to_string()))?;
    let actions = state.pipeline.recent_actions(query.limit.min(1000));
    Ok(HttpResponse::Ok().json(serde_json::json!({ "actions": actions })))
}

/// Anything else: a JSON 404 rather than an empty body.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        method: req.method().to_string(),
        path: req.path().chars().take(200).collect(),
    })
}
