//! `limits.requests_per_second_per_client` on every endpoint, as one middleware: the pages and
//! probes are as cheap to ask for as the webhook, so a single client must not be able to flood
//! any of them. Checked before auth, so guessing tokens is slow too.

use super::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

/// Answer 429 (with Retry-After) to a client over its rate, before any handler runs.
pub async fn client_rate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        state.check_client_rate(req.request())?;
    }
    next.call(req).await
}
