//! `ReadOnlyMultimapTable::{get_owned, range_owned}`, as redb's: the value
//! iterators, ranges and guards they return keep the read transaction's
//! snapshot live after the table and the transaction handle are dropped
//! (`ReadTransaction::close` refuses while any lives), and they read that
//! snapshot whatever is committed later. The property test checks both
//! against a `BTreeMap<u64, BTreeSet<u64>>` model from both ends.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sluicedb::{
    Database, MultimapTableDefinition, OwnedAccessGuard, OwnedMultimapValue, ReadableDatabase, TransactionError,
};

const T: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("t");

type Model = BTreeMap<u64, BTreeSet<u64>>;

fn write(db: &Database, model: &Model) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        for (&k, values) in model {
            for &v in values {
                t.insert(k, v).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

/// Replaces everything with the values shifted by 1000 (so a stale read
/// would show).
fn overwrite(db: &Database) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(T).unwrap();
        for k in 0..10u64 {
            t.remove_all(k).unwrap();
            t.insert(k, k + 1000).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn values(mut it: OwnedMultimapValue<u64>, reverse: bool) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let next = if reverse { it.next_back() } else { it.next() };
        let Some(v) = next else { break };
        out.push(v.unwrap().value());
    }
    if reverse {
        out.reverse();
    }
    out
}

#[test]
fn owned_values_and_guards_keep_the_transaction_alive() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    write(&db, &(0..3).map(|k| (k, (0..5).collect())).collect());

    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(T).unwrap();
    let mut vals = table.get_owned(0).unwrap();
    assert_eq!((vals.len(), vals.is_empty()), (5, false));
    let first = vals.next().unwrap().unwrap();
    let last = vals.next_back().unwrap().unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(table.get_owned(7).unwrap().len(), 0);
    drop(vals);
    drop(table);
    // The guards alone hold the transaction.
    let read = match read.close() {
        Err(TransactionError::ReadTransactionStillInUse(read)) => read,
        other => panic!("close with guards alive: {other:?}"),
    };
    overwrite(&db);
    assert_eq!((first.value(), last.value()), (0, 4));
    drop((first, last));
    read.close().unwrap();
}

#[test]
fn owned_range_entries_keep_the_transaction_alive() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    write(&db, &(0..3).map(|k| (k, (10..13).collect())).collect());

    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(T).unwrap();
    let mut range = table.range_owned(0u64..).unwrap();
    let (key, vals) = range.next().unwrap().unwrap();
    let (back_key, back_vals) = range.next_back().unwrap().unwrap();
    drop(range);
    drop(table);
    // Each held item alone keeps the transaction: drop them one by one.
    let mut held: Vec<Box<dyn std::any::Any>> = vec![Box::new(key), Box::new(back_key)];
    held.push(Box::new(vals));
    let mut read = read;
    for _ in 0..held.len() {
        read = match read.close() {
            Err(TransactionError::ReadTransactionStillInUse(read)) => *read,
            other => panic!("close with an owned item alive: {other:?}"),
        };
        held.pop();
    }
    read = match read.close() {
        Err(TransactionError::ReadTransactionStillInUse(read)) => *read,
        other => panic!("close with owned values alive: {other:?}"),
    };
    overwrite(&db);
    assert_eq!(values(back_vals, true), [10, 11, 12]);
    read.close().unwrap();
}

#[test]
fn owned_key_guard_reads_after_the_database_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    write(&db, &[(4, [1].into())].into());
    let guard: OwnedAccessGuard<u64> = {
        let read = db.begin_read().unwrap();
        let table = read.open_multimap_table(T).unwrap();
        let (key, _) = table.range_owned::<u64>(..).unwrap().next().unwrap().unwrap();
        key
    };
    overwrite(&db);
    assert_eq!(guard.value(), 4);
}

fn model_strategy() -> impl Strategy<Value = Model> {
    proptest::collection::btree_map(0u64..10, proptest::collection::btree_set(0u64..50, 1..8), 0..10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// `get_owned` and `range_owned` (either direction, any bounds) read
    /// the snapshot as the model has it, with the table and the transaction
    /// handle dropped and later commits made before reading.
    #[test]
    fn owned_reads_match_the_model(model in model_strategy(), lo in 0u64..11, hi in 0u64..11, reverse in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        write(&db, &model);
        let (gets, range) = {
            let read = db.begin_read().unwrap();
            let table = read.open_multimap_table(T).unwrap();
            let gets: Vec<_> = (0..11u64).map(|k| table.get_owned(k).unwrap()).collect();
            (gets, table.range_owned(lo..hi).unwrap())
        };
        overwrite(&db);
        for (k, it) in gets.into_iter().enumerate() {
            let expected: Vec<u64> = model.get(&(k as u64)).map(|s| s.iter().copied().collect()).unwrap_or_default();
            prop_assert_eq!(it.len(), expected.len() as u64);
            prop_assert_eq!(values(it, reverse), expected);
        }
        let mut got = Vec::new();
        let mut range = range;
        loop {
            let next = if reverse { range.next_back() } else { range.next() };
            let Some(entry) = next else { break };
            let (k, vals) = entry.unwrap();
            got.push((k.value(), values(vals, reverse)));
        }
        if reverse {
            got.reverse();
        }
        let expected: Vec<(u64, Vec<u64>)> = if lo < hi {
            model.range(lo..hi).map(|(&k, s)| (k, s.iter().copied().collect())).collect()
        } else {
            Vec::new()
        };
        prop_assert_eq!(got, expected);
    }
}
