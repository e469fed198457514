//! swarmpilot highly available on a real multi-node swarm: the test bed of scripts/multinode.sh
//! (3 managers + 1 worker, each its own dockerd in its own network namespace), the image built
//! here and loaded on every node, the shipped stack deployed with the bed's override. Requests go
//! to the replicas from inside the bed (its switch namespace), never elsewhere.

#[allow(dead_code)]
mod common;

use common::multinode::{bed, leftover_pid, AlertmanagerPair, BedStack, StackSetup};

#[tokio::test]
async fn two_replicas_run_healthy_on_two_managers_and_each_answers_from_the_bed() {
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
