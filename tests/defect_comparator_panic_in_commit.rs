//! Suspected defect: a user comparator that panics inside `apply_batch`
//! (after the commit's WAL record was appended) leaves the active memtable
//! partly applied; a later commit then publishes that partial transaction.
//!
//! Required: the commit fails (an error, or the panic reaches its caller),
//! the database is poisoned so that nothing of the partial commit is ever
//! shown, and reopening with a sane comparator recovers the whole commit.

mod common;

use std::cmp::Ordering;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use common::engine::{Disk, small_options};
use sluicedb::btree::Comparator;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::TearMode;

/// While set, comparing anything with `BOMB` panics.
static ARMED: AtomicBool = AtomicBool::new(false);

/// The 16th key of the doomed commit: the commit's first 15 keys go into
/// the memtable before its insert compares against it.
const BOMB: u32 = 115;

fn k(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

/// Byte order, except that it panics on the bomb key while armed.
fn touchy(a: &[u8], b: &[u8]) -> Ordering {
    if ARMED.load(AtomicOrdering::SeqCst) && (a == k(BOMB) || b == k(BOMB)) {
        panic!("comparator bomb");
    }
    a.cmp(b)
}

/// The same order, without the bomb: what a fixed build would register.
fn sane(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

fn resolver(meta: &[u8]) -> Option<Comparator> {
    (meta == b"touchy").then_some(sane as Comparator)
}

/// The test options, with the bomb table's order resolvable at reopen.
/// (The apply thread's timed checkpoints after the failure are the subject
/// of `defect_poisoned_engine_checkpoints.rs`.)
fn options() -> EngineOptions {
    EngineOptions {
        resolver,
        ..small_options()
    }
}

/// Keys of table `t` in `[lo, hi)`.
fn keys_in(db: &Engine, lo: u32, hi: u32) -> Vec<u32> {
    let txn = db.begin_read().unwrap();
    let Some(t) = txn.open_table(b"t", sane).unwrap() else {
        return Vec::new();
    };
    txn.range(&t, Bound::Included(&k(lo)), Bound::Excluded(&k(hi)))
        .unwrap()
        .map(|e| u32::from_be_bytes(e.unwrap().0.as_bytes().try_into().unwrap()))
        .collect()
}

#[test]
fn a_comparator_panicking_mid_commit_poisons_and_reopen_recovers_the_whole_commit() {
    let disk = Disk::new();
    let db = disk.open(options());
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in 0..50 {
        w.insert(t, &k(i), b"before").unwrap();
    }
    w.commit().unwrap();

    // The doomed commit: keys 100..130. Its write set is built before the
    // bomb is armed, so only the memtable insert meets it.
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in 100..130 {
        w.insert(t, &k(i), b"doomed").unwrap();
    }
    ARMED.store(true, AtomicOrdering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| w.commit()));
    ARMED.store(false, AtomicOrdering::SeqCst);
    match &outcome {
        Ok(Ok(())) => panic!("the commit succeeded although its comparator panicked"),
        Ok(Err(e)) => eprintln!("the commit failed: {e}"),
        Err(_) => eprintln!("the commit panicked"),
    }

    // Every later operation fails: no later commit may publish the partly
    // applied memtable, and no reader may see it.
    let later = db.begin_write().and_then(|mut w| {
        let t = w.open_table(b"t", b"touchy", touchy)?;
        w.insert(t, &k(1000), b"later")?;
        w.commit()
    });
    let read = db.begin_read().map(|_| keys_in(&db, 100, 130));
    assert!(
        later.is_err() && read.is_err(),
        "the database carried on after a commit failed half applied: a later commit {}, \
         and a reader saw {:?} of the failed commit's 30 keys",
        if later.is_ok() { "succeeded" } else { "failed" },
        read.as_ref().map(Vec::len)
    );
    assert!(db.checkpoint().is_err());

    // Reopen: the commit's record is in the WAL, whole.
    drop(db);
    for (name, image) in [
        ("reopen", disk.clone()),
        ("crash, unsynced kept", disk.crashed(TearMode::KeepAll)),
        ("crash, unsynced lost", disk.crashed(TearMode::DropAll)),
    ] {
        let db = image.open(options());
        db.check_integrity().unwrap();
        assert_eq!(keys_in(&db, 0, 50).len(), 50, "{name}: an earlier commit was lost");
        let doomed = keys_in(&db, 100, 130);
        assert!(
            doomed.is_empty() || doomed == (100..130).collect::<Vec<_>>(),
            "{name}: the failed commit is partly visible: {doomed:?}"
        );
        assert!(
            keys_in(&db, 1000, 1001).is_empty(),
            "{name}: a refused commit is visible"
        );
        // Dropping the engine drained the journal: a plain reopen has it.
        if name == "reopen" {
            assert_eq!(doomed.len(), 30, "{name}: the failed commit was not recovered");
        }
        // The database works again.
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"t", b"touchy", sane).unwrap();
        w.insert(t, &k(2000), b"after reopen").unwrap();
        w.commit().unwrap();
    }
}
