//! The class of defects 1, 5, 6 and 11 of the correctness issue: every path
//! that learns a table's key order (create, open, reopen, recovery, rename,
//! delete and recreate, compaction) must agree, and nothing may fall back to
//! byte order. A property test through the public API against a model, with
//! a key type whose order is not byte order and which calls different bytes
//! equal (case-insensitive strings), across commits of both durabilities,
//! checkpoints, compactions, clean reopens, power cuts and renames. Every
//! reopen is a new engine that has never seen the key type.

mod common;

use std::collections::BTreeMap;

use common::engine::CrashOracle;
use common::keys::{CaseInsensitive, CrashDisk};
use proptest::prelude::*;
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

const NAMES: [&str; 2] = ["first", "second"];

/// By lower-cased key: the stored key's bytes and its value.
type Model = BTreeMap<String, (String, u8)>;

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u8),
    Del(usize),
    Commit,
    CommitNoSync,
    Abort,
    Checkpoint,
    Compact,
    Rename,
    Recreate,
    Reopen,
    Crash(u64),
    Read,
}

const KEYS: [&str; 10] = ["apple", "APPLE", "Apple", "b", "B", "cherry", "CHERRY", "d", "ee", "EE"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0..KEYS.len(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        6 => (0..KEYS.len()).prop_map(Op::Del),
        4 => Just(Op::Commit),
        3 => Just(Op::CommitNoSync),
        1 => Just(Op::Abort),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Compact),
        2 => Just(Op::Rename),
        1 => Just(Op::Recreate),
        2 => Just(Op::Reopen),
        2 => any::<u64>().prop_map(Op::Crash),
        3 => Just(Op::Read),
    ]
}

fn definition(name: &str) -> TableDefinition<'_, CaseInsensitive, u8> {
    TableDefinition::new(name)
}

/// The table as the database shows it, checked in both directions and by
/// point reads with other spellings of each key.
fn read_all(db: &Database, name: &str) -> Model {
    let read = db.begin_read().unwrap();
    let Ok(table) = read.open_table(definition(name)) else {
        return Model::new();
    };
    let forward: Vec<(String, u8)> = table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value())
        })
        .collect();
    let mut backward: Vec<(String, u8)> = table
        .iter()
        .unwrap()
        .rev()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value())
        })
        .collect();
    backward.reverse();
    assert_eq!(forward, backward, "the two directions disagree");
    assert_eq!(table.len().unwrap(), forward.len() as u64);
    for (k, v) in &forward {
        let upper = k.to_ascii_uppercase();
        assert_eq!(
            table.get(upper.as_str()).unwrap().map(|g| g.value()),
            Some(*v),
            "get {upper}"
        );
    }
    forward
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (k, v)))
        .collect()
}

fn run(ops: &[Op]) {
    let builder = Builder::new();
    let mut disk = CrashDisk::new();
    let mut db = Some(disk.open(&builder));
    let mut name = 0usize;
    let (mut working, mut committed) = (Model::new(), Model::new());
    let mut oracle = CrashOracle::new(Model::new());
    let mut txn: Option<sluicedb::WriteTransaction> = None;
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            Op::Put(k, _) | Op::Del(k) => {
                let txn = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let mut table = txn.open_table(definition(NAMES[name])).unwrap();
                let key = KEYS[*k];
                let lower = key.to_ascii_lowercase();
                if let Op::Put(_, v) = op {
                    let old = table.insert(key, *v).unwrap().map(|g| g.value());
                    assert_eq!(old, working.insert(lower, (key.to_string(), *v)).map(|(_, v)| v));
                } else {
                    let old = table.remove(key).unwrap().map(|g| g.value());
                    assert_eq!(old, working.remove(&lower).map(|(_, v)| v));
                }
            }
            Op::Commit | Op::CommitNoSync => {
                let Some(mut t) = txn.take() else { continue };
                if matches!(op, Op::CommitNoSync) {
                    t.set_durability(Durability::None).unwrap();
                }
                t.commit().unwrap();
                committed = working.clone();
                if matches!(op, Op::Commit) {
                    oracle.durable(committed.clone());
                } else {
                    oracle.unwaited(committed.clone());
                }
            }
            Op::Abort => {
                if let Some(t) = txn.take() {
                    t.abort().unwrap();
                }
                working = committed.clone();
            }
            Op::Rename | Op::Recreate => {
                drop(txn.take());
                working = committed.clone();
                let t = d.begin_write().unwrap();
                if matches!(op, Op::Rename) {
                    // Renamed before it is opened with its type in this txn.
                    match t.rename_table(definition(NAMES[name]), definition(NAMES[1 - name])) {
                        Ok(()) => name = 1 - name,
                        Err(sluicedb::TableError::TableDoesNotExist(_)) => {}
                        Err(e) => panic!("rename: {e}"),
                    }
                } else {
                    t.delete_table(definition(NAMES[name])).unwrap();
                    t.open_table(definition(NAMES[name])).unwrap();
                    working.clear();
                }
                t.commit().unwrap();
                committed = working.clone();
                oracle.durable(committed.clone());
            }
            Op::Checkpoint => {
                d.checkpoint().unwrap();
                if txn.is_none() {
                    oracle.durable(committed.clone());
                }
            }
            Op::Compact => {
                drop(txn.take());
                working = committed.clone();
                db.as_mut().unwrap().compact().unwrap();
                oracle.durable(committed.clone());
            }
            Op::Read => {
                if txn.is_none() {
                    assert_eq!(read_all(d, NAMES[name]), committed);
                }
            }
            Op::Reopen | Op::Crash(_) => {
                drop(txn.take());
                if let Op::Crash(seed) = op {
                    let image = disk.crashed(TearMode::Random(*seed));
                    drop(db.take());
                    disk = image;
                } else {
                    drop(db.take());
                    oracle.durable(committed.clone());
                }
                let mut reopened = disk.open(&builder);
                // Checked before the table is opened: an unknown order is
                // not damage.
                assert!(reopened.check_integrity().unwrap());
                let state = read_all(&reopened, NAMES[name]);
                assert!(
                    oracle.allows(&state),
                    "recovered {state:?}, durable {:?}",
                    oracle.last_durable()
                );
                assert!(reopened.check_integrity().unwrap());
                committed = state.clone();
                working = state.clone();
                oracle.durable(state);
                db = Some(reopened);
            }
        }
    }
    drop(txn);
    let d = db.as_ref().unwrap();
    d.checkpoint().unwrap();
    assert_eq!(read_all(d, NAMES[name]), committed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn custom_orders_agree_everywhere(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}
