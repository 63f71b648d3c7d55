//! A three-node in-process cluster on sluicedb stores: a follower is stopped,
//! the others write past a snapshot and log purge, and the follower restarts
//! from its database. Its reopened log holds every entry it had applied, and
//! it converges (by snapshot) to the leader's state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, RaftLogReader, SnapshotPolicy};
use sluicedb_raft::Request;
use sluicedb_raft::router::{Node, Router, client_write};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

async fn leader(nodes: &BTreeMap<u64, Node>) -> u64 {
    let any = nodes.values().next().expect("a running node");
    let metrics = any
        .raft
        .wait(TIMEOUT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| nodes.contains_key(&l)),
            "a running leader",
        )
        .await
        .expect("a leader is elected");
    metrics.current_leader.expect("a leader")
}

/// Writes `keys` through the leader; returns the last write's log index
/// (from its response: the leader's metrics may not show it applied yet).
async fn write(nodes: &BTreeMap<u64, Node>, keys: std::ops::Range<u64>) -> u64 {
    let mut last = 0;
    for i in keys {
        let leader = leader(nodes).await;
        let request = Request::Set {
            key: format!("k{i:04}"),
            value: format!("v{i}"),
        };
        // Retried while a new leader's lease is not yet valid (openraft 0.10).
        last = client_write(&nodes[&leader].raft, request)
            .await
            .expect("the write commits")
            .log_id
            .index;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_follower_restarts_from_disk_and_converges() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = |id: u64| dir.path().join(format!("node-{id}.sluice"));
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(50),
        max_in_snapshot_log_to_keep: 5,
        purge_batch_size: 1,
        ..Default::default()
    };
    let config = Arc::new(sluicedb_raft::configure(config).validate().expect("a valid config"));
    let router = Router::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let node = router.start(id, &path(id), config.clone()).await.expect("node starts");
        nodes.insert(id, node);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3).map(|id| (id, BasicNode::default())).collect();
    nodes[&1]
        .raft
        .initialize(members)
        .await
        .expect("the cluster initializes");

    let leader_applied = Some(write(&nodes, 0..40).await);
    let leader_id = leader(&nodes).await;
    let victim = (1..=3).find(|id| *id != leader_id).expect("a follower");
    // Wait until the follower has applied the writes, then stop it.
    let stopped = nodes.remove(&victim).expect("victim runs");
    let applied = stopped
        .raft
        .wait(TIMEOUT)
        .applied_index_at_least(leader_applied, "the follower applies the first writes")
        .await
        .expect("the follower applies")
        .last_applied
        .expect("something applied")
        .index;
    router.stop(stopped).await.expect("the follower stops");

    let target = Some(write(&nodes, 40..200).await);

    // Reopened from disk: every entry it applied is still in its log (none
    // was purged: it snapshots only every 50 entries and keeps 5).
    let (mut log_store, state_machine) = sluicedb_raft::open(path(victim)).expect("the database reopens");
    let state = log_store.get_log_state().await.expect("log state");
    let last = state.last_log_id.expect("a log").index;
    assert!(
        last >= applied,
        "log ends at {last}, but {applied} was applied before the stop"
    );
    let first = state.last_purged_log_id.map_or(0, |l| l.index + 1);
    let entries = log_store.try_get_log_entries(first..=last).await.expect("entries read");
    let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(
        indexes,
        (first..=last).collect::<Vec<_>>(),
        "the reopened log has no hole"
    );
    assert_eq!(state_machine.get("k0039").expect("read"), Some("v39".to_string()));

    let node = router
        .start_with(victim, config.clone(), log_store, state_machine)
        .await
        .expect("the follower restarts");
    node.raft
        .wait(TIMEOUT)
        .applied_index_at_least(target, "the restarted follower catches up")
        .await
        .expect("the follower catches up");
    for i in 0..200 {
        let key = format!("k{i:04}");
        assert_eq!(
            node.state_machine.get(&key).expect("read"),
            Some(format!("v{i}")),
            "{key}"
        );
    }
    nodes.insert(victim, node);
    for (_, node) in std::mem::take(&mut nodes) {
        router.stop(node).await.expect("node stops");
    }
}
