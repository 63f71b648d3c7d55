//! A follower's reads never go back in time across a power cut.
//!
//! openraft lets a node apply an entry once the cluster has committed it and
//! the node has accepted it, flushed or not (`IOState::
//! calculate_local_committed`: the smaller of accepted and committed). A
//! value applied then is served (`StateMachine::get`) while nothing of it,
//! its log entry included, is durable on this node; a power cut would take
//! the node back to a state older than one it served, and its restart could
//! not re-apply what it never durably learned (openraft's
//! `docs::data::log_pointers`, "Reverted reads"). `StateMachine::apply`
//! therefore waits until the node's log is durable before it applies.
//!
//! Here node 3's syncs are held while a write commits on nodes 1 and 2;
//! whatever node 3 serves meanwhile must still be there after its power cut
//! and restart (before the leader reaches it again). Without the wait in
//! `apply`, node 3 serves the write and loses it: this test fails.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Machine, initialize, set, start_on_disk, wait_applied};
use openraft::Raft;
use sluicedb_raft::router::Router;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_a_follower_served_is_still_there_after_its_power_cut() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let router = Router::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=2 {
        nodes.insert(id, start_on_disk(&router, dir.path(), id).await);
    }
    let machine = Machine::new();
    nodes.insert(3, machine.start(&router, 3).await);
    initialize(&nodes).await;
    let before = set(&nodes[&1], "before").await;
    wait_applied(&nodes[&3], before).await;

    // Node 3's syncs stop. The next write commits on nodes 1 and 2, and
    // node 3 hears it committed with the next heartbeat. What node 3 serves
    // from here on, a client of node 3 has seen.
    machine.hold_syncs();
    let index = set(&nodes[&1], "served").await;
    wait_applied(&nodes[&2], index).await;
    let mut served = None;
    for _ in 0..50 {
        served = nodes[&3].state_machine.get("served").expect("a read");
        if served.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The power fails under node 3, which restarts where the leader cannot
    // reach it (a partition, or the moments before its next heartbeat).
    let node = nodes.remove(&3).expect("node 3");
    let restarted = machine.power_cut(&router, node).await;
    let (log, state_machine) = restarted.stores();
    let raft = Raft::new(3, common::config(), router.clone(), log, state_machine.clone())
        .await
        .expect("node 3 restarts");
    let after = state_machine.get("served").expect("a read");
    raft.shutdown().await.expect("node 3 stops");
    for (_, node) in nodes {
        router.stop(node).await.expect("the node stops");
    }
    assert!(
        served.is_none() || after == served,
        "node 3 served {served:?} before its power cut and {after:?} after its restart: a reverted read"
    );
}
