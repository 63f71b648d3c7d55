//! API edge cases against a `BTreeMap` model and redb 4.6's behaviour
//! (an adversarial review's, fifty-fourth session; it found the multimap
//! size limit five bytes short of the documented one): range bounds over data split across the
//! tree, the memtables and the write set; keys differing only in length;
//! values across the inline and overflow thresholds and the size limits;
//! drain-like operations interleaved with writes, then abort or commit;
//! savepoints; multimap duplicates and `remove_all`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeBounds};

use common::Rng;
use sluicedb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata,
    SavepointError, StorageError, TableDefinition,
};

const NUM: TableDefinition<u64, u64> = TableDefinition::new("num");
const BYTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bytes");
const MULTI: MultimapTableDefinition<&[u8], &[u8]> = MultimapTableDefinition::new("multi");

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_memtable_size(4 << 10)
        .create(dir.path().join("db"))
        .unwrap();
    (dir, db)
}

type Model = BTreeMap<u64, u64>;

/// A range reader over byte bounds, returning owned pairs.
type ByteRead<'r> = dyn Fn(Bound<&[u8]>, Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> + 'r;

/// Every bound over keys `0..=max` plus `Unbounded`.
fn bounds(max: u64) -> Vec<Bound<u64>> {
    let mut out = vec![Bound::Unbounded];
    for k in 0..=max {
        out.push(Bound::Included(k));
        out.push(Bound::Excluded(k));
    }
    out
}

/// What `BTreeMap::range` would give, without its panic on inverted bounds
/// (redb 4.6 `tree_store/btree_iters.rs` `bounds_are_empty`: an inverted or
/// empty range yields nothing).
fn model_range(model: &Model, lo: Bound<u64>, hi: Bound<u64>) -> Vec<(u64, u64)> {
    model
        .iter()
        .filter(|(k, _)| (lo, hi).contains(*k))
        .map(|(k, v)| (*k, *v))
        .collect()
}

fn check_ranges<T: ReadableTable<u64, u64>>(table: &T, model: &Model, max: u64, what: &str) {
    let bs = bounds(max);
    for (li, lo) in bs.iter().enumerate() {
        for (hi_i, hi) in bs.iter().enumerate() {
            let expected = model_range(model, *lo, *hi);
            let pattern = (li as u32).wrapping_mul(2654435761) ^ (hi_i as u32).wrapping_mul(40503);
            for p in [u32::MAX, 0, pattern, 0x5555_5555] {
                let it = table.range::<u64>((*lo, *hi)).unwrap();
                let got: Vec<(u64, u64)> = walk_any(it, p);
                assert_eq!(got, expected, "{what}: range ({lo:?}, {hi:?}) pattern {p:#x}");
            }
        }
    }
    assert_eq!(table.len().unwrap(), model.len() as u64, "{what}: len");
    assert_eq!(table.is_empty().unwrap(), model.is_empty(), "{what}: is_empty");
    let first = table.first().unwrap().map(|(k, v)| (k.value(), v.value()));
    let last = table.last().unwrap().map(|(k, v)| (k.value(), v.value()));
    assert_eq!(first, model.first_key_value().map(|(k, v)| (*k, *v)), "{what}: first");
    assert_eq!(last, model.last_key_value().map(|(k, v)| (*k, *v)), "{what}: last");
}

fn walk_any(mut it: sluicedb::Range<'_, u64, u64>, pattern: u32) -> Vec<(u64, u64)> {
    let (mut front, mut back) = (Vec::new(), Vec::new());
    let mut i = 0;
    loop {
        let from_front = pattern >> (i % 32) & 1 == 1;
        let item = if from_front { it.next() } else { it.next_back() };
        let Some(item) = item else { break };
        let (k, v) = item.unwrap();
        if from_front {
            front.push((k.value(), v.value()));
        } else {
            back.push((k.value(), v.value()));
        }
        i += 1;
    }
    assert!(
        it.next().is_none() && it.next_back().is_none(),
        "an exhausted range stays exhausted"
    );
    back.reverse();
    front.extend(back);
    front
}

/// Layers: a checkpointed tree, committed memtables, and the write set, each
/// with inserts, overwrites and removals; every bound pair (inverted, empty,
/// `(Excluded(a), Excluded(a))`, unbounded mixes) walked from the front,
/// the back and alternately.
#[test]
fn ranges_over_layers_match_model() {
    let (_dir, db) = db();
    let mut model = Model::new();
    let max = 24;
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        for k in (0..=max).step_by(2) {
            t.insert(k, k * 100).unwrap();
            model.insert(k, k * 100);
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        for k in (0..=max).step_by(3) {
            t.insert(k, k * 1000).unwrap();
            model.insert(k, k * 1000);
        }
        for k in (0..=max).step_by(4) {
            t.remove(k).unwrap();
            model.remove(&k);
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        check_ranges(&t, &model, max + 1, "write txn before its writes");
        for k in [1, 5, 7, 23, 24] {
            t.insert(k, k + 7).unwrap();
            model.insert(k, k + 7);
        }
        for k in [6, 0, 18, 2, 22] {
            t.remove(k).unwrap();
            model.remove(&k);
        }
        t.insert(9, 99).unwrap();
        model.insert(9, 99);
        check_ranges(&t, &model, max + 1, "write txn with its writes");
    }
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    check_ranges(&read.open_table(NUM).unwrap(), &model, max + 1, "after commit");
    db.checkpoint().unwrap();
    let read = db.begin_read().unwrap();
    check_ranges(&read.open_table(NUM).unwrap(), &model, max + 1, "after checkpoint");
}

/// Ranges over keys that exist only in the uncommitted write set of a table
/// created in the same transaction, and of a table whose every stored key
/// was removed in it.
#[test]
fn ranges_over_write_set_only() {
    let (_dir, db) = db();
    let mut model = Model::new();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        check_ranges(&t, &model, 4, "new empty table");
        for k in [3, 1, 2] {
            t.insert(k, k).unwrap();
            model.insert(k, k);
        }
        check_ranges(&t, &model, 4, "new table, write set only");
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        for k in [1, 2, 3] {
            t.remove(k).unwrap();
        }
        model.clear();
        check_ranges(&t, &model, 4, "all removed in the write set");
        t.insert(2, 20).unwrap();
        model.insert(2, 20);
        check_ranges(&t, &model, 4, "one re-inserted");
    }
    txn.abort().unwrap();
    let read = db.begin_read().unwrap();
    let model: Model = [(1, 1), (2, 2), (3, 3)].into();
    check_ranges(&read.open_table(NUM).unwrap(), &model, 4, "after abort");
}

