//! A leader crashes holding a committed entry it never synced, and restarts.
//!
//! The leader's appends are readable (and replicated) before they are
//! durable, so the followers can make an entry committed while the leader's
//! own copy waits for a sync. Here the leader's WAL syncs are held back
//! while one write commits on the followers' flushes; the power then fails
//! (every unsynced write lost) and the leader restarts from what was
//! durable, its log one entry short. Every node must still hold the
//! committed write once the cluster has taken a write after the restart.
//!
//! With openraft's default `enable_leader_restore` the restarted node leads
//! again in its old term, appends the next write at the lost entry's index
//! under the same log id, and the followers keep their entry: the leader
//! loses the committed write (this test fails so). `sluicedb_raft::configure`
//! turns the restore off; the node campaigns, loses to the followers' longer
//! logs, and catches up.
//!
//! The client of the committed write does not hear back before the crash:
//! the leader applies (and answers) only once its own log is durable
//! (`StateMachine::apply`). The write is committed all the same, and Raft
//! must keep it.

mod common;

use std::collections::BTreeMap;

use common::{Machine, TIMEOUT, initialize, set, start_on_disk, wait_applied};
use sluicedb_raft::Request;
use sluicedb_raft::router::{Router, client_write};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_lost_a_committed_entry_it_never_synced_catches_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let router = Router::new();
    let machine = Machine::new();
    let mut nodes = BTreeMap::new();
    nodes.insert(1, machine.start(&router, 1).await);
    for id in 2..=3 {
        nodes.insert(id, start_on_disk(&router, dir.path(), id).await);
    }
    initialize(&nodes).await;
    let mut last = 0;
    for i in 0..20 {
        last = set(&nodes[&1], &format!("before-{i}")).await;
    }

    // The leader's syncs stop; the followers' do not. The next write
    // commits on the followers' flushes, and they apply it.
    machine.hold_syncs();
    let raft = nodes[&1].raft.clone();
    let unanswered = tokio::spawn(async move {
        let request = Request::Set {
            key: "committed-unsynced".into(),
            value: "committed-unsynced".into(),
        };
        client_write(&raft, request).await
    });
    for id in 2..=3 {
        wait_applied(&nodes[&id], last + 1).await;
    }

    // The power fails under node 1: it keeps only what was synced.
    let node = nodes.remove(&1).expect("node 1");
    let restarted = machine.power_cut(&router, node).await;
    let answer = unanswered.await.expect("the client task ends");
    assert!(
        answer.is_err(),
        "the leader answered before its log was durable: {answer:?}"
    );
    nodes.insert(1, restarted.start(&router, 1).await);

    // A write after the restart, through whichever node leads, reaches
    // every node; then every node holds the committed write.
    let leader = nodes[&1]
        .raft
        .wait(TIMEOUT)
        .metrics(|m| m.current_leader.is_some(), "a leader after the restart")
        .await
        .expect("a leader is elected")
        .current_leader
        .expect("a leader");
    let after = set(&nodes[&leader], "after-restart").await;
    for node in nodes.values() {
        wait_applied(node, after).await;
        for key in ["before-19", "committed-unsynced", "after-restart"] {
            assert_eq!(
                node.state_machine.get(key).expect("a read").as_deref(),
                Some(key),
                "node {} lacks {key} (leader after the restart: node {leader})",
                node.id
            );
        }
    }
    for (_, node) in nodes {
        router.stop(node).await.expect("the node stops");
    }
}
