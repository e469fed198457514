//! The test proxy in front of the real Docker socket does what the fault tests rely on: it counts
//! the calls that pass, makes Docker vanish, and loses an update's answer after Docker applied it.

use crate::common::docker_proxy::{DockerProxy, Fault};
use crate::common::*;
use bollard::query_parameters::UpdateServiceOptions;
use bollard::{Docker, API_DEFAULT_VERSION};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SOCKET: &str = "/var/run/docker.sock";

fn client(proxy: &DockerProxy) -> Docker {
    Docker::connect_with_unix(&proxy.host(), 5, API_DEFAULT_VERSION).expect("client")
}

#[tokio::test]
async fn proxy_passes_and_counts_requests() {
    require_docker();
    let proxy = DockerProxy::start(Path::new(SOCKET)).await;
    let docker = client(&proxy);
    docker.ping().await.expect("ping through the proxy");
    docker.ping().await.expect("second ping through the proxy");
    assert_eq!(proxy.count("/_ping"), 2, "{:?}", proxy.request_lines());
    assert!(proxy.request_lines()[0].starts_with("GET /_ping"));
}

#[tokio::test]
async fn refuse_all_makes_docker_vanish_and_none_brings_it_back() {
    require_docker();
    let proxy = DockerProxy::start(Path::new(SOCKET)).await;
    let docker = client(&proxy);
    // A keep-alive connection opened before the fault is closed by it.
    let mut open = tokio::net::UnixStream::connect(proxy.host().trim_start_matches("unix://"))
        .await
        .unwrap();
    open.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = open.read(&mut answer).await.unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..n]
    );
    proxy.set_fault(Fault::RefuseAll);
    let closed = tokio::time::timeout(Duration::from_secs(5), open.read(&mut answer)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(docker.ping().await.is_err(), "a refused engine answered");
    proxy.set_fault(Fault::None);
    docker.ping().await.expect("ping once the fault is lifted");
}

/// The service's spec scaled to 2 replicas, with the options of a versioned update.
async fn scaled_to_two(
    docker: &Docker,
    service: &TestService,
) -> (bollard::models::ServiceSpec, UpdateServiceOptions) {
    let current = docker.inspect_service(&service.name, None).await.unwrap();
    let mut spec = current.spec.clone().unwrap();
    spec.mode
        .as_mut()
        .unwrap()
        .replicated
        .as_mut()
        .unwrap()
        .replicas = Some(2);
    let options = UpdateServiceOptions {
        version: current.version.unwrap().index.unwrap() as i32,
        ..Default::default()
    };
    (spec, options)
}

#[tokio::test]
async fn drop_update_answers_applies_the_update_but_loses_its_answer() {
    let service = TestService::create("proxydrop", 1, &[]).await;
    let proxy = DockerProxy::start(Path::new(SOCKET)).await;
    let docker = client(&proxy);
    let (spec, options) = scaled_to_two(&docker, &service).await;
    proxy.set_fault(Fault::DropUpdateAnswers);
    let result = docker
        .update_service(&service.name, spec, options, None)
        .await;
    assert!(result.is_err(), "the answer came through: {result:?}");
    assert_eq!(proxy.count("/update"), 1, "{:?}", proxy.request_lines());
    assert_eq!(
        service.desired_replicas(),
        2,
        "Docker did not apply the update"
    );
}

#[tokio::test]
async fn delay_update_answers_holds_the_answer() {
    let service = TestService::create("proxydelay", 1, &[]).await;
    let proxy = DockerProxy::start(Path::new(SOCKET)).await;
    let docker = client(&proxy);
    let (spec, options) = scaled_to_two(&docker, &service).await;
    proxy.set_fault(Fault::DelayUpdateAnswers(Duration::from_millis(1500)));
    let started = Instant::now();
    docker
        .update_service(&service.name, spec, options, None)
        .await
        .expect("a delayed answer still arrives");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // Other calls are not held.
    let started = Instant::now();
    docker.ping().await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1000));
}
