//! Big commits are inserted into the memtable by the inserter thread while
//! the next transaction builds (`engine::pending`). Whatever the inserter
//! has done so far, every reader sees each commit whole, every write
//! transaction sees the commit before it (its old values come from there),
//! and the memtables frozen and flushed meanwhile lose nothing.

mod common;

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

/// Keys every big commit rewrites: well above the hand-off threshold.
const KEYS: u32 = 300;
const COMMITS: u32 = 120;

fn k(i: u32) -> [u8; 4] {
    i.to_be_bytes()
}

/// Small memtables, so a memtable is frozen every few big commits, while
/// the inserter may still be inserting into it.
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 64 << 10,
        ..small_options()
    }
}

/// The commit number every key of table `t` holds in `txn`'s snapshot,
/// read by point lookups and by a range from each end; panics on a torn
/// snapshot.
fn snapshot_commit(db: &Engine) -> u32 {
    let txn = db.begin_read().unwrap();
    let Some(t) = txn.open_table(b"t", bytewise).unwrap() else {
        return 0;
    };
    let value = |v: &[u8]| u32::from_be_bytes(v.try_into().unwrap());
    let forward: Vec<u32> = txn
        .range(&t, Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|e| value(&e.unwrap().1))
        .collect();
    let backward: Vec<u32> = txn
        .range(&t, Bound::Included(&k(10)[..]), Bound::Excluded(&k(KEYS - 10)[..]))
        .unwrap()
        .rev()
        .map(|e| value(&e.unwrap().1))
        .collect();
    let Some(&commit) = forward.first() else {
        return 0;
    };
    assert_eq!(forward.len(), KEYS as usize, "a commit is partly visible");
    assert_eq!(
        backward.len(),
        (KEYS - 20) as usize,
        "a commit is partly visible backwards"
    );
    assert!(
        forward.iter().chain(&backward).all(|&c| c == commit),
        "a snapshot mixes commits"
    );
    for i in [0, 7, KEYS / 2, KEYS - 1] {
        let got = txn.get(&t, &k(i)).unwrap().map(|v| value(&v));
        assert_eq!(got, Some(commit), "a point read disagrees with the range");
    }
    commit
}

#[test]
fn big_commits_are_whole_to_every_reader_while_they_are_inserted() {
    let disk = Disk::new();
    let db = Arc::new(disk.open(options()));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut last, mut reads) = (0, 0u64);
                while !done.load(Ordering::Acquire) {
                    let commit = snapshot_commit(&db);
                    assert!(commit >= last, "a later snapshot went back from {last} to {commit}");
                    last = commit;
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    for c in 1..=COMMITS {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        for i in 0..KEYS {
            // The previous commit, though its insert may be under way.
            let old = w.insert(t, &k(i), &c.to_be_bytes()).unwrap();
            let old = old.map(|v| u32::from_be_bytes(v.as_bytes().try_into().unwrap()));
            assert_eq!(old, (c > 1).then_some(c - 1), "commit {c}, key {i}: wrong old value");
        }
        if c % 2 == 0 {
            w.set_durability(Durability::None);
        }
        w.commit().unwrap();
        // A small commit in between: inserted inline, after the big one.
        if c % 10 == 0 {
            let mut w = db.begin_write().unwrap();
            let s = w.open_table(b"small", b"bytes", bytewise).unwrap();
            w.insert(s, &k(c), b"small").unwrap();
            w.commit().unwrap();
        }
        assert_eq!(snapshot_commit(&db), c, "a commit is not visible once it returned");
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    let stats = db.stats();
    assert!(
        stats.flushes > 5,
        "the memtable was rarely frozen and flushed: {stats:?}"
    );

    // Synced, then a crash that loses whatever was not: every commit is
    // there, whole.
    db.sync().unwrap();
    let image = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = image.open(options());
    db.check_integrity().unwrap();
    assert_eq!(snapshot_commit(&db), COMMITS);
    let txn = db.begin_read().unwrap();
    let small = txn.open_table(b"small", bytewise).unwrap().unwrap();
    assert_eq!(txn.len(&small).unwrap(), u64::from(COMMITS / 10));
}
