//! Target tracking with `query:`: the value asked of a real Prometheus (Debian's, its storage
//! written by the test) at decision time, the service put in the query as a label value; every
//! answer that is not one usable number is a refusal that touches nothing.

use crate::common::prometheus::{gauge_openmetrics, BackfilledPrometheus};
use crate::common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// One rule per way the answer can go, each on its own alert name.
fn rules() -> String {
    let rule = |alert: &str, query: &str| {
        format!(
            r#"
  - name: {alert}
    match: ['alertname="{alert}"']
    action: scale_to_target
    target: 0.6
    query: '{query}'
    min_replicas: 1
    max_replicas: 10
    cooldown: 1m
"#
        )
    };
    [
        rule("TestQueryAvg", r#"avg(test_load{service="$service"})"#),
        rule("TestQueryTwoSeries", r#"test_load{service="$service"}"#),
        rule("TestQueryNaN", r#"avg(test_nan{service="$service"})"#),
        rule(
            "TestQueryNoSeries",
            r#"avg(test_absent{service="$service"})"#,
        ),
        rule(
            "TestQueryError",
            r#"avg(test_load{service="$service"}) / on (x) group_left () test_load"#,
        ),
    ]
    .iter()
    .fold(String::from("rules:"), |all, r| all + r)
}

/// The service's two tasks at 1.6 and 2.0 (1.8 on average, ×3 the target) and a NaN series.
async fn prometheus_for(service: &str) -> BackfilledPrometheus {
    let task = |n: u32| format!(r#"service="{service}",task="{service}.{n}""#);
    let load = gauge_openmetrics("test_load", &[(&task(1), "1.6"), (&task(2), "2.0")]);
    let nan = gauge_openmetrics("test_nan", &[(&task(1), "NaN")]);
    // One file: two `# EOF`s are not OpenMetrics.
    let text = load.replace("# EOF\n", "") + &nan;
    BackfilledPrometheus::start(&text).await
}

fn fire(service: &str, alert: &str) -> Value {
    alert_payload_fp(alert, service, &format!("fp-{alert}"))
}

#[tokio::test]
async fn the_value_is_asked_of_prometheus_when_the_decision_is_made() {
    let svc = TestService::opted_in("tquery", 2).await;
    let prometheus = prometheus_for(&svc.name).await;
    let url = prometheus.url.clone();
    let app = AppSetup::default()
        .extra_rules(rules())
        .spawn(|s| s.prometheus.url = url)
        .await;
    let version = svc.version();

    // Every answer that is not one number: refused, nothing sent to Docker.
    for (alert, reason) in [
        (
            "TestQueryTwoSeries",
            "the query for {svc} returned 2 series, not one: aggregate it (avg, sum, max …)",
        ),
        (
            "TestQueryNaN",
            "the query's value = \"NaN\" is not a finite number",
        ),
        (
            "TestQueryNoSeries",
            "the query for {svc} returned no series: nothing to scale on (is the service scraped?)",
        ),
    ] {
        let answer = app.fire_payload(&fire(&svc.name, alert)).await;
        let answer = only(&answer);
        assert_eq!(answer["decision"], "refused", "{answer}");
        assert_eq!(
            answer["reason"],
            reason.replace("{svc}", &svc.name),
            "{alert}"
        );
    }
    // Prometheus' own error (a many-to-one match it refuses) is the reason.
    let error = app.fire_payload(&fire(&svc.name, "TestQueryError")).await;
    let error = only(&error);
    assert_eq!(error["decision"], "refused", "{error}");
    let reason = error["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "the query for {} failed: prometheus {}/api/v1/query answered 4",
            svc.name, prometheus.url
        )),
        "{reason}"
    );
    assert_eq!(svc.version(), version, "no refusal touched the service");
    assert!(app.journal().is_empty(), "a refusal journals nothing");

    // One number, 1.8 per replica at 2 replicas against 0.6: one update straight to 6.
    let up = app.fire_payload(&fire(&svc.name, "TestQueryAvg")).await;
    let up = only(&up);
    assert_eq!(up["decision"], "executed", "{up}");
    assert_eq!(up["change"], "replicas 2→6");
    assert_eq!(up["reason"], "value 1.8 vs target 0.6 (×3), tolerance 0.1");
    assert_eq!(svc.desired_replicas(), 6);
    let intent = app
        .journal()
        .into_iter()
        .find(|l| l["type"] == "intent")
        .unwrap();
    let tracking = &intent["action"];
    assert_eq!(tracking["value_from"]["from"], "query");
    assert_eq!(
        tracking["value_from"]["query"],
        r#"avg(test_load{service="$service"})"#
    );
    assert_eq!(tracking["reading"]["value"], 1.8);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("swarmpilot_target_query_duration_seconds_count{result=\"ok\"} 4"),
        "three refused answers and one used were answers; the error was not:\n{metrics}"
    );
}

/// A Prometheus that accepts and never answers: the decision waits query_timeout, then refuses.
#[tokio::test]
async fn a_prometheus_that_does_not_answer_is_a_refusal_after_the_query_timeout() {
    let svc = TestService::opted_in("tqslow", 2).await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let configured = url.clone();
    let app = AppSetup::default()
        .extra_rules(rules())
        .spawn(|s| {
            s.prometheus.url = configured;
            s.prometheus.query_timeout = Duration::from_secs(1);
        })
        .await;
    let started = Instant::now();
    let answer = app.fire_payload(&fire(&svc.name, "TestQueryAvg")).await;
    let took = started.elapsed();
    let answer = only(&answer);
    assert_eq!(answer["decision"], "refused", "{answer}");
    assert_eq!(
        answer["reason"],
        format!(
            "the query for {} failed: prometheus {url}/api/v1/query: no answer within 1s",
            svc.name
        )
    );
    assert!(
        took >= Duration::from_secs(1),
        "waited for the timeout: {took:?}"
    );
    assert_eq!(svc.desired_replicas(), 2);
    drop(silent);
}
