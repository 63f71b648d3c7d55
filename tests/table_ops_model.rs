//! Every table operation beyond get/insert against a
//! BTreeMap model, over data spread across the write set, the memtables
//! and the tree (small memtables, checkpoints), with commits, aborts,
//! reopens and crashes; plus read ranges held alive across later commits
//! and flushes.
//! (Written by the twenty-third session's review; it found nothing.)

#![allow(non_snake_case)]
mod common;

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use common::engine::CrashOracle;
use common::keys::CrashDisk;
use proptest::prelude::*;
use sluicedb::io::TearMode;
use sluicedb::{Builder, Database, Durability, Entry, ReadableDatabase, ReadableTable, TableDefinition};

/// u16 stored little-endian, ordered numerically: not byte order, so the
/// write set's ordered map (not its hashed tail) and recovery's deferral
/// are used.
#[derive(Debug)]
struct LeU16;

impl sluicedb::Value for LeU16 {
    type SelfType<'a> = u16;
    type AsBytes<'a> = [u8; 2];
    fn fixed_width() -> Option<usize> {
        Some(2)
    }
    fn from_bytes<'a>(data: &'a [u8]) -> u16
    where
        Self: 'a,
    {
        u16::from_le_bytes([data[0], data[1]])
    }
    fn as_bytes<'a, 'b: 'a>(value: &'a u16) -> [u8; 2]
    where
        Self: 'b,
    {
        value.to_le_bytes()
    }
    fn type_name() -> sluicedb::TypeName {
        sluicedb::TypeName::new("review::LeU16")
    }
}

impl sluicedb::Key for LeU16 {
    fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        u16::from_le_bytes([a[0], a[1]]).cmp(&u16::from_le_bytes([b[0], b[1]]))
    }
}

trait K16: sluicedb::Key + 'static + for<'a> sluicedb::Value<SelfType<'a> = u16> {}
impl K16 for u16 {}
impl K16 for LeU16 {}

fn tdef<K: K16>() -> TableDefinition<'static, K, &'static [u8]> {
    TableDefinition::new("t")
}
fn odef<K: K16>() -> TableDefinition<'static, K, &'static [u8]> {
    TableDefinition::new("other")
}

type Model = BTreeMap<u16, Vec<u8>>;

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, Vec<u8>),
    Remove(u16),
    PopFirst,
    PopLast,
    /// `first` and `last` (read in place in a write transaction).
    Edges,
    Retain(u16),
    RetainIn(Bound<u16>, Bound<u16>, u16),
    /// extract_if / extract_from_if, `steps` items pulled (true: front),
    /// then dropped.
    Extract(Option<(Bound<u16>, Bound<u16>)>, u16, Vec<bool>),
    GetMut(u16, u8),
    Upsert(u16, u8),
    EntryRemove(u16, bool),
    Reserve(u16, usize, u8),
    Range(Bound<u16>, Bound<u16>, Vec<bool>, Option<usize>),
    Cursor(Bound<u16>, bool, Vec<u8>),
    /// Writes another table in the same transaction (the big one spills
    /// out of the write set's small tail).
    OtherTable(u16),
    Bulk(u16, u16),
    HoldReader,
    StepReader(Vec<bool>),
    Commit(bool),
    Abort,
    Checkpoint,
    Reopen,
    Crash(u64),
    /// Commits, begins a transaction and takes an ephemeral savepoint.
    Savepoint,
    Restore,
    DeleteTable,
}

const KMAX: u16 = 48;

fn key() -> impl Strategy<Value = u16> {
    0u16..KMAX
}

