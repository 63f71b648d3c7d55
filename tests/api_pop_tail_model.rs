//! `pop_first` loops on a byte-ordered table against a model, with the
//! transaction's other reads and writes between the pops. A front pop's
//! tombstone goes to the write set's unsorted tail, and a read that sees
//! the tail lies wholly outside its bounds leaves it there
//! (`WriteSet::source`): so the reads here come only now and then (a
//! range with bounds drawn at random, a point read, the length), leaving
//! tombstones unsettled across many pops, and the writes land on either
//! side of what was popped, inside and outside those ranges.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use sluicedb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<&[u8], u32> = TableDefinition::new("t");

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    PopFirst,
    PopLast,
    Get(u8),
    Range(Bound<u8>, Bound<u8>),
    /// A range from the key the last `pop_first` took (included or not),
    /// the bound a tail of tombstones ends at.
    RangeFromPopped(bool, Bound<u8>),
    /// The first entry from a bound, through a cursor (`lower_bound_mut`,
    /// `peek_next`: a read of the write set between that bound and none);
    /// `None` for a bound at the key the last `pop_first` took (included
    /// if `true`).
    NextFrom(Option<Bound<u8>>, bool),
    /// The last entry up to a bound (`upper_bound_mut`, `peek_prev`).
    PrevFrom(Bound<u8>),
    First,
    Last,
    Len,
    Commit,
}

/// Keys of one or two bytes, so that a key and its extensions interleave
/// (`[7]` sorts before `[7, 0]`, which sorts before `[8]`).
fn key(k: u8) -> Vec<u8> {
    if k.is_multiple_of(3) {
        vec![k / 3]
    } else {
        vec![k / 3, k % 3]
    }
}

fn bound() -> impl Strategy<Value = Bound<u8>> {
    prop_oneof![
        1 => Just(Bound::Unbounded),
        2 => any::<u8>().prop_map(|k| Bound::Included(k % 96)),
        2 => any::<u8>().prop_map(|k| Bound::Excluded(k % 96)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u8..96, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0u8..96).prop_map(Op::Remove),
        8 => Just(Op::PopFirst),
        1 => Just(Op::PopLast),
        2 => (0u8..96).prop_map(Op::Get),
        2 => (bound(), bound()).prop_map(|(lower, upper)| Op::Range(lower, upper)),
        2 => (any::<bool>(), bound()).prop_map(|(included, upper)| Op::RangeFromPopped(included, upper)),
        2 => (proptest::option::of(bound()), any::<bool>()).prop_map(|(bound, included)| Op::NextFrom(bound, included)),
        1 => bound().prop_map(Op::PrevFrom),
        1 => Just(Op::First),
        1 => Just(Op::Last),
        1 => Just(Op::Len),
        1 => Just(Op::Commit),
    ]
}

fn keyed(bound: Bound<u8>) -> Bound<Vec<u8>> {
    bound.map(key)
}

/// Whether a range between these bounds is empty by the bounds alone (a
/// `BTreeMap` range panics on those; the table's yields nothing).
fn inverted(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) = (lower, upper) else {
        return false;
    };
    l > u || (l == u && !matches!((lower, upper), (Bound::Included(_), Bound::Included(_))))
}

