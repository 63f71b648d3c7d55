//! Multimap tables against a model, with two names
//! (delete, rename between them, recreate), ranges walked from both ends in
//! the write transaction with the value iterators also walked from both
//! ends, readers held across later commits and flushes, and crashes.
//! (Written by the twenty-third session's review; it found nothing.)

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use common::engine::CrashOracle;
use common::keys::CrashDisk;
use proptest::prelude::*;
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, TableError,
};

const NAMES: [&str; 2] = ["m", "m2"];

fn def(i: usize) -> MultimapTableDefinition<'static, u64, &'static str> {
    MultimapTableDefinition::new(NAMES[i])
}

const VALUES: [&str; 6] = ["", "a", "ab", "b", "kiwi", "zz"];

type Model = BTreeMap<u64, BTreeSet<&'static str>>;
/// Each name: absent, or a table.
type State = [Option<Model>; 2];

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, u64, usize),
    Remove(usize, u64, usize),
    RemoveAll(usize, u64),
    Get(usize, u64, Vec<bool>),
    Range(usize, Bound<u64>, Bound<u64>, Vec<(bool, Vec<bool>)>),
    Bulk(usize, u64),
    Delete(usize),
    Rename(usize),
    HoldReader(usize),
    StepReader(Vec<bool>),
    Commit(bool),
    Abort,
    Checkpoint,
    Reopen,
    Crash(u64),
}

const KMAX: u64 = 12;

