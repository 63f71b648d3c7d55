//! Multimap tables against a `BTreeMap<K, BTreeSet<V>>` model: insert,
//! remove, remove_all, get (both directions), range (every bound kind, both
//! directions), iter and len over many commits, aborts, checkpoints, clean
//! reopens and small memtables (so pairs cross the memtable, flush and the
//! tree). The key type's order is not byte order (reversed strings), so the
//! pair comparator's key part is exercised and, after each reopen, the table's
//! records go through recovery's deferral until the typed open. Two keys are
//! long enough for their values to be gathered in chunks.

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use common::keys::{CrashDisk, Reversed};
use common::multimap::{Staged, check_committed};
use proptest::prelude::*;
use sluicedb::{
    Builder, Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, TableDefinition,
    TableError,
};

const TABLE: MultimapTableDefinition<Reversed, u16> = MultimapTableDefinition::new("multi");

/// Short keys (a value each per engine entry) and keys of 64 bytes and more
/// (their values gathered in chunks), neighbours in the table's order.
const KEYS: [&str; 8] = [
    "",
    "a",
    "ab",
    "b",
    "kiwi",
    "zz",
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqb",
];

/// Keys in the table's order (reversed strings), each with its values.
type Model = BTreeMap<Reverse<String>, BTreeSet<u16>>;

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, u16),
    Remove(usize, u16),
    RemoveAll(usize),
    Get(usize),
    Range(Bound<usize>, Bound<usize>, bool),
    Commit,
    CommitNoSync,
    Abort,
    Checkpoint,
    Compact,
    /// A clean reopen; with `true`, the new process first opens the table
    /// as an ordinary table (refused), which must not fix its order.
    Reopen(bool),
}

fn bound() -> impl Strategy<Value = Bound<usize>> {
    prop_oneof![
        (0..KEYS.len()).prop_map(Bound::Included),
        (0..KEYS.len()).prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Few values, so inserts and removes hit present pairs often.
    let value = 0u16..12;
    prop_oneof![
        20 => (0..KEYS.len(), value.clone()).prop_map(|(k, v)| Op::Insert(k, v)),
        8 => (0..KEYS.len(), value).prop_map(|(k, v)| Op::Remove(k, v)),
        2 => (0..KEYS.len()).prop_map(Op::RemoveAll),
        4 => (0..KEYS.len()).prop_map(Op::Get),
        4 => (bound(), bound(), any::<bool>()).prop_map(|(l, u, rev)| Op::Range(l, u, rev)),
        4 => Just(Op::Commit),
        2 => Just(Op::CommitNoSync),
        1 => Just(Op::Abort),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Compact),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

fn key_bound(b: &Bound<usize>) -> Bound<&'static str> {
    b.map(|i| KEYS[i])
}

fn model_bound(b: &Bound<usize>) -> Bound<Reverse<String>> {
    b.map(|i| Reverse(KEYS[i].to_string()))
}

/// The model's keys in a range, in order; empty for an inverted range (a
/// `BTreeMap` would panic on one).
fn model_range(model: &Model, lower: &Bound<usize>, upper: &Bound<usize>) -> Vec<(String, Vec<u16>)> {
    let (l, u) = (model_bound(lower), model_bound(upper));
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) = (&l, &u)
        && (a > b || (a == b && !matches!((&l, &u), (Bound::Included(_), Bound::Included(_)))))
    {
        return Vec::new();
    }
    model
        .range((l, u))
        .map(|(k, vs)| (k.0.clone(), vs.iter().copied().collect()))
        .collect()
}

/// Every read of `table` checked against `model`.
fn check_all(table: &impl ReadableMultimapTable<Reversed, u16>, model: &Model) {
    let pairs: usize = model.values().map(BTreeSet::len).sum();
    assert_eq!(table.len().unwrap(), pairs as u64, "len counts pairs");
    assert_eq!(table.is_empty().unwrap(), pairs == 0);
    let all = model_range(model, &Bound::Unbounded, &Bound::Unbounded);
    let forward: Vec<(String, Vec<u16>)> = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, vs) = e.unwrap();
            (k.value().to_string(), vs.map(|v| v.unwrap().value()).collect())
        })
        .collect();
    assert_eq!(forward, all);
    for k in 0..KEYS.len() {
        check_get(table, model, k);
    }
}

