//! swarmpilot killed with SIGKILL in the middle of a burst of admitted actions, then started
//! again on the same journal: every journaled intent ends with exactly one outcome, every action
//! the webhook answered for was journaled, and no service was updated more often than it had
//! actions.

use crate::common::process::{
    unbalanced_intents, wait_until_every_intent_finished, Instance, Process,
};
use crate::common::{require_docker, TestService, TEST_IMAGE, TOKEN};
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const SERVICES: usize = 6;
const ALERTS_PER_SERVICE: usize = 40;
const KILL_AFTER: usize = 120;

pub fn burst_rules() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rules_burst")
}

/// The largest budgets the settings accept (10,000): a burst is never refused by them.
pub const GENEROUS_LIMITS: &[(&str, &str)] = &[
    ("limits", "requests_per_second_per_client = 0"),
    ("limits", "actions_per_minute = 0"),
    ("limits", "actions_per_service_per_hour = 0"),
];

/// Alert `n` for `service`: up and down alternate, every one a distinct delivery.
pub fn burst_alert(service: &str, n: usize) -> Value {
    let name = if n.is_multiple_of(2) {
        "BurstUp"
    } else {
        "BurstDown"
    };
    json!({
        "version": "4", "status": "firing", "receiver": "swarmpilot",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": name, "service": service},
            "startsAt": format!("2026-11-30T10:{:02}:{:02}.000Z", n / 60 % 60, n % 60),
            "fingerprint": format!("{:016x}", 0xb0000 + n),
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_burst_every_intent_ends_with_exactly_one_outcome() {
    require_docker();
    let _turn = crate::one_at_a_time().await;
    let services = create_services("burst", SERVICES).await;
    let since = unix_now();
    let instance = Instance::new();
    let mut first = instance
        .start_with("", &burst_rules(), GENEROUS_LIMITS)
        .await;

    let deliveries: Vec<(String, usize)> = (0..ALERTS_PER_SERVICE)
        .flat_map(|n| services.iter().map(move |s| (s.name.clone(), n)))
        .collect();
    let answered = burst(&first, &deliveries[..KILL_AFTER]).await;
    first.signal("KILL");
    let late = burst(&first, &deliveries[KILL_AFTER..KILL_AFTER + 12]).await;
    assert!(first.exited(), "killed");
    assert!(late.is_empty(), "a dead process answers nothing");
    let before_restart = instance.journal();
    let open_at_kill = unbalanced_intents(&before_restart).len();

    let _second = instance
        .start_with("", &burst_rules(), GENEROUS_LIMITS)
        .await;
    wait_until_every_intent_finished(&instance, Duration::from_secs(120)).await;
    let journal = instance.journal();
    let intents: BTreeSet<&str> = journal
        .iter()
        .filter(|l| l["type"] == "intent")
        .filter_map(|l| l["id"].as_str())
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|id| !intents.contains(id.as_str()))
        .collect();
    assert!(lost.is_empty(), "answered but never journaled: {lost:?}");
    let mut total_updates = 0;
    for service in &services {
        let updates = replica_updates(&service.name, since);
        total_updates += updates.len();
        let mut targets = journal_targets(&journal, &service.name);
        for update in &updates {
            let matched = targets.iter().position(|t| t == update);
            assert!(
                matched.is_some(),
                "{}: Docker update {update:?} with no journaled target left for it (a doubled \
                 or unjournaled update); all updates {updates:?}",
                service.name
            );
            targets.swap_remove(matched.unwrap());
        }
        let replicas = service.desired_replicas();
        assert!(
            (1..=3).contains(&replicas),
            "{}: {replicas} replicas",
            service.name
        );
    }
    println!(
        "crash: {} actions answered before SIGKILL, {open_at_kill} without an outcome at the \
         kill; after restart {} intents, each with exactly one outcome; {total_updates} Docker \
         updates, each matching one journaled target",
        answered.len(),
        intents.len()
    );
}

/// Each action's absolute target for `service`, as (from, to) replica counts: the change planned
/// at admission, replaced by any target journaled at execution. An action sends at most its one
/// final target.
fn journal_targets(journal: &[Value], service: &str) -> Vec<(u64, u64)> {
    let replicas = |change: &Value| {
        (change["kind"] == "replicas")
            .then(|| Some((change["from"].as_u64()?, change["to"].as_u64()?)))
            .flatten()
    };
    let mut targets: BTreeMap<&str, Option<(u64, u64)>> = BTreeMap::new();
    for line in journal {
        let Some(id) = line["id"].as_str() else {
            continue;
        };
        match line["type"].as_str() {
            Some("intent") if line["service"] == service => {
                targets.insert(id, replicas(&line["change"]));
            }
            Some("target") if targets.contains_key(id) => {
                targets.insert(id, replicas(&line["change"]));
            }
            _ => {}
        }
    }
    targets.into_values().flatten().collect()
}

/// Post every delivery, eight in flight; the action ids of the answers that admitted one.
pub async fn burst(process: &Process, deliveries: &[(String, usize)]) -> Vec<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answers = stream::iter(deliveries)
        .map(|(service, n)| {
            let request = client
                .post(format!("{}/webhook", process.address))
                .bearer_auth(TOKEN)
                .json(&burst_alert(service, *n));
            async move {
                let response = request.send().await.ok()?;
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.ok()
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    answers
        .into_iter()
        .flatten()
        .flat_map(|a| a["decisions"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d["action_id"].as_str().map(String::from))
        .collect()
}

/// `n` opted-in one-replica services, created together and waited for together.
pub async fn create_services(tag: &str, n: usize) -> Vec<TestService> {
    let services: Vec<TestService> = (0..n)
        .map(|_| TestService::opted_in_with(tag, &["--replicas", "1"], TEST_IMAGE, &[]))
        .collect();
    for service in &services {
        service.wait_running(1).await;
    }
    services
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A spec update of a service, from the engine's event log: its name and replica counts before
/// and after (0 when the update changed no replica count).
pub struct SpecUpdate {
    pub service: String,
    pub old: u64,
    pub new: u64,
}

/// Every spec update since `since` (unix s). Swarm's own rollout progress (`update` events with
/// an `updatestate.*` attribute) is not one.
pub fn spec_updates(since: u64) -> Vec<SpecUpdate> {
    let until = unix_now() + 1;
    let events = crate::common::docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "type=service",
        "--filter",
        "event=update",
        "--format",
        "{{json .Actor.Attributes}}",
    ])
    .expect("docker events");
    let count = |a: &Value, key: &str| a[key].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
    events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|a| a.get("updatestate.new").is_none())
        .filter_map(|a| {
            Some(SpecUpdate {
                service: a["name"].as_str()?.to_string(),
                old: count(&a, "replicas.old"),
                new: count(&a, "replicas.new"),
            })
        })
        .collect()
}

/// `service`'s spec updates since `since`, as (old, new) replica counts; an update that changed
/// no replica count is (0, 0) and matches no target.
pub fn replica_updates(service: &str, since: u64) -> Vec<(u64, u64)> {
    spec_updates(since)
        .into_iter()
        .filter(|u| u.service == service)
        .map(|u| (u.old, u.new))
        .collect()
}
