//! openraft storage on sluicedb: a Raft log store ([`LogStore`]) and a
//! key-value state machine ([`StateMachine`]) sharing one sluicedb
//! [`Database`].
//!
//! openraft's log contract is a pipelined commit: `append` must make the
//! entries readable before it returns and report durability later, through a
//! callback. [`LogStore::append`](openraft::storage::RaftLogStorage::append)
//! commits with [`commit_pipelined`](sluicedb::WriteTransaction::commit_pipelined)
//! and hands the [`PendingCommit`](sluicedb::PendingCommit) to a flusher
//! thread, which calls the callback once the commit is durable. The caller
//! never waits for a sync. `design/raft.md` maps every openraft call onto
//! sluicedb's commits and says what is durable when.
//!
//! Start openraft with a [`Config`] passed through [`configure`]: a leader
//! that restarts must win an election before it leads again (see there).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (log_store, state_machine) = sluicedb_raft::open("node-1.sluice")?;
//! let config = sluicedb_raft::configure(openraft::Config::default()).validate()?;
//! // openraft::Raft::new(1, Arc::new(config), network, log_store, state_machine)
//! # let _ = (log_store, state_machine, config);
//! # Ok(())
//! # }
//! ```

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use openraft::type_config::alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf};
use openraft::{BasicNode, Config};
use serde::{Deserialize, Serialize};
use sluicedb::{Database, PendingCommit, TableDefinition};

mod entry_cache;
mod log_store;
pub mod router;
mod snapshot;
mod state_machine;

pub use log_store::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachine};

/// The log: entry bytes keyed by log index. sluicedb stores `u64` keys
/// big-endian, so byte order is index order and a range scan is a log scan.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");

/// The log store's metadata: [`VOTE`], [`COMMITTED`], [`LAST_PURGED`].
pub(crate) const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
pub(crate) const VOTE: &str = "vote";
pub(crate) const COMMITTED: &str = "committed";
pub(crate) const LAST_PURGED: &str = "last_purged";

/// The user's key-value table: what the state machine's entries write.
pub const KV: TableDefinition<&str, &str> = TableDefinition::new("kv");

/// The state machine's metadata: [`APPLIED`], [`MEMBERSHIP`],
/// [`SNAPSHOT_META`]. (Databases written with openraft 0.9 also hold a
/// `snapshot_counter`, which 0.10's id-less snapshot meta no longer needs;
/// it is left alone.)
pub(crate) const SM_META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_sm_meta");
pub(crate) const APPLIED: &str = "applied";
pub(crate) const MEMBERSHIP: &str = "membership";
pub(crate) const SNAPSHOT_META: &str = "snapshot_meta";

/// The current snapshot's bytes, in chunks of [`SNAPSHOT_CHUNK`] bytes keyed
/// by chunk number.
pub(crate) const SNAPSHOT: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_snapshot");
pub(crate) const SNAPSHOT_CHUNK: usize = 1 << 20;

/// A client request: what one normal log entry carries.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// openraft 0.10 logs entries with `Display`.
impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Set { key, value } => write!(f, "set {key}={value}"),
            Request::Delete { key } => write!(f, "delete {key}"),
        }
    }
}

/// The state machine's answer to one entry.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The key's value before the entry was applied (`None` for blank and
    /// membership entries).
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The Raft types of the replicated key-value store.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = BasicNode,
);

/// `config` with what these stores need of openraft: a leader that restarts
/// campaigns for a new term instead of leading again in its old one
/// (`enable_leader_restore = Some(false)`; openraft restores by default).
///
/// A leader's own appends are readable before they are durable ([`LogStore`]
/// publishes an append at once and reports its flush later), and openraft
/// sends them to the followers meanwhile: a quorum of followers can make an
/// entry committed while the leader's copy is still unsynced. If the leader
/// then crashes, its log comes back without that entry. Restored in its old
/// term, it would append its next entry at the same index under the same log
/// id; the followers would take it for the entry they hold, and the logs
/// would diverge (the committed write gone from the leader, the new one from
/// the followers). In a new term its log ids differ, and the followers, whose
/// logs are longer, do not vote for it. `tests/leader_loses_unsynced_tail.rs`
/// builds that crash.
///
/// [`router::Router::start_with`] refuses a config this was not applied to.
pub fn configure(mut config: Config) -> Config {
    config.enable_leader_restore = Some(false);
    config
}

