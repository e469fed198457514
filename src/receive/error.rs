//! The only place HTTP status codes are chosen. Every error body is `{"error": "..."}`, in words an
//! operator can act on, and the codes follow Alertmanager's retry contract (4xx is never retried).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("Content-Type must be application/json (got {0:?}); with curl add -H 'Content-Type: application/json'")]
    UnsupportedMediaType(String),
    #[error("body is larger than limits.max_body_bytes ({0} bytes)")]
    PayloadTooLarge(usize),
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    #[error("the request body did not arrive within limits.request_timeout ({0} s)")]
    BodyTimeout(u64),
    #[error("{0}")]
    Malformed(#[from] crate::parse::ParseError),
    #[error("invalid query string: {0}")]
    BadQuery(String),
    #[error("too many requests from this client (limits.requests_per_second_per_client); retry in {0} s")]
    TooManyRequests(u64),
    #[error("could not journal the decision, nothing was done; retry: {0}")]
    JournalUnwritable(String),
    #[error("cluster mode: {0}; retry")]
    Unclaimed(String),
    #[error("reload failed, the previous rules stay in force:\n{0}")]
    ReloadFailed(#[from] super::ReloadError),
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyRead(_) | ApiError::Malformed(_) | ApiError::BadQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::JournalUnwritable(_) | ApiError::Unclaimed(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::ReloadFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = json_error(self.status_code(), &self.to_string());
        match self {
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"swarmpilot\""),
                );
            }
            ApiError::TooManyRequests(secs) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        response
    }
}

/// A JSON error body with the given status.
pub fn json_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message }))
}
