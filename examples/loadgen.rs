//! An open-loop load generator for `/webhook`: sends at a fixed rate whatever the latency (so a
//! slow server cannot hide its queueing, unlike a closed loop), and reports latency percentiles
//! measured from each request's scheduled send time. Loopback only; bounded in count and time.
//!
//! cargo run --release --example loadgen -- --url http://127.0.0.1:19000/webhook \
//!     --body payload.json --token T --rate 5000 --seconds 10

use clap::Parser;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    /// A JSON body to POST.
    #[arg(long)]
    body: std::path::PathBuf,
    #[arg(long, default_value = "")]
    token: String,
    /// Requests per second.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// At most this many requests in flight; past it a send counts as an error (overload).
    #[arg(long, default_value_t = 2000)]
    max_in_flight: usize,
    /// Open this many connections (GET /-/healthy, all at once) before the timed run, as a
    /// long-running sender such as Alertmanager has them open already.
    #[arg(long, default_value_t = 0)]
    warm_connections: usize,
    /// Also print, per second of the run, the slowest answer and the errors (to stderr).
    #[arg(long)]
    timeline: bool,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    /// Per second of schedule: (slowest answer in µs, errors).
    seconds: std::collections::BTreeMap<u64, (u64, u64)>,
    statuses: std::collections::BTreeMap<u16, u64>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    assert!(
        args.url.starts_with("http://127.") || args.url.starts_with("http://localhost"),
        "loopback only"
    );
    let body = bytes_of(&args.body);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.max_in_flight)
        .build()
        .unwrap();
    warm(&client, &args.url, args.warm_connections).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let slots = Arc::new(Semaphore::new(args.max_in_flight));
    let total = u64::from(args.rate) * args.seconds;
    let period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let second = scheduled.duration_since(start).as_secs();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            let mut t = tally.lock().await;
            t.errors += 1;
            t.seconds.entry(second).or_default().1 += 1;
            continue;
        };
        let (client, tally, body) = (client.clone(), tally.clone(), body.clone());
        let (url, token) = (args.url.clone(), args.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut request = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if !token.is_empty() {
                request = request.bearer_auth(&token);
            }
            let result = request.send().await;
            let took = scheduled.elapsed().as_micros() as u64;
            let mut t = tally.lock().await;
            let slot = t.seconds.entry(second).or_default();
            slot.0 = slot.0.max(took);
            match result {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    *t.statuses.entry(status).or_default() += 1;
                    if status >= 500 {
                        t.errors += 1;
                    }
                    t.latencies_us.push(took);
                }
                Err(_) => t.errors += 1,
            }
            drop(permit);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut t = tally.lock().await;
    t.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if t.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((t.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        t.latencies_us[i] as f64 / 1000.0
    };
    let (p50, p90, p99, max) = (pct(0.50), pct(0.90), pct(0.99), pct(1.0));
    let done = t.latencies_us.len();
    let statuses: serde_json::Map<String, serde_json::Value> = t
        .statuses
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    let report = serde_json::json!({
        "rate": args.rate, "sent": total, "completed": done, "errors": t.errors,
        "achieved_rps": (done as f64 / elapsed).round(),
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max, "statuses": statuses,
    });
    println!("{report}");
    if args.timeline {
        for (second, (slowest, errors)) in &t.seconds {
            eprintln!(
                "second {second}: slowest {:.1} ms, {errors} errors",
                *slowest as f64 / 1000.0
            );
        }
    }
}

async fn warm(client: &reqwest::Client, url: &str, connections: usize) {
    let Some((base, _)) = url.rsplit_once('/') else {
        return;
    };
    let health = format!("{base}/-/healthy");
    let requests = (0..connections).map(|_| client.get(&health).send());
    for result in futures_util::future::join_all(requests).await {
        let _ = result.map(|r| r.status());
    }
}

fn bytes_of(path: &std::path::Path) -> actix_web::web::Bytes {
    actix_web::web::Bytes::from(std::fs::read(path).expect("body file"))
}
