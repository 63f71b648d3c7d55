//! `pop_first` / `pop_last` on a table whose key order is not byte order
//! (strings in reverse byte order), against a model: the pop loop's walk of
//! the snapshot (`engine::pop`) and its merge with the transaction's own
//! writes compare through the table's comparator, across commits,
//! checkpoints (the snapshot then spans the tree and the memtables) and
//! removals on either side of what was popped.

mod common;

use std::cmp::Reverse;
use std::collections::BTreeMap;

use common::keys::Reversed;
use proptest::prelude::*;
use sluicedb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<Reversed, u32> = TableDefinition::new("reversed");

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u32),
    Remove(u8),
    PopFirst,
    PopLast,
    Commit,
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..48, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0u8..48).prop_map(Op::Remove),
        5 => Just(Op::PopFirst),
        3 => Just(Op::PopLast),
        1 => Just(Op::Commit),
        1 => Just(Op::Checkpoint),
    ]
}

fn run(ops: &[Op]) {
    let names: Vec<String> = (0..48).map(|k| format!("k{k:02}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::builder()
        .set_memtable_size(4 << 10)
        .create(dir.path().join("db"))
        .unwrap();
    // Reverse(name) sorts as the table does: the largest name first.
    let mut model: BTreeMap<Reverse<String>, u32> = BTreeMap::new();
    let mut txn = db.begin_write().unwrap();
    for op in ops {
        if let Op::Commit | Op::Checkpoint = op {
            txn.commit().unwrap();
            if matches!(op, Op::Checkpoint) {
                db.checkpoint().unwrap();
            }
            txn = db.begin_write().unwrap();
            continue;
        }
        let mut t = txn.open_table(T).unwrap();
        let popped = |entry: Option<(sluicedb::AccessGuard<'_, Reversed>, sluicedb::AccessGuard<'_, u32>)>| {
            entry.map(|(k, v)| (Reverse(k.value().to_string()), v.value()))
        };
        match op {
            Op::Insert(k, v) => {
                let name = names[usize::from(*k)].as_str();
                let old = t.insert(name, v).unwrap().map(|g| g.value());
                assert_eq!(old, model.insert(Reverse(name.to_string()), *v));
            }
            Op::Remove(k) => {
                let name = names[usize::from(*k)].as_str();
                let old = t.remove(name).unwrap().map(|g| g.value());
                assert_eq!(old, model.remove(&Reverse(name.to_string())));
            }
            Op::PopFirst => assert_eq!(popped(t.pop_first().unwrap()), model.pop_first()),
            Op::PopLast => assert_eq!(popped(t.pop_last().unwrap()), model.pop_last()),
            Op::Commit | Op::Checkpoint => unreachable!("handled above"),
        }
        assert_eq!(t.len().unwrap(), model.len() as u64);
        let all: Vec<(String, u32)> = t
            .iter()
            .unwrap()
            .map(|e| e.map(|(k, v)| (k.value().to_string(), v.value())).unwrap())
            .collect();
        let want: Vec<(String, u32)> = model.iter().map(|(k, v)| (k.0.clone(), *v)).collect();
        assert_eq!(all, want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn pops_in_a_custom_order_match_the_model(ops in proptest::collection::vec(op(), 1..150)) {
        run(&ops);
    }
}
