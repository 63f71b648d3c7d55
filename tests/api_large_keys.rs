//! Keys longer than a page: up to `MAX_KEY_LEN` (20 KiB) bytes, stored in
//! nodes that span a run of pages (`page::store`, "Nodes longer than a
//! page"). Against a model: point reads, both directions of ranges, `len`,
//! through the memtable, flushes into the tree, removals, compaction,
//! reopens and crash images; in byte order and in a custom order (whose
//! branches hold whole keys, so a level of them needs nodes of several
//! pages). One byte more is `KeyTooLarge`.

mod common;

use std::collections::BTreeMap;

use common::Rng;
use common::keys::{CrashDisk, Reversed, long_key as key, text};
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, StorageError,
    TableDefinition,
};

const MAX_KEY_LEN: usize = 20 << 10;
const BYTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bytes");
const REVERSED: TableDefinition<Reversed, &[u8]> = TableDefinition::new("reversed");

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn value(id: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (id as usize + i) as u8).collect()
}

/// Lengths from tiny to the largest, most of them longer than a page.
fn random_len(rng: &mut Rng) -> usize {
    match rng.below(4) {
        0 => 8 + rng.below(100) as usize,
        1 => 2000 + rng.below(3000) as usize,
        2 => 4000 + rng.below(12_000) as usize,
        _ => MAX_KEY_LEN - rng.below(64) as usize,
    }
}

fn check(db: &Database, bytes: &Model, reversed: &Model, what: &str) {
    let r = db.begin_read().unwrap();
    let t = r.open_table(BYTES).unwrap();
    assert_eq!(t.len().unwrap(), bytes.len() as u64, "{what}: len");
    let forward: Vec<(Vec<u8>, Vec<u8>)> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = bytes.clone().into_iter().collect();
    assert!(forward == want, "{what}: byte-order contents differ");
    let backward = t.iter().unwrap().rev().count();
    assert_eq!(backward, bytes.len(), "{what}: backward scan");
    for (k, v) in bytes.iter().step_by(7) {
        assert_eq!(t.get(k.as_slice()).unwrap().unwrap().value(), &v[..], "{what}: get");
    }
    let t = r.open_table(REVERSED).unwrap();
    assert_eq!(t.len().unwrap(), reversed.len() as u64, "{what}: reversed len");
    let got: Vec<Vec<u8>> = t
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().as_bytes().to_vec())
        .collect();
    let want: Vec<Vec<u8>> = reversed.keys().rev().cloned().collect();
    assert!(got == want, "{what}: custom-order keys differ or are out of order");
}

fn builder() -> Builder {
    let mut b = Database::builder();
    b.set_memtable_size(256 << 10).set_checkpoint_on_drop(false);
    b
}

#[test]
fn keys_up_to_the_limit_through_flushes_reopens_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = builder().create(&path).unwrap();
    let (mut bytes, mut reversed) = (Model::new(), Model::new());
    let mut rng = Rng(0x5EED_1234);
    for round in 0..12u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REVERSED).unwrap();
            for i in 0..40 {
                let id = rng.below(400);
                let k = key(random_len(&mut rng), id);
                if rng.below(5) == 0 {
                    let old = t.remove(k.as_slice()).unwrap().map(|g| g.value().to_vec());
                    assert_eq!(old, bytes.remove(&k), "remove's old value");
                    r.remove(text(&k)).unwrap();
                    reversed.remove(&k);
                } else {
                    // Inline values and overflow runs alike.
                    let v = value(id, [10, 900, 3000][(i % 3) as usize]);
                    t.insert(k.as_slice(), v.as_slice()).unwrap();
                    r.insert(text(&k), v.as_slice()).unwrap();
                    bytes.insert(k.clone(), v.clone());
                    reversed.insert(k, v);
                }
            }
        }
        txn.commit().unwrap();
        if round % 4 == 3 {
            db.checkpoint().unwrap();
        }
    }
    check(&db, &bytes, &reversed, "after the commits");
    db.checkpoint().unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, &bytes, &reversed, "flushed");
    // Keys over a page long only fit nodes that span pages; in the custom
    // order (whole keys in the branches) those are branches over branches.
    let r = db.begin_read().unwrap();
    let reversed_stats = r.open_table(REVERSED).unwrap().stats().unwrap();
    assert!(reversed_stats.tree_height() >= 3, "{reversed_stats:?}");
    drop(r);
    drop(db);

    let mut db = builder().open(&path).unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, &bytes, &reversed, "reopened");
    // Remove most, so compaction has long nodes to move.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        let mut r = txn.open_table(REVERSED).unwrap();
        let gone: Vec<Vec<u8>> = bytes.keys().filter(|k| k.len() % 3 != 0).cloned().collect();
        for k in gone {
            t.remove(k.as_slice()).unwrap();
            r.remove(text(&k)).unwrap();
            bytes.remove(&k);
            reversed.remove(&k);
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    db.compact().unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, &bytes, &reversed, "compacted");
    drop(db);
    let mut db = builder().open(&path).unwrap();
    assert!(db.check_integrity().unwrap());
    check(&db, &bytes, &reversed, "reopened after compaction");
}

