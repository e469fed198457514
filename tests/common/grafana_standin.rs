//! A stand-in for Grafana's HTTP API: it records what swarmpilot sends and answers the way
//! Grafana documents (`POST /api/annotations`, `GET /api/dashboards/uid/{uid}`).

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;
use std::sync::{Arc, Mutex};

pub const DASHBOARD_UID: &str = "swarmpilot-main";

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: String,
    pub content_type: String,
    pub body: Value,
}

#[derive(Clone, Default)]
pub struct Grafana {
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Grafana {
    /// Start on a free loopback port; returns the base URL.
    pub fn start() -> (Self, String) {
        let grafana = Grafana::default();
        let seen = grafana.seen.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(seen.clone()))
                .default_service(web::to(record))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (grafana, format!("http://127.0.0.1:{port}"))
    }

    pub fn annotations(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == "/api/annotations")
            .cloned()
            .collect()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Arc<Mutex<Vec<Seen>>>>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let entry = Seen {
        method: req.method().to_string(),
        path: req.path().to_string(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let path = entry.path.clone();
    seen.lock().unwrap().push(entry);
    match path.as_str() {
        "/api/annotations" => {
            HttpResponse::Ok().json(serde_json::json!({"id": 1, "message": "Annotation added"}))
        }
        p if p == format!("/api/dashboards/uid/{DASHBOARD_UID}") => {
            HttpResponse::Ok().json(serde_json::json!({"dashboard": {"uid": DASHBOARD_UID}}))
        }
        _ => HttpResponse::NotFound().json(serde_json::json!({"message": "Dashboard not found"})),
    }
}
