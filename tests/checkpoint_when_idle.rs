//! The time trigger of checkpoints is an idle database's: it fires once
//! commits have stopped for `checkpoint_interval`, not every interval while
//! they keep coming (a timer in the middle of a burst flushed a memtable
//! still being written, and took a core from the reads that followed).
//!
//! A busy database here commits well below the volume trigger, so a
//! checkpoint while it commits could only be the timer's.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::engine::{Disk, commit_u64, idle_timer_options, read_u64};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};

const INTERVAL: Duration = Duration::from_millis(400);

fn options() -> EngineOptions {
    idle_timer_options(INTERVAL)
}

/// Waits (at most `limit`; it asserts nothing about speed) until the
/// engine has taken more than `before` checkpoints, and returns the count.
fn checkpoints_after(db: &Engine, before: u64, limit: Duration) -> u64 {
    let start = Instant::now();
    while db.stats().checkpoints <= before && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(10));
    }
    db.stats().checkpoints
}

#[test]
fn a_steady_writer_is_not_checkpointed_by_time_and_an_idle_database_is() {
    let disk = Disk::new();
    let db = disk.open(options());
    let mut model = BTreeMap::new();

    // Busy: a commit every 10 ms for six intervals. A timer measured from
    // the last checkpoint would fire about six times.
    let before = db.stats().checkpoints;
    let start = Instant::now();
    let mut key = 0u64;
    while start.elapsed() < INTERVAL * 6 {
        commit_u64(
            &db,
            b"bytes",
            bytewise,
            &mut model,
            &[(key, Some(key.to_le_bytes().to_vec()))],
        );
        key += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let busy = db.stats();
    assert_eq!(
        busy.checkpoints, before,
        "checkpoints by time while commits kept coming ({key} commits)"
    );
    assert!(busy.memtable_bytes > 0, "the commits are not in the memtable");

    // Idle: the trigger fires once commits have stopped for an interval
    // (seen within a quarter interval), and the checkpoint takes the
    // active memtable into the tree.
    let after = checkpoints_after(&db, before, INTERVAL * 50);
    assert!(after > before, "an idle database was never checkpointed by time");
    let idle = db.stats();
    assert_eq!(
        idle.memtable_bytes, 0,
        "the idle checkpoint left the memtable unflushed"
    );
    assert_eq!(idle.frozen_memtables, 0);

    // Nothing new: no further checkpoint, however long it stays idle.
    std::thread::sleep(INTERVAL * 4);
    assert_eq!(
        db.stats().checkpoints,
        after,
        "an idle database with nothing to flush kept checkpointing"
    );

    // What was committed reads back, before and after a reopen.
    let expected: Vec<(u64, Vec<u8>)> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert!(
        read_u64(&db, bytewise).0 == expected,
        "the committed keys do not read back"
    );
    drop(db);
    let db = disk.open(options());
    assert!(
        read_u64(&db, bytewise).0 == expected,
        "the committed keys do not read back after a reopen"
    );
}
