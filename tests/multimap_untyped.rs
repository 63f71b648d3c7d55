//! `ReadTransaction::open_untyped_multimap_table`, as redb's: the table's
//! `len` (pairs) and `stats` without its types, equal to the typed table's;
//! it holds the transaction (close refuses while it lives); a missing table
//! is `TableDoesNotExist` and an ordinary table `TableIsNotMultimap`.

use std::collections::BTreeSet;

use proptest::prelude::*;
use sluicedb::{
    Database, MultimapTableDefinition, MultimapTableHandle, ReadableDatabase, ReadableTableMetadata, TableDefinition,
    TableError, TransactionError,
};

const T: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("t");
const PLAIN: TableDefinition<u64, u64> = TableDefinition::new("plain");

#[test]
fn untyped_len_and_stats_are_the_typed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        t.insert("a", 1).unwrap();
        t.insert("a", 2).unwrap();
        t.insert("b", 1).unwrap();
        txn.open_table(PLAIN).unwrap().insert(1, 1).unwrap();
    }
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    let typed = read.open_multimap_table(T).unwrap();
    // By definition, by name, and by a listed handle.
    let listed = read.list_multimap_tables().unwrap().next().unwrap();
    for untyped in [
        read.open_untyped_multimap_table(T).unwrap(),
        read.open_untyped_multimap_table("t").unwrap(),
        read.open_untyped_multimap_table(listed).unwrap(),
    ] {
        assert_eq!(untyped.name(), "t");
        assert_eq!(untyped.len().unwrap(), 3);
        assert!(!untyped.is_empty().unwrap());
        let (a, b) = (typed.stats().unwrap(), untyped.stats().unwrap());
        assert_eq!(
            (a.tree_height(), a.leaf_pages(), a.branch_pages(), a.stored_bytes()),
            (b.tree_height(), b.leaf_pages(), b.branch_pages(), b.stored_bytes())
        );
        assert_eq!(b.stored_bytes(), 3 + 3 * 8);
    }
    assert!(matches!(
        read.open_untyped_multimap_table("missing"),
        Err(TableError::TableDoesNotExist(name)) if name == "missing"
    ));
    assert!(matches!(
        read.open_untyped_multimap_table("plain"),
        Err(TableError::TableIsNotMultimap(name)) if name == "plain"
    ));
}

#[test]
fn an_untyped_multimap_table_holds_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_multimap_table(T).unwrap();
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    let untyped = read.open_untyped_multimap_table(T).unwrap();
    let read = match read.close() {
        Err(TransactionError::ReadTransactionStillInUse(read)) => read,
        other => panic!("close with an untyped table alive: {other:?}"),
    };
    // Later commits do not change what it sees.
    let txn = db.begin_write().unwrap();
    txn.open_multimap_table(T).unwrap().insert("x", 1).unwrap();
    txn.commit().unwrap();
    assert_eq!(untyped.len().unwrap(), 0);
    drop(untyped);
    read.close().unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// For any set of pairs, written over several commits, the untyped
    /// table's `len` is the number of distinct pairs and its `stats` are
    /// the typed table's.
    #[test]
    fn untyped_figures_match_the_typed_table(
        batches in proptest::collection::vec(
            proptest::collection::vec((0u8..20, 0u64..30, any::<bool>()), 0..40),
            1..4,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        let mut model = BTreeSet::new();
        for batch in batches {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_multimap_table(T).unwrap();
                for (k, v, remove) in batch {
                    let key = format!("key{k}");
                    if remove {
                        t.remove(key.as_str(), v).unwrap();
                        model.remove(&(key, v));
                    } else {
                        t.insert(key.as_str(), v).unwrap();
                        model.insert((key, v));
                    }
                }
            }
            txn.commit().unwrap();
        }
        let read = db.begin_read().unwrap();
        let untyped = read.open_untyped_multimap_table("t").unwrap();
        prop_assert_eq!(untyped.len().unwrap(), model.len() as u64);
        let (a, b) = (read.open_multimap_table(T).unwrap().stats().unwrap(), untyped.stats().unwrap());
        prop_assert_eq!(a.stored_bytes(), b.stored_bytes());
        prop_assert_eq!(a.leaf_pages(), b.leaf_pages());
        let stored: usize = model.iter().map(|(k, _)| k.len() + 8).sum();
        prop_assert_eq!(b.stored_bytes(), stored as u64);
    }
}
