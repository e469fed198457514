//! Optional TLS with client-certificate verification: a client with a certificate from the
//! configured CA is served; no certificate, a certificate from another CA, or plain HTTP is not.

use crate::common::process::Instance;
use crate::common::{require_docker, TOKEN};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use std::path::Path;

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
    rogue_client: (String, String),
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let ca = ca("swarmpilot test CA");
    let other = ca_named_other();
    Pki {
        ca_pem: ca.pem(),
        server: leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(&ca, &["alertmanager"], ExtendedKeyUsagePurpose::ClientAuth),
        rogue_client: leaf(
            &other,
            &["alertmanager"],
            ExtendedKeyUsagePurpose::ClientAuth,
        ),
    }
}

fn ca_named_other() -> CertifiedIssuer<'static, KeyPair> {
    ca("some other CA")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn client(pki: &Pki, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    if let Some((cert, key)) = identity {
        let pem = format!("{cert}{key}");
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_serves_only_clients_with_a_certificate_from_the_configured_ca() {
    require_docker();
    let _turn = crate::one_at_a_time().await;
    let pki = pki();
    let instance = Instance::new();
    let dir = instance.dir.path();
    let cert = format!("cert_file = {:?}", write(dir, "server.pem", &pki.server.0));
    let key = format!(
        "key_file = {:?}",
        write(dir, "server-key.pem", &pki.server.1)
    );
    let ca = format!("client_ca_file = {:?}", write(dir, "ca.pem", &pki.ca_pem));
    let process = instance
        .start_tls(&[("tls", &cert), ("tls", &key), ("tls", &ca)])
        .await;
    let https = format!("https://localhost:{}", process.port);
    let payload = crate::common::alert_payload("TestHighCPU", "tls-absent");

    let good = client(&pki, Some(&pki.client))
        .post(format!("{https}/webhook"))
        .bearer_auth(TOKEN)
        .json(&payload)
        .send()
        .await
        .expect("a client with a certificate from the CA is served");
    assert_eq!(good.status(), 200);

    for (what, identity) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&pki.rogue_client)),
    ] {
        let refused = client(&pki, identity)
            .post(format!("{https}/webhook"))
            .bearer_auth(TOKEN)
            .json(&payload)
            .send()
            .await;
        assert!(refused.is_err(), "{what} must not be served: {refused:?}");
    }
    let plain = reqwest::get(format!("http://127.0.0.1:{}/-/healthy", process.port)).await;
    assert!(
        plain.map(|r| !r.status().is_success()).unwrap_or(true),
        "plain HTTP must not be served on the TLS port"
    );
}

#[tokio::test]
async fn a_missing_key_file_stops_the_start_naming_the_file() {
    let pki = pki();
    let instance = Instance::new();
    let dir = instance.dir.path();
    let cert = format!("cert_file = {:?}", write(dir, "server.pem", &pki.server.0));
    let output = instance.check(&[
        ("tls", &cert),
        ("tls", "key_file = \"/nonexistent/key.pem\""),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls.key_file /nonexistent/key.pem"),
        "{stderr}"
    );
}

/// The container health check against a TLS server: the certificate is for the service's name
/// and from a private CA, the probe goes to loopback; with client certificates required, the
/// refusal of the probe's certificate-less handshake is the server's sign of life.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_passes_against_https_and_mutual_tls_servers() {
    let pki = pki();
    for mutual in [false, true] {
        let instance = Instance::new();
        let dir = instance.dir.path();
        let mut tls = vec![
            format!("cert_file = {:?}", write(dir, "server.pem", &pki.server.0)),
            format!(
                "key_file = {:?}",
                write(dir, "server-key.pem", &pki.server.1)
            ),
        ];
        if mutual {
            tls.push(format!(
                "client_ca_file = {:?}",
                write(dir, "ca.pem", &pki.ca_pem)
            ));
        }
        let extra: Vec<(&str, &str)> = tls.iter().map(|l| ("tls", l.as_str())).collect();
        let process = instance.start_tls(&extra).await;
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
            .args(["healthcheck", "--config"])
            .arg(dir.join("swarmpilot.toml"))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mutual={mutual}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = format!("https://127.0.0.1:{}/-/healthy", process.port);
        let expected = match mutual {
            false => format!("healthy: {url} answered 200\n"),
            true => {
                format!("healthy: {url} completed TLS up to the client certificate it requires\n")
            }
        };
        assert_eq!(stdout, expected);
        // Plain HTTP against the TLS port is not a health answer.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_swarmpilot"))
            .args(["healthcheck", "--url"])
            .arg(format!("http://127.0.0.1:{}/-/healthy", process.port))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "mutual={mutual}");
    }
}
