//! The Prometheus HTTP API, as swarmpilot reads it: an instant query (target tracking's `query:`,
//! at decision time) and a range query (`recommend`'s cAdvisor series). [`query`] owns the
//! service query a rule writes: checked at load with Prometheus' grammar, the service name put in
//! as an escaped label value.

pub mod query;

use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

pub use query::{promql_string, ServiceQuery, SERVICE_PLACEHOLDER};

#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("prometheus {url}: no answer within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("prometheus {url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("prometheus {url} answered {status}: {message}")]
    Query {
        url: String,
        status: u16,
        message: String,
    },
}

/// A client for one Prometheus (`[prometheus] url`), every request bounded by one timeout.
#[derive(Debug)]
pub struct Prometheus {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
}

/// One series of a range query: its labels and `[unix seconds, "value"]` pairs.
#[derive(Debug, Deserialize)]
pub struct Series {
    pub metric: HashMap<String, String>,
    pub values: Vec<(f64, String)>,
}

/// One sample of an instant query: its labels (empty for a scalar) and value as Prometheus
/// wrote it (`"0.5"`, `"NaN"`, `"+Inf"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: HashMap<String, String>,
    pub value: String,
}

/// An instant query's answer: a vector of samples, or one value for a scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Instant {
    Vector(Vec<Sample>),
    Scalar(String),
    /// A type the caller did not ask for (`matrix`, `string`), by name.
    Other(String),
}

#[derive(Deserialize)]
struct Answer<T> {
    status: String,
    #[serde(default)]
    error: String,
    data: Option<T>,
}

#[derive(Deserialize)]
struct Matrix {
    result: Vec<Series>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum InstantData {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    // Skipped, not kept: only their type is reported.
    Matrix(serde::de::IgnoredAny),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorSample {
    #[serde(default)]
    metric: HashMap<String, String>,
    value: (f64, String),
}

impl Prometheus {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, PrometheusError> {
        let base = url.trim_end_matches('/').to_string();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|source| PrometheusError::Http {
                url: base.clone(),
                source,
            })?;
        Ok(Self {
            client,
            base,
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// `query` evaluated now (`/api/v1/query`).
    pub async fn instant(&self, query: &str) -> Result<Instant, PrometheusError> {
        let data: InstantData = self
            .post("/api/v1/query", &[("query", query.to_string())])
            .await?;
        Ok(match data {
            InstantData::Vector(samples) => Instant::Vector(
                samples
                    .into_iter()
                    .map(|s| Sample {
                        metric: s.metric,
                        value: s.value.1,
                    })
                    .collect(),
            ),
            InstantData::Scalar((_, value)) => Instant::Scalar(value),
            InstantData::Matrix(_) => Instant::Other("matrix".into()),
            InstantData::String(_) => Instant::Other("string".into()),
        })
    }

    /// `query` over `[start, end]` (unix seconds) every `step` (`/api/v1/query_range`).
    pub async fn range(
        &self,
        query: &str,
        start: u64,
        end: u64,
        step: Duration,
    ) -> Result<Vec<Series>, PrometheusError> {
        let form = [
            ("query", query.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step.as_secs().to_string()),
        ];
        let matrix: Matrix = self.post("/api/v1/query_range", &form).await?;
        Ok(matrix.result)
    }

    /// POST (a query can be longer than a URL may be) and read the API's envelope: its `data`
    /// on success, its `error` otherwise.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
    ) -> Result<T, PrometheusError> {
        let url = format!("{}{path}", self.base);
        let failed = |source: reqwest::Error| {
            if source.is_timeout() {
                PrometheusError::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                }
            } else {
                PrometheusError::Http {
                    url: url.clone(),
                    source,
                }
            }
        };
        let response = self
            .client
            .post(&url)
            .form(form)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(failed)?;
        let answer: Answer<T> =
            serde_json::from_slice(&body).map_err(|e| PrometheusError::Query {
                url: url.clone(),
                status,
                message: format!("not a Prometheus API answer ({e})"),
            })?;
        match answer.data {
            Some(data) if answer.status == "success" => Ok(data),
            _ => Err(PrometheusError::Query {
                url,
                status,
                message: answer.error,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_answers_read_as_their_type() {
        let vector: Answer<InstantData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"service":"web"},"value":[1.5,"0.75"]}]}}"#,
        )
        .unwrap();
        let Some(InstantData::Vector(samples)) = vector.data else {
            panic!("a vector")
        };
        assert_eq!(samples[0].value.1, "0.75");
        assert_eq!(samples[0].metric["service"], "web");
        let scalar: Answer<InstantData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"NaN"]}}"#,
        )
        .unwrap();
        assert!(matches!(scalar.data, Some(InstantData::Scalar((_, v))) if v == "NaN"));
    }
}
