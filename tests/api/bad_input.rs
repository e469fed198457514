//! Each bad request gets its status and a JSON error, and leaves the opted-in service untouched.

use crate::common::*;
use base64::Engine;
use rstest::rstest;

enum Auth {
    Bearer(&'static str),
    Basic(&'static str),
    Raw(&'static str),
    Missing,
}

#[rstest]
#[case::malformed_json(Auth::Bearer(TOKEN), "application/json", Body::Raw(b"{\"alerts\": [".to_vec()), 400, "malformed Alertmanager payload")]
#[case::wrong_shape(Auth::Bearer(TOKEN), "application/json", Body::Raw(b"{\"alerts\": 3}".to_vec()), 400, "malformed Alertmanager payload")]
#[case::wrong_token(
    Auth::Bearer("nope"),
    "application/json",
    Body::Alert,
    401,
    "invalid credentials"
)]
#[case::missing_token(
    Auth::Missing,
    "application/json",
    Body::Alert,
    401,
    "missing Authorization header"
)]
#[case::basic_instead_of_bearer(
    Auth::Basic("am:test-token-5f2a"),
    "application/json",
    Body::Alert,
    401,
    "invalid credentials"
)]
#[case::garbage_header(
    Auth::Raw("Bearer"),
    "application/json",
    Body::Alert,
    401,
    "invalid credentials"
)]
#[case::too_large(
    Auth::Bearer(TOKEN),
    "application/json",
    Body::Huge,
    413,
    "larger than limits.max_body_bytes"
)]
#[case::not_json(
    Auth::Bearer(TOKEN),
    "application/x-www-form-urlencoded",
    Body::Alert,
    415,
    "Content-Type must be application/json"
)]
#[case::no_content_type(
    Auth::Bearer(TOKEN),
    "",
    Body::Alert,
    415,
    "Content-Type must be application/json"
)]
#[tokio::test]
async fn bad_request_is_refused_and_changes_nothing(
    #[case] auth: Auth,
    #[case] content_type: &str,
    #[case] body: Body,
    #[case] status: u16,
    #[case] message: &str,
) {
    let app = spawn_app().await;
    let svc = TestService::opted_in("bad", 1).await;
    let version = svc.version();

    let mut request = app.client.post(format!("{}/webhook", app.address));
    request = match auth {
        Auth::Bearer(t) => request.bearer_auth(t),
        Auth::Basic(pair) => request.header(
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
        ),
        Auth::Raw(v) => request.header("Authorization", v),
        Auth::Missing => request,
    };
    if !content_type.is_empty() {
        request = request.header("Content-Type", content_type);
    }
    let response = request.body(body.bytes(&svc.name)).send().await.unwrap();

    assert_eq!(response.status().as_u16(), status);
    let json: serde_json::Value = response.json().await.expect("JSON error body");
    let error = json["error"].as_str().expect("error field");
    assert!(error.contains(message), "{error}");
    assert_eq!(svc.version(), version, "service untouched");
}

enum Body {
    Raw(Vec<u8>),
    /// A valid alert that would scale the service if it were accepted.
    Alert,
    /// A valid alert padded past the body limit.
    Huge,
}

impl Body {
    fn bytes(&self, service: &str) -> Vec<u8> {
        match self {
            Body::Raw(b) => b.clone(),
            Body::Alert => serde_json::to_vec(&alert_payload("TestHighCPU", service)).unwrap(),
            Body::Huge => {
                let mut p = alert_payload("TestHighCPU", service);
                p["alerts"][0]["annotations"]["padding"] = "x".repeat(300_000).into();
                serde_json::to_vec(&p).unwrap()
            }
        }
    }
}
