//! The tree filter (a Bloom filter of the tree's keys that lets a lookup of
//! an absent key skip the tree) never hides a key a snapshot holds: through
//! the build that follows an open, the rebuilds as the tree grows past a
//! filter's size, removals (which a filter never forgets), and snapshots
//! older than the filter a newer state carries. Every `insert` and `remove`
//! returns the old value the model says, and held snapshots read exactly
//! their commit.

use std::collections::BTreeMap;

use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const TABLE: TableDefinition<u64, u64> = TableDefinition::new("t");
/// Fresh keys a round adds: over the rounds, several times the smallest
/// filter's capacity (64Ki keys), so rebuilds start and finish mid-test.
const FRESH: u64 = 25_000;
const ROUNDS: u64 = 8;

type Model = BTreeMap<u64, u64>;

/// A key spread over the u64 range (so the tree's leaves interleave
/// rounds), distinct for distinct `i`.
fn key(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One round: `FRESH` new keys, an overwrite of every 7th key written so
/// far, a removal of every 11th; each old value checked against the model.
fn round(db: &Database, model: &mut Model, r: u64) {
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(TABLE).unwrap();
        for i in r * FRESH..(r + 1) * FRESH {
            let old = table.insert(key(i), i + r).unwrap().map(|v| v.value());
            assert_eq!(old, model.insert(key(i), i + r), "fresh key {i} in round {r}");
        }
        for i in (0..r * FRESH).step_by(7) {
            let old = table.insert(key(i), i * 3 + r).unwrap().map(|v| v.value());
            assert_eq!(
                old,
                model.insert(key(i), i * 3 + r),
                "overwrite of key {i} in round {r}"
            );
        }
        for i in (r..r * FRESH).step_by(11) {
            let old = table.remove(key(i)).unwrap().map(|v| v.value());
            assert_eq!(old, model.remove(&key(i)), "removal of key {i} in round {r}");
        }
        assert_eq!(table.len().unwrap(), model.len() as u64);
    }
    txn.commit().unwrap();
    // Into the tree: the next round's lookups go through it and its filter.
    db.checkpoint().unwrap();
}

/// Every key any round wrote (present or removed) through `txn`.
fn check(txn: &sluicedb::ReadTransaction, model: &Model, upto: u64, at: &str) {
    let table = txn.open_table(TABLE).unwrap();
    for i in 0..upto {
        let got = table.get(key(i)).unwrap().map(|v| v.value());
        assert_eq!(got, model.get(&key(i)).copied(), "key {i} read {at}");
    }
    assert_eq!(table.len().unwrap(), model.len() as u64, "len {at}");
}

#[test]
fn lookups_through_the_tree_filter_match_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model = Model::new();
    let mut held = Vec::new();
    {
        let db = Database::create(&path).unwrap();
        for r in 0..ROUNDS / 2 {
            round(&db, &mut model, r);
            if r % 2 == 1 {
                held.push((db.begin_read().unwrap(), model.clone(), (r + 1) * FRESH, r));
            }
        }
        for (txn, snapshot, upto, r) in held.drain(..) {
            check(&txn, &snapshot, upto, &format!("through a snapshot of round {r}"));
        }
    }
    // Reopened, the first round's writes look their keys up while the
    // filter of the reopened tree may still be building, the later ones
    // through it.
    let db = Database::open(&path).unwrap();
    for r in ROUNDS / 2..ROUNDS {
        round(&db, &mut model, r);
        held.push((db.begin_read().unwrap(), model.clone(), (r + 1) * FRESH, r));
    }
    for (txn, snapshot, upto, r) in &held {
        check(
            txn,
            snapshot,
            *upto,
            &format!("through a snapshot of round {r}, after reopen"),
        );
    }
    check(&db.begin_read().unwrap(), &model, ROUNDS * FRESH + 1000, "at the end");
}