/// Reverse iteration after a partial forward iteration, and a clone taken
/// in the middle, as redb's `Range` (double-ended, `Clone`-free in redb but
/// sluicedb documents its clone as continuing from the same position).
#[test]
fn reverse_after_partial_forward() {
    let (_dir, db) = db();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        for k in 0..10 {
            t.insert(k, k).unwrap();
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        t.remove(9).unwrap();
        t.insert(10, 10).unwrap();
        t.remove(0).unwrap();
        let mut r = t.range(0..=10).unwrap();
        assert_eq!(r.next().unwrap().unwrap().0.value(), 1);
        assert_eq!(r.next().unwrap().unwrap().0.value(), 2);
        let rest: Vec<u64> = r.by_ref().rev().take(3).map(|e| e.unwrap().0.value()).collect();
        assert_eq!(rest, [10, 8, 7]);
        let mid: Vec<u64> = r.map(|e| e.unwrap().0.value()).collect();
        assert_eq!(mid, [3, 4, 5, 6]);
    }
    txn.abort().unwrap();
}

/// Byte keys that differ only in length (prefixes of one another, trailing
/// zero bytes, the empty key) in every layer, with every bound among them.
#[test]
fn byte_keys_differing_in_length() {
    let keys: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0, 0],
        vec![0, 0, 0],
        vec![0, 1],
        vec![1],
        vec![1, 0],
        vec![1, 0, 0],
        vec![0xff],
        vec![0xff, 0],
        vec![0xff, 0xff],
        vec![0xff; 40],
        vec![0xff; 41],
        vec![7; 29],
        vec![7; 30],
        vec![7; 31],
    ];
    let (_dir, db) = db();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let check = |t: &ByteRead, model: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str| {
        let mut bs: Vec<Bound<&[u8]>> = vec![Bound::Unbounded];
        for k in &keys {
            bs.push(Bound::Included(k));
            bs.push(Bound::Excluded(k));
        }
        for lo in &bs {
            for hi in &bs {
                let expected: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| (*lo, *hi).contains(&k.as_slice()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(t(*lo, *hi), expected, "{what}: ({lo:?}, {hi:?})");
            }
        }
    };
    // Layer 1 (tree): even-indexed keys; layer 2 (memtable): odd, and
    // removes of every fourth; layer 3 (write set): overwrite a few.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        for (i, k) in keys.iter().enumerate().step_by(2) {
            let v = vec![i as u8; i];
            t.insert(k.as_slice(), v.as_slice()).unwrap();
            model.insert(k.clone(), v);
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        for (i, k) in keys.iter().enumerate().skip(1).step_by(2) {
            let v = vec![i as u8; 2 * i];
            t.insert(k.as_slice(), v.as_slice()).unwrap();
            model.insert(k.clone(), v);
        }
        for k in keys.iter().step_by(4) {
            t.remove(k.as_slice()).unwrap();
            model.remove(k);
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        for k in [&keys[0], &keys[3], &keys[9], &keys[13]] {
            t.insert(k.as_slice(), b"w".as_slice()).unwrap();
            model.insert(k.clone(), b"w".to_vec());
        }
        t.remove(keys[1].as_slice()).unwrap();
        model.remove(&keys[1]);
        for k in &keys {
            assert_eq!(
                t.get(k.as_slice()).unwrap().map(|g| g.value().to_vec()),
                model.get(k).cloned(),
                "get {k:?}"
            );
        }
        let read = |lo: Bound<&[u8]>, hi: Bound<&[u8]>| -> Vec<(Vec<u8>, Vec<u8>)> {
            let fwd: Vec<_> = t
                .range::<&[u8]>((lo, hi))
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect();
            let mut rev: Vec<_> = t
                .range::<&[u8]>((lo, hi))
                .unwrap()
                .rev()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value().to_vec(), v.value().to_vec())
                })
                .collect();
            rev.reverse();
            assert_eq!(fwd, rev, "({lo:?}, {hi:?}) forward vs backward");
            fwd
        };
        check(&read, &model, "write txn");
        assert_eq!(t.len().unwrap(), model.len() as u64);
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let rt = db.begin_read().unwrap();
    let t = rt.open_table(BYTES).unwrap();
    let read = |lo: Bound<&[u8]>, hi: Bound<&[u8]>| -> Vec<(Vec<u8>, Vec<u8>)> {
        t.range::<&[u8]>((lo, hi))
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    };
    check(&read, &model, "after checkpoint");
    assert_eq!(t.len().unwrap(), model.len() as u64);
}

/// A value of `len` bytes whose content depends on `seed`.
fn value_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Values of every size around the inline (24 B), in-leaf (1 KiB) and page
/// (4 KiB) thresholds, overwritten across them in both directions, read in
/// the write transaction, after commit, after checkpoint and after reopen.
#[test]
fn values_across_size_thresholds() {
    let sizes = [
        0usize,
        1,
        23,
        24,
        25,
        28,
        29,
        30,
        1023,
        1024,
        1025,
        4095,
        4096,
        4097,
        65535,
        65536,
        65537,
        1 << 20,
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let verify = |t: &dyn Fn(&[u8]) -> Option<Vec<u8>>, model: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str| {
        for (k, v) in model {
            assert_eq!(t(k).as_deref(), Some(v.as_slice()), "{what}: key {k:?} len {}", v.len());
        }
    };
    {
        let db = Database::builder().set_memtable_size(4 << 10).create(&path).unwrap();
        for round in 0..3u8 {
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(BYTES).unwrap();
                for (i, &len) in sizes.iter().enumerate() {
                    // Round 0: size i; round 1: the size mirrored (big <-> small);
                    // round 2: the same size again with new bytes.
                    let len = if round == 1 { sizes[sizes.len() - 1 - i] } else { len };
                    let key = vec![b'k'; i];
                    let v = value_of(len, round);
                    let old = t
                        .insert(key.as_slice(), v.as_slice())
                        .unwrap()
                        .map(|g| g.value().to_vec());
                    assert_eq!(old, model.get(&key).cloned(), "round {round} key {i}: old value");
                    model.insert(key, v);
                }
                verify(&|k| t.get(k).unwrap().map(|g| g.value().to_vec()), &model, "write txn");
                let all: Vec<(Vec<u8>, Vec<u8>)> = t
                    .iter()
                    .unwrap()
                    .rev()
                    .map(|e| {
                        let (k, v) = e.unwrap();
                        (k.value().to_vec(), v.value().to_vec())
                    })
                    .collect();
                assert!(
                    all.iter().rev().eq(model
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<Vec<_>>()
                        .iter())
                );
            }
            txn.commit().unwrap();
            let rt = db.begin_read().unwrap();
            let t = rt.open_table(BYTES).unwrap();
            verify(
                &|k| t.get(k).unwrap().map(|g| g.value().to_vec()),
                &model,
                "after commit",
            );
            if round != 1 {
                db.checkpoint().unwrap();
                let rt = db.begin_read().unwrap();
                let t = rt.open_table(BYTES).unwrap();
                verify(
                    &|k| t.get(k).unwrap().map(|g| g.value().to_vec()),
                    &model,
                    "after checkpoint",
                );
            }
        }
    }
    let db = Database::open(&path).unwrap();
    let rt = db.begin_read().unwrap();
    let t = rt.open_table(BYTES).unwrap();
    verify(
        &|k| t.get(k).unwrap().map(|g| g.value().to_vec()),
        &model,
        "after reopen",
    );
    assert_eq!(t.len().unwrap(), model.len() as u64);
}

