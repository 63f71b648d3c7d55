//! While commits keep coming, a frozen memtable waits for a second one to
//! be flushed with it (`apply::flush_due`); a lone one must still reach the
//! tree once the commits pause, whatever the budget, and everything
//! committed reads back before and after a reopen.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::engine::{Disk, commit_u64, read_u64};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};

/// Small memtables, a budget far above them (so only a pause lets a lone
/// frozen memtable go), no checkpoint by volume or time within the test.
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 10,
        max_frozen_bytes: 64 << 20,
        checkpoint_wal_bytes: 64 << 20,
        checkpoint_interval: Duration::from_secs(3600),
        ..common::engine::small_options()
    }
}

/// Waits (at most a minute; it asserts nothing about speed) until `done`.
fn wait_until(db: &Engine, done: impl Fn(&sluicedb::engine::Stats) -> bool) -> sluicedb::engine::Stats {
    let start = Instant::now();
    loop {
        let stats = db.stats();
        if done(&stats) || start.elapsed() > Duration::from_secs(60) {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_lone_frozen_memtable_is_flushed_once_commits_pause() {
    let disk = Disk::new();
    let db = disk.open(options());
    let mut model = BTreeMap::new();
    let mut next = 0u64;
    for round in 0..3 {
        // Commit until one memtable is frozen, then pause.
        let before = db.stats().flushes;
        while db.stats().frozen_memtables == 0 {
            let ops: Vec<(u64, Option<Vec<u8>>)> = (next..next + 20)
                .map(|k| (k * 7919 % 100_003, Some(vec![round; 100])))
                .collect();
            next += 20;
            commit_u64(&db, b"bytes", bytewise, &mut model, &ops);
        }
        let stats = wait_until(&db, |s| s.frozen_memtables == 0);
        assert_eq!(
            stats.frozen_memtables, 0,
            "round {round}: the frozen memtable was never flushed"
        );
        assert!(stats.flushes > before, "round {round}: no flush counted");
        let (entries, len) = read_u64(&db, bytewise);
        assert_eq!(entries, model.clone().into_iter().collect::<Vec<_>>());
        assert_eq!(len, model.len() as u64);
    }
    drop(db);
    let db = disk.open(options());
    let (entries, _) = read_u64(&db, bytewise);
    assert_eq!(entries, model.into_iter().collect::<Vec<_>>());
}
