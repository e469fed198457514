//! ≥ 10,000 mutated and malformed payloads through the real HTTP server of the real binary: every
//! answer is a 4xx with a JSON error or a 2xx without an action, nothing is journaled, and the
//! process's memory grows by less than 10 MB.

use crate::common::process::{Instance, Process, UNTHROTTLED};
use crate::common::{require_docker, TOKEN};
use crate::mutate::{case, Case, Rng};
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const IN_FLIGHT: usize = 16;
const WARMUP: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_mutated_payloads_get_4xx_or_2xx_without_action() {
    require_docker();
    let _turn = crate::one_at_a_time().await;
    let cases = if crate::long_run() { 100_000 } else { 10_000 };
    let instance = Instance::new();
    let process = instance
        .start_with("", &Instance::test_rules(), UNTHROTTLED)
        .await;
    let seed: Value =
        serde_json::from_str(include_str!("../fixtures/fuzz_seed.json")).expect("seed parses");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    // The warm-up sends every extreme case a dozen times: what the allocator keeps after the
    // largest bodies is reached here, so the growth measured after is what the run itself leaks.
    let warmup = send_all(&client, &process, &seed, 0..WARMUP).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = process.rss_kib();
    let started = Instant::now();
    let main = send_all(&client, &process, &seed, WARMUP..cases).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = process.rss_kib();

    let mut by_status = warmup.by_status;
    for (status, n) in main.by_status {
        *by_status.entry(status).or_default() += n;
    }
    let failures: Vec<String> = warmup.failures.into_iter().chain(main.failures).collect();
    println!(
        "mutation: {cases} payloads, statuses {by_status:?}, {:.1} s for {} after warm-up, \
         RSS {rss_before} KiB → {rss_after} KiB",
        elapsed.as_secs_f64(),
        cases - WARMUP
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(by_status.values().sum::<usize>(), cases);
    let intents: Vec<Value> = instance
        .journal()
        .into_iter()
        .filter(|l| l["type"] == "intent")
        .collect();
    assert!(
        intents.is_empty(),
        "no action may come of a mutated payload: {intents:?}"
    );
    assert!(
        rss_after < rss_before + 10 * 1024,
        "memory grew by {} KiB",
        rss_after.saturating_sub(rss_before)
    );
    still_serves(&client, &process).await;
}

#[derive(Default)]
struct Tally {
    by_status: BTreeMap<u16, usize>,
    failures: Vec<String>,
}

async fn send_all(
    client: &reqwest::Client,
    process: &Process,
    seed: &Value,
    range: std::ops::Range<usize>,
) -> Tally {
    let mut rng = Rng::new(0x5eed_0000 + range.start as u64);
    let cases: Vec<(usize, Case)> = range.map(|n| (n, case(seed, n, &mut rng))).collect();
    let answers = stream::iter(cases)
        .map(|(n, case)| async move { (n, case.what.clone(), send(client, process, case).await) })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut tally = Tally::default();
    for (n, what, answer) in answers {
        match answer {
            Ok(status) => *tally.by_status.entry(status).or_default() += 1,
            Err(e) => tally.failures.push(format!("case {n} ({what}): {e}")),
        }
    }
    tally
}

/// Send one case; `Err` says what was wrong with the answer.
async fn send(client: &reqwest::Client, process: &Process, case: Case) -> Result<u16, String> {
    let response = client
        .post(format!("{}/webhook", process.address))
        .bearer_auth(TOKEN)
        .header("content-type", case.content_type)
        .body(case.body)
        .send()
        .await
        .map_err(|e| format!("no answer: {e:?}"))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| format!("body: {e}"))?;
    let json: Value = serde_json::from_slice(&body).map_err(|_| {
        format!(
            "{status}: body is not JSON: {:?}",
            String::from_utf8_lossy(&body)
        )
    })?;
    if status.is_client_error() {
        return match json["error"].as_str() {
            Some(message) if !message.is_empty() => Ok(status.as_u16()),
            _ => Err(format!("{status} without an error message: {json}")),
        };
    }
    if !status.is_success() {
        return Err(format!("{status}: {json}"));
    }
    let acted = json["decisions"]
        .as_array()
        .ok_or_else(|| format!("2xx without decisions: {json}"))?
        .iter()
        .find(|d| {
            d.get("action_id").is_some() || d["decision"] == "executed" || d["decision"] == "queued"
        });
    match acted {
        Some(decision) => Err(format!("a decision acted: {decision}")),
        None => Ok(status.as_u16()),
    }
}

async fn still_serves(client: &reqwest::Client, process: &Process) {
    let healthy = client
        .get(format!("{}/-/healthy", process.address))
        .send()
        .await
        .expect("still answers");
    assert!(healthy.status().is_success());
}