/// The key and value limits (`btree::MAX_KEY_LEN` = 20 KiB,
/// `btree::MAX_VALUE_LEN` = 128 MiB, README "Sizes"): at the limit it
/// works; one byte over gets the documented error, writes nothing, and the
/// transaction stays usable.
#[test]
fn key_and_value_limits() {
    let (_dir, db) = db();
    let max_key = 20 << 10;
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(BYTES).unwrap();
        let k = vec![3u8; max_key];
        t.insert(k.as_slice(), b"v".as_slice()).unwrap();
        let over = vec![3u8; max_key + 1];
        match t.insert(over.as_slice(), b"v".as_slice()) {
            Err(StorageError::KeyTooLarge(n)) => assert_eq!(n, max_key + 1),
            other => panic!(
                "expected KeyTooLarge, got {:?}",
                other.map(|o| o.map(|g| g.value().len()))
            ),
        }
        assert!(matches!(
            t.get(over.as_slice()),
            Ok(None) | Err(StorageError::KeyTooLarge(_))
        ));
        let big = vec![1u8; (128 << 20) + 1];
        match t.insert(b"big".as_slice(), big.as_slice()) {
            Err(StorageError::ValueTooLarge(n)) => assert_eq!(n, (128 << 20) + 1),
            other => panic!(
                "expected ValueTooLarge, got {:?}",
                other.map(|o| o.map(|g| g.value().len()))
            ),
        }
        assert!(t.get(b"big".as_slice()).unwrap().is_none());
        assert_eq!(t.len().unwrap(), 1);
        // Empty key, empty value.
        t.insert(b"".as_slice(), b"".as_slice()).unwrap();
        assert_eq!(t.get(b"".as_slice()).unwrap().unwrap().value(), b"");
        assert_eq!(t.len().unwrap(), 2);
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let rt = db.begin_read().unwrap();
    let t = rt.open_table(BYTES).unwrap();
    assert_eq!(t.len().unwrap(), 2);
    assert_eq!(t.first().unwrap().unwrap().0.value(), b"");
    assert_eq!(t.last().unwrap().unwrap().0.value().len(), max_key);
    assert_eq!(t.get(vec![3u8; max_key].as_slice()).unwrap().unwrap().value(), b"v");
}

/// A multimap key + value at the documented limit (README "Sizes": "Keys
/// (and a multimap table's key + value) are limited to 20 KiB").
#[test]
fn multimap_key_plus_value_at_limit() {
    let (_dir, db) = db();
    // 20 KiB less the 5-byte header that joins key and value in one stored
    // key (README, Sizes).
    let max = (20 << 10) - 5;
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(MULTI).unwrap();
        // Every split at the limit works, short keys and chunked ones (64
        // bytes and longer).
        for (klen, vlen) in [(max, 0), (10, max - 10), (63, max - 63), (64, max - 64), (max - 10, 10)] {
            let k = vec![1u8; klen];
            let v = vec![2u8; vlen];
            t.insert(k.as_slice(), v.as_slice())
                .unwrap_or_else(|e| panic!("key {klen} + value {vlen} = {}: {e}", klen + vlen));
        }
        // One byte more is refused, naming the length the caller passed,
        // and nothing is written.
        let before = t.len().unwrap();
        for (klen, vlen) in [(max + 1, 0), (10, max - 9), (63, max - 62), (64, max - 63)] {
            let k = vec![3u8; klen];
            let v = vec![4u8; vlen];
            match t.insert(k.as_slice(), v.as_slice()) {
                Err(StorageError::KeyTooLarge(n)) => assert_eq!(n, klen + vlen, "the length named"),
                other => panic!("key {klen} + value {vlen}: {other:?}"),
            }
        }
        assert_eq!(t.len().unwrap(), before, "a refused pair wrote nothing");
    }
    txn.commit().unwrap();
}

fn snapshot<T: ReadableTable<u64, u64>>(t: &T) -> Model {
    t.iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value())
        })
        .collect()
}

/// A random bound over `0..n`.
fn any_bound(rng: &mut Rng, n: u64) -> Bound<u64> {
    match rng.below(3) {
        0 => Bound::Unbounded,
        1 => Bound::Included(rng.below(n)),
        _ => Bound::Excluded(rng.below(n)),
    }
}

/// insert/remove/pop_first/pop_last/retain/retain_in/extract_if (fully
/// consumed, dropped half-consumed, walked from both ends)/
/// extract_from_if over random (often inverted or empty) bounds, in one
/// transaction, then commit or abort; len/is_empty/first/last and the
/// whole content against the model after every step and after the commit or
/// abort.
#[test]
fn drain_ops_interleaved_model() {
    for seed in seeds() {
        drain_ops_seed(seed);
    }
}

