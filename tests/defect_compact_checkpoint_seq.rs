//! Defect 3: `Engine::compact` could move `checkpoint_seq` backwards. It
//! read the flushed sequence once and committed twice with it; when the
//! apply thread checkpointed and deleted WAL segments in between, the data
//! file's `checkpoint_seq` fell behind the deleted segments and a crash image
//! would not open ("WAL records ... are missing").
//!
//! Rounds of a writer committing (durable and not) while this thread runs
//! `compact()`, with checkpoints by volume every few commits; after every
//! round a crash image must open, pass the integrity check, and hold a
//! prefix of the commits containing every one acknowledged as durable.

mod common;

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::engine::{Disk, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

const ROUNDS: u64 = 200;

/// Checkpoints by volume every few commits, so they race compaction: the
/// apply thread looks at the volume when it flushes a frozen memtable, and
/// a memtable of 1 KiB freezes every few commits (~150 bytes each). With the
/// 16 KiB of `small_options` the compaction's own flush emptied it first
/// every round, and a run on a busy machine saw no checkpoint but the
/// compactions' (CI, 2026-12-06).
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 1 << 10,
        checkpoint_wal_bytes: 256,
        segment_bytes: 2 << 10,
        ..small_options()
    }
}

fn k(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn value(i: u64) -> Vec<u8> {
    format!("commit {i} {}", "v".repeat((i % 5 * 30) as usize)).into_bytes()
}

/// Commits `i = next, next + 1, ...` until `stop`; every third commit waits
/// for durability and is recorded in `acked`.
fn write(db: &Engine, next: &AtomicU64, acked: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let i = next.load(Ordering::Relaxed);
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"log", b"bytes", bytewise).unwrap();
        w.insert(t, &k(i), &value(i)).unwrap();
        let durable = i.is_multiple_of(3);
        if !durable {
            w.set_durability(Durability::None);
        }
        w.commit().unwrap();
        next.store(i + 1, Ordering::Relaxed);
        if durable {
            acked.store(i, Ordering::Release);
        }
    }
}

/// Opens a crash image and checks it: integrity, a prefix of the commits,
/// every acknowledged commit present.
fn check_image(disk: &Disk, mode: TearMode, acked: u64, round: u64) {
    let db = Engine::open(disk.data.clone(), disk.wal.clone(), options())
        .unwrap_or_else(|e| panic!("round {round} {mode:?}: the crash image does not open: {e}"));
    db.check_integrity()
        .unwrap_or_else(|e| panic!("round {round} {mode:?}: integrity check failed: {e}"));
    let txn = db.begin_read().unwrap();
    let Some(t) = txn.open_table(b"log", bytewise).unwrap() else {
        assert_eq!(acked, 0, "round {round} {mode:?}: the table vanished");
        return;
    };
    let mut last = 0;
    for entry in txn.range(&t, Bound::Unbounded, Bound::Unbounded).unwrap() {
        let (key, v) = entry.unwrap();
        let i = u64::from_be_bytes(key.as_bytes().try_into().unwrap());
        assert_eq!(i, last + 1, "round {round} {mode:?}: not a prefix");
        assert_eq!(v.as_bytes(), value(i), "round {round} {mode:?}: commit {i} damaged");
        last = i;
    }
    assert!(
        last >= acked,
        "round {round} {mode:?}: acknowledged commit {acked} lost (recovered up to {last})"
    );
}

#[test]
fn compaction_racing_checkpoints_keeps_every_crash_image_openable() {
    let disk = Disk::new();
    let db = Arc::new(disk.open(options()));
    let next = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, next, acked, stop) = (db.clone(), next.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || write(&db, &next, &acked, &stop))
        };
        // Let the writer get going, then compact while it writes.
        while next.load(Ordering::Relaxed) < round * 12 + 6 {
            std::thread::yield_now();
        }
        db.compact().unwrap();
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
        let acked_now = acked.load(Ordering::Acquire);
        for mode in [TearMode::DropAll, TearMode::Random(round)] {
            check_image(&disk.crashed(mode), mode, acked_now, round);
        }
    }
    // One checkpoint per round is the compaction's own; the apply thread's
    // come on top: 100-150 of them in runs quiet and beside three busy
    // threads.
    let stats = db.stats();
    assert!(
        stats.checkpoints > ROUNDS + ROUNDS / 4,
        "checkpoints rarely raced compaction: {stats:?}"
    );
}
