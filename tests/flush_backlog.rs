//! A backlog of frozen memtables is flushed in one pass (`engine::apply`,
//! `flush_oldest`): the oldest frozen memtable with the plain ones after
//! it, newest version first across them, as one memtable to the flush
//! protocol. The backlog is made deterministic by holding the data file's
//! writes while commits freeze memtables behind a flush that has started.
//! Checked: the pass took several memtables (`Stats::flush_passes` below
//! `Stats::flushes`), and every key's newest value, `len()` and the
//! integrity check hold after it, after a clean reopen, and after a power
//! cut at every few data-file operations of the merged pass (part commits
//! included: the recovered marker's `through` is the newest memtable's).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::engine::{Disk, HeldWrites, Hold, commit_u64, read_u64, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{CrashBackend, TearMode};

type Model = BTreeMap<u64, Vec<u8>>;

const KEYS: u64 = 1500;

/// Small memtables, room for many frozen ones, flushes that commit every
/// two pages, and no checkpoint but the test's.
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 16 << 10,
        max_frozen_bytes: 64 << 20,
        checkpoint_wal_bytes: 1 << 40,
        checkpoint_interval: Duration::from_secs(3600),
        flush_commit_bytes: 8 << 10,
        ..small_options()
    }
}

fn value(key: u64, round: u64) -> Vec<u8> {
    format!("key {key} round {round} {}", "x".repeat(40)).into_bytes()
}

fn commit(db: &Engine, model: &mut Model, ops: &[(u64, Option<Vec<u8>>)]) {
    commit_u64(db, b"bytes", bytewise, model, ops);
}

fn check(db: &Engine, model: &Model, what: &str) {
    db.check_integrity()
        .unwrap_or_else(|e| panic!("{what}: integrity: {e}"));
    let (listed, len) = read_u64(db, bytewise);
    let found: Model = listed.into_iter().collect();
    assert!(found == *model, "{what}: contents differ from the acknowledged commits");
    assert_eq!(len, model.len() as u64, "{what}: len()");
}

/// A checkpointed tree, then, with the data file's writes held, rounds of
/// overwrites, removals and new keys that freeze at least five memtables
/// behind the flush the first one started. Returns the model and the data
/// file's hold.
fn backlog(disk: &Disk) -> (Engine, Hold<Arc<CrashBackend>>, Model) {
    let gated = HeldWrites::new(disk.data.clone());
    let db = Engine::open(gated.clone(), disk.wal.clone(), options()).unwrap();
    let mut model = Model::new();
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<_> = chunk.iter().map(|&k| (k, Some(value(k, 0)))).collect();
        commit(&db, &mut model, &ops);
    }
    db.checkpoint().unwrap();
    let held = gated.hold();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 1;
    while db.stats().frozen_memtables < 5 {
        assert!(Instant::now() < deadline, "the memtables did not freeze");
        let ops: Vec<_> = (0..KEYS + 300)
            .filter(|k| k % 7 == round % 7)
            .map(|k| match (k + round) % 4 {
                0 => (k, None),
                _ => (k, Some(value(k, round))),
            })
            .collect();
        commit(&db, &mut model, &ops);
        round += 1;
    }
    (db, held, model)
}

#[test]
fn a_backlog_of_frozen_memtables_is_flushed_in_one_pass() {
    let disk = Disk::new();
    let (db, held, model) = backlog(&disk);
    let before = db.stats();
    held.release();
    db.checkpoint().unwrap();
    let after = db.stats();
    let (flushes, passes) = (after.flushes - before.flushes, after.flush_passes - before.flush_passes);
    assert!(flushes >= 5, "{flushes} memtables flushed");
    assert!(
        passes < flushes,
        "{flushes} memtables took {passes} passes: none shared one"
    );
    assert_eq!(after.frozen_memtables, 0);
    check(&db, &model, "after the merged flush");
    drop(db);
    let db = disk.open(options());
    check(&db, &model, "reopened");
}

/// Every acknowledged commit survives a power cut at every third data-file
/// operation of the passes after the backlog (the merged one among them),
/// through recovery, the next flush and a clean reopen.
#[test]
fn power_cuts_inside_a_merged_flush_lose_nothing() {
    let span = {
        let disk = Disk::new();
        let (db, held, _) = backlog(&disk);
        let start = disk.data.ops();
        held.release();
        db.checkpoint().unwrap();
        disk.data.ops() - start
    };
    assert!(span > 10, "the flush wrote {span} operations");
    for n in (0..=span).step_by(3) {
        let disk = Disk::new();
        let (db, held, model) = backlog(&disk);
        disk.data.cut_power_after(disk.data.ops() + n);
        held.release();
        let _ = db.checkpoint();
        drop(db);
        let mode = [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll][(n % 3) as usize];
        let what = format!("cut after {n} data operations, {mode:?}");
        let crashed = disk.crashed(mode);
        let db = crashed.open(options());
        check(&db, &model, &what);
        db.checkpoint().unwrap();
        check(&db, &model, &format!("{what}, flushed again"));
        drop(db);
        let db = crashed.open(options());
        check(&db, &model, &format!("{what}, reopened"));
    }
}
