//! Savepoints over tables (written by the twenty-third session's review; it
//! found nothing here) whose recovered WAL records are
//! deferred (custom key order unknown after a crash: multimap tables, and
//! the persistent savepoint copies of them).

mod common;

use std::collections::BTreeSet;

use common::keys::CrashDisk;
use sluicedb::io::TearMode;
use sluicedb::{Builder, Database, MultimapTableDefinition, ReadableMultimapTable, WriteTransaction};

const M: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("m");

fn pairs(txn: &WriteTransaction) -> Option<BTreeSet<(u64, u64)>> {
    if !txn
        .list_multimap_tables()
        .unwrap()
        .any(|h| sluicedb::MultimapTableHandle::name(&h) == "m")
    {
        return None;
    }
    let t = txn.open_multimap_table(M).unwrap();
    let mut out = BTreeSet::new();
    for e in t.iter().unwrap() {
        let (k, vs) = e.unwrap();
        for v in vs {
            out.insert((k.value(), v.unwrap().value()));
        }
    }
    Some(out)
}

fn fill(db: &Database, range: std::ops::Range<u64>) -> BTreeSet<(u64, u64)> {
    let txn = db.begin_write().unwrap();
    {
        let mut m = txn.open_multimap_table(M).unwrap();
        for i in range {
            m.insert(i % 7, i).unwrap();
        }
    }
    let out = pairs(&txn).unwrap();
    txn.commit().unwrap();
    out
}

/// A persistent savepoint of a multimap table, only in the WAL at the crash;
/// after the reopen the user table is deleted; the savepoint restores (once
/// the user opened a table of that type, as documented) with its contents.
#[test]
fn a_persistent_savepoint_of_a_deferred_multimap_restores_after_crash() {
    let builder = Builder::new();
    let disk = CrashDisk::new();
    let db = disk.open(&builder);
    let saved = fill(&db, 0..200);
    let txn = db.begin_write().unwrap();
    let id = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    fill(&db, 200..260);
    let image = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = image.open(&builder);
    // Delete the user table without learning the savepoint copy's order.
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_multimap_table(M).unwrap());
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let mut txn = db.begin_write().unwrap();
    drop(txn.open_multimap_table(M).unwrap());
    let sp = txn.get_persistent_savepoint(id).unwrap();
    txn.restore_savepoint(&sp).unwrap();
    assert_eq!(pairs(&txn).as_ref(), Some(&saved), "restored in the txn");
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    drop(db);
    let db = image.open(&builder);
    let txn = db.begin_write().unwrap();
    assert_eq!(pairs(&txn).as_ref(), Some(&saved), "after reopen");
}

/// An ephemeral savepoint taken in a fresh process while the multimap
/// table's records are still deferred, then the table is opened, changed and
/// its records absorbed into the tree by a checkpoint; the restore gives the
/// state at the savepoint.
#[test]
fn an_ephemeral_savepoint_over_deferred_records_restores_exactly() {
    let builder = Builder::new();
    let disk = CrashDisk::new();
    let db = disk.open(&builder);
    fill(&db, 0..100);
    db.checkpoint().unwrap();
    let saved = fill(&db, 100..300);
    let image = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = image.open(&builder);
    let txn = db.begin_write().unwrap();
    let sp = txn.ephemeral_savepoint().unwrap();
    txn.abort().unwrap();
    // Learn the order with no write, absorb, then change the table.
    {
        let txn = db.begin_write().unwrap();
        assert_eq!(pairs(&txn).as_ref(), Some(&saved));
        txn.abort().unwrap();
    }
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut m = txn.open_multimap_table(M).unwrap();
        for k in 0..7 {
            m.remove_all(k).unwrap();
        }
        m.insert(100, 1).unwrap();
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let mut txn = db.begin_write().unwrap();
    txn.restore_savepoint(&sp).unwrap();
    assert_eq!(pairs(&txn).as_ref(), Some(&saved), "restored in the txn");
    txn.commit().unwrap();
    drop(sp);
    db.checkpoint().unwrap();
    drop(db);
    let db = image.open(&builder);
    let txn = db.begin_write().unwrap();
    assert_eq!(pairs(&txn).as_ref(), Some(&saved), "after reopen");
}
