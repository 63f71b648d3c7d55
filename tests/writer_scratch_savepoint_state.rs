//! The writer's write set, recycled into the next write
//! transaction: what a transaction leaves in its write set for savepoints
//! (the names it touched, a restore, a persistent savepoint created or
//! deleted, the pending-persistent pin) must not reach the next one, whether
//! it aborted, was dropped, or committed.

mod common;

use sluicedb::{CompactionError, Database, Durability, ReadableDatabase, TableDefinition};

const NUMBERS: TableDefinition<u64, u64> = TableDefinition::new("numbers");
const OTHER: TableDefinition<u64, u64> = TableDefinition::new("other");

fn create() -> (tempfile::TempDir, Database) {
    common::savepoints::small_memtable_db()
}

/// A fresh transaction may take both kinds of savepoint and lower its
/// durability: nothing of an earlier one is in its write set.
fn assert_clean(db: &Database, after: &str) {
    let txn = db.begin_write().unwrap();
    txn.ephemeral_savepoint()
        .unwrap_or_else(|e| panic!("after {after}: a fresh transaction refused an ephemeral savepoint: {e}"));
    let id = txn
        .persistent_savepoint()
        .unwrap_or_else(|e| panic!("after {after}: a fresh transaction refused a persistent savepoint: {e}"));
    txn.abort().unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None)
        .unwrap_or_else(|e| panic!("after {after}: a fresh transaction may not lower its durability: {e:?}"));
    assert!(
        txn.get_persistent_savepoint(id).is_err(),
        "after {after}: an aborted transaction's persistent savepoint exists"
    );
    txn.abort().unwrap();
}

#[test]
fn savepoint_state_never_outlives_its_transaction() {
    let (_dir, mut db) = create();
    let txn = db.begin_write().unwrap();
    txn.open_table(NUMBERS).unwrap().insert(1, 1).unwrap();
    txn.commit().unwrap();
    assert_clean(&db, "a commit");

    // Touched names: an open, a delete of a missing table, a rename.
    let txn = db.begin_write().unwrap();
    txn.open_table(OTHER).unwrap();
    drop(txn);
    assert_clean(&db, "an open then a drop");
    let txn = db.begin_write().unwrap();
    assert!(!txn.delete_table(OTHER).unwrap());
    txn.abort().unwrap();
    assert_clean(&db, "a delete of a missing table then an abort");
    let txn = db.begin_write().unwrap();
    txn.rename_table(NUMBERS, OTHER).unwrap();
    txn.abort().unwrap();
    assert_clean(&db, "a rename then an abort");

    // A persistent savepoint created, then the transaction dropped: its
    // pending pin goes with it (compaction is allowed again).
    let txn = db.begin_write().unwrap();
    txn.persistent_savepoint().unwrap();
    drop(txn);
    assert_clean(&db, "a persistent savepoint then a drop");
    db.compact()
        .expect("compaction refused after the savepoint's transaction was dropped");

    // A persistent savepoint committed, then deleted in a transaction that
    // aborts (persistent_modified set), then restored in one that aborts
    // (restored set).
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.abort().unwrap();
    assert_clean(&db, "a deleted persistent savepoint then an abort");
    let mut txn = db.begin_write().unwrap();
    let savepoint = txn.get_persistent_savepoint(id).unwrap();
    txn.open_table(NUMBERS).unwrap().insert(2, 2).unwrap();
    txn.restore_savepoint(&savepoint).unwrap();
    drop(savepoint);
    txn.abort().unwrap();
    assert_clean(&db, "a restore then an abort");
    let mut txn = db.begin_write().unwrap();
    let savepoint = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&savepoint).unwrap();
    drop(savepoint);
    txn.commit().unwrap();
    assert_clean(&db, "a restore then a commit");

    // The stored savepoint still blocks compaction; deleted, it does not.
    assert!(matches!(db.compact(), Err(CompactionError::PersistentSavepointExists)));
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_persistent_savepoint(id).unwrap());
    txn.commit().unwrap();
    assert_clean(&db, "a deleted persistent savepoint then a commit");
    db.compact().unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(NUMBERS).unwrap();
    assert_eq!(t.get(1).unwrap().map(|v| v.value()), Some(1));
    assert_eq!(t.get(2).unwrap().map(|v| v.value()), None);
}