/// Seeds of the randomized tests (`REVIEW_SEEDS=n` runs n of them).
fn seeds() -> Vec<u64> {
    let n: u64 = std::env::var("REVIEW_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    (1..=n).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect()
}

fn drain_ops_seed(seed: u64) {
    let (_dir, db) = db();
    let mut rng = Rng(seed);
    let mut committed = Model::new();
    let txn = db.begin_write().unwrap();
    txn.open_table(NUM).unwrap();
    txn.commit().unwrap();
    let n = 48;
    for round in 0..60 {
        let mut model = committed.clone();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(NUM).unwrap();
            for step in 0..12 {
                let what = format!("round {round} step {step}");
                match rng.below(11) {
                    0..=2 => {
                        for _ in 0..rng.below(8) + 1 {
                            let (k, v) = (rng.below(n), rng.next());
                            let old = t.insert(k, v).unwrap().map(|g| g.value());
                            assert_eq!(old, model.insert(k, v), "{what}: insert {k}");
                        }
                    }
                    3 => {
                        let k = rng.below(n);
                        let old = t.remove(k).unwrap().map(|g| g.value());
                        assert_eq!(old, model.remove(&k), "{what}: remove {k}");
                    }
                    4 => {
                        let got = t.pop_first().unwrap().map(|(k, v)| (k.value(), v.value()));
                        assert_eq!(got, model.pop_first(), "{what}: pop_first");
                    }
                    5 => {
                        let got = t.pop_last().unwrap().map(|(k, v)| (k.value(), v.value()));
                        assert_eq!(got, model.pop_last(), "{what}: pop_last");
                    }
                    6 => {
                        let m = rng.below(4) + 2;
                        t.retain(|k, v| (k + v) % m != 0).unwrap();
                        model.retain(|k, v| (k.wrapping_add(*v)) % m != 0);
                    }
                    7 => {
                        let (lo, hi) = (any_bound(&mut rng, n), any_bound(&mut rng, n));
                        t.retain_in::<u64, _>((lo, hi), |k, _| k % 3 == 0).unwrap();
                        model.retain(|k, _| !(lo, hi).contains(k) || k % 3 == 0);
                    }
                    8 => {
                        // Consumed from both ends, fully.
                        let m = rng.below(3) + 2;
                        let mut it = t.extract_if(|k, _| k % m == 1).unwrap();
                        let mut got = Vec::new();
                        let mut i = 0u32;
                        loop {
                            let e = if i % 3 == 2 { it.next_back() } else { it.next() };
                            let Some(e) = e else { break };
                            let (k, v) = e.unwrap();
                            got.push((k.value(), v.value()));
                            i += 1;
                        }
                        drop(it);
                        got.sort();
                        let expected: Vec<(u64, u64)> = model
                            .iter()
                            .filter(|(k, _)| *k % m == 1)
                            .map(|(k, v)| (*k, *v))
                            .collect();
                        assert_eq!(got, expected, "{what}: extract_if");
                        model.retain(|k, _| k % m != 1);
                    }
                    9 => {
                        // Dropped after `take` items: the rest stay (redb 4.6
                        // tree_store/extract_if.rs: Drop only closes).
                        let take = rng.below(4) as usize;
                        let from_back = rng.below(2) == 1;
                        let got: Vec<(u64, u64)> = {
                            let it = t.extract_if(|k, _| k % 2 == 0).unwrap();
                            let f =
                                |e: Result<(sluicedb::AccessGuard<u64>, sluicedb::AccessGuard<u64>), StorageError>| {
                                    let (k, v) = e.unwrap();
                                    (k.value(), v.value())
                                };
                            if from_back {
                                it.rev().take(take).map(f).collect()
                            } else {
                                it.take(take).map(f).collect()
                            }
                        };
                        let sel: Vec<(u64, u64)> = model
                            .iter()
                            .filter(|(k, _)| *k % 2 == 0)
                            .map(|(k, v)| (*k, *v))
                            .collect();
                        let expected: Vec<(u64, u64)> = if from_back {
                            sel.iter().rev().take(take).copied().collect()
                        } else {
                            sel.iter().take(take).copied().collect()
                        };
                        assert_eq!(got, expected, "{what}: half extract_if (back {from_back})");
                        for (k, _) in got {
                            model.remove(&k);
                        }
                    }
                    _ => {
                        let (lo, hi) = (any_bound(&mut rng, n), any_bound(&mut rng, n));
                        let got: Vec<(u64, u64)> = t
                            .extract_from_if::<u64, _>((lo, hi), |_, v| v % 2 == 0)
                            .unwrap()
                            .map(|e| {
                                let (k, v) = e.unwrap();
                                (k.value(), v.value())
                            })
                            .collect();
                        let expected: Vec<(u64, u64)> = model
                            .iter()
                            .filter(|(k, v)| (lo, hi).contains(*k) && *v % 2 == 0)
                            .map(|(k, v)| (*k, *v))
                            .collect();
                        assert_eq!(got, expected, "{what}: extract_from_if ({lo:?}, {hi:?})");
                        for (k, _) in got {
                            model.remove(&k);
                        }
                    }
                }
                assert_eq!(snapshot(&t), model, "{what}: content");
                assert_eq!(t.len().unwrap(), model.len() as u64, "{what}: len");
                assert_eq!(t.is_empty().unwrap(), model.is_empty(), "{what}: is_empty");
                assert_eq!(
                    t.first().unwrap().map(|(k, v)| (k.value(), v.value())),
                    model.first_key_value().map(|(k, v)| (*k, *v))
                );
                assert_eq!(
                    t.last().unwrap().map(|(k, v)| (k.value(), v.value())),
                    model.last_key_value().map(|(k, v)| (*k, *v))
                );
            }
        }
        if rng.below(3) == 0 {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            committed = model;
        }
        if round % 7 == 3 {
            db.checkpoint().unwrap();
        }
        let rt = db.begin_read().unwrap();
        let t = rt.open_table(NUM).unwrap();
        assert_eq!(snapshot(&t), committed, "round {round}: committed content");
        assert_eq!(t.len().unwrap(), committed.len() as u64, "round {round}: committed len");
    }
}