fn bound() -> impl Strategy<Value = Bound<u16>> {
    prop_oneof![
        key().prop_map(Bound::Included),
        key().prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => (key(), prop::collection::vec(any::<u8>(), 0..5)).prop_map(|(k, v)| Op::Insert(k, v)),
        5 => key().prop_map(Op::Remove),
        3 => Just(Op::PopFirst),
        3 => Just(Op::PopLast),
        2 => Just(Op::Edges),
        1 => (2u16..5).prop_map(Op::Retain),
        2 => (bound(), bound(), 2u16..5).prop_map(|(l, u, m)| Op::RetainIn(l, u, m)),
        3 => (prop::option::of((bound(), bound())), 2u16..5, prop::collection::vec(any::<bool>(), 0..8))
            .prop_map(|(r, m, s)| Op::Extract(r, m, s)),
        2 => (key(), any::<u8>()).prop_map(|(k, b)| Op::GetMut(k, b)),
        2 => (key(), any::<u8>()).prop_map(|(k, b)| Op::Upsert(k, b)),
        1 => (key(), any::<bool>()).prop_map(|(k, b)| Op::EntryRemove(k, b)),
        2 => (key(), 0usize..6, any::<u8>()).prop_map(|(k, n, b)| Op::Reserve(k, n, b)),
        4 => (bound(), bound(), prop::collection::vec(any::<bool>(), 0..12), prop::option::of(0usize..6))
            .prop_map(|(l, u, s, c)| Op::Range(l, u, s, c)),
        2 => (bound(), any::<bool>(), prop::collection::vec(0u8..4, 0..10)).prop_map(|(b, lo, s)| Op::Cursor(b, lo, s)),
        1 => key().prop_map(Op::OtherTable),
        1 => (key(), 1u16..40).prop_map(|(a, n)| Op::Bulk(a, n)),
        1 => Just(Op::HoldReader),
        2 => prop::collection::vec(any::<bool>(), 1..4).prop_map(Op::StepReader),
        3 => any::<bool>().prop_map(Op::Commit),
        1 => Just(Op::Abort),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(Op::Crash),
        1 => Just(Op::Savepoint),
        1 => Just(Op::Restore),
        1 => Just(Op::DeleteTable),
    ]
}