#[test]
fn one_byte_over_the_limit_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        t.insert(key(MAX_KEY_LEN, 1).as_slice(), &b"fits"[..]).unwrap();
        let err = t
            .insert(key(MAX_KEY_LEN + 1, 2).as_slice(), &b"too long"[..])
            .unwrap_err();
        assert!(
            matches!(err, StorageError::KeyTooLarge(n) if n == MAX_KEY_LEN + 1),
            "{err:?}"
        );
    }
    txn.commit().unwrap();
    let r = db.begin_read().unwrap();
    let t = r.open_table(BYTES).unwrap();
    assert_eq!(t.len().unwrap(), 1);
    assert_eq!(t.get(key(MAX_KEY_LEN, 1).as_slice()).unwrap().unwrap().value(), b"fits");
}

/// Power cuts at every data-file operation of a checkpoint that writes
/// nodes of several pages: each crash image (unsynced writes dropped, kept
/// or torn) holds every acknowledged commit, integrity clean.
#[test]
fn power_cuts_while_long_nodes_are_written() {
    let commit = |db: &Database, bytes: &mut Model, reversed: &mut Model, round: u64| {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut t = txn.open_table(BYTES).unwrap();
            let mut r = txn.open_table(REVERSED).unwrap();
            for i in 0..24 {
                let k = key(3000 + ((round * 24 + i) * 677 % 17_000) as usize, round * 100 + i);
                let v = value(i, 50);
                t.insert(k.as_slice(), v.as_slice()).unwrap();
                r.insert(text(&k), v.as_slice()).unwrap();
                bytes.insert(k.clone(), v.clone());
                reversed.insert(k, v);
            }
        }
        txn.commit().unwrap();
    };
    let span = {
        let disk = CrashDisk::new();
        let db = disk.open(&builder());
        let (mut bytes, mut reversed) = (Model::new(), Model::new());
        for round in 0..4 {
            commit(&db, &mut bytes, &mut reversed, round);
        }
        let before = disk.data.ops();
        db.checkpoint().unwrap();
        disk.data.ops() - before
    };
    for n in (0..=span).step_by(3) {
        let disk = CrashDisk::new();
        let db = disk.open(&builder());
        let (mut bytes, mut reversed) = (Model::new(), Model::new());
        for round in 0..4 {
            commit(&db, &mut bytes, &mut reversed, round);
        }
        disk.data.cut_power_after(disk.data.ops() + n);
        let _ = db.checkpoint();
        drop(db);
        let mode = [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll][(n % 3) as usize];
        let crashed = disk.crashed(mode);
        let mut db = crashed.open(&builder());
        assert!(db.check_integrity().unwrap(), "cut after {n}, {mode:?}: integrity");
        check(&db, &bytes, &reversed, &format!("cut after {n}, {mode:?}"));
        db.checkpoint().unwrap();
        check(&db, &bytes, &reversed, &format!("cut after {n}, {mode:?}, flushed"));
    }
}
