//! Power cuts at every data-file and WAL operation of (1) the
//! restore of the older of two persistent savepoints (which deletes the
//! newer one), (2) the creation of a new savepoint, (3) a deletion with
//! `commit_pipelined` waited for, (4) the deletion of the restored one,
//! over ordinary, custom-order and chunked multimap tables. After each
//! cut: the database opens, passes the integrity check, holds a state of
//! the commit order at or after the last acknowledged commit, and every
//! listed savepoint restores to exactly its contents.

mod common;

use std::collections::BTreeMap;

use common::keys::CrashDisk;
use common::mixed::{A, CI, LM, Mixed, current, restored};
use sluicedb::io::TearMode;
use sluicedb::{Builder, Database};

#[derive(Debug, Clone, PartialEq, Default)]
struct Full {
    db: Mixed,
    sps: BTreeMap<u64, Mixed>,
}

fn lkey(i: u64) -> Vec<u8> {
    let mut k = vec![b'M'; 70];
    k[69] = b'0' + (i % 5) as u8;
    k
}

fn observe(db: &Database) -> Full {
    let txn = db.begin_write().unwrap();
    let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
    txn.abort().unwrap();
    let sps = ids.into_iter().map(|id| (id, restored(db, id))).collect();
    Full { db: current(db), sps }
}