fn in_range(k: u16, l: &Bound<u16>, u: &Bound<u16>) -> bool {
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

fn model_range(m: &Model, l: &Bound<u16>, u: &Bound<u16>) -> VecDeque<(u16, Vec<u8>)> {
    m.iter()
        .filter(|(k, _)| in_range(**k, l, u))
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

fn pred(m: u16, k: u16, v: &[u8]) -> bool {
    (k + v.len() as u16 + u16::from(v.first().copied().unwrap_or(0))).is_multiple_of(m)
}

type Item = (u16, Vec<u8>);

fn item<K: K16>(
    e: Result<(sluicedb::AccessGuard<'_, K>, sluicedb::AccessGuard<'_, &[u8]>), sluicedb::StorageError>,
) -> Item {
    let (k, v) = e.unwrap();
    (k.value(), v.value().to_vec())
}

fn check_table<K: K16>(t: &impl ReadableTable<K, &'static [u8]>, m: &Model, ctx: &str) {
    assert_eq!(t.len().unwrap(), m.len() as u64, "len {ctx}");
    let all: Vec<Item> = t.iter().unwrap().map(item).collect();
    let exp: Vec<Item> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(all, exp, "iter {ctx}");
    let mut back: Vec<Item> = t.iter().unwrap().rev().map(item).collect();
    back.reverse();
    assert_eq!(back, exp, "rev iter {ctx}");
    assert_eq!(
        t.first().unwrap().map(|e| item(Ok(e))),
        m.first_key_value().map(|(k, v)| (*k, v.clone())),
        "first {ctx}"
    );
    assert_eq!(
        t.last().unwrap().map(|e| item(Ok(e))),
        m.last_key_value().map(|(k, v)| (*k, v.clone())),
        "last {ctx}"
    );
}

fn check_range<K: K16>(
    t: &impl ReadableTable<K, &'static [u8]>,
    m: &Model,
    l: Bound<u16>,
    u: Bound<u16>,
    steps: &[bool],
    clone_at: Option<usize>,
) {
    let mut exp = model_range(m, &l, &u);
    let mut r = t.range::<u16>((l, u)).unwrap();
    for (i, front) in steps.iter().enumerate() {
        if clone_at == Some(i) {
            let c: Vec<Item> = r.clone().map(item).collect();
            assert_eq!(
                c,
                exp.iter().cloned().collect::<Vec<_>>(),
                "clone at {i} of {l:?}..{u:?} {steps:?}"
            );
        }
        let (got, want) = if *front {
            (r.next().map(item), exp.pop_front())
        } else {
            (r.next_back().map(item), exp.pop_back())
        };
        assert_eq!(got, want, "step {i} of range {l:?}..{u:?} steps {steps:?}");
    }
    let rest: Vec<Item> = r.map(item).collect();
    assert_eq!(
        rest,
        exp.into_iter().collect::<Vec<_>>(),
        "rest of range {l:?}..{u:?} {steps:?}"
    );
}

fn check_cursor<K: K16>(t: &impl ReadableTable<K, &'static [u8]>, m: &Model, b: Bound<u16>, lower: bool, steps: &[u8]) {
    let keys: Vec<Item> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
    // position: index of the entry after the gap.
    let mut pos = if lower {
        match b {
            Bound::Included(x) => keys.partition_point(|(k, _)| *k < x),
            Bound::Excluded(x) => keys.partition_point(|(k, _)| *k <= x),
            Bound::Unbounded => 0,
        }
    } else {
        match b {
            Bound::Included(x) => keys.partition_point(|(k, _)| *k <= x),
            Bound::Excluded(x) => keys.partition_point(|(k, _)| *k < x),
            Bound::Unbounded => keys.len(),
        }
    };
    let mut c = if lower {
        t.lower_bound(b.as_ref().map(|x| *x)).unwrap()
    } else {
        t.upper_bound(b.as_ref().map(|x| *x)).unwrap()
    };
    for s in steps {
        match s {
            0 => {
                let got = c.next().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                let want = keys.get(pos).cloned();
                if want.is_some() {
                    pos += 1;
                }
                assert_eq!(got, want, "cursor next {b:?} lower={lower} {steps:?}");
            }
            1 => {
                let got = c.prev().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                let want = if pos > 0 { Some(keys[pos - 1].clone()) } else { None };
                if want.is_some() {
                    pos -= 1;
                }
                assert_eq!(got, want, "cursor prev {b:?} lower={lower} {steps:?}");
            }
            2 => {
                let got = c.peek_next().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                assert_eq!(got, keys.get(pos).cloned(), "cursor peek_next");
            }
            _ => {
                let got = c.peek_prev().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                let want = if pos > 0 { Some(keys[pos - 1].clone()) } else { None };
                assert_eq!(got, want, "cursor peek_prev");
            }
        }
    }
}

fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_memtable_size(2 << 10);
    b
}

struct Held<K: K16> {
    range: sluicedb::Range<'static, K, &'static [u8]>,
    exp: VecDeque<Item>,
    table: sluicedb::ReadOnlyTable<K, &'static [u8]>,
    snapshot: Model,
}

fn run<K: K16>(ops: &[Op]) {
    let T = tdef::<K>();
    let OTHER = odef::<K>();
    let builder = builder();
    let mut disk = CrashDisk::new();
    let mut db: Option<Database> = Some(disk.open(&builder));
    let (mut working, mut committed) = (Model::new(), Model::new());
    let (mut other_w, mut other_c) = (Model::new(), Model::new());
    let mut oracle = CrashOracle::new((Model::new(), Model::new()));
    let mut txn: Option<sluicedb::WriteTransaction> = None;
    let mut held: Option<Held<K>> = None;
    let mut savepoint: Option<(sluicedb::Savepoint, Model, Model)> = None;
    for (n, op) in ops.iter().enumerate() {
        let ctx = format!("op #{n} {op:?}");
        let d = db.as_ref().unwrap();
        match op {
            Op::HoldReader => {
                let read = d.begin_read().unwrap();
                if let Ok(t) = read.open_table(T) {
                    check_table(&t, &committed, &ctx);
                    held = Some(Held {
                        range: t.range::<u16>(..).unwrap(),
                        exp: model_range(&committed, &Bound::Unbounded, &Bound::Unbounded),
                        table: t,
                        snapshot: committed.clone(),
                    });
                }
            }
            Op::StepReader(steps) => {
                if let Some(h) = held.as_mut() {
                    for front in steps {
                        let (got, want) = if *front {
                            (h.range.next().map(item), h.exp.pop_front())
                        } else {
                            (h.range.next_back().map(item), h.exp.pop_back())
                        };
                        assert_eq!(got, want, "held reader step {ctx}");
                    }
                    // A new range from the held table: its snapshot.
                    check_table(&h.table, &h.snapshot, &format!("held table {ctx}"));
                    check_range(
                        &h.table,
                        &h.snapshot,
                        Bound::Excluded(3),
                        Bound::Included(40),
                        steps,
                        Some(1),
                    );
                }
            }
            Op::Commit(sync) => {
                let Some(mut t) = txn.take() else { continue };
                if !sync {
                    t.set_durability(Durability::None).unwrap();
                }
                t.commit().unwrap();
                committed = working.clone();
                other_c = other_w.clone();
                if *sync {
                    oracle.durable((committed.clone(), other_c.clone()));
                } else {
                    oracle.unwaited((committed.clone(), other_c.clone()));
                }
                let read = d.begin_read().unwrap();
                if let Ok(t) = read.open_table(T) {
                    check_table(&t, &committed, &ctx);
                }
            }
            Op::Savepoint => {
                if let Some(t) = txn.take() {
                    t.commit().unwrap();
                    committed = working.clone();
                    other_c = other_w.clone();
                    oracle.durable((committed.clone(), other_c.clone()));
                }
                let w = d.begin_write().unwrap();
                savepoint = Some((w.ephemeral_savepoint().unwrap(), committed.clone(), other_c.clone()));
                txn = Some(w);
            }
            Op::Restore => {
                if let Some((sp, m, o)) = &savepoint {
                    let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                    w.restore_savepoint(sp).unwrap();
                    working = m.clone();
                    other_w = o.clone();
                }
            }
            Op::DeleteTable => {
                let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                w.delete_table(T).unwrap();
                working.clear();
            }
            Op::Abort => {
                if let Some(t) = txn.take() {
                    t.abort().unwrap();
                }
                working = committed.clone();
                other_w = other_c.clone();
            }
            Op::Checkpoint => {
                d.checkpoint().unwrap();
                if txn.is_none() {
                    oracle.durable((committed.clone(), other_c.clone()));
                }
            }
            Op::Reopen | Op::Crash(_) => {
                drop(txn.take());
                savepoint = None;
                // Finish the held reader first, then let it go.
                if let Some(mut h) = held.take() {
                    let rest: Vec<Item> = h.range.by_ref().map(item).collect();
                    assert_eq!(rest, h.exp.into_iter().collect::<Vec<_>>(), "held reader rest {ctx}");
                }
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
                    oracle.durable((committed.clone(), other_c.clone()));
                }
                let reopened = disk.open(&builder);
                let read = reopened.begin_read().unwrap();
                let mut state = (Model::new(), Model::new());
                if let Ok(t) = read.open_table(T) {
                    state.0 = t.iter().unwrap().map(item).collect();
                    check_table(&t, &state.0, &ctx);
                }
                if let Ok(t) = read.open_table(OTHER) {
                    state.1 = t.iter().unwrap().map(item).collect();
                }
                drop(read);
                assert!(
                    oracle.allows(&state),
                    "{ctx}: recovered {state:?}, durable {:?}",
                    oracle.last_durable()
                );
                committed = state.0.clone();
                working = state.0.clone();
                other_c = state.1.clone();
                other_w = state.1.clone();
                oracle.durable(state);
                db = Some(reopened);
            }
            Op::OtherTable(k) => {
                let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let mut o = w.open_table(OTHER).unwrap();
                o.insert(k, [1u8, 2].as_slice()).unwrap();
                other_w.insert(*k, vec![1, 2]);
            }
            _ => {
                let w = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let mut t = w.open_table(T).unwrap();
                let m = &mut working;
                match op {
                    Op::Insert(k, v) => {
                        let old = t.insert(k, v.as_slice()).unwrap().map(|g| g.value().to_vec());
                        assert_eq!(old, m.insert(*k, v.clone()), "{ctx}");
                    }
                    Op::Bulk(a, len) => {
                        for k in *a..(*a + *len) {
                            let v = vec![(k % 251) as u8; 3];
                            let old = t.insert(k, v.as_slice()).unwrap().map(|g| g.value().to_vec());
                            assert_eq!(old, m.insert(k, v), "{ctx}");
                        }
                    }
                    Op::Remove(k) => {
                        let old = t.remove(k).unwrap().map(|g| g.value().to_vec());
                        assert_eq!(old, m.remove(k), "{ctx}");
                    }
                    Op::PopFirst => {
                        let got = t.pop_first().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                        assert_eq!(got, m.pop_first(), "{ctx}");
                    }
                    Op::PopLast => {
                        let got = t.pop_last().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                        assert_eq!(got, m.pop_last(), "{ctx}");
                    }
                    Op::Edges => {
                        let first = t.first().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                        assert_eq!(first, m.first_key_value().map(|(k, v)| (*k, v.clone())), "{ctx}");
                        let last = t.last().unwrap().map(|(k, v)| (k.value(), v.value().to_vec()));
                        assert_eq!(last, m.last_key_value().map(|(k, v)| (*k, v.clone())), "{ctx}");
                    }
                    Op::Retain(md) => {
                        t.retain(|k, v| pred(*md, k, v)).unwrap();
                        m.retain(|k, v| pred(*md, *k, v));
                    }
                    Op::RetainIn(l, u, md) => {
                        t.retain_in::<u16, _>((*l, *u), |k, v| pred(*md, k, v)).unwrap();
                        m.retain(|k, v| !in_range(*k, l, u) || pred(*md, *k, v));
                    }
                    Op::Extract(range, md, steps) => {
                        let (l, u) = range.unwrap_or((Bound::Unbounded, Bound::Unbounded));
                        let mut cand: VecDeque<Item> = model_range(m, &l, &u);
                        let mut removed = Vec::new();
                        {
                            let mut it: Box<dyn DoubleEndedIterator<Item = _>> = match range {
                                None => Box::new(t.extract_if(|k, v| pred(*md, k, v)).unwrap()),
                                Some((l, u)) => {
                                    Box::new(t.extract_from_if::<u16, _>((*l, *u), |k, v| pred(*md, k, v)).unwrap())
                                }
                            };
                            for front in steps {
                                // The model: skip non-matching from that end.
                                let want = loop {
                                    let e = if *front { cand.pop_front() } else { cand.pop_back() };
                                    match e {
                                        None => break None,
                                        Some((k, v)) if pred(*md, k, &v) => break Some((k, v)),
                                        Some(_) => {}
                                    }
                                };
                                let got = if *front { it.next() } else { it.next_back() }.map(item);
                                assert_eq!(got, want, "{ctx}");
                                if let Some((k, _)) = want {
                                    removed.push(k);
                                }
                            }
                        }
                        for k in removed {
                            m.remove(&k);
                        }
                    }
                    Op::GetMut(k, b) => {
                        let g = t.get_mut(k).unwrap();
                        assert_eq!(g.is_some(), m.contains_key(k), "{ctx}");
                        if let Some(mut g) = g {
                            let mut v = g.value().to_vec();
                            assert_eq!(&v, &m[k], "{ctx}");
                            v.push(*b);
                            g.insert(v.as_slice()).unwrap();
                            assert_eq!(g.value(), v.as_slice());
                            drop(g);
                            m.insert(*k, v);
                        }
                    }
                    Op::Upsert(k, b) => {
                        let g = t
                            .entry(*k)
                            .unwrap()
                            .and_modify(|g| {
                                let mut v = g.value().to_vec();
                                v.push(*b);
                                g.insert(v.as_slice())
                            })
                            .unwrap()
                            .or_insert([*b].as_slice())
                            .unwrap();
                        let got = g.value().to_vec();
                        drop(g);
                        let e = m.entry(*k).and_modify(|v| v.push(*b)).or_insert_with(|| vec![*b]);
                        assert_eq!(&got, e, "{ctx}");
                    }
                    Op::EntryRemove(k, with_key) => match t.entry(*k).unwrap() {
                        Entry::Occupied(o) => {
                            let v = if *with_key {
                                let (kk, v) = o.remove_entry().unwrap();
                                assert_eq!(kk, *k);
                                v.value().to_vec()
                            } else {
                                o.remove().unwrap().value().to_vec()
                            };
                            assert_eq!(Some(v), m.remove(k), "{ctx}");
                        }
                        Entry::Vacant(_) => assert!(!m.contains_key(k), "{ctx}"),
                    },
                    Op::Reserve(k, len, b) => {
                        {
                            let mut g = t.insert_reserve(k, *len).unwrap();
                            g.as_mut().fill(*b);
                        }
                        m.insert(*k, vec![*b; *len]);
                    }
                    Op::Range(l, u, steps, c) => check_range(&t, m, *l, *u, steps, *c),
                    Op::Cursor(b, lower, steps) => check_cursor(&t, m, *b, *lower, steps),
                    _ => unreachable!(),
                }
                check_table(&t, m, &ctx);
                for k in [0u16, KMAX / 2, KMAX - 1] {
                    assert_eq!(
                        t.get(k).unwrap().map(|g| g.value().to_vec()),
                        m.get(&k).cloned(),
                        "get {k} {ctx}"
                    );
                }
            }
        }
        // Readers of the committed state.
        if n % 5 == 0 {
            let read = db.as_ref().unwrap().begin_read().unwrap();
            if let Ok(t) = read.open_table(T) {
                check_table(&t, &committed, &ctx);
            }
        }
    }
    drop(txn);
    drop(savepoint);
    if let Some(mut h) = held.take() {
        let rest: Vec<Item> = h.range.by_ref().map(item).collect();
        assert_eq!(rest, h.exp.into_iter().collect::<Vec<_>>(), "held reader rest at end");
    }
    assert!(db.as_mut().unwrap().check_integrity().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200), ..ProptestConfig::default() })]
    #[test]
    fn table_ops_match_the_model(ops in proptest::collection::vec(op(), 1..160)) {
        run::<u16>(&ops);
    }

    #[test]
    fn table_ops_match_the_model_custom_order(ops in proptest::collection::vec(op(), 1..160)) {
        run::<LeU16>(&ops);
    }
}
