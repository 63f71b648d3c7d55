//! A user comparator that panics on demand: byte order, except that while
//! armed, comparing anything with the bomb key panics. Each test binary has
//! its own statics, and each arms them once.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering as AtomicOrdering};

use sluicedb::btree::Comparator;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::TearMode;

use super::engine::Disk;

/// While set, comparing anything with the key [`BOMB`] holds panics.
pub static ARMED: AtomicBool = AtomicBool::new(false);

/// The bomb key's number.
pub static BOMB: AtomicU32 = AtomicU32::new(u32::MAX);

pub fn k(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

/// Byte order, except that it panics on the bomb key while armed.
pub fn touchy(a: &[u8], b: &[u8]) -> Ordering {
    let bomb = k(BOMB.load(AtomicOrdering::SeqCst));
    if ARMED.load(AtomicOrdering::SeqCst) && (a == bomb || b == bomb) {
        panic!("comparator bomb");
    }
    a.cmp(b)
}

/// The same order, without the bomb: what a fixed build would register.
pub fn sane(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

fn resolver(meta: &[u8]) -> Option<Comparator> {
    (meta == b"touchy").then_some(sane as Comparator)
}

/// `options` with the bomb table's order resolvable at reopen.
pub fn with_resolver(options: EngineOptions) -> EngineOptions {
    EngineOptions { resolver, ..options }
}

/// Keys of table `t` in `[lo, hi)`.
pub fn keys_in(db: &Engine, lo: u32, hi: u32) -> Vec<u32> {
    let txn = db.begin_read().unwrap();
    let Some(t) = txn.open_table(b"t", sane).unwrap() else {
        return Vec::new();
    };
    txn.range(&t, Bound::Included(&k(lo)), Bound::Excluded(&k(hi)))
        .unwrap()
        .map(|e| u32::from_be_bytes(e.unwrap().0.as_bytes().try_into().unwrap()))
        .collect()
}

/// Commits keys `0..50` ("before") to table `t`, then builds a transaction
/// writing `doomed` keys with the bomb among them, arms the bomb and commits
/// it; returns the commit's outcome (an error, a panic, or for a commit the
/// inserter thread inserts, possibly `Ok`).
pub fn commit_with_bomb(
    db: &Engine,
    doomed: std::ops::Range<u32>,
    bomb: u32,
) -> std::thread::Result<Result<(), sluicedb::StorageError>> {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in 0..50 {
        w.insert(t, &k(i), b"before").unwrap();
    }
    w.commit().unwrap();

    // The write set is built before the bomb is armed, so only the
    // memtable insert meets it.
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", touchy).unwrap();
    for i in doomed {
        w.insert(t, &k(i), b"doomed").unwrap();
    }
    BOMB.store(bomb, AtomicOrdering::SeqCst);
    ARMED.store(true, AtomicOrdering::SeqCst);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.commit()))
}

/// Disarms the bomb.
pub fn disarm() {
    ARMED.store(false, AtomicOrdering::SeqCst);
}

/// The images a failed commit is recovered from: a plain reopen (dropping
/// the engine drained the journal), and crashes keeping or losing what was
/// not synced.
pub fn images(disk: &Disk) -> [(&'static str, Disk); 3] {
    [
        ("reopen", disk.clone()),
        ("crash, unsynced kept", disk.crashed(TearMode::KeepAll)),
        ("crash, unsynced lost", disk.crashed(TearMode::DropAll)),
    ]
}

/// Checks a reopened image: sound, the commit before the doomed one whole,
/// the doomed commit whole or absent (whole if `must_have` it), and the
/// database takes a new commit.
pub fn check_recovered(db: &Engine, name: &str, doomed: std::ops::Range<u32>, must_have: bool) {
    db.check_integrity().unwrap();
    assert_eq!(keys_in(db, 0, 50).len(), 50, "{name}: an earlier commit was lost");
    let found = keys_in(db, doomed.start, doomed.end);
    assert!(
        found.is_empty() || found == doomed.clone().collect::<Vec<_>>(),
        "{name}: the failed commit is partly visible: {} of {} keys",
        found.len(),
        doomed.len()
    );
    if must_have {
        assert_eq!(found.len(), doomed.len(), "{name}: the commit was lost");
    }
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"touchy", sane).unwrap();
    w.insert(t, &k(2000), b"after reopen").unwrap();
    w.commit().unwrap();
}
