//! Leaves of byte-ordered trees are referenced by their shortest separators
//! (`btree::apply::write_nodes`): long keys that differ early take a few
//! bytes each in the branches, so their tree needs far fewer branch pages
//! than the same keys made to differ late, and every key still routes to
//! its leaf, through inserts, removals that merge leaves, and reopens. The
//! table stats predict it before the flush (`Census::add_separator`).

use sluicedb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, TableStats,
};

const EARLY: TableDefinition<&str, u64> = TableDefinition::new("early");
const LATE: TableDefinition<&str, u64> = TableDefinition::new("late");
const KEYS: u64 = 6000;

fn early(i: u64) -> String {
    format!("{i:08}{}", "-suffix".repeat(20))
}

fn late(i: u64) -> String {
    format!("{}{i:08}", "-suffix".repeat(20))
}

fn stats(db: &Database) -> (TableStats, TableStats) {
    let read = db.begin_read().unwrap();
    let e = read.open_table(EARLY).unwrap().stats().unwrap();
    let l = read.open_table(LATE).unwrap().stats().unwrap();
    (e, l)
}

/// Every key `keep` says is present reads back, in order, from both tables.
fn check(db: &Database, keep: impl Fn(u64) -> bool) {
    let read = db.begin_read().unwrap();
    for (def, name) in [(EARLY, early as fn(u64) -> String), (LATE, late)] {
        let table = read.open_table(def).unwrap();
        for i in 0..KEYS {
            let got = table.get(name(i).as_str()).unwrap().map(|v| v.value());
            assert_eq!(got, keep(i).then_some(i), "key {i} of {}", def.name());
        }
        let scanned: Vec<u64> = table.iter().unwrap().map(|e| e.unwrap().1.value()).collect();
        let expected: Vec<u64> = (0..KEYS).filter(|&i| keep(i)).collect();
        assert_eq!(scanned, expected, "a scan of {}", def.name());
    }
}

#[test]
fn early_differing_keys_take_few_branch_pages_and_all_route() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut e = txn.open_table(EARLY).unwrap();
        let mut l = txn.open_table(LATE).unwrap();
        // Out of order, so the flush's leaves split and merge as they fill.
        for i in (0..KEYS).rev() {
            e.insert(early(i).as_str(), i).unwrap();
            l.insert(late(i).as_str(), i).unwrap();
        }
    }
    txn.commit().unwrap();

    // Predicted while the writes wait in the memtable...
    let (e_predicted, l_predicted) = stats(&db);
    db.checkpoint().unwrap();
    // ... and as the flushed trees are.
    let (e, l) = stats(&db);
    assert_eq!(e.leaf_pages(), l.leaf_pages(), "the same entries fill the same leaves");
    assert!(
        e.branch_pages() * 3 < l.branch_pages(),
        "{} branch pages for early-differing keys, {} for late-differing ones",
        e.branch_pages(),
        l.branch_pages()
    );
    assert!(
        e_predicted.branch_pages() * 3 < l_predicted.branch_pages(),
        "predicted {} against {}",
        e_predicted.branch_pages(),
        l_predicted.branch_pages()
    );
    check(&db, |_| true);
    assert!(db.check_integrity().unwrap());

    // Removing most keys merges leaves, whose new neighbours get new
    // separators; the rest still route, in new inserts too.
    let txn = db.begin_write().unwrap();
    {
        let mut e = txn.open_table(EARLY).unwrap();
        let mut l = txn.open_table(LATE).unwrap();
        for i in (0..KEYS).filter(|i| i % 4 != 0) {
            assert_eq!(e.remove(early(i).as_str()).unwrap().map(|v| v.value()), Some(i));
            assert_eq!(l.remove(late(i).as_str()).unwrap().map(|v| v.value()), Some(i));
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    check(&db, |i| i % 4 == 0);
    let txn = db.begin_write().unwrap();
    {
        let mut e = txn.open_table(EARLY).unwrap();
        let mut l = txn.open_table(LATE).unwrap();
        for i in (0..KEYS).filter(|i| i % 4 == 1) {
            e.insert(early(i).as_str(), i).unwrap();
            l.insert(late(i).as_str(), i).unwrap();
        }
    }
    txn.commit().unwrap();
    drop(db);
    let mut db = Database::open(&path).unwrap();
    check(&db, |i| i % 4 < 2);
    assert!(db.check_integrity().unwrap());
}
