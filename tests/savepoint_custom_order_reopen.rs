//! A persistent savepoint of a table with a custom key order, restored by a
//! process that has not seen the saved table: its order comes from the key
//! type the user opens (here on a newer table of the same name and type);
//! before that, the restore is refused with a clear error and changes
//! nothing, never ordering keys by a guess.

mod common;

use common::keys::{CaseInsensitive, child_arg, run_in_child_process};
use sluicedb::{Database, ReadableDatabase, ReadableTable, SavepointError, StorageError, TableDefinition};

const WORDS: TableDefinition<CaseInsensitive, u64> = TableDefinition::new("words");

fn entries(db: &Database) -> Vec<(String, u64)> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(WORDS).unwrap();
    t.iter()
        .unwrap()
        .map(|e| e.unwrap())
        .map(|(k, v)| (k.value().to_string(), v.value()))
        .collect()
}

#[test]
fn child() {
    let Some(path) = child_arg() else { return };
    let db = Database::open(&path).unwrap();
    let id = {
        let txn = db.begin_write().unwrap();
        let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
        assert_eq!(ids.len(), 1);
        ids[0]
    };
    // No key type known yet: refused, nothing changed.
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    match txn.restore_savepoint(&sp) {
        Err(SavepointError::Storage(StorageError::Io(e))) => {
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput)
        }
        other => panic!("expected an unknown-order error, got {other:?}"),
    }
    txn.abort().unwrap();
    // Opening the (newer) table with its type teaches the order.
    assert_eq!(entries(&db), [("other".to_string(), 9)]);
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    txn.commit().unwrap();
    assert_eq!(entries(&db), [("apple".to_string(), 1), ("Berry".to_string(), 2)]);
}

#[test]
fn a_custom_order_savepoint_restores_in_a_fresh_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(WORDS).unwrap();
            t.insert("apple", 1).unwrap();
            t.insert("Berry", 2).unwrap();
        }
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        // A newer table of the same name and type replaces the saved one.
        let txn = db.begin_write().unwrap();
        txn.delete_table(WORDS).unwrap();
        txn.open_table(WORDS).unwrap().insert("other", 9).unwrap();
        txn.commit().unwrap();
    }
    run_in_child_process("child", path.to_str().unwrap());
}
