//! redb's `StorageError::PreviousIo` (issue 14): a sync that fails during a
//! commit fails that commit with the I/O error itself (`Io`, naming the
//! cause); from then on every operation (`begin_write`, `begin_read`,
//! `close`) fails with `PreviousIo`, and reopening recovers the last durable
//! state; `stats().failure` names the cause meanwhile. Both of sluicedb's syncs: the WAL's (a database with its WAL
//! beside it) and the data file's (one redb-shaped backend, whose durable
//! commits are checkpoints).

mod common;

use common::failing::FailingBackend;
use common::keys::CrashDisk;
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, CommitError, Database, DatabaseError, ReadableDatabase, StorageError, TableDefinition, TransactionError,
};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn commit(db: &Database, key: u64) -> Result<(), CommitError> {
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(key, key).unwrap();
    txn.commit()
}

/// The commit failed with the I/O error, naming `cause`.
fn assert_io(result: Result<(), CommitError>, cause: &str) {
    match result {
        Err(CommitError::Storage(StorageError::Io(e))) => assert!(e.to_string().contains(cause), "{e}"),
        other => panic!("expected the commit's I/O error, got {other:?}"),
    }
}

/// Everything after the failure is refused with `PreviousIo`, `close`
/// included; `stats()` names the failure, `cause`.
fn assert_previous_io(db: Database, cause: &str) {
    let failure = db.stats().failure.expect("stats() names the failure");
    assert!(failure.contains(cause), "{failure}");
    assert!(matches!(
        db.begin_write(),
        Err(TransactionError::Storage(StorageError::PreviousIo))
    ));
    assert!(matches!(
        db.try_begin_write(),
        Err(TransactionError::Storage(StorageError::PreviousIo))
    ));
    assert!(matches!(
        db.begin_read(),
        Err(TransactionError::Storage(StorageError::PreviousIo))
    ));
    assert!(matches!(db.sync(), Err(StorageError::PreviousIo)));
    assert!(matches!(
        db.close(),
        Err(DatabaseError::Storage(StorageError::PreviousIo))
    ));
}

fn get(db: &Database, key: u64) -> Option<u64> {
    let read = db.begin_read().unwrap();
    read.open_table(T).unwrap().get(key).unwrap().map(|v| v.value())
}

#[test]
fn a_failed_wal_sync_fails_its_commit_then_everything_reports_previous_io() {
    let disk = CrashDisk::new();
    let db = disk.open(&Builder::new());
    commit(&db, 1).unwrap();
    assert_eq!(db.stats().failure, None);
    // Every WAL operation from now on fails: the next commit's write.
    disk.wal.cut_power_after(disk.wal.ops());
    assert_io(commit(&db, 2), "simulated power loss");
    assert_previous_io(db, "simulated power loss");

    let db = disk.crashed(TearMode::DropAll).open(&Builder::new());
    assert_eq!(get(&db, 1), Some(1));
    assert_eq!(get(&db, 2), None, "a commit that failed was never durable");
    commit(&db, 3).unwrap();
}

#[test]
fn a_failed_data_file_sync_fails_its_commit_then_everything_reports_previous_io() {
    let backend = FailingBackend::new();
    let db = Builder::new().create_with_backend(backend.clone()).unwrap();
    commit(&db, 1).unwrap();
    backend.fail_syncs.store(true, std::sync::atomic::Ordering::SeqCst);
    // The durable commit's checkpoint syncs the backend, and fails.
    assert_io(commit(&db, 2), "injected sync failure");
    assert_previous_io(db, "injected sync failure");

    let mut db = Builder::new().create_with_backend(backend.image()).unwrap();
    assert!(db.check_integrity().unwrap());
    assert_eq!(get(&db, 1), Some(1));
    assert_eq!(get(&db, 2), None, "a commit that failed was never durable");
    commit(&db, 3).unwrap();
}
