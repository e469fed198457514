//! Raw engine JSON for the few fields bollard's model does not carry (a service's `PreviousSpec`),
//! over the same hyper stack bollard uses, on the same [`Endpoint`].

use super::endpoint::Endpoint;
use super::DockerError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;

/// GET `path` from the engine at `endpoint` and parse the JSON answer.
pub async fn get_json(
    endpoint: &Endpoint,
    path: &str,
    timeout: Duration,
) -> Result<Value, DockerError> {
    let request = async {
        match endpoint {
            Endpoint::Unix(socket) => {
                let uri: hyper::Uri = hyperlocal::Uri::new(socket, path).into();
                let client = Client::builder(TokioExecutor::new())
                    .build::<_, Empty<Bytes>>(hyperlocal::UnixConnector);
                fetch(client.get(uri).await).await
            }
            Endpoint::Http(authority) => {
                let uri = hyper::Uri::builder()
                    .scheme("http")
                    .authority(authority.as_str())
                    .path_and_query(path)
                    .build()
                    .map_err(|e| DockerError::Unreachable(format!("GET {path}: {e}")))?;
                let client = Client::builder(TokioExecutor::new())
                    .build::<_, Empty<Bytes>>(HttpConnector::new());
                fetch(client.get(uri).await).await
            }
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
