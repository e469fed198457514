//! Where the Docker engine is. `docker.host`, else `DOCKER_HOST`, else the local socket, parsed
//! once into an [`Endpoint`] that every Docker connection is built from: the bollard client, the
//! raw reader of `PreviousSpec`, the secret pruner and the `docker` CLI the companions run.
//! Before, each of them read the setting its own way, and a plain socket path that bollard
//! accepted silently broke the raw reader (so rollback was always refused).

use bollard::{Docker, API_DEFAULT_VERSION};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The engine's socket when neither `docker.host` nor `DOCKER_HOST` names one.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// What the setting may look like, for error messages.
const ACCEPTED: &str = "use unix:///path/to/docker.sock, an absolute socket path such as \
                        /var/run/docker.sock, tcp://host:port or http://host:port";

/// A Docker engine address swarmpilot can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket (`unix:///run/docker.sock` or the plain absolute path).
    Unix(PathBuf),
    /// Plain HTTP to `host:port` (`tcp://` and `http://` mean the same to the engine).
    Http(String),
}

/// Why a `docker.host` / `DOCKER_HOST` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{origin} = {value:?}: scheme {scheme:?} is not supported; {ACCEPTED}")]
    Scheme {
        origin: &'static str,
        value: String,
        scheme: String,
    },
    #[error("{origin} = {value:?} is not an absolute path or a URL; {ACCEPTED}")]
    Relative { origin: &'static str, value: String },
    #[error("{origin} = {value:?} names no host or socket; {ACCEPTED}")]
    Empty { origin: &'static str, value: String },
}

impl Endpoint {
    /// The endpoint of `docker.host` (`setting`), falling back to the process's `DOCKER_HOST`.
    pub fn configured(setting: &str) -> Result<Self, EndpointError> {
        Self::resolve(setting, std::env::var("DOCKER_HOST").ok().as_deref())
    }

    /// As [`Endpoint::configured`] with `DOCKER_HOST`'s value passed in (tests never touch the
    /// process environment: they run in parallel threads).
    pub fn resolve(setting: &str, docker_host_env: Option<&str>) -> Result<Self, EndpointError> {
        if !setting.is_empty() {
            return Self::parse("docker.host", setting);
        }
        match docker_host_env {
            Some(env) if !env.is_empty() => Self::parse("DOCKER_HOST", env),
            _ => Ok(Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))),
        }
    }

    fn parse(origin: &'static str, value: &str) -> Result<Self, EndpointError> {
        let empty = || EndpointError::Empty {
            origin,
            value: value.into(),
        };
        if value.starts_with('/') {
            return Ok(Endpoint::Unix(PathBuf::from(value)));
        }
        let Some((scheme, rest)) = value.split_once("://") else {
            return Err(EndpointError::Relative {
                origin,
                value: value.into(),
            });
        };
        match scheme {
            "unix" if rest.starts_with('/') => Ok(Endpoint::Unix(PathBuf::from(rest))),
            "unix" if rest.is_empty() => Err(empty()),
            "unix" => Err(EndpointError::Relative {
                origin,
                value: value.into(),
            }),
            "tcp" | "http" => {
                let authority = rest.trim_end_matches('/');
                if authority.is_empty() || authority.contains('/') {
                    return Err(empty());
                }
                Ok(Endpoint::Http(authority.into()))
            }
            _ => Err(EndpointError::Scheme {
                origin,
                value: value.into(),
                scheme: scheme.into(),
            }),
        }
    }

    /// The address in the form the `docker` CLI accepts as `DOCKER_HOST` (it knows no
    /// `http://` and no plain path).
    pub fn url(&self) -> String {
        match self {
            Endpoint::Unix(path) => format!("unix://{}", path.display()),
            Endpoint::Http(authority) => format!("tcp://{authority}"),
        }
    }

    /// The socket path, for a unix endpoint.
    pub fn socket(&self) -> Option<&Path> {
        match self {
            Endpoint::Unix(path) => Some(path),
            Endpoint::Http(_) => None,
        }
    }

    /// A bollard client for this endpoint. For a socket, bollard fails here when the socket file
    /// is missing, so callers build it lazily.
    pub fn bollard(&self, timeout: Duration) -> Result<Docker, bollard::errors::Error> {
        let secs = timeout.as_secs().max(1);
        match self {
            Endpoint::Unix(path) => {
                Docker::connect_with_unix(&path.to_string_lossy(), secs, API_DEFAULT_VERSION)
            }
            Endpoint::Http(authority) => {
                Docker::connect_with_http(&format!("http://{authority}"), secs, API_DEFAULT_VERSION)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn unix(path: &str) -> Result<Endpoint, ()> {
        Ok(Endpoint::Unix(PathBuf::from(path)))
    }

    fn http(base: &str) -> Result<Endpoint, ()> {
        Ok(Endpoint::Http(base.into()))
    }

    #[rstest]
    #[case::default_socket("", None, unix(DEFAULT_SOCKET))]
    #[case::empty_env_is_unset("", Some(""), unix(DEFAULT_SOCKET))]
    #[case::plain_path("/var/run/docker.sock", None, unix("/var/run/docker.sock"))]
    #[case::unix_url("unix:///run/docker.sock", None, unix("/run/docker.sock"))]
    #[case::tcp("tcp://127.0.0.1:2375", None, http("127.0.0.1:2375"))]
    #[case::http_trailing_slash("http://docker:2375/", None, http("docker:2375"))]
    #[case::env_plain_path("", Some("/var/run/docker.sock"), unix("/var/run/docker.sock"))]
    #[case::env_unix_url("", Some("unix:///x.sock"), unix("/x.sock"))]
    #[case::env_tcp("", Some("tcp://10.0.0.1:2375"), http("10.0.0.1:2375"))]
    #[case::setting_wins_over_env("/a.sock", Some("tcp://h:1"), unix("/a.sock"))]
    #[case::ssh("ssh://user@host", None, Err(()))]
    #[case::npipe("npipe:////./pipe/docker_engine", None, Err(()))]
    #[case::ftp("ftp://host", None, Err(()))]
    #[case::https_needs_tls_we_do_not_build("https://host:2376", None, Err(()))]
    #[case::relative_path("docker.sock", None, Err(()))]
    #[case::relative_unix("unix://docker.sock", None, Err(()))]
    #[case::empty_unix("unix://", None, Err(()))]
    #[case::empty_tcp("tcp://", None, Err(()))]
    #[case::tcp_with_path("tcp://host:1/x", None, Err(()))]
    #[case::env_ssh("", Some("ssh://host"), Err(()))]
    #[case::env_relative("", Some("run/docker.sock"), Err(()))]
    fn resolves(
        #[case] setting: &str,
        #[case] env: Option<&str>,
        #[case] expected: Result<Endpoint, ()>,
    ) {
        assert_eq!(Endpoint::resolve(setting, env).map_err(|_| ()), expected);
    }

    #[test]
    fn errors_name_the_origin_and_the_fix() {
        let e = Endpoint::resolve("ssh://host", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("docker.host = \"ssh://host\": scheme \"ssh\""),
            "{e}"
        );
        assert!(e.contains("unix:///path/to/docker.sock"), "{e}");
        let e = Endpoint::resolve("", Some("sock")).unwrap_err().to_string();
        assert!(
            e.starts_with("DOCKER_HOST = \"sock\" is not an absolute path"),
            "{e}"
        );
    }

    #[test]
    fn url_is_what_the_docker_cli_accepts() {
        assert_eq!(
            Endpoint::resolve("/var/run/docker.sock", None)
                .unwrap()
                .url(),
            "unix:///var/run/docker.sock"
        );
        assert_eq!(
            Endpoint::resolve("http://h:2375", None).unwrap().url(),
            "tcp://h:2375"
        );
    }
}
