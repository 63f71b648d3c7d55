//! `pop_first` and `pop_last` against a model, interleaved with inserts and
//! removes on either side of what was popped, within one transaction and
//! across commits and checkpoints. A pop loop starts each search past the
//! keys earlier pops removed (issue 13: it walked every tombstone again,
//! quadratic); any put at or beyond a popped key must bring it back into the
//! search. A pop loop keeps one walk of the snapshot per direction for the
//! whole transaction (`engine::pop`): deleting the table and restoring a
//! savepoint mid-loop, which take back the transaction's own writes that
//! walk relies on, are in the mix.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluicedb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u16, u32> = TableDefinition::new("t");

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    PopFirst,
    PopLast,
    Commit,
    Checkpoint,
    /// Commits, then takes an ephemeral savepoint at the start of the next
    /// transaction (the only place one may be taken).
    Savepoint,
    Restore,
    DeleteTable,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..64, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0u16..64).prop_map(Op::Remove),
        5 => Just(Op::PopFirst),
        3 => Just(Op::PopLast),
        1 => Just(Op::Commit),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Savepoint),
        1 => Just(Op::Restore),
        1 => Just(Op::DeleteTable),
    ]
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_memtable_size(4 << 10)
        .create(dir.path().join("db"))
        .unwrap();
    let mut model: BTreeMap<u16, u32> = BTreeMap::new();
    let mut savepoint: Option<(sluicedb::Savepoint, BTreeMap<u16, u32>)> = None;
    let mut txn = db.begin_write().unwrap();
    for op in ops {
        match op {
            Op::Commit | Op::Checkpoint | Op::Savepoint => {
                txn.commit().unwrap();
                if matches!(op, Op::Checkpoint) {
                    db.checkpoint().unwrap();
                }
                txn = db.begin_write().unwrap();
                if matches!(op, Op::Savepoint) {
                    savepoint = Some((txn.ephemeral_savepoint().unwrap(), model.clone()));
                }
            }
            Op::Restore => {
                if let Some((point, at)) = &savepoint {
                    txn.restore_savepoint(point).unwrap();
                    model = at.clone();
                }
            }
            Op::DeleteTable => {
                txn.delete_table(T).unwrap();
                model.clear();
            }
            _ => {
                let mut t = txn.open_table(T).unwrap();
                match op {
                    Op::Insert(k, v) => {
                        assert_eq!(t.insert(k, v).unwrap().map(|g| g.value()), model.insert(*k, *v));
                    }
                    Op::Remove(k) => assert_eq!(t.remove(k).unwrap().map(|g| g.value()), model.remove(k)),
                    Op::PopFirst => {
                        let got = t.pop_first().unwrap().map(|(k, v)| (k.value(), v.value()));
                        assert_eq!(got, model.pop_first());
                    }
                    Op::PopLast => {
                        let got = t.pop_last().unwrap().map(|(k, v)| (k.value(), v.value()));
                        assert_eq!(got, model.pop_last());
                    }
                    _ => unreachable!(),
                }
                assert_eq!(t.len().unwrap(), model.len() as u64);
                let all: Vec<(u16, u32)> = t
                    .iter()
                    .unwrap()
                    .map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap())
                    .collect();
                assert_eq!(all, model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn pops_match_the_model(ops in proptest::collection::vec(op(), 1..150)) {
        run(&ops);
    }
}

#[test]
fn a_pop_loop_empties_a_large_table_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..20_000u16 {
            t.insert(k, u32::from(k)).unwrap();
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..10_000u16 {
            assert_eq!(t.pop_first().unwrap().map(|(k, _)| k.value()), Some(k));
            assert_eq!(t.pop_last().unwrap().map(|(k, _)| k.value()), Some(19_999 - k));
        }
        assert!(t.pop_first().unwrap().is_none());
        assert!(t.is_empty().unwrap());
    }
    txn.commit().unwrap();
}
