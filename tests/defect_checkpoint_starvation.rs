//! Defect 2: under sustained writes no checkpoint ever ran. The apply
//! thread's flush loop went on while frozen memtables kept arriving, so
//! checkpoints by volume, by time and on request all starved: the WAL grew
//! without bound and `checkpoint()` did not return while the writer wrote.
//!
//! One writer does count-bounded 4-key `Durability::None` commits with small
//! memtables while this thread asks for checkpoints. Each request must
//! return while the writer still writes (a watchdog fails the test if one
//! hangs), background checkpoints must happen during the writes, and the WAL
//! on disk must stay within a bound derived from the options.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::{CrashLogDir, LogDir};

const COMMITS: u64 = 12_000;

/// Bytes of every WAL segment on disk. A segment a checkpoint deletes
/// between the listing and the open holds nothing any more.
fn wal_bytes_on_disk(wal: &CrashLogDir) -> u64 {
    wal.list()
        .unwrap()
        .iter()
        .map(|name| match wal.open(name) {
            Ok(file) => file.len().unwrap(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => panic!("WAL segment {name}: {e}"),
        })
        .sum()
}

/// What the WAL may hold at most: the unflushed memtables (active and
/// frozen, up to the backpressure limit) whose records a checkpoint cannot
/// delete yet, the volume that triggers the next checkpoint plus one more
/// round of frozen memtables written while the apply thread flushes up to
/// it, and partly covered segments at both ends.
fn wal_bound(o: &EngineOptions) -> u64 {
    let unflushed = (o.max_frozen_bytes + o.memtable_bytes) as u64;
    2 * unflushed + o.checkpoint_wal_bytes + 4 * o.segment_bytes
}

/// Key `j` of commit `i`, spread over the key space so that every flush
/// rewrites many leaves of a growing tree: flushing is then slower than
/// committing, as it is under real sustained load.
fn k(i: u64, j: u64) -> [u8; 8] {
    (i * 4 + j).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

/// Fails the test (the whole process: a hung thread cannot be unwound) if
/// `done` is not set within the deadline. No speed is asserted; the
/// deadline only turns a hang into a failure.
fn watchdog(what: &'static str, done: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for _ in 0..1200 {
            if done.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{what} did not return within 120 s: checkpoints starve under load");
        std::process::exit(101);
    });
}

#[test]
fn checkpoints_progress_and_the_wal_stays_bounded_under_sustained_writes() {
    let options = small_options();
    let bound = wal_bound(&options);
    let disk = Disk::new();
    let db = Arc::new(disk.open(options));
    let written = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));

    let writer = {
        let (db, written, finished) = (db.clone(), written.clone(), finished.clone());
        std::thread::spawn(move || {
            let value = [7u8; 24];
            for i in 1..=COMMITS {
                let mut w = db.begin_write().unwrap();
                w.set_durability(Durability::None);
                let t = w.open_table(b"load", b"bytes", bytewise).unwrap();
                for j in 0..4 {
                    w.insert(t, &k(i, j), &value).unwrap();
                }
                w.commit().unwrap();
                written.store(i, Ordering::Release);
            }
            finished.store(true, Ordering::Release);
        })
    };

    // Samples the WAL on disk and the checkpoint count while the writer
    // writes, from its own thread: a hung checkpoint() below must not stop
    // the sampling.
    let checkpoints_at_start = db.stats().checkpoints;
    let monitor = {
        let (db, disk, written, finished) = (db.clone(), disk.clone(), written.clone(), finished.clone());
        std::thread::spawn(move || {
            let (mut max_wal, mut over, mut checkpoints) = (0u64, None, 0u64);
            while !finished.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(10));
                let wal = wal_bytes_on_disk(&disk.wal);
                let stats = db.stats();
                if !finished.load(Ordering::Acquire) {
                    checkpoints = stats.checkpoints - checkpoints_at_start;
                }
                if wal > max_wal {
                    max_wal = wal;
                    if wal > bound {
                        let at = written.load(Ordering::Acquire);
                        over = Some(format!("{wal} bytes after {at} of {COMMITS} commits: {stats:?}"));
                    }
                }
            }
            (max_wal, over, checkpoints)
        })
    };

    // Ask for checkpoints while the writer writes; each must return in
    // bounded time under load.
    let mut requested_during_writes = 0;
    while !finished.load(Ordering::Acquire) && requested_during_writes < 5 {
        std::thread::sleep(Duration::from_millis(50));
        let done = Arc::new(AtomicBool::new(false));
        watchdog("checkpoint()", done.clone());
        db.checkpoint().unwrap();
        done.store(true, Ordering::Release);
        if !finished.load(Ordering::Acquire) {
            // Returned while the writer was still writing.
            requested_during_writes += 1;
        }
    }
    writer.join().unwrap();
    let (max_wal, over, checkpoints_during_writes) = monitor.join().unwrap();
    let stats = db.stats();
    if let Some(over) = over {
        panic!("the WAL on disk grew past the bound {bound}: {over}");
    }
    assert!(
        requested_during_writes >= 1,
        "no checkpoint() returned while the writer was writing: {stats:?}"
    );
    assert!(
        checkpoints_during_writes > requested_during_writes,
        "only the {requested_during_writes} requested checkpoints ran during the writes \
         (none by volume): {checkpoints_during_writes} in all; {stats:?}"
    );
    eprintln!(
        "{} flushes, {} checkpoints ({checkpoints_during_writes} during the writes), \
         WAL at most {max_wal} bytes (bound {bound})",
        stats.flushes, stats.checkpoints
    );

    // Everything written is readable.
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"load", bytewise).unwrap().unwrap();
    for i in [1, COMMITS / 2, COMMITS] {
        assert!(txn.get(&t, &k(i, 3)).unwrap().is_some(), "commit {i} missing");
    }
    drop(txn);
    drop(db);
    let reopened: Engine = disk.open(small_options());
    reopened.check_integrity().unwrap();
}
