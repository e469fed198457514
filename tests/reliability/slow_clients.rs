//! 200 connections that trickle their bytes (a third send nothing, a third drip the head, a third
//! drip the body) are all closed by `limits.request_timeout`, while a legitimate client keeps
//! getting answers throughout.

use crate::common::process::Instance;
use crate::common::{alert_payload, require_docker, TOKEN};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW_CLIENTS: usize = 200;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const DRIP_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug)]
enum Drip {
    Nothing,
    Head,
    Body,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_connections_are_closed_while_a_legitimate_stream_is_served() {
    require_docker();
    let _turn = crate::one_at_a_time().await;
    let instance = Instance::new();
    let process = instance
        .start_with(
            "",
            &Instance::test_rules(),
            &[
                ("limits", "request_timeout = \"2s\""),
                ("limits", "requests_per_second_per_client = 100000"),
            ],
        )
        .await;
    let port = process.port;
    let slow: Vec<_> = (0..SLOW_CLIENTS)
        .map(|i| {
            let drip = [Drip::Nothing, Drip::Head, Drip::Body][i % 3];
            tokio::spawn(trickle(port, drip))
        })
        .collect();

    let address = process.address.clone();
    let legit =
        tokio::spawn(async move { legitimate_stream(&address, Duration::from_secs(6)).await });

    let mut closed_after = Vec::new();
    let mut slowest_by_drip = std::collections::BTreeMap::new();
    for handle in slow {
        let (drip, result) = handle.await.unwrap();
        match result {
            Ok(elapsed) => {
                closed_after.push(elapsed);
                let slowest = slowest_by_drip
                    .entry(format!("{drip:?}"))
                    .or_insert(elapsed);
                *slowest = (*slowest).max(elapsed);
            }
            Err(e) => panic!("{drip:?} connection: {e}"),
        }
    }
    let (served, worst) = legit.await.unwrap();
    let slowest = closed_after.iter().max().unwrap();
    println!(
        "slow clients: {} closed, slowest after {:.2} s ({slowest_by_drip:?}); legitimate \
         stream: {served} answers, worst {:.0} ms",
        closed_after.len(),
        slowest.as_secs_f64(),
        worst.as_secs_f64() * 1000.0
    );
    assert_eq!(closed_after.len(), SLOW_CLIENTS);
    assert!(
        *slowest < REQUEST_TIMEOUT * 3,
        "a trickling connection stayed open {slowest:?}"
    );
    assert!(
        served >= 20,
        "the legitimate stream was starved: {served} answers"
    );
}

/// Open a connection and drip bytes until the server closes it; the time it stayed open.
async fn trickle(port: u16, drip: Drip) -> (Drip, Result<Duration, String>) {
    let started = Instant::now();
    let result = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let body = serde_json::to_vec(&alert_payload("TestHighCPU", "slow-absent")).unwrap();
        let head = format!(
            "POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let bytes: Vec<u8> = match drip {
            Drip::Nothing => Vec::new(),
            Drip::Head => head.into_bytes(),
            Drip::Body => {
                stream
                    .write_all(head.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                body
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut next = bytes.iter();
        let mut buf = [0u8; 4096];
        loop {
            if Instant::now() > deadline {
                return Err("still open after 30 s".to_string());
            }
            // Closed: a read returns EOF (after any 408 answer) or the connection is reset.
            match tokio::time::timeout(DRIP_EVERY, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Ok(started.elapsed()),
                Ok(Ok(_)) => continue,
                Err(_) => {}
            }
            if let Some(byte) = next.next() {
                if stream.write_all(&[*byte]).await.is_err() {
                    return Ok(started.elapsed());
                }
            }
        }
    }
    .await;
    (drip, result)
}

/// Post a valid webhook every 50 ms for `length`; how many were answered and the slowest answer.
/// Any failed or non-200 answer fails the test.
async fn legitimate_stream(address: &str, length: Duration) -> (usize, Duration) {
    let client = reqwest::Client::new();
    let payload = alert_payload("TestHighCPU", "legit-absent");
    let end = Instant::now() + length;
    let (mut served, mut worst) = (0, Duration::ZERO);
    while Instant::now() < end {
        let sent = Instant::now();
        let response = client
            .post(format!("{address}/webhook"))
            .bearer_auth(TOKEN)
            .json(&payload)
            .send()
            .await
            .expect("legitimate request answered");
        assert_eq!(response.status(), 200, "legitimate request refused");
        worst = worst.max(sent.elapsed());
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (served, worst)
}
