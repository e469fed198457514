//! Raw engine JSON for the few fields bollard's model does not carry (a service's `PreviousSpec`),
//! over the same hyper stack bollard uses, on the same host.

use super::DockerError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// GET `path` from the engine at `host` (as in `docker.host`) and parse the JSON answer.
pub async fn get_json(host: &str, path: &str, timeout: Duration) -> Result<Value, DockerError> {
    let host = if host.is_empty() {
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| format!("unix://{DEFAULT_SOCKET}"))
    } else {
        host.to_string()
    };
    let request = async {
        if let Some(socket) = host
            .strip_prefix("unix://")
            .or_else(|| host.strip_prefix("unix:"))
        {
            let uri: hyper::Uri = hyperlocal::Uri::new(socket, path).into();
            let client = Client::builder(TokioExecutor::new())
                .build::<_, Empty<Bytes>>(hyperlocal::UnixConnector);
            fetch(client.get(uri).await).await
        } else {
            let base = host.replacen("tcp://", "http://", 1);
            let uri: hyper::Uri = format!("{base}{path}")
                .parse()
                .map_err(|e| DockerError::Unreachable(format!("bad docker.host: {e}")))?;
            let client =
                Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(
                    hyper_util::client::legacy::connect::HttpConnector::new(),
                );
            fetch(client.get(uri).await).await
        }
    };
    tokio::time::timeout(timeout, request)
        .await
        .map_err(|_| DockerError::Unreachable(format!("GET {path} timed out")))?
}

async fn fetch(
    response: Result<hyper::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
) -> Result<Value, DockerError> {
    let response = response.map_err(|e| DockerError::Unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| DockerError::Unreachable(e.to_string()))?
        .to_bytes();
    if status >= 400 {
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(DockerError::Api { status, message });
    }
    serde_json::from_slice(&body).map_err(|e| DockerError::Api {
        status,
        message: format!("engine answered non-JSON: {e}"),
    })
}