/// Whether `config` is safe for these stores (see [`configure`]).
pub fn is_configured(config: &Config) -> bool {
    config.enable_leader_restore == Some(false)
}

/// Opens (creating if missing) the database at `path` and returns the log
/// store and state machine over it.
pub fn open(path: impl AsRef<Path>) -> Result<(LogStore<TypeConfig>, StateMachine), sluicedb::Error> {
    open_database(Arc::new(Database::create(path)?))
}

/// Returns the log store and state machine over an open database, creating
/// their tables if missing. Both share the database, so their commits share
/// one WAL: a crash keeps a prefix of them, in commit order (design/raft.md
/// relies on that).
///
/// Anything else that writes to `db` must not commit with
/// `Durability::Immediate` (the default of `WriteTransaction::commit`): such
/// a commit is published only once it is durable, and every commit behind
/// it, the log's appends included, waits for it, while openraft reads an
/// append's entries as soon as `append` returns. Commit with
/// `commit_pipelined` and await the `PendingCommit` instead.
///
/// Call it once per database and clone the log store where more handles are
/// needed: the log store keeps its newest entries in memory for the reads
/// that follow their append, and clones share that cache, while a second
/// store opened over the same database would not see the first one's
/// appends there. Nothing else may write the `raft_log` table.
pub fn open_database(db: Arc<Database>) -> Result<(LogStore<TypeConfig>, StateMachine), sluicedb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(LOG)?;
    txn.open_table(LOG_META)?;
    txn.open_table(KV)?;
    txn.open_table(SM_META)?;
    txn.open_table(SNAPSHOT)?;
    txn.commit()?;
    let committed = CommittedMark::default();
    Ok((
        LogStore::new(db.clone(), committed.clone()),
        StateMachine::new(db, committed),
    ))
}

/// The newest `save_committed` commit not yet waited for: the log store
/// sets it, and the state machine waits for it before it applies
/// (`StateMachine::apply`), so nothing is applied, and read, before the
/// node durably knows it committed. Shared by one database's two stores.
#[derive(Clone, Default)]
pub(crate) struct CommittedMark(Arc<Mutex<Option<PendingCommit>>>);

impl CommittedMark {
    fn slot(&self) -> MutexGuard<'_, Option<PendingCommit>> {
        // Each critical section is one `Option` move: a panic cannot leave
        // it half-done.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `pending` saved a committed id (newer than any before).
    pub(crate) fn set(&self, pending: PendingCommit) {
        *self.slot() = Some(pending);
    }

    /// The newest commit that saved a committed id, if not yet taken: once
    /// it is durable, so is every one before it.
    pub(crate) fn take(&self) -> Option<PendingCommit> {
        self.slot().take()
    }
}

/// Any error as the `io::Error` openraft 0.10's storage traits return.
pub(crate) fn any<E: Into<Box<dyn std::error::Error + Send + Sync>>>(e: E) -> io::Error {
    io::Error::other(e)
}

/// Decodes a JSON value read from disk: a damaged value is an error, never
/// a panic.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, io::Error> {
    serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("decoding {what}: {e}")))
}

/// Encodes a value for disk.
pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, io::Error> {
    serde_json::to_vec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("encoding {what}: {e}")))
}

/// The snapshot data openraft hands between nodes: the bytes of
/// `snapshot.rs`'s format, whole (openraft 0.10 sends a full snapshot in one
/// `full_snapshot` call, so no seekable reader is needed).
pub type SnapshotData = Vec<u8>;

/// A log entry of [`TypeConfig`].
pub type Entry = EntryOf<TypeConfig>;
/// A log id of [`TypeConfig`].
pub type LogId = LogIdOf<TypeConfig>;
/// A vote of [`TypeConfig`].
pub type Vote = VoteOf<TypeConfig>;
/// A membership, with the log id of the entry that set it.
pub type Membership = StoredMembershipOf<TypeConfig>;
/// A snapshot's metadata (its last log id and membership).
pub type SnapshotMeta = SnapshotMetaOf<TypeConfig>;
/// A snapshot: its metadata and its [`SnapshotData`].
pub type Snapshot = SnapshotOf<TypeConfig, SnapshotData>;
