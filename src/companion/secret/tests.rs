use super::prune::to_version;
use super::*;
use bollard::models::Secret;
use rstest::rstest;
use serde_json::json;
use std::collections::HashSet;
use std::time::UNIX_EPOCH;

#[rstest]
#[case("app_token", "app_token", true)]
#[case("app_token_20260101120000", "app_token", true)]
#[case("app_token_2026010112000", "app_token", false)]
#[case("app_token_2026010112000x", "app_token", false)]
#[case("app_token_old", "app_token", false)]
#[case("app_tokenizer", "app_token", false)]
#[case("other_20260101120000", "app_token", false)]
fn family_membership(#[case] name: &str, #[case] family: &str, #[case] member: bool) {
    assert_eq!(is_of_family(name, family), member);
}

#[rstest]
#[case::ok("app_token", None)]
#[case::dots_and_dashes("db.pass-word", None)]
#[case::empty("", Some("use letters"))]
#[case::leading_dash("-x", Some("use letters"))]
#[case::slash("a/b", Some("use letters"))]
#[case::too_long(&"a".repeat(50), Some("at most 49 characters"))]
#[case::a_version("app_token_20260101120000", Some("rotate the family \"app_token\""))]
fn family_names(#[case] name: &str, #[case] error: Option<&str>) {
    match (check_family(name), error) {
        (Ok(()), None) => {}
        (Err(e), Some(expected)) => assert!(e.to_string().contains(expected), "{e}"),
        (result, _) => panic!("{name:?}: {result:?}"),
    }
}

#[test]
fn version_names_carry_the_utc_time() {
    // 2026-01-02T03:04:05Z
    let at = UNIX_EPOCH + Duration::from_secs(1_767_323_045);
    assert_eq!(version_name("app_token", at), "app_token_20260102030405");
    assert!(is_of_family(&version_name("app_token", at), "app_token"));
}

#[test]
fn random_values_are_alphanumeric_of_the_asked_length_and_differ() {
    let a = random_value(32).unwrap();
    let b = random_value(32).unwrap();
    assert_eq!(a.len(), 32);
    assert!(a.iter().all(u8::is_ascii_alphanumeric));
    assert_ne!(a, b);
    assert_eq!(random_value(4096).unwrap().len(), 4096);
}

#[rstest]
#[case(0)]
#[case(15)]
#[case(4097)]
fn random_value_lengths_are_bounded(#[case] length: usize) {
    assert!(matches!(random_value(length), Err(SecretError::Length(_))));
}

fn spec_with(secrets: serde_json::Value) -> ServiceSpec {
    serde_json::from_value(json!({
        "Name": "app_api",
        "TaskTemplate": {"ContainerSpec": {"Image": "api:1", "Secrets": secrets}},
    }))
    .unwrap()
}

#[test]
fn retarget_moves_every_family_reference_and_keeps_the_file() {
    let spec = spec_with(json!([
        {"SecretID": "old1", "SecretName": "app_token",
         "File": {"Name": "app_token", "UID": "1000", "GID": "1000", "Mode": 256}},
        {"SecretID": "db1", "SecretName": "db_password",
         "File": {"Name": "db_password", "UID": "0", "GID": "0", "Mode": 292}},
        {"SecretID": "old2", "SecretName": "app_token_20250101000000",
         "File": {"Name": "token2", "UID": "0", "GID": "0", "Mode": 292}},
    ]));
    let moved = retarget(&spec, "app_token", "new", "app_token_20260101000000").unwrap();
    let value = serde_json::to_value(&moved).unwrap();
    let secrets = &value["TaskTemplate"]["ContainerSpec"]["Secrets"];
    assert_eq!(
        secrets[0],
        json!({"SecretID": "new", "SecretName": "app_token_20260101000000",
               "File": {"Name": "app_token", "UID": "1000", "GID": "1000", "Mode": 256}})
    );
    assert_eq!(secrets[1]["SecretID"], "db1", "another family is untouched");
    assert_eq!(secrets[2]["SecretID"], "new");
    assert_eq!(secrets[2]["File"]["Name"], "token2");
}

#[test]
fn retarget_skips_a_service_without_the_family() {
    let spec = spec_with(json!([{"SecretID": "db1", "SecretName": "db_password"}]));
    assert!(retarget(&spec, "app_token", "new", "x").is_none());
    let bare: ServiceSpec = serde_json::from_value(json!({"Name": "x"})).unwrap();
    assert!(retarget(&bare, "app_token", "new", "x").is_none());
}

fn version(family: &str, stamp: &str, id: &str, age_hours: u64, now: SystemTime) -> Version {
    Version {
        id: id.into(),
        name: format!("{family}_{stamp}"),
        family: family.into(),
        created: now - Duration::from_secs(age_hours * 3600),
    }
}

#[test]
fn prune_takes_unused_old_versions_but_never_the_newest() {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let versions = [
        version("tok", "20260101000000", "a", 72, now), // old, unused → pruned
        version("tok", "20260102000000", "b", 48, now), // old, in use → kept
        version("tok", "20260103000000", "c", 2, now),  // unused but young → kept
        version("tok", "20260104000000", "d", 1, now),  // newest → kept
        version("db", "20250101000000", "e", 900, now), // newest of its family → kept
        version("db", "20240101000000", "f", 9000, now), // older, unused → pruned
    ];
    let in_use = HashSet::from(["b".to_string()]);
    let ids: Vec<&str> = prunable(&versions, &in_use, now, Duration::from_secs(24 * 3600))
        .into_iter()
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(ids, ["f", "a"]);
    let with_no_grace: Vec<&str> = prunable(&versions, &in_use, now, Duration::ZERO)
        .into_iter()
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(with_no_grace, ["f", "a", "c"]);
}

#[test]
fn only_labelled_secrets_of_the_version_form_are_versions() {
    let secret = |name: &str, family: &str| -> Secret {
        serde_json::from_value(json!({
            "ID": "id1",
            "CreatedAt": "2026-01-01T00:00:00.123456789Z",
            "Spec": {"Name": name, "Labels": {FAMILY_LABEL: family}},
        }))
        .unwrap()
    };
    let v = to_version(secret("tok_20260101000000", "tok")).unwrap();
    assert_eq!(v.family, "tok");
    assert_eq!(
        v.created,
        UNIX_EPOCH + Duration::from_nanos(1_767_225_600_123_456_789)
    );
    assert!(to_version(secret("tok", "tok")).is_none(), "the original");
    assert!(to_version(secret("handmade", "tok")).is_none());
}
