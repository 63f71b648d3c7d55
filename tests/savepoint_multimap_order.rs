//! Restoring a savepoint of a multimap table of built-in types (u64 -> u64)
//! in a process that has not opened that table. A restore merges the saved
//! entries with the current ones in the table's order
//! (`savepoint::make_equal`), and a multimap table's pair order is never
//! byte order: the restore was refused ("table \"m\" has a custom key order
//! that this process does not know: open it through its typed definition
//! first"), where redb restores it (and when the table was deleted since
//! the savepoint, following that advice meant re-creating it first). A
//! multimap table of byte-ordered types now records so in its metadata
//! (`TableMeta::bytewise_pair`), and any process resolves it to the one
//! byte-wise pair order.

use sluicedb::{Database, MultimapTableDefinition, ReadableDatabase};

const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");

fn values(db: &Database, k: u64) -> Vec<u64> {
    let read = db.begin_read().unwrap();
    let t = read.open_multimap_table(M).unwrap();
    t.get(k).unwrap().map(|v| v.unwrap().value()).collect()
}

fn create(path: &std::path::Path) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(M).unwrap();
        t.insert(1, 10).unwrap();
        t.insert(1, 11).unwrap();
    }
    txn.commit().unwrap();
}

/// A persistent savepoint restored after a reopen, the multimap table still
/// there (only changed since).
#[test]
fn persistent_savepoint_of_a_multimap_table_restores_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    create(&path);
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_multimap_table(M).unwrap().insert(1, 12).unwrap();
    txn.commit().unwrap();
    drop(db);

    let db = Database::open(&path).unwrap();
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp)
        .expect("redb restores a savepoint of a u64 -> u64 multimap table");
    txn.commit().unwrap();
    assert_eq!(values(&db, 1), [10, 11]);
}

/// An ephemeral savepoint in one process: the multimap table (made by an
/// earlier process) was deleted after the savepoint, never opened here.
#[test]
fn ephemeral_savepoint_brings_back_a_deleted_multimap_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    create(&path);
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_multimap_table(M).unwrap());
    txn.commit().unwrap();

    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp)
        .expect("redb restores a deleted u64 -> u64 multimap table");
    txn.commit().unwrap();
    assert_eq!(values(&db, 1), [10, 11]);
}
