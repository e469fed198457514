//! swarmpilot highly available on a real multi-node swarm: the test bed of scripts/multinode.sh
//! (3 managers + 1 worker, each its own dockerd in its own network namespace), the image built
//! here and loaded on every node, the shipped stack deployed with the bed's override. Requests go
//! to the replicas from inside the bed (its switch namespace), never elsewhere.

#[allow(dead_code)]
mod common;

use common::multinode::{bed, leftover_pid, AlertmanagerPair, BedStack, StackSetup};

#[tokio::test]
async fn two_replicas_run_healthy_on_two_managers_and_each_answers_from_the_bed() {
    let _turn = BED_TURN.read().await;
    let stack = BedStack::deploy("smoke", StackSetup::default());
    let replicas = stack.wait_healthy(2).await;

    let mut nodes: Vec<&str> = replicas.iter().map(|r| r.node.name.as_str()).collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 2, "one replica per node: {replicas:?}");
    assert!(
        replicas.iter().all(|r| r.node.manager),
        "replicas only on managers: {replicas:?}"
    );
    let bed = bed();
    for replica in &replicas {
        let reply = bed
            .get(&format!("{}/-/healthy", replica.url))
            .unwrap_or_else(|e| panic!("{}: {e}", replica.node.name));
        assert_eq!(reply.status, 200, "{}: {}", replica.node.name, reply.body);
        assert_eq!(reply.json()["status"], "healthy");
        // Each replica reaches an engine through its node's socket.
        let ready = bed.get(&format!("{}/-/ready", replica.url)).unwrap();
        assert_eq!(ready.status, 200, "{}: {}", replica.node.name, ready.body);
        assert_eq!(ready.json()["docker"], "up");
    }
    // The Alertmanager pair the cluster tests use: in the bed, gossiping, one replica each.
    let pair =
        AlertmanagerPair::start(bed, [&replicas[0].url, &replicas[1].url], &stack.token).await;
    common::wait_for(
        || pair.first.peers(bed) == 2 && pair.second.peers(bed) == 2,
        "the Alertmanager pair formed a cluster",
    )
    .await;
    drop(pair);

    let service = stack.service();
    stack.remove().await;
    assert!(
        bed.swarm_docker(&["service", "inspect", &service]).is_err(),
        "{service} still exists"
    );
}

#[test]
fn the_traffic_rule_allows_loopback_and_the_bed_only() {
    let bed = bed();
    for allowed in [
        format!("http://{}:9095/-/healthy", bed.node("1").addr),
        format!("{}:9093", bed.switch_addr),
        "http://127.0.0.1:9095/".to_string(),
        "[::1]:80".to_string(),
    ] {
        bed.assert_in_bed(&allowed);
    }
    // An overlay task address, the host's own network, a public address, a name: all refused.
    for refused in [
        "http://10.0.0.7:9095/webhook",
        "http://192.0.2.2:9095/",
        "8.8.8.8:53",
        "http://swarmpilot:9095/webhook",
    ] {
        assert!(
            bed.check_in_bed(refused).is_err(),
            "{refused} passed the traffic rule"
        );
    }
}

#[test]
fn leftovers_are_known_by_the_pid_in_their_name() {
    assert_eq!(leftover_pid("sptest_smoke_4242_0"), Some(4242));
    assert_eq!(leftover_pid("sptest_two_words_4242_3_token"), Some(4242));
    assert_eq!(leftover_pid("sptest_smoke_4242_0_journal"), Some(4242));
    assert_eq!(leftover_pid("monitoring_prometheus"), None);
    assert_eq!(leftover_pid("sptest_nopid"), None);
}

// ---- cluster mode's guarantees on the bed ------------------------------------------------------

use common::multinode::{BedService, Replica};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The leader-kill test takes the bed for itself (an election disturbs every other test); the
/// others share it.
static BED_TURN: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

const BED_RULES: &str = r#"
rules:
  - name: bed-scale-up
    match: ['alertname=~"BedLoad.*"']
    action: scale_up
    step: 1
    max_replicas: 5
    cooldown: 1h
  - name: bed-rollback
    match: ['alertname="BedBadRollout"']
    action: rollback
    cooldown: 1m
"#;

