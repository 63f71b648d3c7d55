//! openraft's own storage test suite (`openraft::testing::log::Suite::test_all`)
//! against the sluicedb log store and state machine, each test on a fresh
//! database in a temporary directory.

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use sluicedb_raft::{LogStore, StateMachine, TypeConfig};
use tempfile::TempDir;

struct SluiceBuilder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, TempDir> for SluiceBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore<TypeConfig>, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, sm) = sluicedb_raft::open(dir.path().join("raft.sluice")).expect("opening a fresh database");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(SluiceBuilder).await {
        panic!("openraft's storage suite failed: {e}");
    }
}
