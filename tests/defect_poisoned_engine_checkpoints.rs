//! Found while testing the comparator-panic fix (still open on main): a
//! poisoned engine's apply thread keeps running its timed checkpoints. After
//! a comparator panicked halfway through a commit's memtable insert (the
//! engine is poisoned, every operation refused), the next timed step freezes
//! the partly applied active memtable, flushes it (its `max_seq` already
//! counts the failed commit) and checkpoints at that sequence, so the WAL
//! record that would replay the commit whole is skipped or deleted. Reopen
//! then shows the partial transaction forever.
//!
//! Required: once poisoned, nothing more is made durable from memory; the
//! reopened database holds the failed commit whole or not at all.

mod common;

use std::cmp::Ordering;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::time::Duration;

use common::engine::{Disk, small_options};
use sluicedb::btree::Comparator;
use sluicedb::engine::{Engine, EngineOptions};

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

/// Frequent time-based checkpoints, so the apply thread gets every chance to
/// flush and checkpoint the partial memtable after the failure.
fn options() -> EngineOptions {
    EngineOptions {
        checkpoint_interval: Duration::from_millis(20),
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
fn a_poisoned_engine_never_checkpoints_a_partly_applied_commit() {
    let disk = Disk::new();
    let db = disk.open(options());
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in 0..50 {
        w.insert(t, &k(i), b"before").unwrap();
    }
    w.commit().unwrap();

    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in 100..130 {
        w.insert(t, &k(i), b"doomed").unwrap();
    }
    ARMED.store(true, AtomicOrdering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| w.commit()));
    ARMED.store(false, AtomicOrdering::SeqCst);
    assert!(!matches!(outcome, Ok(Ok(()))), "the commit succeeded");
    assert!(db.begin_read().is_err(), "the engine is not poisoned");

    // Give the apply thread a few timed steps (this waits, it asserts no
    // speed: a correct engine takes no checkpoint at all here).
    let before = db.stats().checkpoints;
    for _ in 0..100 {
        if db.stats().checkpoints > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = db.stats().checkpoints;
    drop(db);

    let db = disk.open(options());
    db.check_integrity().unwrap();
    assert_eq!(keys_in(&db, 0, 50).len(), 50);
    let doomed = keys_in(&db, 100, 130);
    assert!(
        doomed.is_empty() || doomed == (100..130).collect::<Vec<_>>(),
        "the failed commit is partly visible after reopen ({} checkpoints after the poison): {doomed:?}",
        after - before
    );
}