fn run(seed: &[u8], ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_memtable_size(4 << 10)
        .create(dir.path().join("db"))
        .unwrap();
    let mut model: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    // Committed first, so pops find entries in the snapshot as well as
    // among the transaction's own writes.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for (i, &k) in seed.iter().enumerate() {
            t.insert(key(k).as_slice(), i as u32).unwrap();
            model.insert(key(k), i as u32);
        }
    }
    txn.commit().unwrap();
    let mut txn = db.begin_write().unwrap();
    let mut popped: Option<Vec<u8>> = None;
    for op in ops {
        if let Op::Commit = op {
            txn.commit().unwrap();
            txn = db.begin_write().unwrap();
            continue;
        }
        let mut t = txn.open_table(T).unwrap();
        match op {
            Op::Insert(k, v) => {
                let got = t.insert(key(*k).as_slice(), v).unwrap().map(|g| g.value());
                assert_eq!(got, model.insert(key(*k), *v), "insert {:?}", key(*k));
            }
            Op::Remove(k) => {
                let got = t.remove(key(*k).as_slice()).unwrap().map(|g| g.value());
                assert_eq!(got, model.remove(&key(*k)), "remove {:?}", key(*k));
            }
            Op::PopFirst => {
                let got = t.pop_first().unwrap().map(|(k, v)| (k.value().to_vec(), v.value()));
                assert_eq!(got, model.pop_first(), "pop_first");
                popped = got.map(|(k, _)| k).or(popped.take());
            }
            Op::PopLast => {
                let got = t.pop_last().unwrap().map(|(k, v)| (k.value().to_vec(), v.value()));
                assert_eq!(got, model.pop_last(), "pop_last");
            }
            Op::Get(k) => {
                let got = t.get(key(*k).as_slice()).unwrap().map(|g| g.value());
                assert_eq!(got, model.get(&key(*k)).copied(), "get {:?}", key(*k));
            }
            Op::Range(_, _) | Op::RangeFromPopped(_, _) => {
                let (lower, upper) = match op {
                    Op::Range(lower, upper) => (keyed(*lower), keyed(*upper)),
                    Op::RangeFromPopped(included, upper) => match (&popped, included) {
                        (Some(k), true) => (Bound::Included(k.clone()), keyed(*upper)),
                        (Some(k), false) => (Bound::Excluded(k.clone()), keyed(*upper)),
                        (None, _) => (Bound::Unbounded, keyed(*upper)),
                    },
                    _ => unreachable!(),
                };
                let expected: Vec<(Vec<u8>, u32)> = if inverted(&lower, &upper) {
                    Vec::new()
                } else {
                    model
                        .range((lower.clone(), upper.clone()))
                        .map(|(k, v)| (k.clone(), *v))
                        .collect()
                };
                let bounds = (lower.as_ref().map(Vec::as_slice), upper.as_ref().map(Vec::as_slice));
                let got: Vec<(Vec<u8>, u32)> = t
                    .range::<&[u8]>(bounds)
                    .unwrap()
                    .map(|e| e.map(|(k, v)| (k.value().to_vec(), v.value())).unwrap())
                    .collect();
                assert_eq!(got, expected, "range {lower:?}..{upper:?}");
            }
            Op::NextFrom(bound, included) => {
                let bound = match (bound, &popped) {
                    (Some(bound), _) => keyed(*bound),
                    (None, Some(k)) if *included => Bound::Included(k.clone()),
                    (None, Some(k)) => Bound::Excluded(k.clone()),
                    (None, None) => Bound::Unbounded,
                };
                let expected = model
                    .range((bound.clone(), Bound::Unbounded))
                    .next()
                    .map(|(k, v)| (k.clone(), *v));
                let mut cursor = t.lower_bound_mut(bound.as_ref().map(Vec::as_slice)).unwrap();
                let got = cursor
                    .peek_next()
                    .unwrap()
                    .map(|(k, v)| (k.value().to_vec(), v.value()));
                assert_eq!(got, expected, "next from {bound:?}");
            }
            Op::PrevFrom(bound) => {
                let bound = keyed(*bound);
                let expected = model
                    .range((Bound::Unbounded, bound.clone()))
                    .next_back()
                    .map(|(k, v)| (k.clone(), *v));
                let mut cursor = t.upper_bound_mut(bound.as_ref().map(Vec::as_slice)).unwrap();
                let got = cursor
                    .peek_prev()
                    .unwrap()
                    .map(|(k, v)| (k.value().to_vec(), v.value()));
                assert_eq!(got, expected, "prev from {bound:?}");
            }
            Op::First => {
                let got = t.first().unwrap().map(|(k, v)| (k.value().to_vec(), v.value()));
                assert_eq!(got, model.first_key_value().map(|(k, v)| (k.clone(), *v)), "first");
            }
            Op::Last => {
                let got = t.last().unwrap().map(|(k, v)| (k.value().to_vec(), v.value()));
                assert_eq!(got, model.last_key_value().map(|(k, v)| (k.clone(), *v)), "last");
            }
            Op::Len => assert_eq!(t.len().unwrap(), model.len() as u64),
            Op::Commit => unreachable!(),
        }
    }
    {
        let t = txn.open_table(T).unwrap();
        let all: Vec<(Vec<u8>, u32)> = t
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.value().to_vec(), v.value())).unwrap())
            .collect();
        assert_eq!(all, model.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());
        assert_eq!(t.len().unwrap(), model.len() as u64);
    }
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    let all: Vec<(Vec<u8>, u32)> = t
        .iter()
        .unwrap()
        .map(|e| e.map(|(k, v)| (k.value().to_vec(), v.value())).unwrap())
        .collect();
    assert_eq!(all, model.into_iter().collect::<Vec<_>>(), "after the commit");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn pops_between_reads_and_writes_match_the_model(
        seed in proptest::collection::vec(0u8..96, 0..64),
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        run(&seed, &ops);
    }
}

/// A long pop loop with a range read now and then whose bounds lie past
/// the popped keys (the tail stays behind them) or reach back over them.
#[test]
fn a_pop_loop_with_ranges_that_reach_back_over_its_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..5_000u32 {
            t.insert(k.to_be_bytes().as_slice(), k).unwrap();
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..4_000u32 {
            assert_eq!(t.pop_first().unwrap().map(|(_, v)| v.value()), Some(k));
            if k % 250 == 0 {
                let from = (k + 1).to_be_bytes();
                let ahead: Vec<u32> = t
                    .range(from.as_slice()..)
                    .unwrap()
                    .take(3)
                    .map(|e| e.unwrap().1.value())
                    .collect();
                assert_eq!(ahead, vec![k + 1, k + 2, k + 3]);
                let back = 0u32.to_be_bytes();
                let first = t.range(back.as_slice()..).unwrap().next().map(|e| e.unwrap().1.value());
                assert_eq!(first, Some(k + 1), "the popped keys stay gone");
            }
        }
        assert_eq!(t.len().unwrap(), 1_000);
    }
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    assert_eq!(t.first().unwrap().map(|(_, v)| v.value()), Some(4_000));
    assert_eq!(t.len().unwrap(), 1_000);
}
