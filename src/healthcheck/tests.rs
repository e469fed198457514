use super::*;
use std::net::TcpListener;
use std::thread::JoinHandle;

fn settings(listen: &str) -> Settings {
    Settings {
        listen: listen.into(),
        ..Default::default()
    }
}

/// A one-connection server on loopback that reads the request head and answers `answer` (or
/// nothing, holding the connection, when `None`). Returns its port and the request it read.
fn serve_once(answer: Option<&'static str>) -> (u16, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        match answer {
            Some(text) => stream.write_all(text.as_bytes()).unwrap(),
            None => std::thread::sleep(Duration::from_millis(800)),
        }
        String::from_utf8_lossy(&request).into_owned()
    });
    (port, handle)
}

fn local(port: u16) -> Target {
    Target::from_settings(&settings(&format!("127.0.0.1:{port}"))).unwrap()
}

#[test]
fn a_wildcard_listen_address_is_probed_on_loopback_of_its_family() {
    assert_eq!(
        Target::from_settings(&settings("0.0.0.0:9095"))
            .unwrap()
            .url,
        "http://127.0.0.1:9095/-/healthy"
    );
    assert_eq!(
        Target::from_settings(&settings("[::]:9095")).unwrap().url,
        "http://[::1]:9095/-/healthy"
    );
    assert_eq!(
        Target::from_settings(&settings("10.1.2.3:80")).unwrap().url,
        "http://10.1.2.3:80/-/healthy"
    );
}

#[test]
fn tls_settings_make_the_probe_https() {
    let mut s = settings("0.0.0.0:9095");
    s.tls.cert_file = "/run/secrets/cert.pem".into();
    s.tls.key_file = "/run/secrets/key.pem".into();
    let target = Target::from_settings(&s).unwrap();
    assert_eq!(target.url, "https://127.0.0.1:9095/-/healthy");
    assert!(target.https && !target.mutual_tls);
    s.tls.client_ca_file = "/run/secrets/ca.pem".into();
    assert!(Target::from_settings(&s).unwrap().mutual_tls);
}

#[test]
fn a_url_needs_http_or_https_and_a_host() {
    let target = Target::from_url("https://[::1]:8443/-/healthy?x=1").unwrap();
    assert!(target.https);
    assert_eq!(
        (target.host.as_str(), target.port, target.path.as_str()),
        ("[::1]", 8443, "/-/healthy?x=1")
    );
    assert_eq!(Target::from_url("http://localhost/").unwrap().port, 80);
    for bad in [
        "ftp://localhost/",
        "not a url",
        "unix:///var/run/docker.sock",
    ] {
        let error = Target::from_url(bad).unwrap_err().to_string();
        assert!(error.starts_with(&format!("--url {bad:?}: ")), "{error}");
    }
}

#[test]
fn the_status_line_gives_the_code() {
    assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
    assert_eq!(
        status_code(b"HTTP/1.0 503 Service Unavailable\r\n"),
        Some(503)
    );
    for bad in [
        &b""[..],
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/1.1 2000 OK",
        b"HTTP/2 200",
        b"\xff\xfe",
    ] {
        assert_eq!(status_code(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_2xx_answer_is_healthy_and_the_request_names_the_path_and_host() {
    let (port, server) = serve_once(Some(
        "HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n{\"status\":\"healthy\"}",
    ));
    let message = local(port).probe(Duration::from_secs(2)).unwrap();
    assert_eq!(
        message,
        format!("healthy: http://127.0.0.1:{port}/-/healthy answered 200")
    );
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /-/healthy HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
        "{request}"
    );
}

#[test]
fn a_non_2xx_answer_is_unhealthy_with_its_status() {
    let (port, _server) = serve_once(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
    let error = local(port).probe(Duration::from_secs(2)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("http://127.0.0.1:{port}/-/healthy answered 503")
    );
}

#[test]
fn something_other_than_http_is_unhealthy() {
    let (port, _server) = serve_once(Some("SSH-2.0-OpenSSH_9.2\r\n"));
    let error = local(port).probe(Duration::from_secs(2)).unwrap_err();
    assert!(
        matches!(error, HealthError::NotHttp { ref line, .. } if line == "SSH-2.0-OpenSSH_9.2"),
        "{error}"
    );
}

#[test]
fn a_server_that_never_answers_is_unhealthy_after_the_timeout() {
    let (port, _server) = serve_once(None);
    let started = Instant::now();
    let error = local(port).probe(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(error, HealthError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_millis(700));
}

#[test]
fn nothing_listening_is_unhealthy() {
    // A port that was free a moment ago: nothing accepts on it.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let error = local(port).probe(Duration::from_secs(2)).unwrap_err();
    assert!(matches!(error, HealthError::Connect { .. }), "{error}");
    assert!(error.to_string().contains("refused"), "{error}");
}
