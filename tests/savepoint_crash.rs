//! Persistent savepoints under the crash model: commits (waited for or
//! not), persistent savepoint creations, deletions and restores,
//! checkpoints, and power cuts that lose, keep or tear every unsynced
//! write. After each crash the database, and every persistent savepoint it
//! lists with the contents a restore of it gives, must be a state the
//! commit order allows: every acknowledged savepoint survives with exactly
//! the contents of its commit, and nothing partial of any commit appears.

mod common;

use std::collections::BTreeMap;

use common::engine::CrashOracle;
use common::keys::CrashDisk;
use proptest::prelude::*;
use sluicedb::io::TearMode;
use sluicedb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};

const NAMES: [&str; 2] = ["t", "u"];

fn table(name: &str) -> TableDefinition<'_, u64, u64> {
    TableDefinition::new(name)
}

type Contents = BTreeMap<String, BTreeMap<u64, u64>>;

/// The database's contents and its persistent savepoints' contents.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    tables: Contents,
    savepoints: BTreeMap<u64, Contents>,
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u64, u64),
    Del(usize, u64),
    DeleteTable(usize),
    Commit,
    CommitNoSync,
    Persistent,
    DeletePersistent(usize),
    Restore(usize),
    Checkpoint,
    Crash(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..2usize, 0..16u64, 0..100u64).prop_map(|(t, k, v)| Op::Put(t, k, v)),
        3 => (0..2usize, 0..16u64).prop_map(|(t, k)| Op::Del(t, k)),
        1 => (0..2usize).prop_map(Op::DeleteTable),
        3 => Just(Op::Commit),
        2 => Just(Op::CommitNoSync),
        2 => Just(Op::Persistent),
        1 => (0..4usize).prop_map(Op::DeletePersistent),
        2 => (0..4usize).prop_map(Op::Restore),
        1 => Just(Op::Checkpoint),
        2 => any::<u64>().prop_map(Op::Crash),
    ]
}

fn txn_tables(txn: &WriteTransaction) -> Contents {
    let names: Vec<String> = txn.list_tables().unwrap().map(|h| h.name().to_string()).collect();
    names
        .into_iter()
        .map(|name| {
            let t = txn.open_table(table(&name)).unwrap();
            let c = t
                .iter()
                .unwrap()
                .map(|e| e.unwrap())
                .map(|(k, v)| (k.value(), v.value()));
            (name, c.collect())
        })
        .collect()
}

/// What the database holds now: its tables (through a read transaction)
/// and each persistent savepoint's contents (restored in a transaction
/// that is then aborted).
fn observe(db: &Database) -> State {
    let read = db.begin_read().unwrap();
    let mut tables = Contents::new();
    for handle in read.list_tables().unwrap() {
        let t = read.open_table(table(handle.name())).unwrap();
        let c = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|(k, v)| (k.value(), v.value()));
        tables.insert(handle.name().to_string(), c.collect());
    }
    let ids: Vec<u64> = db
        .begin_write()
        .unwrap()
        .list_persistent_savepoints()
        .unwrap()
        .collect();
    let mut savepoints = BTreeMap::new();
    for id in ids {
        let mut txn = db.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(id).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        savepoints.insert(id, txn_tables(&txn));
        txn.abort().unwrap();
    }
    State { tables, savepoints }
}