fn change(db: &Database, r: u64) {
    let txn = db.begin_write().unwrap();
    {
        let mut a = txn.open_table(A).unwrap();
        for k in 0..150 {
            if (k + r).is_multiple_of(4) {
                a.remove(k).unwrap();
            } else {
                a.insert(k, (k * 10 + r).to_le_bytes().as_slice()).unwrap();
            }
        }
        let mut ci = txn.open_table(CI).unwrap();
        for k in 0..10u64 {
            let name = if r.is_multiple_of(2) {
                format!("KEY{k}")
            } else {
                format!("key{k}")
            };
            ci.insert(name.as_str(), r).unwrap();
        }
        let mut lm = txn.open_multimap_table(LM).unwrap();
        for i in 0..150u64 {
            let v = (i * 11 + r * 3) % 400;
            if (i + r).is_multiple_of(3) {
                lm.remove(lkey(i).as_slice(), v).unwrap();
            } else {
                lm.insert(lkey(i).as_slice(), v).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

/// Two savepoints with changes around them; returns their ids.
fn setup(db: &Database) -> (u64, u64) {
    change(db, 0);
    let txn = db.begin_write().unwrap();
    let old = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    change(db, 1);
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    let new = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    change(db, 2);
    (old, new)
}

fn operations(db: &Database, old: u64) -> usize {
    let steps: [&dyn Fn(&Database) -> bool; 4] = [
        &|db| {
            let Ok(mut txn) = db.begin_write() else { return false };
            let Ok(sp) = txn.get_persistent_savepoint(old) else {
                return false;
            };
            txn.restore_savepoint(&sp).is_ok() && txn.commit().is_ok()
        },
        &|db| {
            let Ok(txn) = db.begin_write() else { return false };
            txn.persistent_savepoint().is_ok() && txn.commit().is_ok()
        },
        &|db| {
            // delete the newest (just created) with a pipelined commit
            let Ok(txn) = db.begin_write() else { return false };
            let Ok(ids) = txn.list_persistent_savepoints() else {
                return false;
            };
            let Some(newest) = ids.max() else { return false };
            if txn.delete_persistent_savepoint(newest).is_err() {
                return false;
            }
            match txn.commit_pipelined() {
                Ok(p) => p.wait().is_ok(),
                Err(_) => false,
            }
        },
        &|db| {
            let Ok(txn) = db.begin_write() else { return false };
            txn.delete_persistent_savepoint(old).is_ok() && txn.commit().is_ok()
        },
    ];
    let mut acked = 0;
    for step in steps {
        if !step(db) {
            break;
        }
        acked += 1;
    }
    acked
}

fn run(builder: &Builder, label: &str, stride: u64) {
    let disk = CrashDisk::new();
    let db = disk.open(builder);
    let (old, _new) = setup(&db);
    let mut states = vec![observe(&db)];
    let (d0, w0) = (disk.data.ops(), disk.wal.ops());
    assert_eq!(operations(&db, old), 4);
    let (d1, w1) = (disk.data.ops(), disk.wal.ops());
    drop(db);
    // The expected states: the same operations, one at a time.
    {
        let disk3 = CrashDisk::new();
        let db3 = disk3.open(builder);
        let (old3, _) = setup(&db3);
        assert_eq!(old3, old);
        let mut txn = db3.begin_write().unwrap();
        let sp = txn.get_persistent_savepoint(old).unwrap();
        txn.restore_savepoint(&sp).unwrap();
        txn.commit().unwrap();
        states.push(observe(&db3));
        let txn = db3.begin_write().unwrap();
        txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        states.push(observe(&db3));
        let txn = db3.begin_write().unwrap();
        let newest = txn.list_persistent_savepoints().unwrap().max().unwrap();
        txn.delete_persistent_savepoint(newest).unwrap();
        txn.commit_pipelined().unwrap().wait().unwrap();
        states.push(observe(&db3));
        let txn = db3.begin_write().unwrap();
        txn.delete_persistent_savepoint(old).unwrap();
        txn.commit().unwrap();
        states.push(observe(&db3));
    }
    assert_eq!(states[1].db, states[0].sps[&old], "{label}: the restore itself");
    let (data_ops, wal_ops) = (d1 - d0, w1 - w0);
    eprintln!("{label}: data ops {data_ops}, wal ops {wal_ops}");
    let mut failures = Vec::new();
    for which in 0..3 {
        let limit = if which == 1 { wal_ops } else { data_ops };
        let mut n = 0;
        while n <= limit + 2 {
            for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(n)] {
                let disk = CrashDisk::new();
                let db = disk.open(builder);
                setup(&db);
                match which {
                    0 => disk.data.cut_power_after(disk.data.ops() + n),
                    1 => disk.wal.cut_power_after(disk.wal.ops() + n),
                    _ => {
                        disk.data.cut_power_after(disk.data.ops() + n);
                        disk.wal.cut_power_after(disk.wal.ops() + n);
                    }
                }
                let acked = operations(&db, old);
                let image = disk.crashed(mode);
                drop(db);
                let mut db = match builder.create_with_backends(image.data.clone(), image.wal.clone()) {
                    Ok(db) => db,
                    Err(e) => {
                        failures.push(format!("{label} cut {which}/{n} {mode:?}: open failed: {e}"));
                        continue;
                    }
                };
                match db.check_integrity() {
                    Ok(true) => {}
                    other => failures.push(format!("{label} cut {which}/{n} {mode:?}: integrity {other:?}")),
                }
                let got = observe(&db);
                if !states[acked..].contains(&got) {
                    let which_state = states.iter().position(|s| *s == got);
                    failures.push(format!(
                        "{label} cut {which}/{n} {mode:?}: acked {acked}, recovered state #{which_state:?}, savepoints {:?}",
                        got.sps.keys().collect::<Vec<_>>()
                    ));
                }
                // The file still works: a compaction once the savepoints are gone.
                let txn = db.begin_write().unwrap();
                let ids: Vec<u64> = txn.list_persistent_savepoints().unwrap().collect();
                for id in ids {
                    txn.delete_persistent_savepoint(id).unwrap();
                }
                txn.commit().unwrap();
                if let Err(e) = db.compact() {
                    failures.push(format!("{label} cut {which}/{n} {mode:?}: compact {e}"));
                }
                if !matches!(db.check_integrity(), Ok(true)) {
                    failures.push(format!("{label} cut {which}/{n} {mode:?}: integrity after compact"));
                }
            }
            n += stride;
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
fn power_cuts_restore_older_create_delete() {
    run(&Builder::new(), "wal", 1);
}

#[test]
fn power_cuts_through_tree_commits() {
    let mut b = Builder::new();
    b.set_tree_commit_size(2 << 10).set_memtable_size(8 << 10);
    run(&b, "tree", 1);
}
