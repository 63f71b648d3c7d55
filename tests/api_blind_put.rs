//! `Table::put`, the blind write: it reads nothing below as it writes, and
//! the table's entry count learns which of its keys were already there when
//! the count is next needed (`len`, the commit). Random transactions mixing
//! blind puts with inserts, removes and `len` over a table whose entries lie
//! in the tree, in frozen and active memtables and behind tombstones, checked
//! against a model: what `len` says inside the transaction, after the commit
//! and after a reopen, and the entries themselves.

mod common;

use std::collections::BTreeMap;

use common::Rng;
use common::keys::str_key;
use sluicedb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("blind");

str_key!(
    /// Strings ordered by length, then bytes: a table not in byte order,
    /// whose unread keys are counted one lookup at a time.
    ByLength,
    "test::ByLength",
    |a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b))
);

const C: TableDefinition<ByLength, u64> = TableDefinition::new("by_length");

fn entries(db: &Database) -> Vec<(u64, Vec<u8>)> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    table
        .iter()
        .unwrap()
        .map(|entry| {
            let (k, v) = entry.unwrap();
            (k.value(), v.value().to_vec())
        })
        .collect()
}

fn committed_len(db: &Database) -> u64 {
    db.begin_read().unwrap().open_table(T).unwrap().len().unwrap()
}

#[test]
fn blind_puts_keep_len_and_entries_equal_to_a_model_through_commits_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Small memtables and cache: the table's entries spread over the tree
    // (leaves often not cached), frozen memtables and the active one.
    let open = |create: bool| {
        let mut builder = Database::builder();
        builder.set_memtable_size(64 << 10).set_cache_size(256 << 10);
        if create {
            builder.create(&path)
        } else {
            builder.open(&path)
        }
        .unwrap()
    };
    let mut db = open(true);
    for round in 0..40u64 {
        if round % 10 == 9 {
            drop(db);
            db = open(false);
            assert_eq!(
                committed_len(&db),
                model.len() as u64,
                "len after reopen, round {round}"
            );
        }
        let txn = db.begin_write().unwrap();
        let mut working = model.clone();
        {
            let mut table = txn.open_table(T).unwrap();
            let ops = 1 + rng.next() % 400;
            for step in 0..ops {
                let key = rng.next() % 3000;
                let value = format!("{round}.{step}").into_bytes();
                match rng.next() % 10 {
                    0..=4 => {
                        table.put(key, value.as_slice()).unwrap();
                        working.insert(key, value);
                    }
                    5 | 6 => {
                        let old = table.insert(key, value.as_slice()).unwrap().map(|v| v.value().to_vec());
                        assert_eq!(old, working.insert(key, value), "insert's old value");
                    }
                    7 | 8 => {
                        let old = table.remove(key).unwrap().map(|v| v.value().to_vec());
                        assert_eq!(old, working.remove(&key), "remove's old value");
                    }
                    _ => {
                        assert_eq!(table.len().unwrap(), working.len() as u64, "len in the transaction");
                        let got = table.get(key).unwrap().map(|v| v.value().to_vec());
                        assert_eq!(got.as_ref(), working.get(&key), "get in the transaction");
                    }
                }
            }
            assert_eq!(
                table.len().unwrap(),
                working.len() as u64,
                "len before commit, round {round}"
            );
        }
        if rng.next().is_multiple_of(5) {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            model = working;
        }
        assert_eq!(
            committed_len(&db),
            model.len() as u64,
            "len after commit, round {round}"
        );
        if round % 7 == 3 {
            db.checkpoint().unwrap();
        }
    }
    let expected: Vec<(u64, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(entries(&db), expected);
}

#[test]
fn a_blind_put_counts_once_whatever_follows_it_in_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, b"one".as_slice()).unwrap();
    txn.commit().unwrap();

    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        // Over a present key, twice: still one entry.
        table.put(1, b"uno".as_slice()).unwrap();
        table.put(1, b"eins".as_slice()).unwrap();
        // A new key, then removed in the same transaction: no entry.
        table.put(2, b"two".as_slice()).unwrap();
        assert_eq!(table.remove(2).unwrap().unwrap().value(), b"two");
        // A new key that an insert then replaces: the insert sees the put.
        table.put(3, b"three".as_slice()).unwrap();
        assert_eq!(table.insert(3, b"drei".as_slice()).unwrap().unwrap().value(), b"three");
        // The present key removed after its put: gone.
        table.put(4, b"four".as_slice()).unwrap();
        assert_eq!(table.remove(1).unwrap().unwrap().value(), b"eins");
        assert_eq!(table.len().unwrap(), 2);
    }
    txn.commit().unwrap();
    assert_eq!(committed_len(&db), 2);
    assert_eq!(entries(&db), vec![(3, b"drei".to_vec()), (4, b"four".to_vec())]);
}

