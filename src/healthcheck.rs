//! `swarmpilot healthcheck`: the container's health check. The image is `FROM scratch` (no shell,
//! no curl), so the binary asks its own server: `GET /-/healthy` on the address `serve` listens
//! on, from the same config and `SWARMPILOT_*` environment, over HTTPS when `[tls]` is set.
//!
//! A plain blocking request over `std::net`, not reqwest: one request with a deadline needs no
//! async runtime, and the probe must cost next to nothing every few seconds.

use crate::settings::{Settings, SettingsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, ClientConfig, ClientConnection, DigitallySignedStruct, StreamOwned,
};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The path `serve` answers 200 on as long as the process serves HTTP (see receive/routes.rs).
pub const HEALTH_PATH: &str = "/-/healthy";

/// The most of an answer read: a status line and headers are far smaller.
const MAX_ANSWER: usize = 16 * 1024;

/// Why the probe is not healthy. Each prints as one line for `docker inspect`'s health log.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("--url {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: TLS: {source}")]
    Tls {
        url: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: not an HTTP answer: {line:?}")]
    NotHttp { url: String, line: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
}

/// What to ask: where, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as shown in messages.
    pub url: String,
    https: bool,
    /// Host header and TLS server name.
    host: String,
    port: u16,
    path: String,
    /// The server asks every client for a certificate (`tls.client_ca_file`); the probe has none.
    mutual_tls: bool,
}

impl Target {
    /// `/-/healthy` of the server `settings` describe. A wildcard listen address (`0.0.0.0`,
    /// `[::]`) is reached on loopback of the same family: the probe runs beside the server.
    pub fn from_settings(settings: &Settings) -> Result<Self, HealthError> {
        let addr = settings.listen_addr()?;
        let ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let https = settings.tls.enabled();
        let host = SocketAddr::new(ip, addr.port()).to_string();
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            url: format!("{scheme}://{host}{HEALTH_PATH}"),
            https,
            host: match ip {
                IpAddr::V6(ip) => format!("[{ip}]"),
                IpAddr::V4(ip) => ip.to_string(),
            },
            port: addr.port(),
            path: HEALTH_PATH.to_string(),
            mutual_tls: settings.tls.verifies_clients(),
        })
    }

    /// An explicit `http://` or `https://` URL (for a server behind another address or path).
    pub fn from_url(url: &str) -> Result<Self, HealthError> {
        let bad = |reason: &str| HealthError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let https = match parsed.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http:// and https:// are probed")),
        };
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| bad("no port"))?;
        let mut path = parsed.path().to_string();
        if let Some(query) = parsed.query() {
            path = format!("{path}?{query}");
        }
        Ok(Self {
            url: url.to_string(),
            https,
            host,
            port,
            path,
            mutual_tls: false,
        })
    }

    /// GET the target within `timeout`; `Ok` with a one-line description when it answers 2xx.
    pub fn probe(&self, timeout: Duration) -> Result<String, HealthError> {
        let deadline = Instant::now() + timeout;
        let stream = self.connect(deadline)?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: swarmpilot-healthcheck\r\nConnection: close\r\n\r\n",
            self.path, self.host, self.port
        );
        let answer = if self.https {
            let connection = self.tls_connection()?;
            let mut tls = StreamOwned::new(connection, stream);
            match exchange(&mut tls, request.as_bytes(), deadline) {
                // A server that requires a client certificate refuses the probe's handshake with
                // this alert (TLS 1.3). Sending it proves a live TLS server: healthy enough, as
                // /-/healthy cannot be reached without a certificate the probe does not hold.
                Err(ExchangeError::Io(e)) if self.mutual_tls && requires_certificate(&e) => {
                    return Ok(format!(
                        "healthy: {} completed TLS up to the client certificate it requires",
                        self.url
                    ));
                }
                other => other,
            }
        } else {
            let mut plain = stream;
            exchange(&mut plain, request.as_bytes(), deadline)
        };
        let answer = answer.map_err(|e| self.exchange_error(e, timeout))?;
        let status = status_code(&answer).ok_or_else(|| HealthError::NotHttp {
            url: self.url.clone(),
            line: first_line(&answer),
        })?;
        if (200..300).contains(&status) {
            Ok(format!("healthy: {} answered {status}", self.url))
        } else {
            Err(HealthError::Status {
                url: self.url.clone(),
                status,
            })
        }
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, HealthError> {
        let connect_error = |source| HealthError::Connect {
            url: self.url.clone(),
            source,
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs = (host, self.port).to_socket_addrs().map_err(connect_error)?;
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for addr in addrs {
            let Some(left) = remaining(deadline) else {
                break;
            };
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(connect_error(last))
    }

    fn tls_connection(&self) -> Result<ClientConnection, HealthError> {
        let tls_error = |source| HealthError::Tls {
            url: self.url.clone(),
            source,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string()).map_err(|e| HealthError::Url {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        ClientConnection::new(Arc::new(config), name).map_err(tls_error)
    }

    fn exchange_error(&self, error: ExchangeError, timeout: Duration) -> HealthError {
        match error {
            ExchangeError::Timeout => HealthError::Timeout {
                url: self.url.clone(),
                timeout,
            },
            ExchangeError::Io(e) => match tls_cause(&e) {
                Some(source) => HealthError::Tls {
                    url: self.url.clone(),
                    source: source.clone(),
                },
                None => HealthError::Connect {
                    url: self.url.clone(),
                    source: e,
                },
            },
        }
    }
}

enum ExchangeError {
    Timeout,
    Io(std::io::Error),
}

/// Write the request and read the answer's head (up to [`MAX_ANSWER`] bytes, or the end of the
/// stream), within the deadline.
fn exchange<S: Read + Write + AsTcp>(
    stream: &mut S,
    request: &[u8],
    deadline: Instant,
) -> Result<Vec<u8>, ExchangeError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ExchangeError::Timeout,
        _ => ExchangeError::Io(e),
    };
    let left = remaining(deadline).ok_or(ExchangeError::Timeout)?;
    stream.tcp().set_write_timeout(Some(left)).map_err(io)?;
    stream.write_all(request).map_err(io)?;
    stream.flush().map_err(io)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 2048];
    while answer.len() < MAX_ANSWER && !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = remaining(deadline).ok_or(ExchangeError::Timeout)?;
        stream.tcp().set_read_timeout(Some(left)).map_err(io)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A server that closes after its answer without a TLS close_notify: the answer is in.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => break,
            Err(e) => return Err(io(e)),
        }
    }
    Ok(answer)
}

/// The socket under a stream, for its timeouts.
trait AsTcp {
    fn tcp(&self) -> &TcpStream;
}

impl AsTcp for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl AsTcp for StreamOwned<ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`).
fn status_code(answer: &[u8]) -> Option<u16> {
    let line = first_line(answer);
    let mut parts = line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    (code.len() == 3).then_some(())?;
    code.parse().ok()
}

/// The first line of an answer, bounded, for messages.
fn first_line(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(answer);
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(120).collect()
}

fn tls_cause(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

fn requires_certificate(e: &std::io::Error) -> bool {
    matches!(
        tls_cause(e),
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired | AlertDescription::HandshakeFailure
        ))
    )
}

/// Accepts any server certificate, while still checking the handshake's signatures. The probe
/// talks to its own server on loopback and sends no credential: the certificate is issued for the
/// service's public name (not 127.0.0.1) and may chain to a private CA the image does not hold.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
