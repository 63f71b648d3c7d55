//! Long scans merged across memtables that hold few keys and a tree of
//! many leaves under two levels of branches: the case where a scan passes
//! runs of the tree's entries through without comparing each with the
//! newer layers' next key (`Merge::tree_clear`, counted from a leaf's bound
//! in its parent). Compared with a BTreeMap model: forward and backward
//! scans, bounded and not, clones and the other end opened part way, the
//! newer layers' keys new to the tree or rewriting and removing its keys,
//! in one active memtable or several frozen ones (flushes held), in a
//! byte-ordered table and one of a reversed custom order.

mod common;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use common::engine::{HeldWrites, small_options};
use common::{ModelRange, Rng};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Engine, EngineOptions, MergedRange};
use sluicedb::io::{MemLogDir, MemoryBackend};

/// Keys in the tree: the even numbers below twice this. The memtables add
/// odd ones too.
const TREE_KEYS: u32 = 12_000;

fn reversed(a: &[u8], b: &[u8]) -> Ordering {
    b.cmp(a)
}

#[derive(Clone, Copy)]
struct Table {
    name: &'static [u8],
    meta: &'static [u8],
    cmp: Comparator,
}

const TABLES: [Table; 2] = [
    Table {
        name: b"bytes",
        meta: b"bytes",
        cmp: bytewise,
    },
    Table {
        name: b"reversed",
        meta: b"reversed",
        cmp: reversed,
    },
];

/// A key long enough that a branch holds few of them: some 20,000 keys
/// make a tree of two levels of branches over a few hundred leaves.
fn key(k: u32) -> Vec<u8> {
    let mut bytes = k.to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'k', 44));
    bytes
}

fn value(rng: &mut Rng, k: u32) -> Vec<u8> {
    let mut v = k.to_le_bytes().to_vec();
    v.extend(std::iter::repeat_n((rng.next() & 0xff) as u8, rng.below(24) as usize));
    v
}

fn options() -> EngineOptions {
    EngineOptions {
        // The newer layers' writes stay in memtables until a checkpoint;
        // a few commits per memtable make several frozen ones while
        // flushes are held.
        memtable_bytes: 8 << 10,
        max_frozen_bytes: 64 << 20,
        checkpoint_wal_bytes: 64 << 20,
        ..small_options()
    }
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn within(cmp: Comparator, k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Unbounded => true,
        Bound::Included(l) => cmp(k, l).is_ge(),
        Bound::Excluded(l) => cmp(k, l).is_gt(),
    };
    let below = match hi {
        Bound::Unbounded => true,
        Bound::Included(h) => cmp(k, h).is_le(),
        Bound::Excluded(h) => cmp(k, h).is_lt(),
    };
    above && below
}

/// Mostly open or wide bounds (long scans), lower before upper in the
/// table's order.
fn bounds(rng: &mut Rng, cmp: Comparator) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let one = |rng: &mut Rng| match rng.below(6) {
        0..=2 => Bound::Unbounded,
        3 | 4 => Bound::Included(key(rng.below(2 * u64::from(TREE_KEYS) + 2) as u32)),
        _ => Bound::Excluded(key(rng.below(2 * u64::from(TREE_KEYS) + 2) as u32)),
    };
    let (a, b) = (one(rng), one(rng));
    let start = |b: &Bound<Vec<u8>>| match b {
        Bound::Unbounded => None,
        Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
    };
    match (start(&a), start(&b)) {
        (Some(x), Some(y)) if cmp(&x, &y).is_gt() => (b, a),
        _ => (a, b),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

fn step(range: &mut MergedRange<'static>, forward: bool) -> Option<(Vec<u8>, Vec<u8>)> {
    let got = if forward { range.next() } else { range.next_back() };
    got.map(|entry| {
        let (k, v) = entry.unwrap();
        (k.to_vec(), v.to_vec())
    })
}

/// Scans `range` from one end for a long stretch, then may clone it, open
/// its other end, and scan on: each step checked against `model`.
#[allow(clippy::too_many_arguments)]
fn scan(
    rng: &mut Rng,
    table: &Table,
    mut range: MergedRange<'static>,
    model: &Model,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
    ctx: &str,
) -> usize {
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .filter(|(k, _)| within(table.cmp, k, lo, hi))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    entries.sort_by(|a, b| (table.cmp)(&a.0, &b.0));
    let n = entries.len();
    let mut want = ModelRange::new(entries);
    let forward = rng.chance(50);
    // Keys shown by their number, values by their first bytes.
    let show = |entry: Option<(Vec<u8>, Vec<u8>)>| {
        entry.map(|(k, v)| {
            (
                u32::from_be_bytes([k[0], k[1], k[2], k[3]]),
                v[..v.len().min(6)].to_vec(),
            )
        })
    };
    let number = |b: &Bound<Vec<u8>>| b.as_ref().map(|k| u32::from_be_bytes([k[0], k[1], k[2], k[3]]));
    let check =
        |range: &mut MergedRange<'static>, want: &mut ModelRange<(Vec<u8>, Vec<u8>)>, forward: bool, what: &str| {
            let (got, expected) = (step(range, forward), want.step(forward));
            assert!(
                got == expected,
                "{ctx}: table {:?} {:?}..{:?}, {what} {}: got {:?}, want {:?}",
                String::from_utf8_lossy(table.name),
                number(lo),
                number(hi),
                if forward { "forward" } else { "backward" },
                show(got),
                show(expected),
            );
        };
    // A long stretch from one end: most of it passes through uncompared.
    let first = rng.below(n as u64 + 2) as usize;
    for _ in 0..first {
        check(&mut range, &mut want, forward, "scan");
    }
    let mut steps = first;
    // A clone part way goes on as its original would.
    if rng.chance(30) {
        let (mut copy, mut copy_want) = (range.clone(), want.clone());
        for _ in 0..rng.below(200) {
            check(&mut copy, &mut copy_want, forward, "clone");
            steps += 1;
        }
    }
    // The other end, opened part way; then both ends to where they meet.
    if rng.chance(40) {
        for _ in 0..rng.below(50) {
            check(&mut range, &mut want, !forward, "other end");
            steps += 1;
        }
    }
    while !want.is_done() {
        check(&mut range, &mut want, forward, "rest");
        steps += 1;
    }
    check(&mut range, &mut want, forward, "end");
    check(&mut range, &mut want, !forward, "end");
    steps
}

