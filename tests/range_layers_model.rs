//! Ranges merged across a write transaction's own writes, several
//! frozen memtables (flushes held), the active memtable and the tree,
//! compared with a BTreeMap model under random interleavings of `next`,
//! `next_back` and `clone`, random bounds (included / excluded /
//! unbounded), a byte-ordered table and one of a custom key order.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use common::engine::{HeldWrites, small_options};
use common::{ModelRange, Rng, numeric};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine, EngineOptions, MergedRange, TableRef, WriteTxn};
use sluicedb::io::{MemLogDir, MemoryBackend};

type Model = BTreeMap<u16, Vec<u8>>;

#[derive(Clone, Copy)]
struct Table {
    name: &'static [u8],
    meta: &'static [u8],
    cmp: Comparator,
    /// Key bytes of a model key.
    enc: fn(u16) -> Vec<u8>,
}

fn be(k: u16) -> Vec<u8> {
    k.to_be_bytes().to_vec()
}
fn le(k: u16) -> Vec<u8> {
    k.to_le_bytes().to_vec()
}

const TABLES: [Table; 2] = [
    Table {
        name: b"bytes",
        meta: b"bytes",
        cmp: bytewise,
        enc: be,
    },
    Table {
        name: b"num",
        meta: b"numeric",
        cmp: numeric,
        enc: le,
    },
];

const KEYS: u64 = 40;

fn options() -> EngineOptions {
    EngineOptions {
        // A few commits per memtable: several frozen ones while flushes
        // are held.
        memtable_bytes: 2 << 10,
        max_frozen_bytes: 64 << 20,
        checkpoint_wal_bytes: 1 << 20,
        ..small_options()
    }
}

fn value(rng: &mut Rng, k: u16) -> Vec<u8> {
    let len = 1 + rng.below(120) as usize;
    let mut v = k.to_le_bytes().to_vec();
    v.extend(std::iter::repeat_n((rng.next() & 0xff) as u8, len));
    v
}

fn bound(rng: &mut Rng) -> Bound<u16> {
    match rng.below(5) {
        0 => Bound::Unbounded,
        1 | 2 => Bound::Included(rng.below(KEYS + 2) as u16),
        _ => Bound::Excluded(rng.below(KEYS + 2) as u16),
    }
}

fn within(k: u16, lo: Bound<u16>, hi: Bound<u16>) -> bool {
    let above = match lo {
        Bound::Unbounded => true,
        Bound::Included(l) => k >= l,
        Bound::Excluded(l) => k > l,
    };
    let below = match hi {
        Bound::Unbounded => true,
        Bound::Included(h) => k <= h,
        Bound::Excluded(h) => k < h,
    };
    above && below
}

fn start(b: Bound<u16>) -> Option<u16> {
    match b {
        Bound::Unbounded => None,
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
    }
}

/// Bounds with lower <= upper.
fn bounds(rng: &mut Rng) -> (Bound<u16>, Bound<u16>) {
    let (a, b) = (bound(rng), bound(rng));
    match (start(a), start(b)) {
        (Some(x), Some(y)) if x > y => (b, a),
        _ => (a, b),
    }
}

fn decode(table: &Table, k: &[u8]) -> u16 {
    let raw: [u8; 2] = k.try_into().unwrap();
    if table.meta == b"bytes" {
        u16::from_be_bytes(raw)
    } else {
        u16::from_le_bytes(raw)
    }
}

