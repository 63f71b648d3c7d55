//! The values of a multimap key 64 bytes or longer are gathered in chunks
//! (`design/multimap.md`): the key is stored once per chunk, not once per
//! value. Checked here: the space of many values under one long key (redb's
//! `efficient_storage` measure), and a model of long keys with values long
//! enough that chunks split, lose their first value, take a new first one
//! and hold single values larger than a chunk, across commits, aborts,
//! flushes into the tree and reopens.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::multimap::{Staged, check_committed};

use proptest::prelude::*;
use sluicedb::{Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTableMetadata};

const BYTES: MultimapTableDefinition<&[u8], u32> = MultimapTableDefinition::new("bytes");
const TEXT: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("text");

#[test]
fn many_values_under_one_long_key_store_the_key_once_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = Database::create(&path).unwrap();
    let key = [7u8; 1000];
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_multimap_table(BYTES).unwrap();
        // Descending, so every insert lands before the key's first chunk.
        for v in (0..5000u32).rev() {
            assert!(!table.insert(key.as_slice(), v * 2).unwrap());
        }
        for v in 0..5000u32 {
            assert!(!table.insert(key.as_slice(), v * 2 + 1).unwrap());
        }
        assert!(table.insert(key.as_slice(), 4).unwrap());
    }
    let stored = txn.stats().unwrap().stored_bytes();
    // One key per value would be 10 MB.
    assert!(stored < 1 << 20, "stored {stored} bytes");
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let file = std::fs::metadata(&path).unwrap().len();
    assert!(file < 2 << 20, "file of {file} bytes");

    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(BYTES).unwrap();
    assert_eq!(table.len().unwrap(), 10_000);
    assert!(table.stats().unwrap().stored_bytes() < 1 << 20);
    let values: Vec<u32> = table.get(key.as_slice()).unwrap().map(|v| v.unwrap().value()).collect();
    assert_eq!(values, (0..10_000).collect::<Vec<_>>());
    drop(table);
    drop(read);

    // Removing every other value, then all: counts and order hold.
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_multimap_table(BYTES).unwrap();
        for v in (0..10_000u32).step_by(2) {
            assert!(table.remove(key.as_slice(), v).unwrap());
        }
        assert!(!table.remove(key.as_slice(), 0).unwrap());
        assert_eq!(table.len().unwrap(), 5000);
        let odd: Vec<u32> = table
            .get(key.as_slice())
            .unwrap()
            .rev()
            .map(|v| v.unwrap().value())
            .collect();
        assert_eq!(odd, (0..5000).rev().map(|v| v * 2 + 1).collect::<Vec<_>>());
        assert_eq!(table.remove_all(key.as_slice()).unwrap().len(), 5000);
        assert_eq!(table.len().unwrap(), 0);
    }
    txn.commit().unwrap();
    assert!(db.check_integrity().unwrap());
}

/// Keys in `&str` order: one short (a value per engine entry), three long.
fn keys() -> Vec<String> {
    vec![
        "short".to_string(),
        "k".repeat(64),
        format!("{}a", "k".repeat(64)),
        "m".repeat(100),
    ]
}

/// Value `i`: its number first (so the order is `i`'s), then a length that
/// varies from empty to longer than a chunk.
fn value(i: usize) -> String {
    let len = (i * 137) % 1500;
    format!("{i:03}{}", "v".repeat(len))
}

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, usize),
    Remove(usize, usize),
    RemoveAll(usize),
    Commit,
    Abort,
    Checkpoint,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        24 => (0..4usize, 0..40usize).prop_map(|(k, v)| Op::Insert(k, v)),
        10 => (0..4usize, 0..40usize).prop_map(|(k, v)| Op::Remove(k, v)),
        1 => (0..4usize).prop_map(Op::RemoveAll),
        4 => Just(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

type Model = BTreeMap<String, BTreeSet<String>>;

fn check(table: &impl ReadableMultimapTable<&'static str, &'static str>, model: &Model) {
    let pairs: usize = model.values().map(BTreeSet::len).sum();
    assert_eq!(table.len().unwrap(), pairs as u64);
    let read = |entry: Result<(sluicedb::AccessGuard<&str>, sluicedb::MultimapValue<&str>), _>| {
        let (k, vs) = entry.unwrap();
        let vs: Vec<String> = vs.map(|v| v.unwrap().value().to_string()).collect();
        (k.value().to_string(), vs)
    };
    let expected: Vec<(String, Vec<String>)> = model
        .iter()
        .map(|(k, vs)| (k.clone(), vs.iter().cloned().collect()))
        .collect();
    let forward: Vec<_> = table.iter().unwrap().map(read).collect();
    assert_eq!(forward, expected);
    let mut backward: Vec<_> = table.iter().unwrap().rev().map(read).collect();
    backward.reverse();
    assert_eq!(backward, expected);
    for key in keys() {
        let want: Vec<String> = model
            .get(&key)
            .map(|vs| vs.iter().cloned().collect())
            .unwrap_or_default();
        let got: Vec<String> = table
            .get(key.as_str())
            .unwrap()
            .map(|v| v.unwrap().value().to_string())
            .collect();
        assert_eq!(got, want);
    }
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let open = |create: bool| {
        let mut builder = Database::builder();
        // Small memtables: chunks are flushed into the tree every few commits.
        builder.set_memtable_size(16 << 10);
        if create {
            builder.create(&path)
        } else {
            builder.open(&path)
        }
        .unwrap()
    };
    let keys = keys();
    let mut db = open(true);
    let mut s = Staged::new(Model::new());
    for op in ops {
        match op {
            Op::Insert(k, v) | Op::Remove(k, v) => {
                let (txn, working) = s.begin(&db);
                let mut table = txn.open_multimap_table(TEXT).unwrap();
                let (key, value) = (keys[*k].as_str(), value(*v));
                let values = working.entry(key.to_string()).or_default();
                if matches!(op, Op::Insert(..)) {
                    assert_eq!(table.insert(key, value.as_str()).unwrap(), !values.insert(value));
                } else {
                    assert_eq!(table.remove(key, value.as_str()).unwrap(), values.remove(&value));
                }
                working.retain(|_, vs| !vs.is_empty());
                check(&table, working);
            }
            Op::RemoveAll(k) => {
                let (txn, working) = s.begin(&db);
                let mut table = txn.open_multimap_table(TEXT).unwrap();
                let want: Vec<String> = working
                    .remove(&keys[*k])
                    .map(|vs| vs.into_iter().collect())
                    .unwrap_or_default();
                let got: Vec<String> = table
                    .remove_all(keys[*k].as_str())
                    .unwrap()
                    .map(|v| v.unwrap().value().to_string())
                    .collect();
                assert_eq!(got, want);
                check(&table, working);
            }
            Op::Commit => s.commit(None),
            Op::Abort => s.abort(),
            Op::Checkpoint => db.checkpoint().unwrap(),
            Op::Reopen => {
                s.drop_txn();
                drop(db);
                db = open(false);
            }
        }
    }
    s.drop_txn();
    let committed = &s.committed;
    check_committed(&mut db, TEXT, committed.is_empty(), |table| check(table, committed));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn long_keys_with_chunked_values_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}
