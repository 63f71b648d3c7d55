//! A three-node replicated key-value store in one process, each node on its
//! own sluicedb database, talking over an in-process network.
//!
//! It writes through the leader, stops a follower, keeps writing (enough
//! that the leader snapshots and purges its log), restarts the follower from
//! its database, and shows that it catches up.
//!
//! ```text
//! cargo run -p sluicedb-raft --example kv_cluster [-- DIR]
//! ```
//!
//! Without DIR the databases go in a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::type_config::alias::LogIdOf;
use openraft::{BasicNode, Config, RaftLogReader, SnapshotPolicy, storage::RaftLogStorage};
use sluicedb_raft::router::{Node, Router, StartError, client_write};
use sluicedb_raft::{Request, TypeConfig};

type LogId = LogIdOf<TypeConfig>;

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

fn config() -> Result<Arc<Config>, StartError> {
    let config = Config {
        cluster_name: "kv_cluster".into(),
        heartbeat_interval: 50,
        election_timeout_min: 300,
        election_timeout_max: 600,
        // Snapshot every 100 entries and keep few entries behind a snapshot,
        // so a follower that misses enough must catch up by snapshot.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
        max_in_snapshot_log_to_keep: 10,
        purge_batch_size: 1,
        ..Default::default()
    };
    Ok(Arc::new(sluicedb_raft::configure(config).validate()?))
}

fn db_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}.sluice"))
}

/// Writes `key{from..to}` through the current leader.
/// Writes `key{from}..key{to}` through the leader; returns the last write's
/// log id (from its response: the leader's metrics may lag behind it).
async fn write(nodes: &BTreeMap<u64, Node>, from: u64, to: u64) -> Result<Option<LogId>, StartError> {
    let mut last = None;
    for i in from..to {
        let leader = leader(nodes).await?;
        let request = Request::Set {
            key: format!("key{i:04}"),
            value: format!("value{i}"),
        };
        // Retried while a new leader's lease is not yet valid (openraft 0.10).
        last = Some(client_write(&nodes[&leader].raft, request).await?.log_id);
    }
    Ok(last)
}

/// A log id as `term-leader-index`, or `none`.
fn show(id: Option<LogId>) -> String {
    id.map_or_else(|| "none".to_string(), |id| id.to_string())
}

async fn leader(nodes: &BTreeMap<u64, Node>) -> Result<u64, StartError> {
    let any = nodes.values().next().ok_or("no node is running")?;
    let metrics = any
        .raft
        .wait(TIMEOUT)
        .metrics(
            |m| m.current_leader.is_some_and(|l| nodes.contains_key(&l)),
            "a running leader",
        )
        .await?;
    metrics.current_leader.ok_or_else(|| "no leader".into())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), StartError> {
    let temp;
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let config = config()?;
    let router = Router::new();

    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, router.start(id, &db_path(&dir, id), config.clone()).await?);
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3).map(|id| (id, BasicNode::default())).collect();
    nodes[&1].raft.initialize(members).await?;
    let leader_id = leader(&nodes).await?;
    println!("three nodes up in {}; leader is node {leader_id}", dir.display());

    write(&nodes, 0, 50).await?;
    println!("wrote key0000..key0049 through the leader");

    // Stop a follower.
    let victim = (1..=3).find(|id| *id != leader_id).ok_or("no follower")?;
    let stopped = nodes.remove(&victim).ok_or("victim not running")?;
    let before = stopped.raft.metrics().borrow_watched().last_applied;
    router.stop(stopped).await?;
    println!("stopped node {victim} (it had applied up to {})", show(before));

    let last_write = write(&nodes, 50, 400).await?;
    let target = last_write.map(|id| id.index);
    let leader_id = leader(&nodes).await?;
    let leader_metrics = nodes[&leader_id].raft.metrics().borrow_watched().clone();
    println!(
        "wrote key0050..key0399 (the last at {}) while node {victim} was down; leader node {leader_id}: \
         snapshot at {}, log purged up to {}",
        show(last_write),
        show(leader_metrics.snapshot),
        show(leader_metrics.purged)
    );

    // Restart it from its database: its log and state come back from disk.
    let (mut log_store, state_machine) = sluicedb_raft::open(db_path(&dir, victim))?;
    let state = log_store.get_log_state().await?;
    let on_disk = log_store.try_get_log_entries(..).await?.len();
    println!(
        "node {victim} reopened: {on_disk} log entries on disk, last log id {}, key0049 = {:?}",
        show(state.last_log_id),
        state_machine.get("key0049")?
    );
    let node = router
        .start_with(victim, config.clone(), log_store, state_machine)
        .await?;
    let metrics = node
        .raft
        .wait(TIMEOUT)
        .applied_index_at_least(target, "the restarted node catches up")
        .await?;
    println!(
        "node {victim} caught up: applied up to {}, snapshot {}",
        show(metrics.last_applied),
        show(metrics.snapshot)
    );
    for key in ["key0000", "key0049", "key0050", "key0399"] {
        println!("  node {victim}: {key} = {:?}", node.state_machine.get(key)?);
    }
    let missing = (0..400)
        .filter(|i| {
            node.state_machine.get(&format!("key{i:04}")).ok().flatten().as_deref()
                != Some(format!("value{i}").as_str())
        })
        .count();
    if missing != 0 {
        return Err(format!("node {victim} is missing {missing} of 400 keys").into());
    }
    println!("node {victim} holds all 400 keys: the cluster converged");
    nodes.insert(victim, node);

    for (_, node) in std::mem::take(&mut nodes) {
        router.stop(node).await?;
    }
    Ok(())
}