fn run(ops: &[Op]) {
    let builder = Builder::new();
    let mut disk = CrashDisk::new();
    let mut db = disk.open(&builder);
    let mut committed = State::default();
    let mut working = Contents::new();
    let mut oracle = CrashOracle::new(State::default());
    let mut txn: Option<WriteTransaction> = None;
    for op in ops {
        match op {
            Op::Put(t, k, v) => {
                let txn = txn.get_or_insert_with(|| db.begin_write().unwrap());
                txn.open_table(table(NAMES[*t])).unwrap().insert(k, v).unwrap();
                working.entry(NAMES[*t].into()).or_default().insert(*k, *v);
            }
            Op::Del(t, k) => {
                let txn = txn.get_or_insert_with(|| db.begin_write().unwrap());
                let name = NAMES[*t];
                if working.contains_key(name) {
                    txn.open_table(table(name)).unwrap().remove(k).unwrap();
                    working.get_mut(name).unwrap().remove(k);
                }
            }
            Op::DeleteTable(t) => {
                let txn = txn.get_or_insert_with(|| db.begin_write().unwrap());
                txn.delete_table(table(NAMES[*t])).unwrap();
                working.remove(NAMES[*t]);
            }
            Op::Commit | Op::CommitNoSync => {
                let Some(mut t) = txn.take() else { continue };
                if matches!(op, Op::CommitNoSync) {
                    t.set_durability(Durability::None).unwrap();
                }
                t.commit().unwrap();
                committed.tables = working.clone();
                if matches!(op, Op::Commit) {
                    oracle.durable(committed.clone());
                } else {
                    oracle.unwaited(committed.clone());
                }
            }
            Op::Persistent | Op::DeletePersistent(_) | Op::Restore(_) => {
                // In a transaction of its own, committed durably.
                if let Some(t) = txn.take() {
                    t.abort().unwrap();
                    working = committed.tables.clone();
                }
                let mut t = db.begin_write().unwrap();
                let ids: Vec<u64> = committed.savepoints.keys().copied().collect();
                match op {
                    Op::Persistent => {
                        let id = t.persistent_savepoint().unwrap();
                        committed.savepoints.insert(id, committed.tables.clone());
                    }
                    Op::DeletePersistent(i) => {
                        let Some(&id) = ids.get(i % ids.len().max(1)) else {
                            continue;
                        };
                        assert!(t.delete_persistent_savepoint(id).unwrap());
                        committed.savepoints.remove(&id);
                    }
                    Op::Restore(i) => {
                        let Some(&id) = ids.get(i % ids.len().max(1)) else {
                            continue;
                        };
                        let sp = t.get_persistent_savepoint(id).unwrap();
                        t.restore_savepoint(&sp).unwrap();
                        committed.tables = committed.savepoints[&id].clone();
                        committed.savepoints.retain(|&other, _| other <= id);
                    }
                    _ => unreachable!(),
                }
                t.commit().unwrap();
                working = committed.tables.clone();
                oracle.durable(committed.clone());
            }
            Op::Checkpoint => {
                db.checkpoint().unwrap();
                if txn.is_none() {
                    oracle.durable(committed.clone());
                }
            }
            Op::Crash(seed) => {
                drop(txn.take());
                let image = disk.crashed(TearMode::Random(*seed));
                drop(db);
                disk = image;
                db = disk.open(&builder);
                assert!(db.check_integrity().unwrap());
                let state = observe(&db);
                assert!(
                    oracle.allows(&state),
                    "recovered {state:?}, durable {:?}, ops {ops:?}",
                    oracle.last_durable()
                );
                committed = state.clone();
                working = state.tables.clone();
                oracle.durable(state);
            }
        }
    }
    drop(txn);
    assert_eq!(observe(&db), committed);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn persistent_savepoints_survive_crashes(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}

/// The plainest case, every way a crash can treat unsynced writes: a
/// savepoint acknowledged before the power cut restores exactly.
#[test]
fn an_acknowledged_savepoint_survives_every_tear_mode() {
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(7)] {
        let builder = Builder::new();
        let disk = CrashDisk::new();
        let db = disk.open(&builder);
        let txn = db.begin_write().unwrap();
        txn.open_table(table("t")).unwrap().insert(1, 10).unwrap();
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        let id = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::None).unwrap();
        txn.open_table(table("t")).unwrap().insert(1, 20).unwrap();
        txn.open_table(table("u")).unwrap().insert(2, 30).unwrap();
        txn.commit().unwrap();
        let image = disk.crashed(mode);
        drop(db);
        let db = image.open(&builder);
        let mut txn = db.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(id).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        let expect: Contents = [("t".to_string(), [(1, 10)].into())].into();
        assert_eq!(txn_tables(&txn), expect, "{mode:?}");
        txn.commit().unwrap();
    }
}
