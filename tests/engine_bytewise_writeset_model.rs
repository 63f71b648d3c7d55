//! The write set's tail (an unhashed ascending run after the last
//! hashed entry) and the filter gate, checked against a `BTreeMap` model
//! through the engine on a byte-ordered table: old values returned by
//! `insert` / `remove`, `get`, `len()` (with blind `put`s, whose count is
//! resolved through the gate) and ordered reads, for write patterns that
//! move between ascending runs, descending keys, rewrites and removals
//! inside the run, keys sharing long prefixes and keys that are prefixes
//! of one another.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::Rng;
use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// A universe of keys that stress byte order and prefix words: shared
/// 8-byte prefixes, keys that are prefixes of others, zero bytes.
fn universe() -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for i in 0u32..120 {
        keys.push(format!("k{i:04}").into_bytes());
    }
    for i in 0u8..40 {
        let mut k = b"prefix__".to_vec();
        k.extend(std::iter::repeat_n(i % 3, (i / 3) as usize));
        keys.push(k);
    }
    for i in 0u8..20 {
        keys.push(vec![b'z'; i as usize + 1]);
        let mut k = vec![b'z'; i as usize + 1];
        k.push(0);
        keys.push(k);
    }
    keys.push(Vec::new());
    keys.push(vec![0]);
    keys.push(vec![0, 0]);
    keys.sort();
    keys.dedup();
    keys
}

fn value(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(40) as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

fn all(txn: &mut sluicedb::engine::WriteTxn, t: sluicedb::engine::TableRef) -> Model {
    txn.range(t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.to_vec(), v.as_bytes().to_vec())
        })
        .collect()
}

fn run(seed: u64, db: &Engine, committed: &mut Model) {
    let keys = universe();
    let mut rng = Rng(seed | 1);
    for round in 0..30 {
        let mut txn = db.begin_write().unwrap();
        let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
        let mut model = committed.clone();
        let ops = 1 + rng.below(200);
        for op in 0..ops {
            match rng.below(100) {
                // An ascending run of fresh and present keys from a random start.
                0..=9 => {
                    let mut at = rng.below(keys.len() as u64) as usize;
                    let n = rng.below(40);
                    for _ in 0..n {
                        if at >= keys.len() {
                            break;
                        }
                        let v = value(&mut rng);
                        let old = txn.insert(t, &keys[at], &v).unwrap().map(|o| o.as_bytes().to_vec());
                        assert_eq!(
                            old,
                            model.insert(keys[at].clone(), v),
                            "seed {seed} round {round} op {op}: ascending insert old value"
                        );
                        at += 1 + rng.below(3) as usize;
                    }
                }
                // A descending run.
                10..=13 => {
                    let mut at = rng.below(keys.len() as u64) as usize;
                    for _ in 0..rng.below(12) {
                        let v = value(&mut rng);
                        let old = txn.insert(t, &keys[at], &v).unwrap().map(|o| o.as_bytes().to_vec());
                        assert_eq!(
                            old,
                            model.insert(keys[at].clone(), v),
                            "seed {seed} round {round} op {op}: descending insert old value"
                        );
                        if at == 0 {
                            break;
                        }
                        at -= 1;
                    }
                }
                14..=40 => {
                    let k = &keys[rng.below(keys.len() as u64) as usize];
                    let v = value(&mut rng);
                    let old = txn.insert(t, k, &v).unwrap().map(|o| o.as_bytes().to_vec());
                    assert_eq!(
                        old,
                        model.insert(k.clone(), v),
                        "seed {seed} round {round} op {op}: insert old value of {k:?}"
                    );
                }
                41..=55 => {
                    let k = &keys[rng.below(keys.len() as u64) as usize];
                    let v = value(&mut rng);
                    txn.put(t, k, &v).unwrap();
                    model.insert(k.clone(), v);
                }
                56..=75 => {
                    let k = &keys[rng.below(keys.len() as u64) as usize];
                    let old = txn.remove(t, k).unwrap().map(|o| o.as_bytes().to_vec());
                    assert_eq!(
                        old,
                        model.remove(k),
                        "seed {seed} round {round} op {op}: remove old value of {k:?}"
                    );
                }
                76..=88 => {
                    let k = &keys[rng.below(keys.len() as u64) as usize];
                    let got = txn.get(t, k).unwrap().map(|o| o.as_bytes().to_vec());
                    assert_eq!(
                        got.as_ref(),
                        model.get(k),
                        "seed {seed} round {round} op {op}: get {k:?}"
                    );
                }
                89..=95 => {
                    assert_eq!(
                        txn.len(t).unwrap(),
                        model.len() as u64,
                        "seed {seed} round {round} op {op}: len"
                    );
                }
                _ => {
                    assert_eq!(all(&mut txn, t), model, "seed {seed} round {round} op {op}: range");
                }
            }
        }
        assert_eq!(
            txn.len(t).unwrap(),
            model.len() as u64,
            "seed {seed} round {round}: len at the end"
        );
        if rng.chance(15) {
            txn.abort();
            continue;
        }
        txn.set_durability(if rng.chance(50) {
            Durability::None
        } else {
            Durability::Immediate
        });
        txn.commit().unwrap();
        *committed = model;
        let read = db.begin_read().unwrap();
        let t = read.open_table(b"t", bytewise).unwrap().unwrap();
        let listed: Model = read
            .range(&t, Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.to_vec(), v.as_bytes().to_vec())
            })
            .collect();
        assert_eq!(&listed, committed, "seed {seed} round {round}: committed entries");
        assert_eq!(
            read.len(&t).unwrap(),
            committed.len() as u64,
            "seed {seed} round {round}: committed len"
        );
        if rng.chance(10) {
            db.checkpoint().unwrap();
        }
    }
}

/// Many seeds of mixed writes to one byte-ordered table: every old value,
/// get, len and range agrees with the model.
#[test]
fn tail_and_gate_agree_with_a_model() {
    for seed in 0..40u64 {
        let disk = Disk::new();
        let db = disk.open(small_options());
        let mut committed = Model::new();
        run(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef,
            &db,
            &mut committed,
        );
    }
}