fn bound() -> impl Strategy<Value = Bound<u64>> {
    prop_oneof![
        (0..KMAX).prop_map(Bound::Included),
        (0..KMAX).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0usize..2;
    prop_oneof![
        16 => (t.clone(), 0..KMAX, 0..VALUES.len()).prop_map(|(t, k, v)| Op::Insert(t, k, v)),
        6 => (t.clone(), 0..KMAX, 0..VALUES.len()).prop_map(|(t, k, v)| Op::Remove(t, k, v)),
        2 => (t.clone(), 0..KMAX).prop_map(|(t, k)| Op::RemoveAll(t, k)),
        3 => (t.clone(), 0..KMAX, prop::collection::vec(any::<bool>(), 0..5)).prop_map(|(t, k, s)| Op::Get(t, k, s)),
        4 => (t.clone(), bound(), bound(), prop::collection::vec((any::<bool>(), prop::collection::vec(any::<bool>(), 0..4)), 0..8))
            .prop_map(|(t, l, u, s)| Op::Range(t, l, u, s)),
        1 => (t.clone(), 0..KMAX).prop_map(|(t, k)| Op::Bulk(t, k)),
        1 => t.clone().prop_map(Op::Delete),
        1 => t.clone().prop_map(Op::Rename),
        1 => t.prop_map(Op::HoldReader),
        2 => prop::collection::vec(any::<bool>(), 1..4).prop_map(Op::StepReader),
        3 => any::<bool>().prop_map(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn in_range(k: u64, l: &Bound<u64>, u: &Bound<u64>) -> bool {
    (match l {
        Bound::Included(a) => k >= *a,
        Bound::Excluded(a) => k > *a,
        Bound::Unbounded => true,
    }) && (match u {
        Bound::Included(b) => k <= *b,
        Bound::Excluded(b) => k < *b,
        Bound::Unbounded => true,
    })
}

type Group = (u64, Vec<String>);

fn model_groups(m: &Model, l: &Bound<u64>, u: &Bound<u64>) -> VecDeque<Group> {
    m.iter()
        .filter(|(k, vs)| in_range(**k, l, u) && !vs.is_empty())
        .map(|(k, vs)| (*k, vs.iter().map(|v| v.to_string()).collect()))
        .collect()
}

/// Walks `values` from the ends given, then the rest forward.
fn walk_values(mut values: sluicedb::MultimapValue<'_, &'static str>, steps: &[bool]) -> Vec<String> {
    let (mut front, mut back) = (Vec::new(), Vec::new());
    for f in steps {
        let v = if *f { values.next() } else { values.next_back() };
        let Some(v) = v else { break };
        let v = v.unwrap().value().to_string();
        if *f { front.push(v) } else { back.push(v) }
    }
    front.extend(values.map(|v| v.unwrap().value().to_string()));
    back.reverse();
    front.extend(back);
    front
}

fn check_all(t: &impl ReadableMultimapTable<u64, &'static str>, m: &Model, ctx: &str) {
    let pairs: usize = m.values().map(BTreeSet::len).sum();
    assert_eq!(t.len().unwrap(), pairs as u64, "len {ctx}");
    let exp: Vec<Group> = model_groups(m, &Bound::Unbounded, &Bound::Unbounded)
        .into_iter()
        .collect();
    let got: Vec<Group> = t
        .iter()
        .unwrap()
        .map(|e| {
            let (k, vs) = e.unwrap();
            (k.value(), vs.map(|v| v.unwrap().value().to_string()).collect())
        })
        .collect();
    assert_eq!(got, exp, "iter {ctx}");
    let mut back: Vec<Group> = t
        .iter()
        .unwrap()
        .rev()
        .map(|e| {
            let (k, vs) = e.unwrap();
            (
                k.value(),
                vs.rev().map(|v| v.unwrap().value().to_string()).collect::<Vec<_>>(),
            )
        })
        .collect();
    back.reverse();
    let back: Vec<Group> = back
        .into_iter()
        .map(|(k, mut vs)| {
            vs.reverse();
            (k, vs)
        })
        .collect();
    assert_eq!(back, exp, "rev iter {ctx}");
}

fn check_range(
    t: &impl ReadableMultimapTable<u64, &'static str>,
    m: &Model,
    l: Bound<u64>,
    u: Bound<u64>,
    steps: &[(bool, Vec<bool>)],
    ctx: &str,
) {
    let mut exp = model_groups(m, &l, &u);
    let mut r = t.range::<u64>((l, u)).unwrap();
    for (front, inner) in steps {
        let got = if *front { r.next() } else { r.next_back() };
        let want = if *front { exp.pop_front() } else { exp.pop_back() };
        let got = got.map(|e| {
            let (k, vs) = e.unwrap();
            assert_eq!(
                vs.len(),
                want.as_ref().map_or(0, |w| w.1.len() as u64),
                "value len {ctx}"
            );
            (k.value(), walk_values(vs, inner))
        });
        assert_eq!(got, want, "range {l:?}..{u:?} steps {steps:?} {ctx}");
    }
    let rest: Vec<Group> = r
        .map(|e| {
            let (k, vs) = e.unwrap();
            (k.value(), vs.map(|v| v.unwrap().value().to_string()).collect())
        })
        .collect();
    assert_eq!(rest, exp.into_iter().collect::<Vec<_>>(), "rest of range {ctx}");
}

struct Held {
    range: sluicedb::MultimapRange<'static, u64, &'static str>,
    exp: VecDeque<Group>,
}

fn read_state(db: &Database, ctx: &str) -> State {
    let read = db.begin_read().unwrap();
    let mut state: State = [None, None];
    for (i, slot) in state.iter_mut().enumerate() {
        match read.open_multimap_table(def(i)) {
            Ok(t) => {
                let mut m = Model::new();
                for e in t.iter().unwrap() {
                    let (k, vs) = e.unwrap();
                    let vs: BTreeSet<&'static str> = vs
                        .map(|v| {
                            let v = v.unwrap().value().to_string();
                            *VALUES.iter().find(|x| **x == v).unwrap()
                        })
                        .collect();
                    m.insert(k.value(), vs);
                }
                check_all(&t, &m, ctx);
                *slot = Some(m);
            }
            Err(TableError::TableDoesNotExist(_)) => {}
            Err(e) => panic!("{ctx}: {e}"),
        }
    }
    state
}

fn norm(s: &State) -> State {
    let mut s = s.clone();
    for m in s.iter_mut().flatten() {
        m.retain(|_, vs| !vs.is_empty());
    }
    s
}

fn run(ops: &[Op]) {
    let mut builder = Builder::new();
    builder.set_memtable_size(2 << 10);
    let mut disk = CrashDisk::new();
    let mut db = Some(disk.open(&builder));
    let (mut working, mut committed): (State, State) = ([None, None], [None, None]);
    let mut oracle = CrashOracle::new(norm(&committed));
    let mut txn: Option<sluicedb::WriteTransaction> = None;
    let mut held: Option<Held> = None;
    for (n, op) in ops.iter().enumerate() {
        let ctx = format!("op #{n} {op:?}");
        let d = db.as_ref().unwrap();
        match op {
            Op::HoldReader(i) => {
                let read = d.begin_read().unwrap();
                if let Ok(t) = read.open_multimap_table(def(*i)) {
                    let m = committed[*i].clone().unwrap();
                    check_all(&t, &m, &ctx);
                    held = Some(Held {
                        range: t.range::<u64>(..).unwrap(),
                        exp: model_groups(&m, &Bound::Unbounded, &Bound::Unbounded),
                    });
                }
            }
            Op::StepReader(steps) => {
                if let Some(h) = held.as_mut() {
                    for f in steps {
                        let got = if *f { h.range.next() } else { h.range.next_back() };
                        let want = if *f { h.exp.pop_front() } else { h.exp.pop_back() };
                        let got = got.map(|e| {
                            let (k, vs) = e.unwrap();
                            (
                                k.value(),
                                vs.map(|v| v.unwrap().value().to_string()).collect::<Vec<_>>(),
                            )
                        });
                        assert_eq!(got, want, "held {ctx}");
                    }
                }
            }
            Op::Commit(sync) => {
                let Some(mut t) = txn.take() else { continue };
                if !sync {
                    t.set_durability(Durability::None).unwrap();
                }
                t.commit().unwrap();
                committed = working.clone();
                if *sync {
                    oracle.durable(norm(&committed));
                } else {
                    oracle.unwaited(norm(&committed));
                }
                assert_eq!(norm(&read_state(d, &ctx)), norm(&committed), "{ctx}");
            }
            Op::Abort => {
                if let Some(t) = txn.take() {
                    t.abort().unwrap();
                }
                working = committed.clone();
            }
            Op::Checkpoint => {
                d.checkpoint().unwrap();
                if txn.is_none() {
                    oracle.durable(norm(&committed));
                }
            }
            Op::Reopen | Op::Crash(_) => {
                drop(txn.take());
                held = None;
                if let Op::Crash(seed) = op {
                    let mode = match seed % 3 {
                        0 => TearMode::DropAll,
                        1 => TearMode::KeepAll,
                        _ => TearMode::Random(*seed),
                    };
                    let image = disk.crashed(mode);
                    drop(db.take());
                    disk = image;
                } else {
                    drop(db.take());
                    oracle.durable(norm(&committed));
                }
                let reopened = disk.open(&builder);
                let state = read_state(&reopened, &ctx);
                assert!(
                    oracle.allows(&norm(&state)),
                    "{ctx}: recovered {state:?}, durable {:?}",
                    oracle.last_durable()
                );
                committed = state.clone();
                working = state.clone();
                oracle.durable(norm(&state));
                db = Some(reopened);
            }
            Op::Delete(i) => {
                let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let existed = w.delete_multimap_table(def(*i)).unwrap();
                assert_eq!(existed, working[*i].is_some(), "{ctx}");
                working[*i] = None;
            }
            Op::Rename(i) => {
                let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let j = 1 - *i;
                let r = w.rename_multimap_table(def(*i), def(j));
                match (&working[*i], &working[j]) {
                    (None, _) => assert!(matches!(r, Err(TableError::TableDoesNotExist(_))), "{ctx}: {r:?}"),
                    (Some(_), Some(_)) => assert!(matches!(r, Err(TableError::TableExists(_))), "{ctx}: {r:?}"),
                    (Some(_), None) => {
                        r.unwrap();
                        working[j] = working[*i].take();
                    }
                }
            }
            _ => {
                let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let i = match op {
                    Op::Insert(i, ..)
                    | Op::Remove(i, ..)
                    | Op::RemoveAll(i, _)
                    | Op::Get(i, ..)
                    | Op::Range(i, ..)
                    | Op::Bulk(i, _) => *i,
                    _ => unreachable!(),
                };
                let mut t = w.open_multimap_table(def(i)).unwrap();
                let m = working[i].get_or_insert_with(Model::new);
                match op {
                    Op::Insert(_, k, v) => {
                        let was = t.insert(k, VALUES[*v]).unwrap();
                        assert_eq!(was, !m.entry(*k).or_default().insert(VALUES[*v]), "{ctx}");
                    }
                    Op::Bulk(_, k) => {
                        for kk in *k..*k + 3 {
                            for v in VALUES {
                                t.insert(kk, v).unwrap();
                                m.entry(kk).or_default().insert(v);
                            }
                        }
                    }
                    Op::Remove(_, k, v) => {
                        let was = t.remove(k, VALUES[*v]).unwrap();
                        assert_eq!(was, m.entry(*k).or_default().remove(VALUES[*v]), "{ctx}");
                    }
                    Op::RemoveAll(_, k) => {
                        let got: Vec<String> = t
                            .remove_all(k)
                            .unwrap()
                            .map(|v| v.unwrap().value().to_string())
                            .collect();
                        let want: Vec<String> = m.remove(k).unwrap_or_default().iter().map(|v| v.to_string()).collect();
                        assert_eq!(got, want, "{ctx}");
                    }
                    Op::Get(_, k, steps) => {
                        let want: Vec<String> = m
                            .get(k)
                            .map(|vs| vs.iter().map(|v| v.to_string()).collect())
                            .unwrap_or_default();
                        let vs = t.get(k).unwrap();
                        assert_eq!(vs.len(), want.len() as u64, "{ctx}");
                        assert_eq!(walk_values(vs, steps), want, "{ctx}");
                    }
                    Op::Range(_, l, u, steps) => check_range(&t, m, *l, *u, steps, &ctx),
                    _ => unreachable!(),
                }
                m.retain(|_, vs| !vs.is_empty());
                check_all(&t, m, &ctx);
            }
        }
    }
    drop(txn);
    drop(held);
    assert!(db.as_mut().unwrap().check_integrity().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]
    #[test]
    fn multimap_ops_match_the_model(ops in proptest::collection::vec(op(), 1..160)) {
        run(&ops);
    }
}
