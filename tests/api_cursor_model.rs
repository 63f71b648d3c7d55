//! `ReadableTable::lower_bound`/`upper_bound` and `Cursor` (redb 4.6),
//! against a model: a sorted key list and a gap index. Random tables (some
//! entries committed, some only in the write transaction), random bounds,
//! random walks of next/prev/peek_next/peek_prev.

use std::collections::BTreeSet;
use std::ops::Bound;

use proptest::prelude::*;
use sluicedb::{Cursor, Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u16, u16> = TableDefinition::new("t");

#[derive(Clone, Copy, Debug)]
enum Step {
    Next,
    Prev,
    PeekNext,
    PeekPrev,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Next),
        Just(Step::Prev),
        Just(Step::PeekNext),
        Just(Step::PeekPrev)
    ]
}

fn bound() -> impl Strategy<Value = Bound<u16>> {
    prop_oneof![
        (0u16..70).prop_map(Bound::Included),
        (0u16..70).prop_map(Bound::Excluded),
        Just(Bound::Unbounded)
    ]
}

/// The model's gap index for a lower (`lower`) or upper bound.
fn gap(keys: &[u16], b: Bound<u16>, lower: bool) -> usize {
    match (b, lower) {
        (Bound::Included(x), true) | (Bound::Excluded(x), false) => keys.partition_point(|k| *k < x),
        (Bound::Excluded(x), true) | (Bound::Included(x), false) => keys.partition_point(|k| *k <= x),
        (Bound::Unbounded, true) => 0,
        (Bound::Unbounded, false) => keys.len(),
    }
}

fn walk(mut cursor: Cursor<'_, u16, u16>, keys: &[u16], mut g: usize, steps: &[Step]) {
    for s in steps {
        let (got, want) = match s {
            Step::Next => {
                let want = keys.get(g).copied();
                if want.is_some() {
                    g += 1;
                }
                (cursor.next().unwrap(), want)
            }
            Step::Prev => {
                let want = g.checked_sub(1).map(|i| keys[i]);
                if want.is_some() {
                    g -= 1;
                }
                (cursor.prev().unwrap(), want)
            }
            Step::PeekNext => (cursor.peek_next().unwrap(), keys.get(g).copied()),
            Step::PeekPrev => (cursor.peek_prev().unwrap(), g.checked_sub(1).map(|i| keys[i])),
        };
        let got = got.map(|(k, v)| {
            assert_eq!(k.value(), v.value() / 2);
            k.value()
        });
        assert_eq!(got, want, "{s:?} at gap {g}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn cursors_walk_like_a_sorted_list(
        committed in prop::collection::btree_set(0u16..64, 0..30),
        pending in prop::collection::btree_set(0u16..64, 0..10),
        b in bound(),
        lower in any::<bool>(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for k in &committed {
                t.insert(k, k * 2).unwrap();
            }
        }
        txn.commit().unwrap();
        let keys: Vec<u16> = committed.iter().copied().collect();

        let read = db.begin_read().unwrap();
        let t = read.open_table(T).unwrap();
        let cursor = if lower { t.lower_bound(b.map(|x| x)) } else { t.upper_bound(b) }.unwrap();
        walk(cursor, &keys, gap(&keys, b, lower), &steps);

        // A write transaction's cursor sees its own writes.
        let txn = db.begin_write().unwrap();
        let mut t = txn.open_table(T).unwrap();
        for k in &pending {
            t.insert(k, k * 2).unwrap();
        }
        let all: Vec<u16> = committed.union(&pending).copied().collect::<BTreeSet<_>>().into_iter().collect();
        let cursor = if lower { t.lower_bound(b) } else { t.upper_bound(b) }.unwrap();
        walk(cursor, &all, gap(&all, b, lower), &steps);
    }
}
