use super::*;
use rstest::rstest;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("swarmpilot.toml");
    std::fs::write(&file, toml).unwrap();
    Settings::load_with_env(Some(&file), env(vars))
}

#[test]
fn defaults_match_the_design() {
    let s = load("", &[]).unwrap();
    assert_eq!(s.listen, "127.0.0.1:9095");
    assert_eq!(s.rules_dir, PathBuf::from("rules"));
    assert_eq!(s.opt_in_label, "swarmpilot.enable");
    assert_eq!(s.docker.timeout, Duration::from_secs(10));
    assert_eq!(s.docker.retry_for, Duration::from_secs(600));
    assert_eq!(s.limits.max_body_bytes, 262_144);
    assert_eq!(s.limits.actions_per_minute, 30);
    assert_eq!(s.backup.timeout, Duration::from_secs(1800));
    assert_eq!(s.grafana.tags, ["swarmpilot"]);
    assert_eq!(s.secrets.prune_interval, Duration::from_secs(3600));
    assert_eq!(s.secrets.grace, Duration::from_secs(86_400));
}

#[test]
fn secret_pruning_is_configurable_from_file_and_env() {
    let toml = "[secrets]\nprune_interval = \"0s\"\n";
    let s = load(toml, &[("SWARMPILOT_SECRETS__GRACE", "2h")]).unwrap();
    assert_eq!(s.secrets.prune_interval, Duration::ZERO);
    assert_eq!(s.secrets.grace, Duration::from_secs(7200));
}

#[test]
fn prometheus_is_off_until_a_url_is_set() {
    let s = load("", &[]).unwrap();
    assert_eq!(s.prometheus.url, "");
    assert_eq!(s.prometheus.timeout, Duration::from_secs(30));
    let s = load(
        "[prometheus]\nurl = \"http://prometheus:9090/\"\ntimeout = \"5s\"",
        &[],
    )
    .unwrap();
    assert_eq!(s.prometheus.url, "http://prometheus:9090/");
    assert_eq!(s.prometheus.timeout, Duration::from_secs(5));
}

#[test]
fn file_then_env_override() {
    let toml =
        "rules_dir = \"/etc/rules\"\n[limits]\nmax_body_bytes = 1000\n[docker]\ntimeout = \"3s\"\n";
    let s = load(
        toml,
        &[
            ("SWARMPILOT_LIMITS__MAX_BODY_BYTES", "2000"),
            ("SWARMPILOT_DRY_RUN", "true"),
            ("SWARMPILOT_DOCKER__RETRY_FOR", "1m"),
        ],
    )
    .unwrap();
    assert_eq!(s.rules_dir, PathBuf::from("/etc/rules"));
    assert_eq!(s.limits.max_body_bytes, 2000);
    assert!(s.dry_run);
    assert_eq!(s.docker.timeout, Duration::from_secs(3));
    assert_eq!(s.docker.retry_for, Duration::from_secs(60));
}

#[rstest]
#[case::unknown_key("listn = \"x\"", "unknown field `listn`")]
#[case::bad_duration("[docker]\ntimeout = \"soon\"", "invalid duration \"soon\"")]
#[case::bad_listen("listen = \"nowhere\"", "is not an address")]
#[case::open_without_auth("listen = \"0.0.0.0:9095\"", "is not loopback and no auth")]
#[case::half_basic("[auth]\nbasic_username = \"am\"", "go together")]
#[case::half_tls(
    "[tls]\ncert_file = \"c.pem\"",
    "tls.cert_file and tls.key_file go together"
)]
#[case::client_ca_without_tls(
    "[tls]\nclient_ca_file = \"ca.pem\"",
    "tls.client_ca_file needs them to serve HTTPS"
)]
#[case::prometheus_not_http(
    "[prometheus]\nurl = \"prometheus:9090\"",
    "prometheus.url \"prometheus:9090\" is not an http:// or https:// URL"
)]
#[case::prometheus_not_a_url(
    "[prometheus]\nurl = \"http//x\"",
    "is not an http:// or https:// URL"
)]
#[case::protect_pages_without_credentials(
    "[auth]\nprotect_pages = true",
    "auth.protect_pages = true needs credentials to check"
)]
#[case::request_timeout(
    "[limits]\nrequest_timeout = \"forever\"",
    "invalid duration \"forever\""
)]
fn rejects(#[case] toml: &str, #[case] expected: &str) {
    let err = load(toml, &[]).unwrap_err().to_string();
    assert!(err.contains(expected), "{err}");
}

#[test]
fn pages_are_open_by_default_and_protected_from_file_or_env() {
    assert!(!load("", &[]).unwrap().auth.protect_pages);
    let token = "[auth]\nbearer_token_file = \"/run/secrets/t\"";
    let from_file = load(&format!("{token}\nprotect_pages = true"), &[]).unwrap();
    assert!(from_file.auth.protect_pages);
    let from_env = load(token, &[("SWARMPILOT_AUTH__PROTECT_PAGES", "true")]).unwrap();
    assert!(from_env.auth.protect_pages);
}

#[test]
fn open_listen_with_auth_or_explicit_opt_out_is_fine() {
    assert!(load(
        "listen = \"0.0.0.0:9095\"\n[auth]\nbearer_token_file = \"/run/secrets/t\"",
        &[]
    )
    .is_ok());
    assert!(load(
        "listen = \"0.0.0.0:9095\"\n[auth]\nallow_unauthenticated = true",
        &[]
    )
    .is_ok());
    // A verified client certificate is authentication too.
    let mtls = load(
        "listen = \"0.0.0.0:9095\"\n[tls]\ncert_file = \"c\"\nkey_file = \"k\"\nclient_ca_file = \"ca\"",
        &[],
    )
    .unwrap();
    assert!(mtls.tls.verifies_clients());
    let server_only = "listen = \"0.0.0.0:9095\"\n[tls]\ncert_file = \"c\"\nkey_file = \"k\"";
    assert!(
        load(server_only, &[]).is_err(),
        "TLS alone is not authentication"
    );
}

