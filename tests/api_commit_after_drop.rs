//! A write transaction that outlives its `Database` handle still commits,
//! and what it commits is there at the next open: a big commit (straight
//! into the tree, whose first step is a checkpoint), a commit big enough
//! for the inserter thread, and a durable commit on a single backend (made
//! durable by a checkpoint). The big commit waited for a checkpoint from
//! the apply thread, which the handle's drop had stopped, and hung forever
//! (found by the twenty-third session's review); a commit for the inserter
//! left its run with a thread that had stopped. The committing thread now
//! does both itself once those threads are gone.

mod common;

use std::fs::OpenOptions;
use std::sync::mpsc;
use std::time::Duration;

use common::failing::FailingBackend;
use sluicedb::backends::FileBackend;
use sluicedb::{CommitError, Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

/// Commits on another thread; panics if it has not returned within 30 s.
fn commit(txn: WriteTransaction) -> Result<(), CommitError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(txn.commit());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("a commit after the handle's drop hung")
}

fn write(txn: &WriteTransaction, keys: u64, len: usize) {
    let mut t = txn.open_table(T).unwrap();
    for k in 0..keys {
        t.insert(k, vec![k as u8; len].as_slice()).unwrap();
    }
}

fn check(db: &Database, keys: u64, len: usize) {
    let r = db.begin_read().unwrap();
    let t = r.open_table(T).unwrap();
    let got: Vec<(u64, Vec<u8>)> = t
        .iter()
        .unwrap()
        .map(|e| e.unwrap())
        .map(|(k, v)| (k.value(), v.value().to_vec()))
        .collect();
    let want: Vec<(u64, Vec<u8>)> = (0..keys).map(|k| (k, vec![k as u8; len])).collect();
    assert!(got == want, "{} entries, want {keys}", got.len());
}

#[test]
fn a_big_commit_after_the_handle_is_dropped_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut builder = Database::builder();
    builder.set_tree_commit_size(64 << 10);
    let db = builder.create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    write(&txn, 40, 16 << 10);
    drop(db);
    commit(txn).unwrap();
    let db = Database::open(&path).unwrap();
    check(&db, 40, 16 << 10);
}

#[test]
fn a_commit_for_the_inserter_after_the_handle_is_dropped_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    write(&txn, 500, 10);
    drop(db);
    commit(txn).unwrap();
    let db = Database::open(&path).unwrap();
    check(&db, 500, 10);
}

#[test]
fn a_durable_commit_on_a_single_backend_after_the_handle_is_dropped_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let file = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap()
    };
    let db = Database::builder()
        .create_with_backend(FileBackend::new(file()).unwrap())
        .unwrap();
    let txn = db.begin_write().unwrap();
    write(&txn, 1, 40);
    drop(db);
    commit(txn).unwrap();
    let db = Database::builder()
        .create_with_backend(FileBackend::new(file()).unwrap())
        .unwrap();
    check(&db, 1, 40);
}

/// On a single backend without a path the WAL lives in memory: a
/// `Durability::None` commit after the handle's drop is checkpointed by
/// the commit itself, as the drop would have (before, it returned `Ok` and
/// died with the process's memory: found by the same review).
#[test]
fn a_nondurable_commit_on_a_memory_backend_after_the_handle_is_dropped_is_kept() {
    let backend = FailingBackend::new();
    let db = Database::builder().create_with_backend(backend.clone()).unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(sluicedb::Durability::None).unwrap();
    write(&txn, 3, 40);
    drop(db);
    commit(txn).unwrap();
    let db = Database::builder().create_with_backend(backend).unwrap();
    check(&db, 3, 40);
}
