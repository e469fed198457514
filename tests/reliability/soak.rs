//! A soak: flapping alerts (scale up, scale down, no cooldown), the same alert delivered over and
//! over (a rule with a 1 h cooldown), and swarmpilot restarted between lives, alternately with
//! SIGTERM and SIGKILL. Memory at the end of each life stays within ±10 % of the first; the
//! journal audit finds every answered action journaled with exactly one outcome, no delivery
//! acted on twice, and the once-an-hour rule acting once per service across all the restarts.
//! CI runs 3 lives of 12 s; `RELIABILITY_LONG=1` runs 10 lives of 60 s.

use crate::common::process::{
    unbalanced_intents, wait_until_every_intent_finished, Instance, Process,
};
use crate::common::{require_docker, TestService, TOKEN};
use crate::crash::{burst_alert, burst_rules, create_services, GENEROUS_LIMITS};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const SERVICES: usize = 4;

fn repeat_alert(service: &str) -> Value {
    json!({
        "version": "4", "status": "firing", "receiver": "swarmpilot",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": "SoakRepeat", "service": service},
                    "startsAt": "2026-11-30T12:00:00.000Z", "fingerprint": "50a50a50a50a50a5"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_with_flapping_duplicates_and_restarts_keeps_memory_and_loses_nothing() {
    require_docker();
    let _turn = crate::one_at_a_time().await;
    let (lives, life) = if crate::long_run() {
        (10, Duration::from_secs(60))
    } else {
        (3, Duration::from_secs(12))
    };
    let services = create_services("soak", SERVICES).await;
    let instance = Instance::new();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut answered = Vec::new();
    let mut rss_at_end = Vec::new();
    let mut sent = 0usize;
    for n in 0..lives {
        let mut process = instance
            .start_with("", &burst_rules(), GENEROUS_LIMITS)
            .await;
        let end = Instant::now() + life;
        while Instant::now() < end {
            let service = &services[(sent / 2) % SERVICES].name;
            let payload = if sent.is_multiple_of(2) {
                // This service's own count of flaps: up, down, up, …
                burst_alert(service, sent / (2 * SERVICES))
            } else {
                repeat_alert(service)
            };
            answered.extend(post(&client, &process, &payload).await);
            sent += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        rss_at_end.push(process.rss_kib());
        process.signal(if n % 2 == 0 { "TERM" } else { "KILL" });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !process.exited() {
            assert!(Instant::now() < deadline, "life {n} did not end");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A last life only to finish what the last kill left.
    let _last = instance
        .start_with("", &burst_rules(), GENEROUS_LIMITS)
        .await;
    wait_until_every_intent_finished(&instance, Duration::from_secs(120)).await;
    audit(&instance.journal(), &answered, &services);

    let first = rss_at_end[0] as f64;
    let worst = rss_at_end
        .iter()
        .map(|r| (*r as f64 - first).abs() / first)
        .fold(0.0, f64::max);
    println!(
        "soak: {lives} lives of {} s, {sent} deliveries, {} actions answered; RSS at the end of \
         each life {rss_at_end:?} KiB (worst {:.1} % from the first)",
        life.as_secs(),
        answered.len(),
        worst * 100.0
    );
    assert!(
        worst <= 0.10,
        "memory moved {:.1} %: {rss_at_end:?}",
        worst * 100.0
    );
}

async fn post(client: &reqwest::Client, process: &Process, payload: &Value) -> Vec<String> {
    let response = client
        .post(format!("{}/webhook", process.address))
        .bearer_auth(TOKEN)
        .json(payload)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["action_id"].as_str().map(String::from))
        .collect()
}

/// Nothing lost, nothing doubled.
fn audit(journal: &[Value], answered: &[String], services: &[TestService]) {
    let intents: Vec<&Value> = journal.iter().filter(|l| l["type"] == "intent").collect();
    let ids: BTreeSet<&str> = intents.iter().filter_map(|l| l["id"].as_str()).collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|a| !ids.contains(a.as_str()))
        .collect();
    assert!(lost.is_empty(), "answered but not journaled: {lost:?}");
    assert!(unbalanced_intents(journal).is_empty());

    let mut deliveries: BTreeMap<String, usize> = BTreeMap::new();
    for intent in &intents {
        let key = format!(
            "{} {} {} {} {}",
            intent["rule"],
            intent["service"],
            intent["fingerprint"],
            intent["starts_at"],
            intent["status"]
        );
        *deliveries.entry(key).or_default() += 1;
    }
    let doubled: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "deliveries acted on twice: {doubled:?}");
    for service in services {
        let once = intents
            .iter()
            .filter(|l| l["rule"] == "soak-once" && l["service"] == service.name.as_str())
            .count();
        assert_eq!(
            once, 1,
            "{}: the 1 h cooldown held across restarts",
            service.name
        );
    }
}
