//! redb 4.6's write-transaction options and open hooks (issue 14, item 1):
//! `set_durability` returns a `Result`, `set_two_phase_commit` and
//! `set_quick_repair` are accepted and change nothing sluicedb needs,
//! `try_begin_write` refuses rather than waits, and the repair callback runs
//! only when recovery repaired the log (a torn tail), never for a new
//! database or a clean reopen.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::keys::CrashDisk;
use sluicedb::io::LogDir;
use sluicedb::{
    Builder, Database, DatabaseError, Durability, Error, ReadableDatabase, ReadableTable, SetDurabilityError,
    TableDefinition, TransactionError,
};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Written as a redb user writes it: `?` on `set_durability` into `Error`.
fn commit_with(db: &Database, key: u64, durability: Durability) -> Result<(), Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    txn.set_two_phase_commit(true);
    txn.set_quick_repair(true);
    txn.open_table(T)?.insert(key, key)?;
    txn.commit()?;
    Ok(())
}

#[test]
fn durability_and_commit_flags_are_accepted_and_commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        commit_with(&db, 1, Durability::Immediate).unwrap();
        commit_with(&db, 2, Durability::None).unwrap();
        let mut txn = db.begin_write().unwrap();
        txn.set_two_phase_commit(false);
        txn.set_quick_repair(false);
        txn.open_table(T).unwrap().insert(3, 3).unwrap();
        txn.commit().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    let keys: Vec<u64> = t.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
    assert_eq!(keys, [1, 2, 3]);
    // The error type converts as redb's does.
    let e: Error = SetDurabilityError::PersistentSavepointModified.into();
    assert!(matches!(e, Error::PersistentSavepointModified));
}

#[test]
fn try_begin_write_refuses_while_a_writer_is_live_and_leaves_nothing_held() {
    let db = Builder::new()
        .create_with_backends(sluicedb::io::MemoryBackend::new(), sluicedb::io::MemLogDir::new())
        .unwrap();
    let txn = db.try_begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, 1).unwrap();
    assert!(matches!(db.try_begin_write(), Err(TransactionError::WouldBlock)));
    assert!(matches!(Error::from(TransactionError::WouldBlock), Error::WouldBlock));
    txn.commit().unwrap();

    let txn = db.try_begin_write().unwrap();
    assert_eq!(txn.open_table(T).unwrap().get(1).unwrap().unwrap().value(), 1);
    txn.abort().unwrap();
    db.begin_write().unwrap().commit().unwrap();
}

/// A builder whose callback counts its calls and aborts when `abort` is set.
fn counting(calls: &Arc<AtomicUsize>, abort: bool) -> Builder {
    let counted = calls.clone();
    let mut builder = Builder::new();
    builder.set_repair_callback(move |session| {
        counted.fetch_add(1, Ordering::SeqCst);
        assert!((0.0..=1.0).contains(&session.progress()));
        if abort {
            session.abort();
        }
    });
    builder
}

#[test]
fn repair_callback_runs_only_for_a_torn_log_and_can_abort_the_open() {
    let disk = CrashDisk::new();
    let calls = Arc::new(AtomicUsize::new(0));
    {
        // New database: nothing to repair.
        let db = disk.open(&counting(&calls, true));
        for i in 0..20 {
            commit_with(&db, i, Durability::Immediate).unwrap();
        }
        // As a process exit leaves it: the commits only in the WAL.
        db.close_without_checkpoint();
    }
    // Clean reopen (the WAL is replayed, nothing is torn): not called.
    let torn = disk.copy();
    disk.open(&counting(&calls, true)).close_without_checkpoint();
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Tear the last record, as a crash during its write would (in the
    // image before the reopen, which started a segment after it).
    let disk = torn;
    let names = disk.wal.list().unwrap();
    let last = names.last().unwrap();
    let mut bytes = disk.wal.file_bytes(last).unwrap();
    let used = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes.truncate(used - 3);
    disk.wal.put_file(last, bytes);

    let files = |disk: &sluicedb::io::CrashDisk| {
        let data = disk.data.current_image();
        let wal: Vec<_> = disk
            .wal
            .list()
            .unwrap()
            .into_iter()
            .map(|n| disk.wal.file_bytes(&n))
            .collect();
        (data, wal)
    };
    let before = files(&disk);
    let err = counting(&calls, true)
        .create_with_backends(disk.data.clone(), disk.wal.clone())
        .expect_err("an aborted repair fails the open");
    assert!(matches!(err, DatabaseError::RepairAborted), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(files(&disk) == before, "the aborted open changed the files");

    // Without abort the open succeeds with every commit before the torn one.
    let db = counting(&calls, false)
        .create_with_backends(disk.data.clone(), disk.wal.clone())
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(db.stats().recovery.torn_tail);
    let read = db.begin_read().unwrap();
    let keys: Vec<u64> = read
        .open_table(T)
        .unwrap()
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value())
        .collect();
    assert_eq!(keys, (0..19).collect::<Vec<_>>());
}

#[test]
fn check_integrity_on_open_refuses_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        for i in 0..2000 {
            commit_with(&db, i, Durability::None).unwrap();
        }
        db.close().unwrap();
    }
    let mut checked = Builder::new();
    checked.set_check_integrity_on_open(true);
    drop(checked.open(&path).unwrap());
    // Flip a byte in a page in the middle of the file: a leaf, which an
    // open does not read (the header is page 0, the roots come last).
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 2 / 4096 * 4096 + 200;
    bytes[at] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    // A plain open reads only what it needs, and opens.
    drop(Builder::new().open(&path).unwrap());
    let err = checked
        .open(&path)
        .expect_err("a damaged page must fail the checked open");
    assert!(
        matches!(err, DatabaseError::Storage(sluicedb::StorageError::Corrupted(_))),
        "{err}"
    );
}
