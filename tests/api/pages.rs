//! The operator pages cost Docker almost nothing however often they are asked for (one shared
//! read per kind per second), every endpoint is under the per-client limit, and
//! `auth.protect_pages` puts the pages behind the webhook's credentials. Docker is reached through
//! the test proxy so its calls can be counted.

use crate::common::docker_proxy::DockerProxy;
use crate::common::*;
use futures_util::stream::{self, StreamExt};
use std::path::Path;
use std::time::Instant;
use swarmpilot::settings::Settings;

async fn app_behind_proxy(configure: impl FnOnce(&mut Settings)) -> (TestApp, DockerProxy) {
    require_docker();
    let proxy = DockerProxy::start(Path::new("/var/run/docker.sock")).await;
    let app = spawn_app_with(|s| {
        configure(s);
        s.docker.host = proxy.host();
    })
    .await;
    (app, proxy)
}

/// GET `path` `n` times, 50 at a time; every answer must be 200. Returns the seconds it took,
/// rounded up, plus the 2 reads a boundary can add (one at the start, one at the end).
async fn flood(app: &TestApp, path: &str, n: usize) -> usize {
    let started = Instant::now();
    let statuses: Vec<u16> = stream::iter(0..n)
        .map(|_| async { app.get(path).await.status().as_u16() })
        .buffer_unordered(50)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "{path}: not all 200");
    started.elapsed().as_secs() as usize + 1 + 2
}

#[tokio::test]
async fn two_thousand_status_page_gets_cost_a_handful_of_docker_reads() {
    let (app, proxy) =
        app_behind_proxy(|s| s.limits.requests_per_second_per_client = 1_000_000).await;
    let (services, tasks) = (proxy.count("/services"), proxy.count("/tasks"));
    let bound = flood(&app, "/", 2000).await;
    let services = proxy.count("/services") - services;
    let tasks = proxy.count("/tasks") - tasks;
    eprintln!("MEASURE /: {services} service lists, {tasks} task lists, bound {bound}");
    assert!(services >= 1, "the page never read the services");
    assert!(
        services <= bound,
        "{services} service lists for 2000 GETs (bound {bound})"
    );
    assert!(
        tasks <= bound,
        "{tasks} task lists for 2000 GETs (bound {bound})"
    );
}

#[tokio::test]
async fn two_thousand_readiness_probes_cost_a_handful_of_pings() {
    let (app, proxy) =
        app_behind_proxy(|s| s.limits.requests_per_second_per_client = 1_000_000).await;
    let pings = proxy.count("/_ping");
    let bound = flood(&app, "/-/ready", 2000).await;
    let pings = proxy.count("/_ping") - pings;
    eprintln!("MEASURE ready: {pings} pings, bound {bound}");
    assert!(
        pings <= bound,
        "{pings} pings for 2000 probes (bound {bound})"
    );
}

#[tokio::test]
async fn the_per_client_limit_covers_the_pages_and_the_probes() {
    // The app's clock is frozen, so the bucket never refills during the test.
    let app = spawn_app_with(|s| s.limits.requests_per_second_per_client = 3).await;
    // The burst: 10 seconds' worth.
    for _ in 0..30 {
        assert_eq!(app.get("/-/healthy").await.status(), 200);
    }
    for path in ["/", "/metrics", "/-/healthy"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 429, "{path}");
        assert!(response.headers().contains_key("retry-after"), "{path}");
    }
}

#[tokio::test]
async fn protected_pages_need_the_token_and_health_checks_stay_open() {
    let app = spawn_app_with(|s| s.auth.protect_pages = true).await;
    require_docker();
    for path in ["/", "/api/v1/actions", "/metrics"] {
        assert_eq!(
            app.get(path).await.status(),
            401,
            "{path} without the token"
        );
        let with_token = app
            .client
            .get(format!("{}{path}", app.address))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(with_token.status(), 200, "{path} with the token");
    }
    for path in ["/-/healthy", "/-/ready"] {
        assert_eq!(app.get(path).await.status(), 200, "{path} stays open");
    }
}