/// The shipped config with this test's budget register (unique: tests share the bed) and extra
/// settings.
fn bed_setup(register: &str, extra: &str, replicas: u64) -> StackSetup {
    let mut setup = StackSetup::default().only_rules(BED_RULES);
    setup.config = format!(
        "{}\n[cluster]\nregister_service = \"{register}\"\n{extra}\n",
        setup.config
    );
    setup.replicas = replicas;
    setup
}

/// The register service a test's replicas create, removed at the end.
struct BedRegister(String);

impl BedRegister {
    fn new() -> Self {
        Self(common::TestService::unique_name("register"))
    }
}

impl Drop for BedRegister {
    fn drop(&mut self) {
        let _ = bed().swarm_docker(&["service", "rm", &self.0]);
    }
}

/// Alertmanager API v2 alerts: one per (service, alertname), firing for an hour.
fn alerts(services: &[BedService], per_service: usize) -> Value {
    let now = std::time::SystemTime::now();
    let at = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let ends = now + Duration::from_secs(3600);
    let list: Vec<Value> = services
        .iter()
        .flat_map(|svc| {
            (0..per_service).map(move |k| {
                json!({
                    "labels": {"alertname": format!("BedLoad{k}"), "service": svc.name, "severity": "warning"},
                    "annotations": {"summary": "bed storm"},
                    "startsAt": at(now),
                    "endsAt": at(ends),
                })
            })
        })
        .collect();
    Value::Array(list)
}