#[test]
fn blind_puts_into_a_table_of_another_order_are_counted_at_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::builder().set_memtable_size(4 << 10).create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(C).unwrap();
            for i in 0..200u64 {
                table.insert(format!("k{i}").as_str(), i).unwrap();
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(C).unwrap();
            // 100 present keys and 50 new ones.
            for i in 100..250u64 {
                table.put(format!("k{i}").as_str(), i * 2).unwrap();
            }
        }
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        assert_eq!(read.open_table(C).unwrap().len().unwrap(), 250);
    }
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let table = read.open_table(C).unwrap();
    assert_eq!(table.len().unwrap(), 250);
    assert_eq!(table.get("k120").unwrap().unwrap().value(), 240);
    assert_eq!(table.get("k7").unwrap().unwrap().value(), 7);
}

/// Keys long enough that a branch holds a few dozen: 20K of them make a
/// tree four levels high, so the lookups of blind puts' keys pass pinned
/// nodes with pinned children, then leaves below them, some not cached.
#[test]
fn blind_puts_over_a_deep_tree_are_counted_at_commit() {
    const LONG: TableDefinition<&[u8], u64> = TableDefinition::new("long");
    let long_key = |i: u64| {
        // Keys that differ only in their last bytes: separators as long
        // as the keys.
        let mut key = vec![b'k'; 200];
        key[192..].copy_from_slice(&i.to_be_bytes());
        key
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::builder().set_cache_size(1 << 20).create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(LONG).unwrap();
        for i in (0..40_000u64).step_by(2) {
            table.insert(long_key(i).as_slice(), i).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let read = db.begin_read().unwrap();
    let stats = read.open_table(LONG).unwrap().stats().unwrap();
    assert!(stats.tree_height() >= 4, "a tree {} levels high", stats.tree_height());
    drop(read);
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(LONG).unwrap();
        // Every other key present: 3000 replaced, 3000 new, in no order.
        let mut rng = Rng(7);
        let mut keys: Vec<u64> = (10_000..16_000).collect();
        for i in (1..keys.len()).rev() {
            keys.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for &i in &keys {
            table.put(long_key(i).as_slice(), i + 1).unwrap();
        }
        assert_eq!(table.len().unwrap(), 23_000);
    }
    txn.commit().unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let table = read.open_table(LONG).unwrap();
    assert_eq!(table.len().unwrap(), 23_000);
    assert_eq!(table.get(long_key(10_001).as_slice()).unwrap().unwrap().value(), 10_002);
    assert_eq!(table.get(long_key(10_002).as_slice()).unwrap().unwrap().value(), 10_003);
    assert_eq!(table.get(long_key(20_002).as_slice()).unwrap().unwrap().value(), 20_002);
}

/// Long runs of writes to present keys (which turn the tree filter's gate
/// off: the filter proves none of them absent), then of new keys (which
/// turn it on again), then a mix, through `insert` and `put`: every old
/// value and every count stays exact whichever way the lookups went.
#[test]
fn counts_and_old_values_stay_exact_as_writes_turn_from_present_to_new_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let value = |i: u64, round: u64| format!("{i}-{round}").into_bytes();
    let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        for i in 0..20_000u64 {
            table.insert(i * 2, value(i * 2, 0).as_slice()).unwrap();
            model.insert(i * 2, value(i * 2, 0));
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let mut rng = Rng(11);
    // Present keys, new keys, then one new key in eight.
    let phases: [fn(&mut Rng) -> u64; 3] = [
        |rng| (rng.next() % 20_000) * 2,
        |rng| 40_000 + rng.next() % 1_000_000,
        |rng| {
            if rng.next().is_multiple_of(8) {
                2_000_000 + rng.next() % 1_000_000
            } else {
                (rng.next() % 20_000) * 2
            }
        },
    ];
    for (phase, key_of) in phases.iter().enumerate() {
        for round in 0..6u64 {
            let round = phase as u64 * 10 + round + 1;
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(T).unwrap();
                for n in 0..1_000 {
                    let key = key_of(&mut rng);
                    let new = value(key, round);
                    if n % 2 == 0 {
                        let old = table.insert(key, new.as_slice()).unwrap().map(|v| v.value().to_vec());
                        assert_eq!(old, model.get(&key).cloned(), "insert of {key} in round {round}");
                    } else {
                        table.put(key, new.as_slice()).unwrap();
                    }
                    model.insert(key, new);
                }
                assert_eq!(table.len().unwrap(), model.len() as u64, "round {round}");
            }
            txn.commit().unwrap();
            assert_eq!(committed_len(&db), model.len() as u64, "round {round}");
            if round.is_multiple_of(3) {
                db.checkpoint().unwrap();
            }
        }
    }
    let expected: Vec<(u64, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(entries(&db), expected);
}
