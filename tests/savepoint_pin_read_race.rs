//! `TreeStore::pins` once read the pin records of a snapshot and only
//! then the file's page count, under the writer lock (both are read under
//! it now). A savepoint deleted
//! with `commit` is unpinned *after* the writer slot is released, so
//! another transaction may read the pins (to restore another savepoint)
//! while the unpin runs; once the unpinned pages are trimmed from the end
//! of the file, a snapshot from before the unpin names pages past the page
//! count, which `PinnedCommit::decode` reports as a corrupt pin record.
//! A stress attempt, bounded in iterations (no timing asserted).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use sluicedb::{Database, TableDefinition};

const SMALL: TableDefinition<u64, u64> = TableDefinition::new("small");
const BIG: TableDefinition<u64, &[u8]> = TableDefinition::new("big");

#[test]
fn restore_racing_the_unpin_of_another_savepoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
    {
        let txn = db.begin_write().unwrap();
        txn.open_table(SMALL).unwrap().insert(1, 1).unwrap();
        txn.commit().unwrap();
    }
    let txn = db.begin_write().unwrap();
    let keep = txn.persistent_savepoint().unwrap();
    txn.commit().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let checkpointer = {
        let (db, stop) = (db.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                db.checkpoint().unwrap();
            }
        })
    };
    let mut errors = Vec::new();
    for round in 0..25u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut big = txn.open_table(BIG).unwrap();
            for k in 0..600u64 {
                big.insert(k, [round as u8; 600].as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        let doomed = txn.persistent_savepoint().unwrap();
        txn.commit().unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(BIG).unwrap();
        txn.commit().unwrap();
        db.checkpoint().unwrap();

        let barrier = Arc::new(Barrier::new(2));
        let deleter = {
            let (db, barrier) = (db.clone(), barrier.clone());
            std::thread::spawn(move || {
                let txn = db.begin_write().unwrap();
                assert!(txn.delete_persistent_savepoint(doomed).unwrap());
                barrier.wait();
                txn.commit().unwrap();
            })
        };
        barrier.wait();
        // Begins once the deleter's commit released the writer slot, while
        // its unpin may run.
        for _ in 0..3 {
            let mut txn = db.begin_write().unwrap();
            match txn
                .get_persistent_savepoint(keep)
                .and_then(|sp| txn.restore_savepoint(&sp))
            {
                Ok(()) => {}
                Err(e) => errors.push(format!("round {round}: {e}")),
            }
            txn.abort().unwrap();
        }
        deleter.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    checkpointer.join().unwrap();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
}
