//! `ReadableTableMetadata::stats` and `TableStats` (issue 14, item 3):
//! `stored_bytes` counts the key and value bytes of every entry the handle
//! sees (unflushed commits and a write transaction's own writes included);
//! the page figures describe the table's tree in the data file, so they
//! appear once a checkpoint flushed it, and add up with the stored bytes.

use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableStats};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

fn expected_bytes(n: u64, value_len: usize) -> u64 {
    n * (8 + value_len as u64)
}

fn read_stats(db: &Database) -> TableStats {
    db.begin_read().unwrap().open_table(T).unwrap().stats().unwrap()
}

#[test]
fn stats_count_every_entry_and_the_flushed_tree() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let value = vec![7u8; 100];
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..2000u64 {
            t.insert(i, value.as_slice()).unwrap();
        }
        // The transaction's own writes count.
        assert_eq!(t.stats().unwrap().stored_bytes(), expected_bytes(2000, 100));
        // One value too large for a leaf.
        t.insert(5000, vec![1u8; 100_000].as_slice()).unwrap();
    }
    txn.commit().unwrap();
    let total = expected_bytes(2000, 100) + 8 + 100_000;

    let before = read_stats(&db);
    assert_eq!(before.stored_bytes(), total);

    db.checkpoint().unwrap();
    let after = read_stats(&db);
    assert_eq!(after.stored_bytes(), total);
    assert!(after.tree_height() >= 2, "{after:?}");
    assert!(after.leaf_pages() >= 2 && after.branch_pages() >= 1, "{after:?}");
    assert!(after.metadata_bytes() > 0, "{after:?}");
    // Whole pages hold the entries, the branch keys and the rest.
    let pages = after.leaf_pages() + after.branch_pages();
    assert!(
        pages * 4096 + 100_000 + 4096 >= total + after.metadata_bytes(),
        "{after:?}"
    );

    // A removal shows in the bytes at once.
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().remove(5000).unwrap();
    txn.commit().unwrap();
    assert_eq!(read_stats(&db).stored_bytes(), expected_bytes(2000, 100));
}

#[test]
fn an_empty_table_has_empty_stats() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    let stats = txn.open_table(T).unwrap().stats().unwrap();
    assert_eq!(stats, TableStats::default());
}
