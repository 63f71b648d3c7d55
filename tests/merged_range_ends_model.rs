//! Ranges over the tree and the layers above it (a memtable, a write
//! transaction's own writes), read from both ends in random interleavings
//! and cloned midway, against a model. The tree holds a checkpointed load;
//! the memtable overwrites, removes and adds keys over it; a write
//! transaction may change more. The merge passes the tree's entries
//! straight through while they come before the newer layers' next key, and
//! holds one back only when a newer layer's entry comes first
//! (`engine::merge`, `Merge::tree_pending`): every way in and out of that
//! state is a step here, whichever end takes it and whichever end started.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u16, u16> = TableDefinition::new("t");

#[derive(Clone, Copy, Debug)]
enum Step {
    Next,
    NextBack,
    /// Replaces the range with a clone of itself, which goes on from where
    /// it stands.
    Clone,
}

#[derive(Clone, Debug)]
enum Change {
    Put(u16, u16),
    Remove(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![4 => Just(Step::Next), 4 => Just(Step::NextBack), 1 => Just(Step::Clone)]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0u16..120, any::<u16>()).prop_map(|(k, v)| Change::Put(k, v)),
        2 => (0u16..120).prop_map(Change::Remove),
    ]
}

fn bound() -> impl Strategy<Value = Bound<u16>> {
    prop_oneof![
        (0u16..130).prop_map(Bound::Included),
        (0u16..130).prop_map(Bound::Excluded),
        Just(Bound::Unbounded)
    ]
}

/// Makes `changes` in `table` and in the model.
fn write(table: &mut sluicedb::Table<'_, u16, u16>, changes: &[Change], model: &mut BTreeMap<u16, u16>) {
    for change in changes {
        match *change {
            Change::Put(k, v) => {
                table.insert(k, v).unwrap();
                model.insert(k, v);
            }
            Change::Remove(k) => {
                table.remove(k).unwrap();
                model.remove(&k);
            }
        }
    }
}

/// Whether `BTreeMap::range` accepts the bounds (it panics on inverted
/// ones, which a table's range answers with nothing).
fn valid(lower: Bound<u16>, upper: Bound<u16>) -> bool {
    match (lower, upper) {
        (Bound::Included(l), Bound::Included(u)) => l <= u,
        (Bound::Included(l) | Bound::Excluded(l), Bound::Included(u) | Bound::Excluded(u)) => l < u,
        _ => true,
    }
}

/// Walks `range` by `steps`, checking each answer against the model's
/// entries within the bounds, consumed from either end.
fn walk<'a, I>(mut range: I, model: &BTreeMap<u16, u16>, lower: Bound<u16>, upper: Bound<u16>, steps: &[Step])
where
    I: DoubleEndedIterator<
            Item = Result<(sluicedb::AccessGuard<'a, u16>, sluicedb::AccessGuard<'a, u16>), sluicedb::StorageError>,
        > + Clone,
{
    let mut want: std::collections::VecDeque<(u16, u16)> = if valid(lower, upper) {
        model.range((lower, upper)).map(|(k, v)| (*k, *v)).collect()
    } else {
        Default::default()
    };
    for (i, step) in steps.iter().enumerate() {
        let (got, expected) = match step {
            Step::Next => (range.next(), want.pop_front()),
            Step::NextBack => (range.next_back(), want.pop_back()),
            Step::Clone => {
                range = range.clone();
                continue;
            }
        };
        let got = got.map(|entry| {
            let (k, v) = entry.unwrap();
            (k.value(), v.value())
        });
        assert_eq!(got, expected, "step {i} ({step:?}) of {steps:?}");
    }
    // What is left, from the front.
    let rest: Vec<(u16, u16)> = range
        .map(|entry| {
            let (k, v) = entry.unwrap();
            (k.value(), v.value())
        })
        .collect();
    assert_eq!(rest, Vec::from(want), "the rest after {steps:?}");
}

fn run(
    loaded: &[(u16, u16)],
    memtable: &[Change],
    own: &[Change],
    (lower, upper): (Bound<u16>, Bound<u16>),
    steps: &[Step],
) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let mut model = BTreeMap::new();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        for &(k, v) in loaded {
            table.insert(k, v).unwrap();
            model.insert(k, v);
        }
    }
    txn.commit().unwrap();
    // The load goes into the tree; the changes after it stay in the
    // memtable (far below its size, and no checkpoint follows).
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    write(&mut txn.open_table(T).unwrap(), memtable, &mut model);
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    walk(table.range((lower, upper)).unwrap(), &model, lower, upper, steps);

    // A write transaction's own writes above both.
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(T).unwrap();
        write(&mut table, own, &mut model);
        walk(table.range((lower, upper)).unwrap(), &model, lower, upper, steps);
    }
    txn.abort().unwrap();
}

#[test]
fn a_walk_from_both_ends_through_shadowed_removed_and_new_keys() {
    // Tree: every even key. Memtable: odd keys added, some evens
    // overwritten, some removed. Ends meet in the middle of both layers.
    let loaded: Vec<(u16, u16)> = (0..60).step_by(2).map(|k| (k, k)).collect();
    let memtable: Vec<Change> = (0..60)
        .filter_map(|k| match k % 6 {
            1 | 3 => Some(Change::Put(k, 1000 + k)),
            2 => Some(Change::Put(k, 2000 + k)),
            4 => Some(Change::Remove(k)),
            _ => None,
        })
        .collect();
    let steps = [
        Step::Next,
        Step::Next,
        Step::NextBack,
        Step::Next,
        Step::Clone,
        Step::NextBack,
        Step::NextBack,
        Step::Next,
    ];
    run(
        &loaded,
        &memtable,
        &[Change::Put(7, 7), Change::Remove(8)],
        (Bound::Unbounded, Bound::Unbounded),
        &steps,
    );
    run(
        &loaded,
        &memtable,
        &[],
        (Bound::Included(3), Bound::Excluded(40)),
        &steps,
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ranges_over_the_tree_and_the_layers_above_match_a_model(
        loaded in proptest::collection::vec((0u16..120, any::<u16>()), 0..80),
        memtable in proptest::collection::vec(change(), 0..60),
        own in proptest::collection::vec(change(), 0..12),
        lower in bound(),
        upper in bound(),
        steps in proptest::collection::vec(step(), 0..40),
    ) {
        run(&loaded, &memtable, &own, (lower, upper), &steps);
    }
}