/// A commit of a few writes to each table: values new to the tree (odd
/// keys), rewrites and removals of its keys.
fn sparse_commit(rng: &mut Rng, db: &Engine, models: &mut [Model; 2]) {
    let mut w = db.begin_write().unwrap();
    for (ti, table) in TABLES.iter().enumerate() {
        let t = w.open_table(table.name, table.meta, table.cmp).unwrap();
        for _ in 0..1 + rng.below(12) {
            let k = rng.below(2 * u64::from(TREE_KEYS) + 8) as u32;
            if rng.chance(35) {
                w.remove(t, &key(k)).unwrap();
                models[ti].remove(&key(k));
            } else {
                let v = value(rng, k);
                w.insert(t, &key(k), &v).unwrap();
                models[ti].insert(key(k), v);
            }
        }
    }
    w.commit().unwrap();
}

fn run(seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    let data = HeldWrites::new(Arc::new(MemoryBackend::new()));
    let db = Engine::open(data.clone(), MemLogDir::new(), options()).unwrap();
    let mut models: [Model; 2] = [Model::new(), Model::new()];
    for chunk in (0..TREE_KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut w = db.begin_write().unwrap();
        for (ti, table) in TABLES.iter().enumerate() {
            let t = w.open_table(table.name, table.meta, table.cmp).unwrap();
            for &i in chunk {
                let v = value(&mut rng, 2 * i);
                w.insert(t, &key(2 * i), &v).unwrap();
                models[ti].insert(key(2 * i), v);
            }
        }
        w.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let mut held = None;
    let mut scanned = 0;
    for round in 0..rounds {
        let ctx = format!("seed {seed} round {round}");
        match rng.below(10) {
            0 if held.is_none() => db.checkpoint().unwrap(),
            1 => held = if held.is_none() { Some(data.hold()) } else { None },
            _ => {}
        }
        for _ in 0..1 + rng.below(3) {
            sparse_commit(&mut rng, &db, &mut models);
        }
        let r = db.begin_read().unwrap();
        for (ti, table) in TABLES.iter().enumerate() {
            let t = r.open_table(table.name, table.cmp).unwrap().unwrap();
            let (lo, hi) = bounds(&mut rng, table.cmp);
            let range = r.range(&t, as_ref(&lo), as_ref(&hi)).unwrap();
            scanned += scan(&mut rng, table, range, &models[ti], &lo, &hi, &ctx);
        }
    }
    // The scans were long: most of them ran through many leaves.
    assert!(
        scanned > rounds * 2 * TREE_KEYS as usize / 4,
        "seed {seed}: only {scanned} entries scanned"
    );
    drop(held);
    db.checkpoint().unwrap();
}

#[test]
fn long_scans_over_sparse_newer_layers_match_the_model() {
    // More seeds on demand: SCAN_LAYERS_SEEDS=n.
    for seed in common::seeds(&[0x9E37_79B9_7F4A_7C15, 7, 1234567, 0xdead_beef], "SCAN_LAYERS_SEEDS") {
        run(seed, 12);
    }
}
