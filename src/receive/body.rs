//! The request body: JSON only, and never more than `limits.max_body_bytes` held in memory.

use super::error::ApiError;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use std::time::Duration;

/// Accept `application/json` (any parameters, such as charset), as Alertmanager sends.
pub fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let value = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(value))
    }
}

/// Read the body within `deadline`, refusing early on a Content-Length over the limit and stopping
/// as soon as a streamed body passes it. The deadline keeps a client that trickles its body from
/// holding a connection (and its buffer) forever.
pub async fn read_limited(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    deadline: Duration,
) -> Result<web::Bytes, ApiError> {
    tokio::time::timeout(deadline, read_body(req, payload, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(deadline.as_secs()))?
}

async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
