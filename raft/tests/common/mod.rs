//! Helpers shared by the crash tests: a node whose storage is simulated
//! (sluicedb's crash-simulating backends) and whose WAL syncs a test can
//! hold back, then cut the power under.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, Config, SnapshotPolicy};
use sluicedb::Database;
use sluicedb::io::{CrashDisk, CrashLogDir, HeldSyncs, TearMode};
use sluicedb_raft::router::{Node, Router, client_write};
use sluicedb_raft::{LogStore, Request, StateMachine, TypeConfig};

pub const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// A three-node test config through `sluicedb_raft::configure`, with
/// election timeouts long enough that the first leader stays put while a
/// node is down for a moment.
pub fn config() -> Arc<Config> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 1500,
        election_timeout_max: 3000,
        snapshot_policy: SnapshotPolicy::Never,
        ..Default::default()
    };
    Arc::new(sluicedb_raft::configure(config).validate().expect("a valid config"))
}

/// Sets `key` to itself through `node` (the leader); the entry's index.
pub async fn set(node: &Node, key: &str) -> u64 {
    let request = Request::Set {
        key: key.into(),
        value: key.into(),
    };
    client_write(&node.raft, request)
        .await
        .expect("the write commits")
        .log_id
        .index
}

/// Starts node `id` on a database file in `dir`, reachable through `router`.
pub async fn start_on_disk(router: &Router, dir: &Path, id: u64) -> Node {
    let path = dir.join(format!("node-{id}.sluice"));
    router.start(id, &path, config()).await.expect("the node starts")
}

/// Makes `nodes` one cluster, initialized by node 1, and waits until node 1
/// leads it.
pub async fn initialize(nodes: &BTreeMap<u64, Node>) {
    let members: BTreeMap<u64, BasicNode> = nodes.keys().map(|&id| (id, BasicNode::default())).collect();
    nodes[&1]
        .raft
        .initialize(members)
        .await
        .expect("the cluster initializes");
    nodes[&1]
        .raft
        .wait(TIMEOUT)
        .metrics(|m| m.current_leader == Some(1), "node 1 leads")
        .await
        .expect("node 1 leads");
}

/// Waits until `node` has applied `index`.
pub async fn wait_applied(node: &Node, index: u64) {
    node.raft
        .wait(TIMEOUT)
        .applied_index_at_least(Some(index), "the node applies the write")
        .await
        .expect("the node applies the write");
}

/// One node's simulated machine: its data file and WAL directory in memory,
/// the WAL's syncs switchable, optionally with a small tree-commit threshold
/// (commits that big bypass the WAL).
pub struct Machine {
    /// The data file and WAL directory, for a test to cut their power.
    pub disk: CrashDisk,
    /// The disk's WAL directory, its syncs switchable.
    pub wal: HeldSyncs<CrashLogDir>,
    tree_commit: Option<usize>,
}

impl Machine {
    /// A machine with an empty disk.
    pub fn new() -> Self {
        Self::from_disk(CrashDisk::new(), None)
    }

    /// A machine with an empty disk whose database writes commits of
    /// `bytes` or more straight into its tree.
    pub fn with_tree_commit(bytes: usize) -> Self {
        Self::from_disk(CrashDisk::new(), Some(bytes))
    }

    fn from_disk(disk: CrashDisk, tree_commit: Option<usize>) -> Self {
        Self {
            wal: HeldSyncs::new(disk.wal.clone()),
            disk,
            tree_commit,
        }
    }

    /// The stores on this machine's database.
    pub fn stores(&self) -> (LogStore<TypeConfig>, StateMachine) {
        let mut builder = Database::builder();
        if let Some(bytes) = self.tree_commit {
            builder.set_tree_commit_size(bytes);
        }
        let db = builder
            .create_with_backends(self.disk.data.clone(), self.wal.clone())
            .expect("the database opens");
        sluicedb_raft::open_database(Arc::new(db)).expect("the stores open")
    }

    /// The power fails now: the disk a restart finds (both files' images of
    /// one instant, unsynced writes dealt with as `mode` says). The running
    /// `stores`' syncs fail from here on, and they are dropped.
    pub fn crash(&self, mode: TearMode, stores: (LogStore<TypeConfig>, StateMachine)) -> Machine {
        let after = self.disk.crashed(mode);
        self.wal.fail();
        drop(stores);
        Self::from_disk(after, self.tree_commit)
    }

    /// Starts node `id` on this machine's database, reachable through
    /// `router`.
    pub async fn start(&self, router: &Router, id: u64) -> Node {
        let (log, sm) = self.stores();
        router.start_with(id, config(), log, sm).await.expect("the node starts")
    }

    /// From now on the WAL's syncs wait (writes still land, unsynced).
    pub fn hold_syncs(&self) {
        self.wal.hold();
    }

    /// The power fails: returns the machine a restart finds (every write no
    /// sync covered lost). This one's syncs fail from now on, so `node`
    /// (running here) fails and is shut down.
    pub async fn power_cut(&self, router: &Router, node: Node) -> Machine {
        let after = Self::from_disk(self.disk.crashed(TearMode::DropAll), self.tree_commit);
        self.wal.fail();
        router.remove(node.id);
        // Its storage has failed: the shutdown may report that; either way
        // the node is gone.
        let _ = node.raft.shutdown().await;
        after
    }
}
