//! Acknowledged multimap commits survive power cuts. A property test writes
//! two multimap tables (one keyed by a custom-order type, whose recovered
//! records wait in `engine::deferred` until the typed open; one by `u64`)
//! with durable and unwaited commits, checkpoints and small memtables, cuts
//! the power with a random tear of every unsynced write, reopens in a
//! database that has never seen the key types, and checks the recovered
//! tables against the crash oracle: a prefix of the commits holding every
//! acknowledged one, the same prefix in both tables, and an intact file.

mod common;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use common::engine::CrashOracle;
use common::keys::{CrashDisk, Reversed};
use proptest::prelude::*;
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable,
    ReadableTableMetadata,
};

const CUSTOM: MultimapTableDefinition<Reversed, u16> = MultimapTableDefinition::new("custom");
const NUMBERS: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("numbers");

const KEYS: [&str; 5] = ["a", "b", "kiwi", "pear", "zz"];

/// Both tables: the custom-order one by its (reversed) key order, and the
/// numeric one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct State {
    custom: BTreeMap<Reverse<String>, BTreeSet<u16>>,
    numbers: BTreeMap<u64, BTreeSet<u64>>,
}

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, u16),
    Remove(usize, u16),
    RemoveAll(usize),
    Commit,
    CommitNoSync,
    Checkpoint,
    Crash(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0..KEYS.len(), 0u16..20).prop_map(|(k, v)| Op::Insert(k, v)),
        6 => (0..KEYS.len(), 0u16..20).prop_map(|(k, v)| Op::Remove(k, v)),
        1 => (0..KEYS.len()).prop_map(Op::RemoveAll),
        5 => Just(Op::Commit),
        4 => Just(Op::CommitNoSync),
        1 => Just(Op::Checkpoint),
        2 => any::<u64>().prop_map(Op::Crash),
    ]
}

/// Both tables as the database shows them; `len` checked against the
/// pairs, and the reverse iteration against the forward one.
fn read_state(db: &Database) -> State {
    let read = db.begin_read().unwrap();
    let mut state = State::default();
    if let Ok(table) = read.open_multimap_table(CUSTOM) {
        let mut pairs = 0;
        for entry in table.iter().unwrap() {
            let (k, vs) = entry.unwrap();
            let vs: BTreeSet<u16> = vs.map(|v| v.unwrap().value()).collect();
            pairs += vs.len();
            assert!(state.custom.insert(Reverse(k.value().to_string()), vs).is_none());
        }
        assert_eq!(table.len().unwrap(), pairs as u64);
        let mut keys: Vec<String> = table
            .iter()
            .unwrap()
            .rev()
            .map(|e| e.unwrap().0.value().to_string())
            .collect();
        keys.reverse();
        assert_eq!(keys, state.custom.keys().map(|k| k.0.clone()).collect::<Vec<_>>());
    }
    if let Ok(table) = read.open_multimap_table(NUMBERS) {
        for entry in table.iter().unwrap() {
            let (k, vs) = entry.unwrap();
            state
                .numbers
                .insert(k.value(), vs.map(|v| v.unwrap().value()).collect());
        }
    }
    state
}

fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_memtable_size(4 << 10);
    builder
}

fn run(ops: &[Op]) {
    let builder = builder();
    let mut disk = CrashDisk::new();
    let mut db = Some(disk.open(&builder));
    let (mut working, mut committed) = (State::default(), State::default());
    let mut oracle = CrashOracle::new(State::default());
    let mut txn: Option<sluicedb::WriteTransaction> = None;
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            Op::Insert(k, v) | Op::Remove(k, v) => {
                let t = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let mut custom = t.open_multimap_table(CUSTOM).unwrap();
                let mut numbers = t.open_multimap_table(NUMBERS).unwrap();
                let (key, number) = (KEYS[*k], *k as u64);
                let custom_values = working.custom.entry(Reverse(key.to_string())).or_default();
                let number_values = working.numbers.entry(number).or_default();
                if matches!(op, Op::Insert(..)) {
                    assert_eq!(custom.insert(key, v).unwrap(), !custom_values.insert(*v));
                    assert_eq!(
                        numbers.insert(number, *v as u64).unwrap(),
                        !number_values.insert(*v as u64)
                    );
                } else {
                    assert_eq!(custom.remove(key, v).unwrap(), custom_values.remove(v));
                    assert_eq!(
                        numbers.remove(number, *v as u64).unwrap(),
                        number_values.remove(&(*v as u64))
                    );
                }
                working.custom.retain(|_, vs| !vs.is_empty());
                working.numbers.retain(|_, vs| !vs.is_empty());
            }
            Op::RemoveAll(k) => {
                let t = txn.get_or_insert_with(|| d.begin_write().unwrap());
                let mut custom = t.open_multimap_table(CUSTOM).unwrap();
                let removed = custom.remove_all(KEYS[*k]).unwrap().count();
                let expected = working.custom.remove(&Reverse(KEYS[*k].to_string()));
                assert_eq!(removed, expected.map_or(0, |vs| vs.len()));
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
            Op::Checkpoint => {
                d.checkpoint().unwrap();
                if txn.is_none() {
                    oracle.durable(committed.clone());
                }
            }
            Op::Crash(seed) => {
                drop(txn.take());
                let image = disk.crashed(TearMode::Random(*seed));
                drop(db.take());
                disk = image;
                let mut reopened = disk.open(&builder);
                // Before any typed open: deferred records are not damage.
                assert!(reopened.check_integrity().unwrap());
                let state = read_state(&reopened);
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn acknowledged_multimap_commits_survive_power_cuts(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops);
    }
}

/// A commit acknowledged durable survives a power cut that drops every
/// unsynced write, with no checkpoint since: its pairs come back from the
/// WAL alone, and the custom-order table's records are deferred until the
/// typed open orders them.
#[test]
fn an_acknowledged_commit_survives_from_the_wal_alone() {
    let builder = Builder::new();
    let disk = CrashDisk::new();
    let db = disk.open(&builder);
    let txn = db.begin_write().unwrap();
    {
        let mut custom = txn.open_multimap_table(CUSTOM).unwrap();
        for key in KEYS {
            for v in [7u16, 3, 5] {
                custom.insert(key, v).unwrap();
            }
        }
    }
    txn.commit().unwrap();
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(&builder);
    let state = read_state(&db);
    let expected: BTreeMap<Reverse<String>, BTreeSet<u16>> = KEYS
        .iter()
        .map(|k| (Reverse(k.to_string()), BTreeSet::from([3, 5, 7])))
        .collect();
    assert_eq!(state.custom, expected);
    let read = db.begin_read().unwrap();
    let custom = read.open_multimap_table(CUSTOM).unwrap();
    let first: Vec<String> = custom
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().to_string())
        .collect();
    assert_eq!(first, ["zz", "pear", "kiwi", "b", "a"]);
}
