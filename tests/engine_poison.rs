//! Failures poison the engine: an fsync error in the WAL or an I/O error in
//! the background checkpoint fails the operation it interrupted with the I/O
//! error (naming its cause) and every later operation with `PreviousIo`;
//! reopening recovers every acknowledged commit.

mod common;

use std::io::ErrorKind;

use common::engine::{Disk, commit_numbered, count_numbered, small_options};
use sluicedb::StorageError;
use sluicedb::io::TearMode;

#[test]
fn a_wal_fsync_error_poisons_and_reopen_recovers() {
    let disk = Disk::new();
    let db = disk.open(small_options());
    let mut acked = 0;
    disk.wal.fail_op(disk.wal.ops() + 30, ErrorKind::Other);
    for i in 1..200 {
        match commit_numbered(&db, i) {
            Ok(()) => acked = i,
            Err(e) => {
                // One committer: the failed sync was this commit's own.
                assert!(matches!(e, StorageError::Io(_)), "{e}");
                assert!(
                    e.to_string().contains("injected failure"),
                    "the error names its cause: {e}"
                );
                break;
            }
        }
    }
    assert!(acked > 0 && acked < 199);
    assert!(matches!(db.begin_write().err(), Some(StorageError::PreviousIo)));
    assert!(matches!(db.begin_read().err(), Some(StorageError::PreviousIo)));
    drop(db);
    let db = disk.crashed(TearMode::DropAll).open(small_options());
    assert!(count_numbered(&db) >= acked);
    commit_numbered(&db, 10_000).unwrap();
}

#[test]
fn a_checkpoint_write_error_poisons_and_reopen_recovers() {
    let disk = Disk::new();
    let db = disk.open(small_options());
    let mut acked = 0;
    for i in 1..50 {
        commit_numbered(&db, i).unwrap();
        acked = i;
    }
    // ENOSPC on the data file's next write: inside the checkpoint's flush.
    disk.data.fail_op(disk.data.ops(), ErrorKind::StorageFull);
    let err = db.checkpoint().unwrap_err();
    assert!(
        matches!(&err, StorageError::Io(e) if e.kind() == ErrorKind::StorageFull),
        "{err}"
    );
    let later = commit_numbered(&db, 99).unwrap_err();
    assert!(matches!(later, StorageError::PreviousIo), "{later}");
    drop(db);
    let db = disk.crashed(TearMode::Random(5)).open(small_options());
    assert_eq!(count_numbered(&db), acked);
    db.check_integrity().unwrap();
}

/// Found by the crash-recovery fuzz target: a checkpoint waiting for the
/// apply thread while a power cut poisoned the engine deadlocked (the waiter
/// held the apply-control lock while poisoning, which takes it too).
#[test]
fn a_checkpoint_interrupted_by_a_power_cut_returns_an_error() {
    for round in 0..20u64 {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let disk = Disk::new();
            let db = disk.open(small_options());
            for i in 0..(round % 5) * 10 + 1 {
                commit_numbered(&db, i).unwrap();
            }
            disk.cut_power();
            let result = db.checkpoint();
            tx.send(result.is_err()).unwrap();
        });
        let failed = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("round {round}: checkpoint hung after a power cut"));
        assert!(failed, "round {round}: a checkpoint without power succeeded");
    }
}