#[test]
fn missing_explicit_file_is_an_error() {
    let err = Settings::load_with_env(Some(Path::new("/nonexistent.toml")), env(&[]));
    assert!(err.is_err());
}

#[test]
fn secrets_are_trimmed_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret\n").unwrap();
    assert_eq!(
        read_secret("token", path.to_str().unwrap()).unwrap(),
        "s3cret"
    );
    std::fs::write(&path, "\n").unwrap();
    assert!(read_secret("token", path.to_str().unwrap()).is_err());
    assert!(read_secret("token", "/nonexistent").is_err());
}

/// Every duration and number key rejects values past its range (which used to overflow
/// `now + value` or disable a limit) with an error naming the key and the range.
#[rstest]
#[case::docker_timeout_zero(
    "[docker]\ntimeout = \"0s\"",
    "docker.timeout = 0s is out of range: from 1ms to 1h"
)]
#[case::docker_timeout_huge(
    "[docker]\ntimeout = \"18446744073709551615s\"",
    "docker.timeout = 18446744073709551615s is out of range: from 1ms to 1h"
)]
#[case::retry_for(
    "[docker]\nretry_for = \"31d\"",
    "docker.retry_for = 31d is out of range: from 0s to 30d"
)]
#[case::request_timeout_zero(
    "[limits]\nrequest_timeout = \"0s\"",
    "limits.request_timeout = 0s is out of range: from 1ms to 1h"
)]
#[case::backup_timeout_zero(
    "[backup]\ntimeout = \"0s\"",
    "backup.timeout = 0s is out of range: from 1ms to 30d"
)]
#[case::backup_timeout_huge(
    "[backup]\ntimeout = \"100y\"",
    "backup.timeout = 36525d is out of range"
)]
#[case::prune_interval(
    "[secrets]\nprune_interval = \"1000d\"",
    "secrets.prune_interval = 1000d is out of range: from 0s to 30d"
)]
#[case::grace(
    "[secrets]\ngrace = \"400d\"",
    "secrets.grace = 400d is out of range: from 0s to 365d"
)]
#[case::prometheus_timeout_zero(
    "[prometheus]\ntimeout = \"0s\"",
    "prometheus.timeout = 0s is out of range: from 1ms to 1h"
)]
#[case::max_body_zero(
    "[limits]\nmax_body_bytes = 0",
    "limits.max_body_bytes = 0 is out of range: from 1 to 67108864"
)]
#[case::max_body_huge(
    "[limits]\nmax_body_bytes = 9223372036854775807",
    "limits.max_body_bytes = 9223372036854775807 is out of range: from 1 to 67108864"
)]
#[case::client_rate(
    "[limits]\nrequests_per_second_per_client = 4294967295",
    "limits.requests_per_second_per_client = 4294967295 is out of range: from 0 to 100000"
)]
#[case::actions_per_minute(
    "[limits]\nactions_per_minute = 10001",
    "limits.actions_per_minute = 10001 is out of range: from 0 to 10000"
)]
#[case::actions_per_service_per_hour(
    "[limits]\nactions_per_service_per_hour = 4294967295",
    "limits.actions_per_service_per_hour = 4294967295 is out of range: from 0 to 10000"
)]
fn rejects_out_of_range(#[case] toml: &str, #[case] expected: &str) {
    let err = load(toml, &[]).unwrap_err();
    assert!(matches!(err, SettingsError::OutOfRange { .. }), "{err:?}");
    let err = err.to_string();
    assert!(err.starts_with("config: "), "{err}");
    assert!(err.contains(expected), "expected {expected:?} in {err}");
}

#[test]
fn env_overrides_are_bounded_too() {
    let err = load("", &[("SWARMPILOT_DOCKER__TIMEOUT", "0s")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "config: docker.timeout = 0s is out of range: from 1ms to 1h"
    );
}

#[test]
fn zero_turns_off_what_the_readme_says_it_turns_off() {
    let toml = "[docker]\nretry_for = \"0s\"\n[limits]\nrequests_per_second_per_client = 0\nactions_per_minute = 0\nactions_per_service_per_hour = 0\n[secrets]\nprune_interval = \"0s\"\ngrace = \"0s\"";
    let s = load(toml, &[]).unwrap();
    assert_eq!(s.limits.actions_per_minute, 0);
    assert_eq!(s.secrets.prune_interval, Duration::ZERO);
}

#[test]
fn the_upper_bounds_themselves_load() {
    let toml = "[docker]\ntimeout = \"1h\"\nretry_for = \"30d\"\n[limits]\nmax_body_bytes = 67108864\nrequest_timeout = \"1h\"\nrequests_per_second_per_client = 100000\nactions_per_minute = 10000\nactions_per_service_per_hour = 10000\n[backup]\ntimeout = \"30d\"\n[secrets]\nprune_interval = \"30d\"\ngrace = \"365d\"\n[prometheus]\ntimeout = \"1h\"";
    let s = load(toml, &[]).unwrap();
    assert_eq!(s.limits.max_body_bytes, 67_108_864);
    assert_eq!(s.secrets.grace, Duration::from_secs(365 * 86_400));
}

#[test]
fn a_duration_too_large_to_represent_names_its_key() {
    let err = load("[backup]\ntimeout = \"99999999999999999999s\"", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("backup.timeout"), "{err}");
    assert!(err.contains("invalid duration"), "{err}");
}