fn check_get(table: &impl ReadableMultimapTable<Reversed, u16>, model: &Model, k: usize) {
    let expected: Vec<u16> = model
        .get(&Reverse(KEYS[k].to_string()))
        .map(|vs| vs.iter().copied().collect())
        .unwrap_or_default();
    let values = table.get(KEYS[k]).unwrap();
    assert_eq!(values.len(), expected.len() as u64);
    assert_eq!(values.is_empty(), expected.is_empty());
    let got: Vec<u16> = values.map(|v| v.unwrap().value()).collect();
    assert_eq!(got, expected, "get {:?}", KEYS[k]);
    let mut back: Vec<u16> = table.get(KEYS[k]).unwrap().rev().map(|v| v.unwrap().value()).collect();
    back.reverse();
    assert_eq!(back, expected, "get {:?} backwards", KEYS[k]);
}

fn check_range(
    table: &impl ReadableMultimapTable<Reversed, u16>,
    model: &Model,
    lower: &Bound<usize>,
    upper: &Bound<usize>,
    rev: bool,
) {
    let mut expected = model_range(model, lower, upper);
    let range = table.range::<&str>((key_bound(lower), key_bound(upper))).unwrap();
    let collect = |e: Result<_, _>| {
        let (k, vs): (sluicedb::AccessGuard<Reversed>, sluicedb::MultimapValue<u16>) = e.unwrap();
        (
            k.value().to_string(),
            vs.map(|v| v.unwrap().value()).collect::<Vec<_>>(),
        )
    };
    let got: Vec<(String, Vec<u16>)> = if rev {
        expected.reverse();
        range.rev().map(collect).collect()
    } else {
        range.map(collect).collect()
    };
    assert_eq!(got, expected, "range {lower:?}..{upper:?} rev={rev}");
}

/// Alternates ends: a range read from both ends at once still yields each
/// key exactly once, with all its values.
fn check_both_ends(table: &impl ReadableMultimapTable<Reversed, u16>, model: &Model) {
    let expected = model_range(model, &Bound::Unbounded, &Bound::Unbounded);
    let mut range = table.iter().unwrap();
    let (mut front, mut back) = (Vec::new(), Vec::new());
    let mut from_front = true;
    loop {
        let next = if from_front { range.next() } else { range.next_back() };
        let Some(entry) = next else { break };
        let (k, vs) = entry.unwrap();
        let item = (
            k.value().to_string(),
            vs.map(|v| v.unwrap().value()).collect::<Vec<_>>(),
        );
        if from_front {
            front.push(item)
        } else {
            back.push(item)
        }
        from_front = !from_front;
    }
    back.reverse();
    front.extend(back);
    assert_eq!(front, expected);
}

fn builder() -> Builder {
    let mut builder = Builder::new();
    // Small memtables: pairs are flushed into the tree every few commits.
    builder.set_memtable_size(4 << 10);
    builder
}

