//! A multimap table of byte-ordered types created before the order letter
//! `p` (metadata `c\0m`) is saved by a persistent savepoint, deleted, and
//! re-created by the new code (metadata `p\0m`, same types). A restore
//! takes an unknown saved order from the table now bound to the name when
//! it holds the same types; that was a byte comparison of the metadata,
//! which the letter broke (the restore was refused though the process had
//! opened the table with its types). It now compares the decoded types
//! (`TableMeta::admits`).

use sluicedb::{Database, MultimapTableDefinition, ReadableDatabase};

const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");

fn any_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.cmp(b)
}

#[test]
fn restore_of_an_old_c_multimap_table_recreated_by_new_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // Process 1: an old file's empty u64 -> u64 multimap table (`c\0m`).
    {
        let db = Database::create(&path).unwrap();
        let mut txn = db.engine().begin_write().unwrap();
        txn.open_table(b"m", b"u64\0u64\0c\0m\0w8,8", any_order).unwrap();
        txn.commit().unwrap();
    }
    // Process 2: typed writes, a persistent savepoint, then the table is
    // deleted.
    let id;
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_multimap_table(M).unwrap();
            t.insert(1, 10).unwrap();
            t.insert(1, 11).unwrap();
        }
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_multimap_table(M).unwrap());
        txn.commit().unwrap();
    }
    // Process 3: the table re-created with the same types, then restored.
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_multimap_table(M).unwrap().insert(2, 20).unwrap();
    txn.commit().unwrap();
    let mut txn = db.begin_write().unwrap();
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp)
        .expect("the re-created table has the saved types and is open: its order is known");
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_multimap_table(M).unwrap();
    let v: Vec<u64> = t.get(1).unwrap().map(|v| v.unwrap().value()).collect();
    assert_eq!(v, [10, 11]);
    assert_eq!(t.get(2).unwrap().count(), 0);
}