/// Drain-like operations on an empty table, one created in this
/// transaction and one emptied by it.
#[test]
fn drain_ops_on_empty_tables() {
    let (_dir, db) = db();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        assert!(t.pop_first().unwrap().is_none());
        assert!(t.pop_last().unwrap().is_none());
        t.retain(|_, _| false).unwrap();
        assert_eq!(t.extract_if(|_, _| true).unwrap().count(), 0);
        assert_eq!(
            t.extract_from_if((Bound::Included(5), Bound::Excluded(1)), |_, _| true)
                .unwrap()
                .count(),
            0
        );
        assert!(t.is_empty().unwrap());
        t.insert(1, 1).unwrap();
        t.insert(2, 2).unwrap();
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        t.retain(|_, _| false).unwrap();
        assert!(t.is_empty().unwrap());
        assert!(t.pop_first().unwrap().is_none());
        assert!(t.pop_last().unwrap().is_none());
        assert_eq!(t.extract_if(|_, _| true).unwrap().count(), 0);
        assert!(t.first().unwrap().is_none() && t.last().unwrap().is_none());
        assert_eq!(t.range::<u64>(..).unwrap().rev().count(), 0);
        t.insert(3, 3).unwrap();
        assert_eq!(t.pop_last().unwrap().unwrap().0.value(), 3);
        assert!(t.is_empty().unwrap());
    }
    txn.commit().unwrap();
    let rt = db.begin_read().unwrap();
    assert_eq!(rt.open_table(NUM).unwrap().len().unwrap(), 0);
}

fn apply(db: &Database, model: &mut Model, rng: &mut Rng) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        for _ in 0..6 {
            let k = rng.below(20);
            if rng.below(3) == 0 {
                t.remove(k).unwrap();
                model.remove(&k);
            } else {
                let v = rng.next();
                t.insert(k, v).unwrap();
                model.insert(k, v);
            }
        }
    }
    txn.commit().unwrap();
}

fn committed(db: &Database) -> Model {
    let rt = db.begin_read().unwrap();
    match rt.open_table(NUM) {
        Ok(t) => snapshot(&t),
        Err(sluicedb::TableError::TableDoesNotExist(_)) => Model::new(),
        Err(e) => panic!("{e}"),
    }
}

/// Ephemeral savepoint, changes, restore, more changes in the restoring
/// transaction, commit; len and content in the transaction and after.
#[test]
fn ephemeral_restore_then_more_changes() {
    let (_dir, db) = db();
    let mut rng = Rng(77);
    let mut model = Model::new();
    apply(&db, &mut model, &mut rng);
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    // Writes of the transaction that took the savepoint are after it.
    {
        let mut t = txn.open_table(NUM).unwrap();
        t.insert(100, 1).unwrap();
    }
    txn.commit().unwrap();
    let at_sp = model.clone();
    apply(&db, &mut model, &mut rng);
    db.checkpoint().unwrap();
    apply(&db, &mut model, &mut rng);
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    let mut model = at_sp.clone();
    {
        let mut t = txn.open_table(NUM).unwrap();
        assert_eq!(snapshot(&t), model, "right after restore");
        assert_eq!(t.len().unwrap(), model.len() as u64);
        t.insert(5, 55).unwrap();
        model.insert(5, 55);
        let first = *model.keys().next().unwrap();
        t.remove(first).unwrap();
        model.remove(&first);
        assert_eq!(
            t.pop_last().unwrap().map(|(k, v)| (k.value(), v.value())),
            model.pop_last()
        );
        assert_eq!(snapshot(&t), model, "restore + changes");
        assert_eq!(t.len().unwrap(), model.len() as u64);
    }
    txn.commit().unwrap();
    assert_eq!(committed(&db), model);
    db.checkpoint().unwrap();
    assert_eq!(committed(&db), model);
    let rt = db.begin_read().unwrap();
    assert_eq!(rt.open_table(NUM).unwrap().len().unwrap(), model.len() as u64);
}

/// Savepoint invalidation as redb 4.6 `restore_savepoint` ("Calling this
/// method invalidates all Savepoints created after savepoint"; the
/// invalidation is per transaction until it commits, so an abort reverts it;
/// restoring twice in one transaction is allowed, transactions.rs
/// 1350-1480).
#[test]
fn savepoint_invalidation_order() {
    let (_dir, db) = db();
    let mut rng = Rng(5);
    let mut model = Model::new();
    apply(&db, &mut model, &mut rng);
    let take = |db: &Database| {
        let txn = db.begin_write().unwrap();
        let sp = txn.ephemeral_savepoint().unwrap();
        txn.commit().unwrap();
        sp
    };
    let sp1 = take(&db);
    let m1 = model.clone();
    apply(&db, &mut model, &mut rng);
    let sp2 = take(&db);
    let m2 = model.clone();
    apply(&db, &mut model, &mut rng);
    let m3 = model.clone();

    // Restore the newer, then the older in the same transaction: allowed.
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp2).unwrap();
    txn.restore_savepoint(&sp1).unwrap();
    // sp2 is now invalid in this transaction.
    assert!(matches!(
        txn.restore_savepoint(&sp2),
        Err(SavepointError::InvalidSavepoint)
    ));
    {
        let t = txn.open_table(NUM).unwrap();
        assert_eq!(snapshot(&t), m1);
    }
    txn.abort().unwrap();
    assert_eq!(committed(&db), m3, "abort undoes the restores");

    // After the abort sp2 is valid again.
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp2).unwrap();
    {
        let t = txn.open_table(NUM).unwrap();
        assert_eq!(snapshot(&t), m2);
    }
    txn.commit().unwrap();
    assert_eq!(committed(&db), m2);

    // Restoring sp2 invalidated nothing older: sp1 still restores.
    let sp3 = take(&db);
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp1).unwrap();
    txn.commit().unwrap();
    assert_eq!(committed(&db), m1);
    // sp2 and sp3 were created after sp1: invalid once that restore committed.
    let mut txn = db.begin_write().unwrap();
    assert!(matches!(
        txn.restore_savepoint(&sp2),
        Err(SavepointError::InvalidSavepoint)
    ));
    assert!(matches!(
        txn.restore_savepoint(&sp3),
        Err(SavepointError::InvalidSavepoint)
    ));
    txn.restore_savepoint(&sp1).unwrap();
    txn.commit().unwrap();
    assert_eq!(committed(&db), m1);
}