fn run(ops: &[Op]) {
    let builder = builder();
    let disk = CrashDisk::new();
    let mut db: Database = disk.open(&builder);
    let mut s = Staged::new(Model::new());
    for op in ops {
        match op {
            Op::Insert(k, v) | Op::Remove(k, v) => {
                let (txn, working) = s.begin(&db);
                let mut table = txn.open_multimap_table(TABLE).unwrap();
                let values = working.entry(Reverse(KEYS[*k].to_string())).or_default();
                if matches!(op, Op::Insert(..)) {
                    assert_eq!(table.insert(KEYS[*k], v).unwrap(), !values.insert(*v));
                } else {
                    assert_eq!(table.remove(KEYS[*k], v).unwrap(), values.remove(v));
                }
                drop(table);
                working.retain(|_, vs| !vs.is_empty());
            }
            Op::RemoveAll(k) => {
                let (txn, working) = s.begin(&db);
                let mut table = txn.open_multimap_table(TABLE).unwrap();
                let expected: Vec<u16> = working
                    .remove(&Reverse(KEYS[*k].to_string()))
                    .map(|vs| vs.into_iter().collect())
                    .unwrap_or_default();
                let removed: Vec<u16> = table
                    .remove_all(KEYS[*k])
                    .unwrap()
                    .map(|v| v.unwrap().value())
                    .collect();
                assert_eq!(removed, expected);
            }
            Op::Get(k) => match &s.txn {
                // The write transaction sees its own writes.
                Some(t) => check_get(&t.open_multimap_table(TABLE).unwrap(), &s.working, *k),
                None => {
                    let read = db.begin_read().unwrap();
                    if let Ok(table) = read.open_multimap_table(TABLE) {
                        check_get(&table, &s.committed, *k);
                    }
                }
            },
            Op::Range(lower, upper, rev) => match &s.txn {
                Some(t) => check_range(&t.open_multimap_table(TABLE).unwrap(), &s.working, lower, upper, *rev),
                None => {
                    let read = db.begin_read().unwrap();
                    if let Ok(table) = read.open_multimap_table(TABLE) {
                        check_range(&table, &s.committed, lower, upper, *rev);
                        check_both_ends(&table, &s.committed);
                    }
                }
            },
            Op::Commit => s.commit(None),
            Op::CommitNoSync => s.commit(Some(Durability::None)),
            Op::Abort => s.abort(),
            Op::Checkpoint => db.checkpoint().unwrap(),
            Op::Compact => {
                s.drop_txn();
                db.compact().unwrap();
            }
            Op::Reopen(wrong_kind_first) => {
                s.drop_txn();
                drop(db);
                db = disk.open(&builder);
                // Checked before the table is opened: its records are
                // deferred until then, which is not damage.
                assert!(db.check_integrity().unwrap());
                if *wrong_kind_first {
                    let read = db.begin_read().unwrap();
                    assert!(matches!(
                        read.open_table(TableDefinition::<Reversed, u16>::new("multi")),
                        Err(TableError::TableIsMultimap(_) | TableError::TableDoesNotExist(_))
                    ));
                }
            }
        }
    }
    s.drop_txn();
    let committed = &s.committed;
    check_committed(&mut db, TABLE, committed.is_empty(), |table| {
        check_all(table, committed)
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn multimap_tables_match_the_model(ops in proptest::collection::vec(op(), 1..150)) {
        run(&ops);
    }
}

/// Many values under one key and many keys: `get`, `remove_all`, `len` and
/// both iteration directions across a flush into the tree.
#[test]
fn many_values_per_key_across_flush_and_reopen() {
    let builder = builder();
    let disk = CrashDisk::new();
    let mut model = Model::new();
    {
        let db = disk.open(&builder);
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_multimap_table(TABLE).unwrap();
            for (i, key) in KEYS.iter().enumerate() {
                for v in 0..(200 * i as u16) {
                    table.insert(*key, v * 3).unwrap();
                    model.entry(Reverse(key.to_string())).or_default().insert(v * 3);
                }
            }
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_multimap_table(TABLE).unwrap();
            let removed: Vec<u16> = table.remove_all("ab").unwrap().map(|v| v.unwrap().value()).collect();
            assert_eq!(removed.len(), 400);
            model.remove(&Reverse("ab".to_string()));
            check_all(&table, &model);
        }
        txn.commit().unwrap();
    }
    let db = disk.open(&builder);
    let read = db.begin_read().unwrap();
    let table = read.open_multimap_table(TABLE).unwrap();
    check_all(&table, &model);
    check_both_ends(&table, &model);
}