/// A notification of one firing `BedLoad0` alert about `service`, posted straight to a replica.
fn one_alert(service: &str, fingerprint: &str) -> Value {
    json!({"version": "4", "status": "firing", "receiver": "swarmpilot", "groupKey": "direct",
        "alerts": [{"status": "firing", "labels": {"alertname": "BedLoad0", "service": service},
                    "annotations": {}, "startsAt": "2026-12-02T00:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fingerprint}]})
}

/// Wait until `done` holds, or fail after `within` with `what`.
async fn until(within: Duration, what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done() {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How many actions the service's own budget log holds (one per landed action).
fn actions_on(svc: &BedService) -> usize {
    svc.label("swarmpilot.actions")
        .split(',')
        .filter(|t| !t.is_empty())
        .count()
}

/// Every succeeded outcome in the journals of `nodes`, by service: nothing may act twice.
fn succeeded_per_service(
    stack: &BedStack,
    nodes: &[&str],
) -> std::collections::HashMap<String, usize> {
    let mut by_service = std::collections::HashMap::new();
    for node in nodes {
        let journal = stack.journal_on(node);
        for outcome in journal
            .iter()
            .filter(|l| l["type"] == "outcome" && l["outcome"] == "succeeded")
        {
            let intent = journal
                .iter()
                .find(|l| l["type"] == "intent" && l["id"] == outcome["id"])
                .expect("every outcome has its intent");
            *by_service
                .entry(intent["service"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    by_service
}

#[tokio::test]
async fn a_storm_through_the_alertmanager_pair_acts_once_per_service_within_the_clusters_budget() {
    let _turn = BED_TURN.read().await;
    let register = BedRegister::new();
    // 20 services, 10 alert names each: 200 groups (the shipped route groups by alertname and
    // service). The budget lets 15 act: per replica it would let all 20.
    let stack = BedStack::deploy(
        "storm",
        bed_setup(&register.0, "[limits]\nactions_per_minute = 15\n", 2),
    );
    let services: Vec<BedService> = (0..20)
        .map(|_| BedService::opted_in_unscheduled("storm", 1))
        .collect();
    let replicas = stack.wait_healthy(2).await;
    let bed = bed();
    let pair =
        AlertmanagerPair::start(bed, [&replicas[0].url, &replicas[1].url], &stack.token).await;
    pair.post_alerts(bed, &alerts(&services, 10));

    let scaled = || {
        services
            .iter()
            .filter(|s| s.desired_replicas() == 2)
            .count()
    };
    let took = until(Duration::from_secs(90), "15 services scaled", || {
        scaled() == 15
    })
    .await;
    figure(
        "storm",
        &format!("200 groups through the Alertmanager pair, budget 15/min → 15 actions in {took:.1?} (incl. group_wait 10 s)"),
    );
    // Alertmanager's retries and the second Alertmanager's deliveries change nothing more.
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(scaled(), 15, "the cluster's budget, not each replica's");
    for svc in &services {
        assert!(svc.desired_replicas() <= 2, "{} scaled twice", svc.name);
        assert!(
            actions_on(svc) <= 1,
            "{}: {}",
            svc.name,
            svc.label("swarmpilot.actions")
        );
    }
    let nodes: Vec<&str> = replicas.iter().map(|r| r.node.name.as_str()).collect();
    let succeeded = succeeded_per_service(&stack, &nodes);
    assert_eq!(succeeded.values().sum::<usize>(), 15, "{succeeded:?}");
    assert!(succeeded.values().all(|&n| n == 1), "{succeeded:?}");
    drop(pair);
    stack.remove().await;
}

#[tokio::test]
async fn a_replica_killed_mid_storm_loses_nothing_it_acknowledged_and_nothing_is_doubled() {
    let _turn = BED_TURN.read().await;
    let register = BedRegister::new();
    let stack = BedStack::deploy("kill", bed_setup(&register.0, "", 2));
    let services: Vec<BedService> = (0..20)
        .map(|_| BedService::opted_in_unscheduled("kill", 1))
        .collect();
    let replicas = stack.wait_healthy(2).await;
    let bed = bed();
    let pair =
        AlertmanagerPair::start(bed, [&replicas[0].url, &replicas[1].url], &stack.token).await;
    pair.post_alerts(bed, &alerts(&services, 10));

    // One `service ls` per look (not one inspect per service), so the kill comes within a
    // fraction of a second of the first action, while the storm is still being acted on.
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let scaled = || desired_at_least(bed, &names, 2);
    let victim = &replicas[0].node.name;
    let container = stack.container_on(victim).expect("the replica's container");
    let started = Instant::now();
    while scaled() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the storm never started acting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bed.docker(victim, &["kill", "--signal", "KILL", &container])
        .unwrap_or_else(|e| panic!("kill -9 {container}: {e}"));
    let acted_before = scaled();
    assert!(
        acted_before < 20,
        "the kill came after the storm, not in it: {acted_before} of 20 had acted"
    );

    // What the dead replica had not answered comes back through Alertmanager: from the second
    // one of the pair, from the first's retries once Swarm restarted the replica, or at the
    // next group_interval (1m): up to a few minutes, never lost and never twice.
    let took = until(Duration::from_secs(240), "every service acted on", || {
        scaled() == 20
    })
    .await;
    figure(
        "replica kill",
        &format!("kill -9 of a replica after {acted_before} of 20 services acted → all 20 acted {took:.1?} later, each once"),
    );
    tokio::time::sleep(Duration::from_secs(15)).await;
    for svc in &services {
        assert_eq!(svc.desired_replicas(), 2, "{}: once, not twice", svc.name);
        assert_eq!(actions_on(svc), 1, "{}", svc.name);
    }
    let nodes: Vec<&str> = bed.managers().map(|n| n.name.as_str()).collect();
    let succeeded = succeeded_per_service(&stack, &nodes);
    assert!(
        succeeded.values().all(|&n| n == 1),
        "doubled: {succeeded:?}"
    );
    drop(pair);
    stack.remove().await;
}

/// How many of `names` have at least `replicas` desired, in one `docker service ls`; none while
/// no manager answers (an election).
fn desired_at_least(bed: &common::multinode::Bed, names: &[&str], replicas: u64) -> usize {
    let listing = bed
        .swarm_docker(&["service", "ls", "--format", "{{.Name}} {{.Replicas}}"])
        .unwrap_or_default();
    listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(name, _)| names.contains(name))
        .filter_map(|(_, running_of)| {
            running_of
                .split('/')
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .filter(|&desired| desired >= replicas)
        .count()
}

/// Starts a killed node again when the test ends, pass or fail: the bed outlives the test.
struct Revive(&'static str);

impl Drop for Revive {
    fn drop(&mut self) {
        bed().start(self.0);
    }
}

fn current_leader() -> String {
    bed()
        .swarm_docker(&["node", "ls", "--format", "{{.Hostname}} {{.ManagerStatus}}"])
        .unwrap()
        .lines()
        .find_map(|l| l.strip_suffix(" Leader").map(String::from))
        .expect("a leader")
}

#[tokio::test]
async fn killing_the_leaders_engine_mid_delivery_ends_every_alert_once_without_it() {
    let _turn = BED_TURN.write().await;
    let register = BedRegister::new();
    // One replica per manager, so one sits on the leader's node.
    let stack = BedStack::deploy("leader", bed_setup(&register.0, "", 3));
    let services: Vec<BedService> = (0..10)
        .map(|_| BedService::opted_in_unscheduled("leader", 1))
        .collect();
    let replicas = stack.wait_healthy(3).await;
    let bed = bed();
    let leader = current_leader();
    let on_leader: &Replica = replicas.iter().find(|r| r.node.name == leader).unwrap();
    let elsewhere: &Replica = replicas.iter().find(|r| r.node.name != leader).unwrap();
    // The first Alertmanager delivers to the replica whose engine is about to die.
    let pair = AlertmanagerPair::start(bed, [&on_leader.url, &elsewhere.url], &stack.token).await;
    let dead: &'static str = bed.node(&leader).name.clone().leak();

    let killed = Instant::now();
    bed.kill(dead);
    let _revive = Revive(dead);
    pair.post_alerts(bed, &alerts(&services, 1));
    // The replica without an engine never says it acted: a retry, every time.
    let payload = one_alert(&services[0].name, "direct-1");
    let answer = stack.post_webhook(on_leader, "", &payload);
    assert_eq!(answer.status, 503, "{}", answer.body);

    // During the election no manager answers: not scaled yet, as far as anyone can tell.
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let scaled = || desired_at_least(bed, &names, 2);
    until(
        Duration::from_secs(150),
        "every alert acted on after the election",
        || scaled() == services.len(),
    )
    .await;
    let last_action = killed.elapsed();
    figure(
        "leader kill",
        &format!(
            "kill -9 of the leader's dockerd ({dead} → new leader {}), 10 alerts during the election → last action {last_action:.1?} after the kill, each once",
            current_leader()
        ),
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    for svc in &services {
        assert_eq!(svc.desired_replicas(), 2, "{}: exactly once", svc.name);
    }
    let again = stack.post_webhook(on_leader, "", &payload);
    assert_eq!(
        again.status, 503,
        "still no engine, still no lie: {}",
        again.body
    );
    drop(pair);
    drop(_revive);
    stack.remove().await;
}

#[tokio::test]
async fn what_one_replica_did_the_others_know_even_one_on_a_fresh_node() {
    let _turn = BED_TURN.read().await;
    let register = BedRegister::new();
    let stack = BedStack::deploy("fresh", bed_setup(&register.0, "", 2));
    let svc = BedService::opted_in_unscheduled("fresh", 1);
    let replicas = stack.wait_healthy(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let post = |replica: &Replica, fingerprint: &str| {
        let payload = one_alert(&svc.name, fingerprint);
        let reply = stack.post_webhook(replica, "", &payload);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["decisions"][0].clone()
    };
    assert_eq!(post(a, "f-1")["decision"], "executed");
    // The same delivery later at the other replica (a retry, the HA peer 15 s later).
    assert_eq!(post(b, "f-1")["decision"], "duplicate");
    assert_eq!(post(b, "f-2")["decision"], "cooldown");
    assert_eq!(svc.desired_replicas(), 2, "1→2, not 1→2→3");

    // A third replica on the manager that had none: an empty disk, and it knows the cooldown.
    let bed = bed();
    bed.swarm_docker(&[
        "service",
        "scale",
        "--detach",
        &format!("{}=3", stack.service()),
    ])
    .unwrap();
    let all = stack.wait_healthy(3).await;
    let fresh = all
        .iter()
        .find(|r| r.node.name != a.node.name && r.node.name != b.node.name)
        .unwrap();
    assert!(
        stack.journal_on(&fresh.node.name).is_empty(),
        "a fresh node's journal"
    );
    let there = post(fresh, "f-3");
    assert_eq!(there["decision"], "cooldown", "{there}");
    assert_eq!(svc.desired_replicas(), 2);
    stack.remove().await;
}

const ROLLBACK_RULES: &str = r#"
rules:
  - name: bed-scale-up
    match: ['alertname="BedLoad0"']
    action: scale_up
    step: 1
    max_replicas: 3
    cooldown: 0s
  - name: bed-rollback
    match: ['alertname="BedBadRollout"']
    action: rollback
    cooldown: 0s
"#;

/// Makes a drained node active again when the test ends, pass or fail.
struct Undrain(String);

impl Drop for Undrain {
    fn drop(&mut self) {
        let _ = bed().swarm_docker(&["node", "update", "--availability", "active", &self.0]);
    }
}

#[tokio::test]
async fn rollback_history_holds_across_replicas_and_after_a_replica_moves() {
    // Draining a manager moves other tests' tasks too: the bed is this test's alone.
    let _turn = BED_TURN.write().await;
    let register = BedRegister::new();
    let mut setup = bed_setup(&register.0, "", 2);
    setup.scaling_rules = ROLLBACK_RULES.into();
    let stack = BedStack::deploy("rollback", setup);
    let svc = BedService::opted_in("rollback", 1, &["--env", "V=1"]).await;
    let replicas = stack.wait_healthy(2).await;
    let (a, b) = (&replicas[0], &replicas[1]);
    let env = || svc.inspect("{{json .Spec.TaskTemplate.ContainerSpec.Env}}");
    let post = |replica: &Replica, alertname: &str, fingerprint: &str| {
        let mut payload = one_alert(&svc.name, fingerprint);
        payload["alerts"][0]["labels"]["alertname"] = alertname.into();
        let reply = stack.post_webhook(replica, "", &payload);
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["decisions"][0].clone()
    };

    // a acts on v1 (and keeps it for the cluster); then v2 rolls out, and a scale after it makes
    // Swarm's own PreviousSpec v2 as well.
    assert_eq!(post(a, "BedLoad0", "rb-1")["decision"], "executed");
    bed()
        .swarm_docker(&[
            "service",
            "update",
            "--detach=false",
            "--env-add",
            "V=2",
            &svc.name,
        ])
        .unwrap();
    assert!(env().contains("V=2"), "{}", env());
    assert_eq!(post(a, "BedLoad0", "rb-2")["decision"], "executed");

    // a's node is drained: its replica moves to the manager that had none (an empty disk).
    let moved_from = a.node.name.clone();
    bed()
        .swarm_docker(&["node", "update", "--availability", "drain", &moved_from])
        .unwrap();
    let _undrain = Undrain(moved_from.clone());
    let mut moved = None;
    until(Duration::from_secs(120), "a's replica moved", || {
        let tasks = stack.tasks();
        let running: Vec<&String> = tasks
            .iter()
            .filter(|(_, state)| state.starts_with("Running"))
            .map(|(node, _)| node)
            .collect();
        moved = running
            .iter()
            .find(|n| ***n != moved_from && ***n != b.node.name)
            .filter(|n| running.len() == 2 && stack.healthy_on(n))
            .map(|n| n.to_string());
        moved.is_some()
    })
    .await;
    let fresh = stack
        .wait_healthy(2)
        .await
        .into_iter()
        .find(|r| Some(&r.node.name) == moved.as_ref())
        .expect("the moved replica");
    assert!(
        stack.journal_on(&fresh.node.name).is_empty(),
        "a fresh node's journal"
    );

    // The moved replica never saw v1, and Swarm's PreviousSpec is v2: the cluster's history.
    let back = post(&fresh, "BedBadRollout", "rb-3");
    assert_eq!(back["decision"], "executed", "{back}");
    assert!(
        env().contains("V=1") && !env().contains("V=2"),
        "v1 is back: {}",
        env()
    );
    assert!(!svc.label("swarmpilot.rolled_back_from").is_empty());
    // b, which saw neither template, never rolls forward to the one rolled back from.
    let again = post(b, "BedBadRollout", "rb-4");
    assert_eq!(again["decision"], "refused", "{again}");
    assert!(env().contains("V=1"), "{}", env());

    let kept = bed()
        .swarm_docker(&[
            "config",
            "ls",
            "--quiet",
            "--filter",
            &format!("label=swarmpilot.template.service={}", svc.name),
        ])
        .unwrap();
    assert_eq!(kept.lines().count(), 2, "v1 and v2 kept as configs: {kept}");
    for id in kept.lines() {
        let _ = bed().swarm_docker(&["config", "rm", id]);
    }
    drop(_undrain);
    stack.remove().await;
}

// ---- figures for bench/cluster.sh --------------------------------------------------------------

/// A figure for bench/cluster.sh, which collects these lines into bench/cluster-results.md.
fn figure(name: &str, text: &str) {
    eprintln!("FIGURE {name}: {text}");
}

const ADMISSION_RULES: &str = r#"
rules:
  - name: admission-up
    match: ['alertname="AdmissionUp"']
    action: scale_up
    step: 1
    max_replicas: 2
    cooldown: 0s
  - name: admission-down
    match: ['alertname="AdmissionDown"']
    action: scale_down
    step: 1
    min_replicas: 1
    cooldown: 0s
"#;

/// p50 and p99 (nearest rank) in milliseconds.
fn percentiles_ms(mut took: Vec<Duration>) -> (f64, f64) {
    took.sort();
    let at = |q: f64| {
        let rank = ((took.len() - 1) as f64 * q).round() as usize;
        took[rank].as_secs_f64() * 1000.0
    };
    (at(0.5), at(0.99))
}

/// Admitted actions, alternately up (1→2) and down (2→1) on one unscheduled service, each
/// answered before the next is sent; the answers' times as curl measured them, by the
/// webhook's query ("" or "?wait=true").
async fn admission_times(
    stack: &BedStack,
    replicas: &[Replica],
    rounds: usize,
) -> Vec<Vec<Duration>> {
    let svc = BedService::opted_in_unscheduled("admission", 1);
    let mut times = vec![Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (query, times) in ["", "?wait=true"].iter().zip(times.iter_mut()) {
            for (alertname, replicas_after) in [("AdmissionUp", 2), ("AdmissionDown", 1)] {
                let replica = &replicas[round % replicas.len()];
                let fingerprint = format!("{alertname}-{round}-{}", query.len());
                let payload = json!({"version": "4", "status": "firing", "receiver": "swarmpilot",
                    "groupKey": "admission", "alerts": [{"status": "firing",
                    "labels": {"alertname": alertname, "service": svc.name}, "annotations": {},
                    "startsAt": "2026-12-02T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "fingerprint": fingerprint}]});
                let reply = stack.post_webhook(replica, query, &payload);
                assert_eq!(reply.status, 200, "{}", reply.body);
                // Local mode answers `queued` once the intent is journaled, cluster mode
                // `executed` once the update landed; with ?wait=true both once it returned.
                let decision = reply.json()["decisions"][0]["decision"].clone();
                let admitted: &[&str] = if query.is_empty() {
                    &["queued", "executed"]
                } else {
                    &["executed"]
                };
                assert!(admitted.iter().any(|d| decision == *d), "{}", reply.body);
                // Local mode answers before it acts: the next alert waits for this one's update.
                until(Duration::from_secs(20), "the update landed", || {
                    svc.desired_replicas() == replicas_after
                })
                .await;
                if round > 0 {
                    // The first round warms connections and caches up.
                    times.push(reply.took);
                }
            }
        }
    }
    times
}

/// Issue 13 §6: what cluster mode adds to an admitted action on the bed, against local mode
/// (one replica, as deployed before cluster mode), with the budgets on (cluster mode then
/// writes the register per action).
#[tokio::test]
#[ignore = "a measurement, not a check: bench/cluster.sh runs it"]
async fn admission_cost_cluster_vs_local() {
    let _turn = BED_TURN.write().await;
    let rounds: usize = std::env::var("SP_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(31);
    let limits = "[limits]\nactions_per_minute = 10000\nactions_per_service_per_hour = 10000\n";
    for (mode, cluster, replicas) in [("local", false, 1), ("cluster", true, 2)] {
        let register = BedRegister::new();
        let mut setup = StackSetup::default().only_rules(ADMISSION_RULES);
        setup.config = format!(
            "{}\n{limits}\n[cluster]\nregister_service = \"{}\"\n",
            setup.config, register.0
        );
        setup.cluster = cluster;
        setup.replicas = replicas;
        let stack = BedStack::deploy(&format!("adm{mode}"), setup);
        let running = stack.wait_healthy(replicas as usize).await;
        let times = admission_times(&stack, &running, rounds).await;
        for (what, took) in [
            "answer (what Alertmanager waits for)",
            "answer with ?wait=true (update returned)",
        ]
        .iter()
        .zip(times)
        {
            let n = took.len();
            let (p50, p99) = percentiles_ms(took);
            figure(
                &format!("admission {mode}"),
                &format!("{what}: p50 {p50:.1} ms, p99 {p99:.1} ms, n={n}"),
            );
        }
        stack.remove().await;
    }
}
