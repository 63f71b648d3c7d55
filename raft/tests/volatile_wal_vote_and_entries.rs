//! `open_database` accepts any `Database`, including one whose WAL is
//! volatile: `Database::builder().create_with_backend(backend)` for a backend
//! that is not a `FileBackend` with a path (and the deprecated `create_file`)
//! keeps the WAL in memory and makes a commit durable only by checkpointing
//! the data file, which `WriteTransaction::commit` does for an `Immediate`
//! commit and `commit_pipelined` never does.
//!
//! The stores commit everything pipelined and take the `PendingCommit` as
//! the proof of durability. On a volatile WAL that proof is an in-memory
//! "sync": `save_vote` returns ("the vote must be persisted on disk before
//! returning") and `append`'s callback fires ("the entries must be persisted
//! on disk") while the data file holds neither. A power cut then loses the
//! vote (the node can vote twice in one term) and acknowledged entries (a
//! follower's acknowledgement made a write committed).

use std::io;
use std::sync::Arc;

use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::testing::blank_ent;
use openraft::type_config::TypeConfigExt;
use openraft::{RaftLogReader, Vote};
use sluicedb::Database;
use sluicedb::io::{CrashBackend, TearMode};
use sluicedb_raft::TypeConfig;

/// A crash-simulating file behind sluicedb's redb-shaped backend trait, the
/// one `Builder::create_with_backend` takes (as a user's own backend would).
#[derive(Debug)]
struct UserBackend(Arc<CrashBackend>);

impl sluicedb::StorageBackend for UserBackend {
    fn len(&self) -> Result<u64, io::Error> {
        sluicedb::io::StorageBackend::len(&*self.0)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::read(&*self.0, offset, out)
    }
    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::set_len(&*self.0, len)
    }
    fn sync_data(&self) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::sync_data(&*self.0)
    }
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        sluicedb::io::StorageBackend::write(&*self.0, offset, data)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_and_entries_reported_durable_survive_a_power_cut() {
    let data = Arc::new(CrashBackend::new());
    let db = Database::builder()
        .create_with_backend(UserBackend(data.clone()))
        .expect("a database on one backend");
    let (mut log, _sm) = sluicedb_raft::open_database(Arc::new(db)).expect("the stores open");

    let vote = Vote::new_committed(3, 2);
    log.save_vote(&vote).await.expect("the vote is saved");

    let (tx, rx) = TypeConfig::oneshot();
    let entries = (1..=3).map(|i| blank_ent::<TypeConfig>(3, 2, i));
    log.append(entries, IOFlushed::signal(tx))
        .await
        .expect("the entries are appended");
    rx.await
        .expect("the flush callback is called")
        .expect("the entries are reported flushed");

    // The power fails: the data file keeps what was synced.
    let image = data.crash_image(TearMode::DropAll);
    let db = Database::builder()
        .create_with_backend(UserBackend(Arc::new(CrashBackend::from_bytes(image))))
        .expect("the database reopens");
    let (mut log, _sm) = sluicedb_raft::open_database(Arc::new(db)).expect("the stores reopen");

    assert_eq!(
        log.read_vote().await.expect("the vote reads"),
        Some(vote),
        "save_vote returned, so the vote must survive the power cut"
    );
    let state = log.get_log_state().await.expect("the log state reads");
    assert_eq!(
        state.last_log_id.map(|id| id.index),
        Some(3),
        "the flush callback said entries 1..=3 were on disk"
    );
}
