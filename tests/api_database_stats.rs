//! `WriteTransaction::stats` and `DatabaseStats` (issue 14, item 4): the
//! figures of the data file's trees, which sum the tables' `TableStats`
//! once a checkpoint flushed every commit; before that, with the unflushed
//! commits and the transaction's own writes counted as the tables'
//! `TableStats` count them, except a table with a handle open, counted as
//! of the transaction's start (as redb counts it).

use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const A: TableDefinition<u64, u64> = TableDefinition::new("a");
const B: TableDefinition<&str, &str> = TableDefinition::new("b");

#[test]
fn database_stats_sum_the_flushed_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut a = txn.open_table(A).unwrap();
        for i in 0..5000 {
            a.insert(i, i).unwrap();
        }
        txn.open_table(B).unwrap().insert("hello", "world").unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();

    let read = db.begin_read().unwrap();
    let (a, b) = (
        read.open_table(A).unwrap().stats().unwrap(),
        read.open_table(B).unwrap().stats().unwrap(),
    );
    assert_eq!(a.stored_bytes(), 5000 * 16);
    assert_eq!(b.stored_bytes(), 10);

    let txn = db.begin_write().unwrap();
    let stats = txn.stats().unwrap();
    assert_eq!(stats.stored_bytes(), a.stored_bytes() + b.stored_bytes());
    assert_eq!(stats.leaf_pages(), a.leaf_pages() + b.leaf_pages());
    assert_eq!(stats.branch_pages(), a.branch_pages() + b.branch_pages());
    assert_eq!(stats.tree_height(), a.tree_height().max(b.tree_height()));
    assert!(stats.allocated_pages() >= stats.leaf_pages() + stats.branch_pages());
    assert!(stats.metadata_bytes() > 0 && stats.fragmented_bytes() > 0);
    assert!(stats.page_size() >= 512);
    let total = stats.allocated_pages() * stats.page_size() as u64;
    assert_eq!(
        total,
        stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes()
    );
    txn.abort().unwrap();
}

#[test]
fn database_stats_count_unflushed_commits_and_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(B).unwrap().insert("hello", "world").unwrap();
    txn.commit().unwrap();

    // Committed, not flushed.
    let txn = db.begin_write().unwrap();
    let stats = txn.stats().unwrap();
    assert_eq!(stats.stored_bytes(), 10);
    assert_eq!((stats.tree_height(), stats.leaf_pages()), (1, 1));
    // The catalog of tables is metadata, flushed or not.
    assert!(stats.metadata_bytes() > 0 && stats.fragmented_bytes() > 0);

    // The transaction's own writes count once their handle is closed; an
    // open handle's table is counted as of the transaction's start.
    let mut a = txn.open_table(A).unwrap();
    for i in 0..1000 {
        a.insert(i, i).unwrap();
    }
    assert_eq!(txn.stats().unwrap().stored_bytes(), 10);
    drop(a);
    assert_eq!(txn.stats().unwrap().stored_bytes(), 10 + 1000 * 16);
    let mut b = txn.open_table(B).unwrap();
    b.insert("hi", "there").unwrap();
    assert_eq!(txn.stats().unwrap().stored_bytes(), 10 + 1000 * 16);
    drop(b);
    assert_eq!(txn.stats().unwrap().stored_bytes(), 10 + 1000 * 16 + 7);
    txn.commit().unwrap();

    // The same figures once flushed, but for the page estimate.
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    let flushed = txn.stats().unwrap();
    assert_eq!(flushed.stored_bytes(), 10 + 1000 * 16 + 7);
    assert!(flushed.leaf_pages() >= 2, "{flushed:?}");
    txn.abort().unwrap();
}
