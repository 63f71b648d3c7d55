//! The idle time trigger of checkpoints (`apply::IdleTrigger`):
//! whatever way commits reach the memtables, a database left alone ends
//! with them in the tree and its log empty, and then stops checkpointing
//! (no busy loop), without losing or reordering data.
//!
//! Nothing here asserts speed: every wait is a poll with a generous limit.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::engine::{Disk, idle_timer_options, read_u64};
use common::{Rng, numeric};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

const INTERVAL: Duration = Duration::from_millis(200);
const LIMIT: Duration = Duration::from_secs(8);

fn options() -> EngineOptions {
    idle_timer_options(INTERVAL)
}

/// No timed checkpoint within the test's time.
fn no_timer() -> EngineOptions {
    EngineOptions {
        checkpoint_interval: Duration::from_secs(3600),
        ..options()
    }
}

/// Polls until nothing is left outside the tree (the active memtable
/// empty, nothing frozen, no apply lag); panics with the stats if that
/// never happens.
fn wait_flushed(db: &Engine, what: &str) {
    let start = Instant::now();
    loop {
        let s = db.stats();
        if s.memtable_bytes == 0 && s.frozen_memtables == 0 && s.apply_lag == 0 {
            return;
        }
        if start.elapsed() > LIMIT {
            panic!(
                "{what}: an idle database was never checkpointed by time: memtable_bytes {} frozen {} apply_lag {} checkpoints {} commits {}",
                s.memtable_bytes, s.frozen_memtables, s.apply_lag, s.checkpoints, s.commits
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Once idle and flushed, no further checkpoint over several intervals
/// (a trigger that stayed due would checkpoint in a loop).
fn assert_quiet(db: &Engine, what: &str) {
    // Let any checkpoint in flight finish (generously: the apply thread
    // may wait for a core while the other tests run).
    std::thread::sleep(INTERVAL * 5);
    let before = db.stats().checkpoints;
    std::thread::sleep(INTERVAL * 5);
    let after = db.stats().checkpoints;
    assert_eq!(
        after,
        before,
        "{what}: an idle, flushed database kept checkpointing ({} more)",
        after - before
    );
}

fn put(db: &Engine, model: &mut BTreeMap<u64, Vec<u8>>, keys: std::ops::Range<u64>, durability: Durability) {
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
    for k in keys {
        let v = k.to_le_bytes().repeat(3);
        w.insert(t, &k.to_be_bytes(), &v).unwrap();
        model.insert(k, v);
    }
    w.set_durability(durability);
    w.commit().unwrap();
}

fn expected(model: &BTreeMap<u64, Vec<u8>>) -> Vec<(u64, Vec<u8>)> {
    model.iter().map(|(k, v)| (*k, v.clone())).collect()
}

#[test]
fn recovered_records_are_checkpointed_once_idle_after_a_reopen() {
    let disk = Disk::new();
    let db = disk.open(no_timer());
    let mut model = BTreeMap::new();
    for i in 0..20 {
        put(&db, &mut model, i * 10..i * 10 + 10, Durability::Immediate);
    }
    // A crash: the records are in the WAL only.
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(options());
    assert!(db.stats().recovery.replayed_records >= 20, "nothing to recover");
    wait_flushed(&db, "after a reopen");
    assert_quiet(&db, "after a reopen");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
    // The log was emptied: a crash now replays nothing.
    let again = crashed.crashed(TearMode::DropAll);
    drop(db);
    let db = again.open(no_timer());
    assert_eq!(
        db.stats().recovery.replayed_records,
        0,
        "the idle checkpoint left records in the WAL"
    );
    assert!(read_u64(&db, bytewise).0 == expected(&model));
}

#[test]
fn commits_after_a_requested_checkpoint_and_none_durability_commits_are_checkpointed_once_idle() {
    let disk = Disk::new();
    let db = disk.open(options());
    let mut model = BTreeMap::new();
    // The startup timer fires once, on nothing.
    wait_flushed(&db, "fresh");
    assert_quiet(&db, "fresh");
    put(&db, &mut model, 0..50, Durability::Immediate);
    wait_flushed(&db, "first commits");
    assert_quiet(&db, "first commits");
    // A requested checkpoint, then commits of both kinds.
    put(&db, &mut model, 50..60, Durability::Immediate);
    db.checkpoint().unwrap();
    put(&db, &mut model, 60..70, Durability::None);
    wait_flushed(&db, "after a requested checkpoint");
    assert_quiet(&db, "after a requested checkpoint");
    // Durability::None only.
    for i in 0..5 {
        put(&db, &mut model, 100 + i * 10..110 + i * 10, Durability::None);
    }
    wait_flushed(&db, "Durability::None commits");
    assert_quiet(&db, "Durability::None commits");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(no_timer());
    assert_eq!(db.stats().recovery.replayed_records, 0);
    assert!(
        read_u64(&db, bytewise).0 == expected(&model),
        "lost at a crash after the idle checkpoint"
    );
}

#[test]
fn commits_after_a_volume_checkpoint_are_checkpointed_once_idle() {
    let disk = Disk::new();
    let db = disk.open(EngineOptions {
        checkpoint_wal_bytes: 8 << 10,
        ..options()
    });
    let mut model = BTreeMap::new();
    // Enough for a few volume checkpoints, committed fast.
    for i in 0..60 {
        put(&db, &mut model, i * 20..i * 20 + 20, Durability::None);
    }
    put(&db, &mut model, 5000..5001, Durability::None);
    wait_flushed(&db, "after volume checkpoints");
    assert_quiet(&db, "after volume checkpoints");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
}

#[test]
fn deferred_tables_of_unknown_order_do_not_keep_the_timer_due() {
    let disk = Disk::new();
    let db = disk.open(no_timer());
    {
        let mut w = db.begin_write().unwrap();
        // Metadata the resolver does not know: deferred after a reopen.
        let t = w.open_table(b"m", b"mystery", numeric).unwrap();
        for k in 0..30u16 {
            w.insert(t, &k.to_le_bytes(), b"v").unwrap();
        }
        w.set_durability(Durability::Immediate);
        w.commit().unwrap();
    }
    let mut model = BTreeMap::new();
    put(&db, &mut model, 0..10, Durability::Immediate);
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(options());
    assert!(db.stats().recovery.deferred_records > 0, "nothing deferred");
    wait_flushed(&db, "with a deferred table");
    assert_quiet(&db, "with a deferred table");
    // New commits while the table stays deferred.
    put(&db, &mut model, 10..20, Durability::None);
    wait_flushed(&db, "commits beside a deferred table");
    assert_quiet(&db, "commits beside a deferred table");
    // The deferred table's records survive: open it with its order.
    let r = db.begin_read().unwrap();
    let t = r.open_table(b"m", numeric).unwrap().unwrap();
    assert_eq!(r.len(&t).unwrap(), 30);
    drop(r);
    // ... and a write that absorbs them, then idle.
    {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"m", b"mystery", numeric).unwrap();
        w.insert(t, &100u16.to_le_bytes(), b"w").unwrap();
        w.commit().unwrap();
    }
    wait_flushed(&db, "after the deferred table's order became known");
    assert_quiet(&db, "after the deferred table's order became known");
    let crashed = crashed.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(no_timer());
    {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"m", b"mystery", numeric).unwrap();
        assert_eq!(w.len(t).unwrap(), 31);
        w.abort();
    }
    assert!(read_u64(&db, bytewise).0 == expected(&model));
}

#[test]
fn a_tree_commit_then_idle_checkpoints_once_and_stops() {
    let disk = Disk::new();
    let db = disk.open(EngineOptions {
        tree_commit_bytes: 4 << 10,
        ..options()
    });
    let mut model = BTreeMap::new();
    put(&db, &mut model, 0..5, Durability::None);
    // Big enough to go through the tree.
    put(&db, &mut model, 1000..1400, Durability::None);
    assert!(db.stats().tree_commits >= 1, "no tree commit");
    put(&db, &mut model, 10..15, Durability::None);
    wait_flushed(&db, "after a tree commit");
    assert_quiet(&db, "after a tree commit");
    // A tree commit last, then idle.
    put(&db, &mut model, 2000..2400, Durability::Immediate);
    assert!(db.stats().tree_commits >= 2);
    wait_flushed(&db, "a tree commit last");
    assert_quiet(&db, "a tree commit last");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(no_timer());
    assert_eq!(db.stats().recovery.replayed_records, 0, "a record left in the WAL");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
}

/// Commits (small ones and big ones handed to the inserter thread) with
/// gaps around the interval, so that timed steps race them; then idle.
#[test]
fn commits_racing_timed_steps_all_end_in_the_tree() {
    let disk = Disk::new();
    let db = Arc::new(disk.open(options()));
    let mut model = BTreeMap::new();
    let mut rng = Rng(0x5eed);
    put(&db, &mut model, 1_000_000..1_000_001, Durability::Immediate);
    let stop = Arc::new(AtomicBool::new(false));
    // A reader keeping a core busy with ranges, as the benchmark does.
    let reader = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = read_u64(&db, bytewise);
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let mut key = 0u64;
    for _ in 0..25 {
        let n = if rng.chance(30) {
            100 + rng.below(200)
        } else {
            1 + rng.below(5)
        };
        let durability = if rng.chance(50) {
            Durability::None
        } else {
            Durability::Immediate
        };
        put(&db, &mut model, key..key + n, durability);
        key += n;
        // 0.5 .. 1.5 intervals.
        std::thread::sleep(INTERVAL / 2 + Duration::from_millis(rng.below(INTERVAL.as_millis() as u64)));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    wait_flushed(&db, "after racing commits");
    assert_quiet(&db, "after racing commits");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
    let crashed = disk.crashed(TearMode::DropAll);
    drop(db);
    let db = crashed.open(no_timer());
    assert_eq!(db.stats().recovery.replayed_records, 0, "records left in the WAL");
    assert!(read_u64(&db, bytewise).0 == expected(&model));
}
