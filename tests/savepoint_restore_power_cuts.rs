//! Power cuts (written by the twenty-third session's review; it found
//! nothing here) at every data-file and WAL operation of a
//! restore of a persistent savepoint, the deletion of that savepoint and the
//! creation of a new one (through the WAL, and through the tree with a tiny
//! tree-commit size). After each cut the database must recover to a state
//! of the commit order at or after the last acknowledged commit, and every
//! listed persistent savepoint must restore to exactly its contents.

mod common;

use std::collections::BTreeMap;

use common::keys::CrashDisk;
use common::savepoints::{Full, table, txn_db};
use sluicedb::io::TearMode;
use sluicedb::{Builder, Database, Durability, MultimapTableDefinition};

const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");

fn observe(db: &Database) -> Full {
    let txn = db.begin_write().unwrap();
    let dbc = txn_db(&txn);
    let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    txn.abort().unwrap();
    let mut sps = BTreeMap::new();
    for id in ids {
        let mut txn = db.begin_write().unwrap();
        drop(txn.open_multimap_table(M).unwrap());
        let sp = txn.get_persistent_savepoint(id).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        sps.insert(id, txn_db(&txn));
        txn.abort().unwrap();
    }
    Full { db: dbc, sps }
}

/// Builds the starting database; returns the states of the commit order
/// (index 0: before the operations under test).
fn setup_durable(db: &Database) -> u64 {
    let txn = db.begin_write().unwrap();
    {
        let mut a = txn.open_table(table("a")).unwrap();
        for k in 0..400 {
            a.insert(k, k).unwrap();
        }
        let mut b = txn.open_table(table("b")).unwrap();
        for k in 0..50 {
            b.insert(k, 1000 + k).unwrap();
        }
        let mut m = txn.open_multimap_table(M).unwrap();
        for k in 0..100 {
            m.insert(k % 10, k).unwrap();
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    // Change everything after it: overwrite a, drop b, rename-like churn,
    // a new table, multimap churn; partly non-durable.
    let txn = db.begin_write().unwrap();
    {
        let mut a = txn.open_table(table("a")).unwrap();
        for k in 0..400 {
            a.insert(k, k + 7).unwrap();
        }
        let mut m = txn.open_multimap_table(M).unwrap();
        m.remove_all(3).unwrap();
        m.insert(77, 77).unwrap();
    }
    txn.delete_table(table("b")).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    id
}

/// A non-durable commit after `setup_durable`.
fn setup_none(db: &Database) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::None).unwrap();
    txn.open_table(table("c")).unwrap().insert(1, 1).unwrap();
    txn.rename_table(table("c"), table("b")).unwrap();
    txn.commit().unwrap();
}

/// The operations under test, stopping at the first failure; returns how
/// many were acknowledged.
fn operations(db: &Database, id: u64) -> usize {
    let mut acked = 0;
    let steps: [&dyn Fn(&Database) -> bool; 3] = [
        &|db| {
            let Ok(mut txn) = db.begin_write() else { return false };
            let Ok(sp) = txn.get_persistent_savepoint(id) else {
                return false;
            };
            txn.restore_savepoint(&sp).is_ok() && txn.commit().is_ok()
        },
        &|db| {
            let Ok(txn) = db.begin_write() else { return false };
            txn.delete_persistent_savepoint(id).is_ok() && txn.commit().is_ok()
        },
        &|db| {
            let Ok(txn) = db.begin_write() else { return false };
            txn.persistent_savepoint().is_ok() && txn.commit().is_ok()
        },
    ];
    for step in steps {
        if !step(db) {
            break;
        }
        acked += 1;
    }
    acked
}

fn run(builder: &Builder, label: &str) {
    // Dry run: the expected states and the operation counts.
    let disk = CrashDisk::new();
    let db = disk.open(builder);
    let id = setup_durable(&db);
    let pre_none = observe(&db);
    setup_none(&db);
    let mut states = vec![observe(&db)];
    let (d0, w0) = (disk.data.ops(), disk.wal.ops());
    {
        let mut txn = db.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(id).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
    }
    states.push(observe(&db));
    {
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_persistent_savepoint(id).unwrap());
        txn.commit().unwrap();
    }
    states.push(observe(&db));
    {
        let txn = db.begin_write().unwrap();
        txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
    }
    states.push(observe(&db));
    let (d1, w1) = (disk.data.ops(), disk.wal.ops());
    let tree_commits = db.stats().tree_commits;
    eprintln!(
        "{label}: tree commits {tree_commits}, data ops {}, wal ops {}",
        d1 - d0,
        w1 - w0
    );
    if label == "tree" {
        assert!(
            tree_commits >= 3,
            "{label}: the operations under test go through the tree"
        );
    }
    drop(db);
    assert_eq!(states[1].db, states[0].sps[&id], "{label}: the restore itself");
    let (data_ops, wal_ops) = (d1 - d0, w1 - w0);

    let mut failures = Vec::new();
    for which in 0..3 {
        let limit = if which == 1 { wal_ops } else { data_ops };
        for n in 0..=limit + 2 {
            for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(n)] {
                let disk = CrashDisk::new();
                let db = disk.open(builder);
                let id = setup_durable(&db);
                setup_none(&db);
                let before = observe(&db);
                assert_eq!(before, states[0]);
                match which {
                    0 => disk.data.cut_power_after(disk.data.ops() + n),
                    1 => disk.wal.cut_power_after(disk.wal.ops() + n),
                    _ => {
                        disk.data.cut_power_after(disk.data.ops() + n);
                        disk.wal.cut_power_after(disk.wal.ops() + n);
                    }
                }
                let acked = operations(&db, id);
                let image = disk.crashed(mode);
                drop(db);
                let mut db = match builder.create_with_backends(image.data.clone(), image.wal.clone()) {
                    Ok(db) => db,
                    Err(e) => {
                        failures.push(format!("{label} cut {which}/{n} {mode:?}: open failed: {e}"));
                        continue;
                    }
                };
                if !db.check_integrity().unwrap() {
                    failures.push(format!("{label} cut {which}/{n} {mode:?}: integrity"));
                }
                let got = observe(&db);
                // Acknowledged commits survive; a later one may too (the
                // `Durability::None` commit of `setup` is synced by the
                // first durable one, so it is in every state).
                let ok = states[acked..].contains(&got) || (acked == 0 && got == pre_none);
                if !ok {
                    let which_state = states.iter().position(|s| *s == got);
                    failures.push(format!(
                        "{label} cut {which}/{n} {mode:?}: acked {acked}, recovered state #{which_state:?}: tables {:?}, savepoints {:?}",
                        got.db.tables.iter().map(|(k, v)| (k.clone(), v.len())).collect::<Vec<_>>(),
                        got.sps.keys().collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn power_cuts_through_the_wal() {
    run(&Builder::new(), "wal");
}

#[test]
fn power_cuts_through_tree_commits() {
    let mut b = Builder::new();
    b.set_tree_commit_size(2 << 10).set_memtable_size(8 << 10);
    run(&b, "tree");
}