/// Persistent savepoints across a clean reopen and a checkpoint: restore,
/// more changes, commit; delete; the list; an ephemeral one does not survive.
#[test]
fn persistent_savepoints_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut rng = Rng(99);
    let mut model = Model::new();
    let (id1, id2, m1, m2);
    {
        let db = Database::builder().set_memtable_size(4 << 10).create(&path).unwrap();
        apply(&db, &mut model, &mut rng);
        let txn = db.begin_write().unwrap();
        id1 = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        m1 = model.clone();
        apply(&db, &mut model, &mut rng);
        apply(&db, &mut model, &mut rng);
        let txn = db.begin_write().unwrap();
        id2 = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        m2 = model.clone();
        apply(&db, &mut model, &mut rng);
        assert_ne!(id1, id2);
    }
    let m3 = model.clone();
    let db = Database::builder().set_memtable_size(4 << 10).open(&path).unwrap();
    assert_eq!(committed(&db), m3);
    let mut txn = db.begin_write().unwrap();
    let mut ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    ids.sort();
    assert_eq!(ids, [id1, id2]);
    let sp2 = txn.get_persistent_savepoint(id2).unwrap();
    txn.restore_savepoint(&sp2).unwrap();
    let mut model = m2.clone();
    {
        let mut t = txn.open_table(NUM).unwrap();
        assert_eq!(snapshot(&t), model);
        t.insert(1000, 1).unwrap();
        model.insert(1000, 1);
        assert_eq!(t.len().unwrap(), model.len() as u64);
    }
    txn.commit().unwrap();
    assert_eq!(committed(&db), model);
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(committed(&db), model);
    let mut txn = db.begin_write().unwrap();
    let sp1 = txn.get_persistent_savepoint(id1).unwrap();
    txn.restore_savepoint(&sp1).unwrap();
    txn.commit().unwrap();
    assert_eq!(committed(&db), m1);
    let txn = db.begin_write().unwrap();
    // id2 was created after id1: the restore deleted it.
    let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    assert_eq!(ids, [id1]);
    assert!(matches!(
        txn.get_persistent_savepoint(id2),
        Err(SavepointError::InvalidSavepoint)
    ));
    assert!(txn.delete_persistent_savepoint(id1).unwrap());
    assert!(!txn.delete_persistent_savepoint(id1).unwrap());
    txn.commit().unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    let txn = db.begin_write().unwrap();
    assert_eq!(txn.list_persistent_savepoints().unwrap().count(), 0);
    txn.abort().unwrap();
    assert_eq!(committed(&db), m1);
}

/// A savepoint taken before a table existed: restoring it deletes the
/// table; one deleted since comes back with its content.
#[test]
fn savepoint_restores_table_set() {
    const OTHER: TableDefinition<u64, u64> = TableDefinition::new("other");
    let (_dir, db) = db();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(OTHER).unwrap();
        t.insert(1, 2).unwrap();
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUM).unwrap();
        t.insert(3, 4).unwrap();
    }
    assert!(txn.delete_table(OTHER).unwrap());
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    {
        let names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|h| sluicedb::TableHandle::name(&h).to_string())
            .collect();
        assert_eq!(names, ["other"]);
        let t = txn.open_table(OTHER).unwrap();
        assert_eq!(snapshot(&t), Model::from([(1, 2)]));
        assert_eq!(t.len().unwrap(), 1);
    }
    txn.commit().unwrap();
    let rt = db.begin_read().unwrap();
    assert!(matches!(
        rt.open_table(NUM),
        Err(sluicedb::TableError::TableDoesNotExist(_))
    ));
    assert_eq!(snapshot(&rt.open_table(OTHER).unwrap()), Model::from([(1, 2)]));
}

type MModel = BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>;

fn mm_snapshot<T: ReadableMultimapTable<&'static [u8], &'static [u8]>>(t: &T) -> MModel {
    let mut out = MModel::new();
    for e in t.iter().unwrap() {
        let (k, vs) = e.unwrap();
        let vals: Vec<Vec<u8>> = vs.map(|v| v.unwrap().value().to_vec()).collect();
        assert!(!vals.is_empty(), "a key with no values is not listed");
        assert!(vals.windows(2).all(|w| w[0] < w[1]), "values ascending and distinct");
        out.insert(k.value().to_vec(), vals.into_iter().collect());
    }
    out
}

fn mm_check<T: ReadableMultimapTable<&'static [u8], &'static [u8]>>(
    t: &T,
    model: &MModel,
    keys: &[Vec<u8>],
    what: &str,
) {
    assert_eq!(mm_snapshot(t), *model, "{what}: content");
    let pairs: usize = model.values().map(|s| s.len()).sum();
    assert_eq!(t.len().unwrap(), pairs as u64, "{what}: len counts pairs");
    assert_eq!(t.is_empty().unwrap(), pairs == 0, "{what}: is_empty");
    for k in keys {
        let expected: Vec<Vec<u8>> = model.get(k).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        let vs = t.get(k.as_slice()).unwrap();
        assert_eq!(vs.len() as usize, expected.len(), "{what}: get({}).len()", k.len());
        let mut back: Vec<Vec<u8>> = vs.rev().map(|v| v.unwrap().value().to_vec()).collect();
        back.reverse();
        assert_eq!(back, expected, "{what}: get({}) backward", k.len());
    }
    // Reverse range over everything.
    let mut rev: Vec<Vec<u8>> = t.iter().unwrap().rev().map(|e| e.unwrap().0.value().to_vec()).collect();
    rev.reverse();
    assert_eq!(rev, model.keys().cloned().collect::<Vec<_>>(), "{what}: keys backward");
}

/// Multimap tables with `&[u8]` keys, short and chunked (>= 64 bytes,
/// `multimap::pair::CHUNKED_KEY_LEN`), values of many lengths (empty,
/// around the 1 KiB chunk size, beyond it), duplicate inserts, remove,
/// remove_all then re-insert, in one transaction then commit or abort,
/// across checkpoints; len counts pairs (redb: "Returns the number of
/// key-value pairs").
#[test]
fn multimap_model_with_chunks() {
    for seed in seeds() {
        multimap_seed(seed);
    }
}

