//! `ReadableTableMetadata::stats` and `TableStats` (issue 14, item 3):
//! `stored_bytes` counts the key and value bytes of every entry the handle
//! sees (unflushed commits and a write transaction's own writes included);
//! the page figures describe the table's tree in the data file with the
//! entries not yet flushed into it counted as the pages they will take (an
//! estimate, exact once a checkpoint flushed them), and add up with the
//! stored bytes.

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

#[test]
fn unflushed_entries_count_as_the_pages_a_flush_gives_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let value = vec![3u8; 40];
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        t.insert(0, value.as_slice()).unwrap();
        // One entry in the write set: a one-leaf tree.
        let one = t.stats().unwrap();
        assert_eq!((one.tree_height(), one.leaf_pages(), one.branch_pages()), (1, 1, 0));
        for i in 1..20_000u64 {
            t.insert(i, value.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();

    // In the memtable: the estimate packs whole leaves, a lower bound.
    let unflushed = read_stats(&db);
    assert_eq!(unflushed.stored_bytes(), expected_bytes(20_000, 40));
    db.checkpoint().unwrap();
    let flushed = read_stats(&db);
    assert_eq!(flushed.stored_bytes(), unflushed.stored_bytes());
    assert_eq!(
        unflushed.tree_height(),
        flushed.tree_height(),
        "{unflushed:?} {flushed:?}"
    );
    assert!(
        unflushed.leaf_pages() <= flushed.leaf_pages() && flushed.leaf_pages() <= 2 * unflushed.leaf_pages(),
        "{unflushed:?} {flushed:?}"
    );
    assert!(unflushed.branch_pages() >= 1 && flushed.branch_pages() >= 1);

    // A flushed table with no pending writes reports its tree as it is:
    // another handle, another snapshot, the same figures.
    assert_eq!(read_stats(&db), flushed);
    // Writes on top of the tree add to it; removals wait for the flush.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 20_000..30_000u64 {
            t.insert(i, value.as_slice()).unwrap();
        }
        let grown = t.stats().unwrap();
        assert!(grown.leaf_pages() > flushed.leaf_pages(), "{grown:?}");
        for i in 0..30_000u64 {
            t.remove(i).unwrap();
        }
        let emptied = t.stats().unwrap();
        assert_eq!(emptied.stored_bytes(), 0);
        assert_eq!(emptied.leaf_pages(), flushed.leaf_pages(), "{emptied:?}");
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    assert_eq!(read_stats(&db), TableStats::default());
}