fn enc_bound(table: &Table, b: Bound<u16>) -> Bound<Vec<u8>> {
    b.map(table.enc)
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// Random walk over `range` against the model; panics with the history on
/// a disagreement.
fn walk(
    rng: &mut Rng,
    table: &Table,
    range: MergedRange<'static>,
    model: &Model,
    lo: Bound<u16>,
    hi: Bound<u16>,
    ctx: &str,
) {
    walk_with(rng, table, range, model, lo, hi, ctx, &mut |_| {});
}

/// [`walk`], calling `midway` once at a random step (a commit, a
/// checkpoint: what the range reads must not change).
#[allow(clippy::too_many_arguments)]
fn walk_with(
    rng: &mut Rng,
    table: &Table,
    range: MergedRange<'static>,
    model: &Model,
    lo: Bound<u16>,
    hi: Bound<u16>,
    ctx: &str,
    midway: &mut dyn FnMut(&mut Rng),
) {
    let entries: Vec<(u16, Vec<u8>)> = model
        .iter()
        .filter(|(k, _)| within(**k, lo, hi))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let n = entries.len();
    let mut pairs = vec![(range, ModelRange::new(entries))];
    let mut history = String::new();
    let steps = 2 * n + 4;
    let at = rng.below(steps as u64) as usize;
    for step in 0..steps {
        if step == at {
            midway(rng);
            history.push_str(" M");
        }
        let i = rng.below(pairs.len() as u64) as usize;
        match rng.below(10) {
            0 if pairs.len() < 4 => {
                let (r, m) = &pairs[i];
                let pair = (r.clone(), m.clone());
                pairs.push(pair);
                history.push_str(&format!(" C{i}"));
            }
            1 if pairs.len() > 1 => {
                pairs.swap_remove(i);
                history.push_str(&format!(" D{i}"));
            }
            op => {
                let forward = op % 2 == 0;
                let (r, m) = &mut pairs[i];
                let got = if forward { r.next() } else { r.next_back() };
                let got = got.map(|e| {
                    let (k, v) = e.unwrap();
                    (decode(table, &k), v.to_vec())
                });
                let want = m.step(forward);
                history.push_str(&format!(
                    " {}{i}={:?}",
                    if forward { 'F' } else { 'B' },
                    got.as_ref().map(|e| e.0)
                ));
                if got != want {
                    panic!(
                        "{ctx}: table {:?} {lo:?}..{hi:?}: got {:?} want {:?}\n history:{history}\n model keys: {:?}",
                        String::from_utf8_lossy(table.name),
                        got,
                        want,
                        model.keys().filter(|k| within(**k, lo, hi)).collect::<Vec<_>>()
                    );
                }
            }
        }
    }
}

fn commit_round(rng: &mut Rng, db: &Engine, models: &mut [Model; 2]) {
    let mut w = db.begin_write().unwrap();
    for (ti, table) in TABLES.iter().enumerate() {
        let t = w.open_table(table.name, table.meta, table.cmp).unwrap();
        for _ in 0..rng.below(8) {
            let k = rng.below(KEYS) as u16;
            if rng.chance(35) {
                w.remove(t, &(table.enc)(k)).unwrap();
                models[ti].remove(&k);
            } else {
                let v = value(rng, k);
                w.insert(t, &(table.enc)(k), &v).unwrap();
                models[ti].insert(k, v);
            }
        }
    }
    w.set_durability(if rng.chance(50) {
        Durability::None
    } else {
        Durability::Immediate
    });
    w.commit().unwrap();
}

/// Own writes in `w`, applied to copies of the models.
fn own_writes(rng: &mut Rng, w: &mut WriteTxn, models: &[Model; 2]) -> ([Model; 2], [TableRef; 2]) {
    let mut own = models.clone();
    let refs = [
        w.open_table(TABLES[0].name, TABLES[0].meta, TABLES[0].cmp).unwrap(),
        w.open_table(TABLES[1].name, TABLES[1].meta, TABLES[1].cmp).unwrap(),
    ];
    for (ti, table) in TABLES.iter().enumerate() {
        for _ in 0..rng.below(10) {
            let k = rng.below(KEYS) as u16;
            if rng.chance(40) {
                w.remove(refs[ti], &(table.enc)(k)).unwrap();
                own[ti].remove(&k);
            } else {
                let v = value(rng, k);
                w.insert(refs[ti], &(table.enc)(k), &v).unwrap();
                own[ti].insert(k, v);
            }
        }
    }
    (own, refs)
}

fn run(seed: u64, rounds: usize) {
    let mut rng = Rng(seed);
    let data = HeldWrites::new(Arc::new(MemoryBackend::new()));
    let db = Engine::open(data.clone(), MemLogDir::new(), options()).unwrap();
    let mut models: [Model; 2] = [Model::new(), Model::new()];
    let mut held = None;
    let mut max_frozen = 0;
    // Both tables exist from here on.
    commit_round(&mut rng, &db, &mut models);
    // Old readers and what they saw.
    let mut readers: Vec<(sluicedb::engine::ReadTxn, [Model; 2])> = Vec::new();
    for round in 0..rounds {
        let ctx = format!("seed {seed} round {round}");
        match rng.below(10) {
            0 if held.is_none() => db.checkpoint().unwrap(),
            1 | 2 => {
                if held.is_none() {
                    held = Some(data.hold());
                } else {
                    held = None;
                }
            }
            _ => {}
        }
        // A flushed database (nothing in the memtables): ranges over the
        // tree alone, with commits and checkpoints while they are read.
        if held.is_none() && rng.chance(25) {
            db.checkpoint().unwrap();
            let r = db.begin_read().unwrap();
            let snapshot = models.clone();
            for (ti, table) in TABLES.iter().enumerate() {
                let t = r.open_table(table.name, table.cmp).unwrap().unwrap();
                let (lo, hi) = bounds(&mut rng);
                let (elo, ehi) = (enc_bound(table, lo), enc_bound(table, hi));
                let range = r.range(&t, as_ref(&elo), as_ref(&ehi)).unwrap();
                let seen = snapshot[ti].clone();
                let checkpoint = rng.chance(50);
                walk_with(
                    &mut rng,
                    table,
                    range,
                    &seen,
                    lo,
                    hi,
                    &format!("{ctx} flushed"),
                    &mut |rng| {
                        commit_round(rng, &db, &mut models);
                        if checkpoint {
                            db.checkpoint().unwrap();
                        }
                    },
                );
            }
        }
        commit_round(&mut rng, &db, &mut models);
        max_frozen = max_frozen.max(db.stats().frozen_memtables);
        // A reader now.
        let r = db.begin_read().unwrap();
        for (ti, table) in TABLES.iter().enumerate() {
            let t = r.open_table(table.name, table.cmp).unwrap().unwrap();
            for _ in 0..3 {
                let (lo, hi) = bounds(&mut rng);
                let (elo, ehi) = (enc_bound(table, lo), enc_bound(table, hi));
                let range = r.range(&t, as_ref(&elo), as_ref(&ehi)).unwrap();
                walk(&mut rng, table, range, &models[ti], lo, hi, &format!("{ctx} read"));
            }
        }
        if rng.chance(30) {
            readers.push((r, models.clone()));
        }
        // An old reader (its ranges may have moved to a flushed state).
        if !readers.is_empty() && rng.chance(50) {
            let i = rng.below(readers.len() as u64) as usize;
            let (r, old) = &readers[i];
            for (ti, table) in TABLES.iter().enumerate() {
                let t = r.open_table(table.name, table.cmp).unwrap().unwrap();
                let (lo, hi) = bounds(&mut rng);
                let (elo, ehi) = (enc_bound(table, lo), enc_bound(table, hi));
                let range = r.range(&t, as_ref(&elo), as_ref(&ehi)).unwrap();
                walk(&mut rng, table, range, &old[ti], lo, hi, &format!("{ctx} old reader"));
            }
            if rng.chance(30) {
                readers.swap_remove(i);
            }
        }
        // A write transaction with (or without) its own writes.
        if rng.chance(40) {
            let mut w = db.begin_write().unwrap();
            let (own, refs) = if rng.chance(70) {
                own_writes(&mut rng, &mut w, &models)
            } else {
                let refs = [
                    w.open_table(TABLES[0].name, TABLES[0].meta, TABLES[0].cmp).unwrap(),
                    w.open_table(TABLES[1].name, TABLES[1].meta, TABLES[1].cmp).unwrap(),
                ];
                (models.clone(), refs)
            };
            for (ti, table) in TABLES.iter().enumerate() {
                for _ in 0..2 {
                    let (lo, hi) = bounds(&mut rng);
                    let (elo, ehi) = (enc_bound(table, lo), enc_bound(table, hi));
                    let range = w.range(refs[ti], as_ref(&elo), as_ref(&ehi)).unwrap();
                    walk(&mut rng, table, range, &own[ti], lo, hi, &format!("{ctx} write txn"));
                }
            }
            w.abort();
        }
    }
    assert!(
        max_frozen >= 2,
        "seed {seed}: never more than {max_frozen} frozen memtables"
    );
    drop(readers);
    drop(held);
    db.checkpoint().unwrap();
}

#[test]
fn merged_ranges_match_the_model_across_layers() {
    // More seeds on demand: RANGE_LAYERS_SEEDS=n.
    let fixed = [
        0x9E37_79B9_7F4A_7C15,
        7,
        1234567,
        0xdead_beef,
        99,
        31337,
        4242,
        0x1234_5678_9abc,
    ];
    for seed in common::seeds(&fixed, "RANGE_LAYERS_SEEDS") {
        run(seed, 300);
    }
}
