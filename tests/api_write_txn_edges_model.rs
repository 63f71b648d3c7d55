//! A write transaction's first / last / pop_first / pop_last and
//! double-ended ranges (its own writes, memtables, tree: the k-way merge
//! and `first_visible`), and multimap ranges, against BTreeMap models.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Rng;
use sluicedb::io::{MemLogDir, MemoryBackend};
use sluicedb::{
    Builder, Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable, TableDefinition,
};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");
const I: TableDefinition<i32, u64> = TableDefinition::new("signed");
const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");
const KEYS: u64 = 30;

fn open() -> Database {
    let mut b = Builder::new();
    b.set_memtable_size(2 << 10).set_max_frozen_bytes(64 << 20);
    b.create_with_backends(std::sync::Arc::new(MemoryBackend::new()), MemLogDir::new())
        .unwrap()
}

/// A range's entries read from its back end.
fn backward(range: sluicedb::Range<'_, u64, u64>) -> Vec<(u64, u64)> {
    range
        .rev()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value())
        })
        .collect()
}

fn run(seed: u64) {
    let mut rng = Rng(seed);
    let db = open();
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    let mut signed: BTreeMap<i32, u64> = BTreeMap::new();
    let mut multi: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap();
        txn.open_table(I).unwrap();
        txn.open_multimap_table(M).unwrap();
        txn.commit().unwrap();
    }
    for round in 0..200 {
        if rng.chance(10) {
            db.checkpoint().unwrap();
        }
        let txn = db.begin_write().unwrap();
        let keep = rng.chance(60);
        let (mut m2, mut s2, mut mm2) = (model.clone(), signed.clone(), multi.clone());
        {
            let mut t = txn.open_table(T).unwrap();
            let mut s = txn.open_table(I).unwrap();
            let mut m = txn.open_multimap_table(M).unwrap();
            for _ in 0..rng.below(12) {
                let k = rng.below(KEYS);
                let sk = k as i32 - (KEYS / 2) as i32;
                match rng.below(6) {
                    0 | 1 => {
                        t.remove(k).unwrap();
                        m2.remove(&k);
                        s.remove(sk).unwrap();
                        s2.remove(&sk);
                    }
                    2 => {
                        let v = rng.below(4);
                        m.remove(k, v).unwrap();
                        if let Some(set) = mm2.get_mut(&k) {
                            set.remove(&v);
                            if set.is_empty() {
                                mm2.remove(&k);
                            }
                        }
                    }
                    3 => {
                        let v = rng.below(4);
                        m.insert(k, v).unwrap();
                        mm2.entry(k).or_default().insert(v);
                    }
                    _ => {
                        let v = rng.next();
                        t.insert(k, v).unwrap();
                        m2.insert(k, v);
                        s.insert(sk, v).unwrap();
                        s2.insert(sk, v);
                    }
                }
            }
            let ctx = format!("seed {seed} round {round}");
            // Edges, with the transaction's own writes.
            let first = t.first().unwrap().map(|(k, v)| (k.value(), v.value()));
            assert_eq!(first, m2.first_key_value().map(|(k, v)| (*k, *v)), "{ctx}: first");
            let last = t.last().unwrap().map(|(k, v)| (k.value(), v.value()));
            assert_eq!(last, m2.last_key_value().map(|(k, v)| (*k, *v)), "{ctx}: last");
            let sfirst = s.first().unwrap().map(|(k, v)| (k.value(), v.value()));
            assert_eq!(
                sfirst,
                s2.first_key_value().map(|(k, v)| (*k, *v)),
                "{ctx}: signed first"
            );
            let slast = s.last().unwrap().map(|(k, v)| (k.value(), v.value()));
            assert_eq!(slast, s2.last_key_value().map(|(k, v)| (*k, *v)), "{ctx}: signed last");
            // A double-ended walk over a random range, with a clone.
            let lo = rng.below(KEYS + 2);
            let hi = lo + rng.below(KEYS + 2 - lo + 1);
            let want: Vec<(u64, u64)> = m2.range(lo..hi).map(|(k, v)| (*k, *v)).collect();
            let mut range = t.range(lo..hi).unwrap();
            let (mut a, mut b) = (0usize, want.len());
            let mut done = false;
            for step in 0..want.len() + 3 {
                if step == want.len() / 2 && rng.chance(50) {
                    range = range.clone();
                }
                let front = rng.chance(50);
                let got = if front { range.next() } else { range.next_back() };
                let got = got.map(|e| {
                    let (k, v) = e.unwrap();
                    (k.value(), v.value())
                });
                let exp = if done || a == b {
                    done = true;
                    None
                } else if front {
                    a += 1;
                    Some(want[a - 1])
                } else {
                    b -= 1;
                    Some(want[b])
                };
                assert_eq!(got, exp, "{ctx}: range {lo}..{hi} step {step} front {front}");
            }
            drop(range);
            // Pops from either end.
            for _ in 0..rng.below(4) {
                if rng.chance(50) {
                    let got = t.pop_first().unwrap().map(|(k, v)| (k.value(), v.value()));
                    assert_eq!(got, m2.pop_first(), "{ctx}: pop_first");
                } else {
                    let got = t.pop_last().unwrap().map(|(k, v)| (k.value(), v.value()));
                    assert_eq!(got, m2.pop_last(), "{ctx}: pop_last");
                }
            }
            let all = backward(t.iter().unwrap());
            let want_all: Vec<(u64, u64)> = m2.iter().rev().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(all, want_all, "{ctx}: rev after pops");
            // Multimap: a range, from both ends.
            let lo = rng.below(KEYS);
            let mut got = Vec::new();
            let mut mr = m.range(lo..).unwrap();
            let mut back = Vec::new();
            loop {
                let front = rng.chance(50);
                let e = if front { mr.next() } else { mr.next_back() };
                let Some(e) = e else { break };
                let (k, vals) = e.unwrap();
                let vals: Vec<u64> = vals.map(|v| v.unwrap().value()).collect();
                if front {
                    got.push((k.value(), vals));
                } else {
                    back.push((k.value(), vals));
                }
            }
            back.reverse();
            got.extend(back);
            let want: Vec<(u64, Vec<u64>)> = mm2
                .range(lo..)
                .map(|(k, s)| (*k, s.iter().copied().collect()))
                .collect();
            assert_eq!(got, want, "{ctx}: multimap range {lo}..");
        }
        if keep {
            txn.commit().unwrap();
            model = m2;
            signed = s2;
            multi = mm2;
        } else {
            txn.abort().unwrap();
        }
        // A reader's view of the committed state.
        let r = db.begin_read().unwrap();
        let t = r.open_table(T).unwrap();
        let all = backward(t.range::<u64>(..).unwrap());
        let want: Vec<(u64, u64)> = model.iter().rev().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(all, want, "seed {seed} round {round}: reader rev");
    }
}

#[test]
fn write_transaction_edges_pops_and_ranges_match_the_model() {
    for seed in [1u64, 0xfeed_f00d, 0x0123_4567_89ab_cdef, 77] {
        run(seed);
    }
}