fn multimap_seed(seed: u64) {
    let keys: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        vec![1; 63],
        vec![1; 64],
        vec![1; 65],
        vec![2; 200],
        vec![2; 201],
    ];
    let vlens = [0usize, 1, 2, 3, 100, 500, 1000, 1019, 1020, 1024, 1025, 2000];
    let (_dir, db) = db();
    let mut rng = Rng(seed ^ 0xdead_beef);
    let mut committed = MModel::new();
    let txn = db.begin_write().unwrap();
    txn.open_multimap_table(MULTI).unwrap();
    txn.commit().unwrap();
    for round in 0..40 {
        let mut model = committed.clone();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_multimap_table(MULTI).unwrap();
            for step in 0..15 {
                let what = format!("round {round} step {step}");
                let k = keys[rng.below(keys.len() as u64) as usize].clone();
                let vlen = vlens[rng.below(vlens.len() as u64) as usize];
                let v: Vec<u8> = vec![rng.below(4) as u8; vlen];
                match rng.below(10) {
                    0..=5 => {
                        let was = t.insert(k.as_slice(), v.as_slice()).unwrap();
                        let model_was = !model.entry(k.clone()).or_default().insert(v.clone());
                        assert_eq!(was, model_was, "{what}: insert ({}, {vlen}) returned", k.len());
                    }
                    6 | 7 => {
                        // Remove a value that is there, if any.
                        let v = match model
                            .get(&k)
                            .and_then(|s| s.iter().nth(rng.below(s.len() as u64) as usize))
                        {
                            Some(v) => v.clone(),
                            None => v,
                        };
                        let was = t.remove(k.as_slice(), v.as_slice()).unwrap();
                        let model_was = model.get_mut(&k).is_some_and(|s| s.remove(&v));
                        if model.get(&k).is_some_and(|s| s.is_empty()) {
                            model.remove(&k);
                        }
                        assert_eq!(was, model_was, "{what}: remove ({}, {})", k.len(), v.len());
                    }
                    8 => {
                        let got: Vec<Vec<u8>> = t
                            .remove_all(k.as_slice())
                            .unwrap()
                            .map(|v| v.unwrap().value().to_vec())
                            .collect();
                        let expected: Vec<Vec<u8>> =
                            model.remove(&k).map(|s| s.into_iter().collect()).unwrap_or_default();
                        assert_eq!(got, expected, "{what}: remove_all({})", k.len());
                    }
                    _ => {
                        let got = t.remove_all(k.as_slice()).unwrap().len();
                        let expected = model.remove(&k).map_or(0, |s| s.len());
                        assert_eq!(got as usize, expected, "{what}: remove_all({}).len()", k.len());
                        t.insert(k.as_slice(), v.as_slice()).unwrap();
                        t.insert(k.as_slice(), v.as_slice()).unwrap();
                        model.entry(k.clone()).or_default().insert(v);
                    }
                }
                mm_check(&t, &model, &keys, &what);
            }
        }
        if rng.below(4) == 0 {
            txn.abort().unwrap();
        } else {
            txn.commit().unwrap();
            committed = model;
        }
        if round % 5 == 2 {
            db.checkpoint().unwrap();
        }
        let rt = db.begin_read().unwrap();
        let t = rt.open_multimap_table(MULTI).unwrap();
        mm_check(&t, &committed, &keys, &format!("round {round} committed"));
    }
}

common::keys::u64_key!(
    /// A u64 key stored big-endian and ordered in reverse (a custom order:
    /// byte order is the opposite of key order, so any bytewise shortcut on
    /// bounds shows).
    RevU64,
    "review::RevU64",
    u64::from_be_bytes,
    u64::to_be_bytes,
    |a, b| b.cmp(a)
);

const REV: TableDefinition<RevU64, u64> = TableDefinition::new("rev");
const TUP: TableDefinition<(&str, u64), u64> = TableDefinition::new("tup");

type RevModel = BTreeMap<std::cmp::Reverse<u64>, u64>;

fn rev_items<'a>(
    it: impl DoubleEndedIterator<
        Item = Result<(sluicedb::AccessGuard<'a, RevU64>, sluicedb::AccessGuard<'a, u64>), StorageError>,
    >,
    back: bool,
) -> Vec<(u64, u64)> {
    let f = |e: Result<(sluicedb::AccessGuard<'a, RevU64>, sluicedb::AccessGuard<'a, u64>), StorageError>| {
        let (k, v) = e.unwrap();
        (k.value(), v.value())
    };
    if back {
        let mut v: Vec<_> = it.rev().map(f).collect();
        v.reverse();
        v
    } else {
        it.map(f).collect()
    }
}

fn rev_check<T: ReadableTable<RevU64, u64>>(t: &T, model: &RevModel, max: u64, what: &str) {
    use std::cmp::Reverse;
    let mut bs = vec![Bound::Unbounded];
    for k in 0..=max {
        bs.push(Bound::Included(k));
        bs.push(Bound::Excluded(k));
    }
    for lo in &bs {
        for hi in &bs {
            let (mlo, mhi) = (lo.map(Reverse), hi.map(Reverse));
            let expected: Vec<(u64, u64)> = model
                .iter()
                .filter(|(k, _)| (mlo, mhi).contains(*k))
                .map(|(k, v)| (k.0, *v))
                .collect();
            for back in [false, true] {
                let got = rev_items(t.range::<u64>((*lo, *hi)).unwrap(), back);
                assert_eq!(got, expected, "{what}: ({lo:?}, {hi:?}) back {back}");
            }
        }
    }
    assert_eq!(t.len().unwrap(), model.len() as u64, "{what}: len");
    assert_eq!(
        t.first().unwrap().map(|(k, _)| k.value()),
        model.keys().next().map(|k| k.0),
        "{what}: first"
    );
    assert_eq!(
        t.last().unwrap().map(|(k, _)| k.value()),
        model.keys().next_back().map(|k| k.0),
        "{what}: last"
    );
}

/// A custom (reversed) key order across the tree, memtables and write set:
/// every bound pair, inverted in key order though not in byte order and the
/// other way round; pops, retain_in and extract_from_if over such bounds.
#[test]
fn custom_order_ranges_and_drains() {
    use std::cmp::Reverse;
    let (_dir, db) = db();
    let max = 16;
    let mut model = RevModel::new();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(REV).unwrap();
        for k in (0..=max).step_by(2) {
            t.insert(k, k).unwrap();
            model.insert(Reverse(k), k);
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(REV).unwrap();
        for k in (1..=max).step_by(3) {
            t.insert(k, k * 10).unwrap();
            model.insert(Reverse(k), k * 10);
        }
        t.remove(4).unwrap();
        model.remove(&Reverse(4));
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(REV).unwrap();
        t.insert(3, 333).unwrap();
        model.insert(Reverse(3), 333);
        t.remove(10).unwrap();
        model.remove(&Reverse(10));
        rev_check(&t, &model, max + 1, "write txn");
        // Pops: largest number first (it is the smallest key).
        assert_eq!(
            t.pop_first().unwrap().map(|(k, v)| (k.value(), v.value())),
            model.pop_first().map(|(k, v)| (k.0, v))
        );
        assert_eq!(
            t.pop_last().unwrap().map(|(k, v)| (k.value(), v.value())),
            model.pop_last().map(|(k, v)| (k.0, v))
        );
        // retain_in over (Included(12), Included(5)): keys 12 down to 5.
        t.retain_in::<u64, _>((Bound::Included(12), Bound::Included(5)), |k, _| k % 2 == 0)
            .unwrap();
        model.retain(|k, _| !(k.0 <= 12 && k.0 >= 5) || k.0 % 2 == 0);
        // 2..9 is ordered bytewise but inverted in key order: it selects
        // nothing; (Included(9), Excluded(2)) is the reverse: 9 down to 3.
        let got: Vec<u64> = t
            .extract_from_if::<u64, _>(2..9, |_, _| true)
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert!(got.is_empty(), "2..9 is inverted in reversed order: {got:?}");
        let got: Vec<u64> = t
            .extract_from_if::<u64, _>((Bound::Included(9), Bound::Excluded(2)), |_, _| true)
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        let expected: Vec<u64> = model.keys().map(|k| k.0).filter(|k| *k <= 9 && *k > 2).collect();
        assert_eq!(got, expected);
        model.retain(|k, _| !(k.0 <= 9 && k.0 > 2));
        rev_check(&t, &model, max + 1, "write txn after drains");
    }
    txn.commit().unwrap();
    let rt = db.begin_read().unwrap();
    rev_check(&rt.open_table(REV).unwrap(), &model, max + 1, "committed");
    db.checkpoint().unwrap();
    let rt = db.begin_read().unwrap();
    rev_check(&rt.open_table(REV).unwrap(), &model, max + 1, "checkpointed");
}

