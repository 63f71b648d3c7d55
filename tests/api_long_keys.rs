//! Keys up to the key limit (2000 bytes) in a real tree: thousands of them,
//! sharing long prefixes so that branch separators are nearly as long as
//! the keys (two fit a branch page), with short, longest-inline and
//! overflow values, through removals, a checkpoint and a reopen, in byte
//! order and in a custom order (whose separators are whole keys). Every
//! state is compared with a model and the file's integrity is checked.

mod common;

use std::collections::BTreeMap;

use common::keys::Reversed;
use sluicedb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const BYTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bytes");
/// Reverse byte order: a custom order, so the tree keeps whole keys in its
/// branches.
const REVERSED: TableDefinition<Reversed, &[u8]> = TableDefinition::new("reversed");

/// Key `i`: 1,500 to 2,000 ASCII bytes, all but the last sixteen the same
/// for neighbours, so the shortest separator between two is most of a key.
fn key(i: u32) -> Vec<u8> {
    let len = 1500 + (i as usize * 37) % 501;
    let mut key = vec![b'k'; len - 16];
    key.extend_from_slice(format!("{i:08x}{:08x}", i * 7).as_bytes());
    key
}

fn text(key: &[u8]) -> &str {
    std::str::from_utf8(key).expect("keys are ASCII")
}

/// Values that sit inline (short, and the longest that does) and one that
/// overflows into pages of its own.
fn value(i: u32, round: u32) -> Vec<u8> {
    let len = match i % 4 {
        0 => 10,
        1 => 1024,
        2 => 3000,
        _ => 0,
    };
    vec![(i + round) as u8; len]
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn write(db: &Database, model: &mut Model, keys: impl Iterator<Item = u32>, round: u32, remove: bool) {
    let txn = db.begin_write().unwrap();
    {
        let mut bytes = txn.open_table(BYTES).unwrap();
        let mut reversed = txn.open_table(REVERSED).unwrap();
        for i in keys {
            let k = key(i);
            if remove {
                let old = model.remove(&k);
                assert_eq!(bytes.remove(k.as_slice()).unwrap().map(|v| v.value().to_vec()), old);
                assert_eq!(reversed.remove(text(&k)).unwrap().map(|v| v.value().to_vec()), old);
            } else {
                let v = value(i, round);
                bytes.insert(k.as_slice(), v.as_slice()).unwrap();
                reversed.insert(text(&k), v.as_slice()).unwrap();
                model.insert(k, v);
            }
        }
    }
    txn.commit().unwrap();
}

fn check(db: &Database, model: &Model) {
    let txn = db.begin_read().unwrap();
    let bytes = txn.open_table(BYTES).unwrap();
    let reversed = txn.open_table(REVERSED).unwrap();
    assert_eq!(bytes.len().unwrap(), model.len() as u64);
    assert_eq!(reversed.len().unwrap(), model.len() as u64);
    let forward: Vec<(Vec<u8>, Vec<u8>)> = bytes
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(forward == want, "byte-ordered scan differs from the model");
    let backward: Vec<Vec<u8>> = reversed
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().as_bytes().to_vec())
        .collect();
    assert!(
        backward.iter().eq(model.keys().rev()),
        "custom-ordered scan differs from the model"
    );
    for (i, (k, v)) in model.iter().enumerate().step_by(97) {
        assert_eq!(
            bytes.get(k.as_slice()).unwrap().unwrap().value(),
            v.as_slice(),
            "entry {i}"
        );
        assert_eq!(
            reversed.get(text(k)).unwrap().unwrap().value(),
            v.as_slice(),
            "entry {i}"
        );
        let mut from = bytes.range(k.as_slice()..).unwrap();
        assert_eq!(from.next().unwrap().unwrap().0.value(), k.as_slice());
    }
}

#[test]
fn keys_up_to_the_limit_survive_removals_checkpoints_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model = Model::new();
    {
        let db = Database::create(&path).unwrap();
        // One transaction large enough to go to the tree directly, then
        // commits through the memtable, flushed by the checkpoint.
        write(&db, &mut model, 0..3000, 0, false);
        for chunk in 0..10u32 {
            write(&db, &mut model, (3000 + chunk * 100)..(3100 + chunk * 100), 1, false);
        }
        write(&db, &mut model, (0..4000).step_by(3), 2, true);
        write(&db, &mut model, (0..4000).step_by(5), 3, false);
        check(&db, &model);
        db.checkpoint().unwrap();
        check(&db, &model);
        // Branches of two or three separators this long make a deep tree.
        let txn = db.begin_read().unwrap();
        for height in [
            txn.open_table(BYTES).unwrap().stats().unwrap().tree_height(),
            txn.open_table(REVERSED).unwrap().stats().unwrap().tree_height(),
        ] {
            assert!(height >= 8, "a tree of height {height}");
        }
        drop(txn);
        // Remove all but a few, so the deep tree collapses.
        write(&db, &mut model, (0..4000).filter(|i| i % 50 != 0), 4, true);
        db.checkpoint().unwrap();
        check(&db, &model);
    }
    let mut db = Database::open(&path).unwrap();
    check(&db, &model);
    assert!(db.check_integrity().unwrap());
    write(&db, &mut model, 0..2000, 5, false);
    db.checkpoint().unwrap();
    check(&db, &model);
    assert!(db.check_integrity().unwrap());
}
