//! Helpers shared by the crash tests: a node whose storage is simulated
//! (sluicedb's crash-simulating backends) and whose WAL syncs a test can
//! hold back, then cut the power under.

#![allow(dead_code)]

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use sluicedb::Database;
use sluicedb::io::{CrashBackend, CrashLogDir, LogDir, StorageBackend, TearMode};
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

/// Waits until `node` has applied `index`.
pub async fn wait_applied(node: &Node, index: u64) {
    node.raft
        .wait(TIMEOUT)
        .applied_index_at_least(Some(index), "the node applies the write")
        .await
        .expect("the node applies the write");
}

/// Whether the WAL's syncs may run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Syncs {
    Run,
    /// Held: a sync waits until the state changes.
    Held,
    /// The machine is gone: a sync fails.
    Fail,
}

/// A switch shared by a [`GatedDir`]'s files.
#[derive(Clone)]
struct Gate(Arc<(Mutex<Syncs>, Condvar)>);

impl Gate {
    fn new() -> Self {
        Self(Arc::new((Mutex::new(Syncs::Run), Condvar::new())))
    }

    fn state(&self) -> MutexGuard<'_, Syncs> {
        self.0.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, syncs: Syncs) {
        *self.state() = syncs;
        self.0.1.notify_all();
    }

    /// Waits while syncs are held; `Err` once they fail.
    fn pass(&self) -> io::Result<()> {
        let mut state = self.state();
        while *state == Syncs::Held {
            state = self.0.1.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        match *state {
            Syncs::Fail => Err(io::Error::other("the power is off")),
            Syncs::Run | Syncs::Held => Ok(()),
        }
    }
}

/// A crash-simulating WAL directory whose syncs a [`Gate`] holds back.
#[derive(Clone)]
struct GatedDir {
    inner: CrashLogDir,
    gate: Gate,
}

struct GatedFile {
    inner: Box<dyn StorageBackend>,
    gate: Gate,
}

impl StorageBackend for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass()?;
        self.inner.sync_data()
    }
}

impl GatedDir {
    fn gated(&self, inner: Box<dyn StorageBackend>) -> Box<dyn StorageBackend> {
        Box::new(GatedFile {
            inner,
            gate: self.gate.clone(),
        })
    }
}

impl LogDir for GatedDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(self.gated(self.inner.create(name)?))
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(self.gated(self.inner.open(name)?))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
}

/// One node's simulated machine: its data file and WAL directory in memory,
/// the WAL's syncs switchable.
pub struct Machine {
    data: Arc<CrashBackend>,
    wal: GatedDir,
}

impl Machine {
    /// A machine with an empty disk.
    pub fn new() -> Self {
        Self::from_disk(CrashBackend::new(), CrashLogDir::new())
    }

    fn from_disk(data: CrashBackend, wal: CrashLogDir) -> Self {
        Self {
            data: Arc::new(data),
            wal: GatedDir {
                inner: wal,
                gate: Gate::new(),
            },
        }
    }

    /// The stores on this machine's database.
    pub fn stores(&self) -> (LogStore<TypeConfig>, StateMachine) {
        let db = Database::builder()
            .create_with_backends(self.data.clone(), self.wal.clone())
            .expect("the database opens");
        sluicedb_raft::open_database(Arc::new(db)).expect("the stores open")
    }

    /// Starts node `id` on this machine's database, reachable through
    /// `router`.
    pub async fn start(&self, router: &Router, id: u64) -> Node {
        let (log, sm) = self.stores();
        router.start_with(id, config(), log, sm).await.expect("the node starts")
    }

    /// From now on the WAL's syncs wait (writes still land, unsynced).
    pub fn hold_syncs(&self) {
        self.wal.gate.set(Syncs::Held);
    }

    /// The power fails: returns the machine a restart finds (every write no
    /// sync covered lost). This one's syncs fail from now on, so `node`
    /// (running here) fails and is shut down.
    pub async fn power_cut(&self, router: &Router, node: Node) -> Machine {
        let after = Self::from_disk(
            CrashBackend::from_bytes(self.data.crash_image(TearMode::DropAll)),
            self.wal.inner.crash(TearMode::DropAll),
        );
        self.wal.gate.set(Syncs::Fail);
        router.remove(node.id);
        // Its storage has failed: the shutdown may report that; either way
        // the node is gone.
        let _ = node.raft.shutdown().await;
        after
    }
}