/// Tuples with a variable-width first element (a custom order in sluicedb:
/// README "Custom key orders"): strings that differ only in length, ranges
/// with tuple bounds in both directions, against a model of (String, u64).
#[test]
fn tuple_keys_ranges() {
    let strs = ["", "a", "a\0", "aa", "ab", "b", "\u{ff}"];
    let (_dir, db) = db();
    let mut model: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for (round, layer) in [0u64, 1, 2].into_iter().enumerate() {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(TUP).unwrap();
            for (i, s) in strs.iter().enumerate() {
                for n in 0..3u64 {
                    if (i as u64 + n + layer).is_multiple_of(3) {
                        t.insert((*s, n), layer * 100 + n).unwrap();
                        model.insert((s.to_string(), n), layer * 100 + n);
                    } else if (i as u64 + n) % 5 == layer {
                        t.remove((*s, n)).unwrap();
                        model.remove(&(s.to_string(), n));
                    }
                }
            }
            if layer == 2 {
                let mut bs: Vec<Bound<(&str, u64)>> = vec![Bound::Unbounded];
                for s in strs {
                    for n in [0, 2, u64::MAX] {
                        bs.push(Bound::Included((s, n)));
                        bs.push(Bound::Excluded((s, n)));
                    }
                }
                for lo in &bs {
                    for hi in &bs {
                        let mlo = lo.map(|(s, n)| (s.to_string(), n));
                        let mhi = hi.map(|(s, n)| (s.to_string(), n));
                        let expected: Vec<((String, u64), u64)> = model
                            .iter()
                            .filter(|(k, _)| (mlo.clone(), mhi.clone()).contains(*k))
                            .map(|(k, v)| (k.clone(), *v))
                            .collect();
                        let got: Vec<((String, u64), u64)> = t
                            .range::<(&str, u64)>((*lo, *hi))
                            .unwrap()
                            .map(|e| {
                                let (k, v) = e.unwrap();
                                let (s, n) = k.value();
                                ((s.to_string(), n), v.value())
                            })
                            .collect();
                        assert_eq!(got, expected, "({lo:?}, {hi:?})");
                        let back = t.range::<(&str, u64)>((*lo, *hi)).unwrap().rev().count();
                        assert_eq!(back, expected.len(), "({lo:?}, {hi:?}) backward");
                    }
                }
                assert_eq!(t.len().unwrap(), model.len() as u64);
            }
        }
        txn.commit().unwrap();
        if round == 0 {
            db.checkpoint().unwrap();
        }
    }
    let rt = db.begin_read().unwrap();
    let t = rt.open_table(TUP).unwrap();
    let got: Vec<((String, u64), u64)> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            let (s, n) = k.value();
            ((s.to_string(), n), v.value())
        })
        .collect();
    assert_eq!(got, model.into_iter().collect::<Vec<_>>());
}

/// A savepoint restore of a multimap table with chunked keys (the values
/// of a key of 64 bytes or more share engine entries), with pairs added and removed on
/// both sides of the savepoint; len and content after the restore.
#[test]
fn multimap_chunked_savepoint_restore() {
    let (_dir, db) = db();
    let long = vec![9u8; 80];
    let short = vec![9u8; 3];
    let mut model = MModel::new();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(MULTI).unwrap();
        for i in 0..300u32 {
            let v = i.to_be_bytes().repeat(1 + i as usize % 5);
            t.insert(long.as_slice(), v.as_slice()).unwrap();
            t.insert(short.as_slice(), v.as_slice()).unwrap();
            model.entry(long.clone()).or_default().insert(v.clone());
            model.entry(short.clone()).or_default().insert(v);
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.commit().unwrap();
    let at_sp = model.clone();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_multimap_table(MULTI).unwrap();
        for i in (0..300u32).step_by(7) {
            let v = i.to_be_bytes().repeat(1 + i as usize % 5);
            assert!(t.remove(long.as_slice(), v.as_slice()).unwrap());
            model.get_mut(&long).unwrap().remove(&v);
        }
        for i in 300..400u32 {
            t.insert(long.as_slice(), i.to_be_bytes().as_slice()).unwrap();
            model.entry(long.clone()).or_default().insert(i.to_be_bytes().to_vec());
        }
        assert_eq!(t.remove_all(short.as_slice()).unwrap().len(), 300);
        model.remove(&short);
        mm_check(&t, &model, &[long.clone(), short.clone()], "before restore");
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    {
        let mut t = txn.open_multimap_table(MULTI).unwrap();
        mm_check(&t, &at_sp, &[long.clone(), short.clone()], "after restore");
        assert!(!t.insert(long.as_slice(), b"new".as_slice()).unwrap());
        assert!(t.insert(long.as_slice(), b"new".as_slice()).unwrap());
    }
    txn.commit().unwrap();
    let mut model = at_sp;
    model.get_mut(&long).unwrap().insert(b"new".to_vec());
    let rt = db.begin_read().unwrap();
    mm_check(
        &rt.open_multimap_table(MULTI).unwrap(),
        &model,
        &[long, short],
        "committed",
    );
}
