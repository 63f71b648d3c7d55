//! Power cuts inside a flush that commits durably part way through its
//! memtable (`EngineOptions::flush_commit_bytes`, `engine::flush_marker`):
//! at every data-file operation of the flush and the checkpoint after it.
//! The tree may then hold part of the memtable while its commit slot names
//! the checkpoint before it. After reopen: every acknowledged commit, each
//! key's newest value, `len()` exact (the replayed records must not count
//! again what the partial flush put in the tree), the integrity check
//! clean; again after the next flush and after a clean reopen. The same
//! with the table in a custom order that recovery does not know (its
//! records deferred until the flush learns the order). Also: readers
//! during such a flush see the same contents and count throughout.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::engine::{
    Disk, FLUSH_PARTS_KEYS, flush_parts_fill, flush_parts_options, flush_parts_reopen_options, has_flush_marker,
    read_u64,
};
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::Engine;
use sluicedb::io::TearMode;

type Model = BTreeMap<u64, Vec<u8>>;

/// The table's key order: its metadata and comparator.
#[derive(Clone, Copy)]
struct Order {
    meta: &'static [u8],
    cmp: Comparator,
}

const BYTES: Order = Order {
    meta: b"bytes",
    cmp: bytewise,
};

/// Reverse byte order, under metadata the engine's resolver does not know:
/// recovery defers the table's records until an open names the order.
const REVERSE: Order = Order {
    meta: b"rev",
    cmp: |a, b| b.cmp(a),
};

/// The workload's checkpointed tree and memtable in `order`'s table.
fn fill(db: &Engine, order: Order) -> Model {
    flush_parts_fill(db, order.meta, order.cmp)
}

/// Checks contents (in the table's order), count and integrity against the
/// model.
fn check(db: &Engine, order: Order, model: &Model, what: &str) {
    db.check_integrity()
        .unwrap_or_else(|e| panic!("{what}: integrity: {e}"));
    let (listed, len) = read_u64(db, order.cmp);
    let in_order = listed
        .windows(2)
        .all(|w| (order.cmp)(&w[0].0.to_be_bytes(), &w[1].0.to_be_bytes()).is_lt());
    assert!(in_order, "{what}: entries out of the table's order");
    let found: Model = listed.into_iter().collect();
    assert!(found == *model, "{what}: contents differ from the acknowledged commits");
    assert_eq!(len, model.len() as u64, "{what}: len()");
}

/// Cuts the power at every `step`th data-file operation of a flush that
/// commits in parts, and checks each image through recovery, the next
/// flush and a clean reopen.
fn power_cuts_inside_a_flush(order: Order, step: usize) {
    let span = {
        let disk = Disk::new();
        let db = disk.open(flush_parts_options());
        let model = fill(&db, order);
        let (data, parts) = (disk.data.ops(), db.stats().flush_part_commits);
        db.checkpoint().unwrap();
        let made = db.stats().flush_part_commits - parts;
        assert!(made >= 5, "the flush made only {made} part commits");
        check(&db, order, &model, "uncut");
        disk.data.ops() - data
    };
    let (mut with_marker, mut deferred) = (0, 0);
    for n in (0..=span).step_by(step) {
        let disk = Disk::new();
        let db = disk.open(flush_parts_options());
        let model = fill(&db, order);
        disk.data.cut_power_after(disk.data.ops() + n);
        let _ = db.checkpoint();
        drop(db);
        // One image per cut, the tear mode turning with the cut's position
        // (every mode meets every stretch of the flush; a debug build runs
        // this in about a minute).
        let mode = [TearMode::DropAll, TearMode::Random(n), TearMode::KeepAll][(n % 3) as usize];
        let what = format!("cut after {n} data operations, {mode:?}");
        let crashed = disk.crashed(mode);
        with_marker += has_flush_marker(&crashed) as u32;
        let db = crashed.open(flush_parts_reopen_options());
        deferred += (db.stats().recovery.deferred_records > 0) as u32;
        check(&db, order, &model, &what);
        db.checkpoint().unwrap();
        check(&db, order, &model, &format!("{what}, flushed again"));
        drop(db);
        assert!(
            !has_flush_marker(&crashed),
            "{what}: the marker outlived a complete flush"
        );
        let db = crashed.open(flush_parts_reopen_options());
        check(&db, order, &model, &format!("{what}, reopened"));
    }
    assert!(with_marker > 0, "no cut fell between part commits");
    if order.meta == REVERSE.meta {
        assert!(deferred > 0, "recovery never deferred the custom-order table");
    }
}

#[test]
fn power_cuts_inside_a_flush_with_part_commits_lose_and_double_count_nothing() {
    power_cuts_inside_a_flush(BYTES, 1);
}

/// Every second operation: the flush's stretches are as in the byte-order
/// test; the order and the deferred records are what this adds.
#[test]
fn power_cuts_inside_a_flush_of_a_custom_order_table() {
    power_cuts_inside_a_flush(REVERSE, 2);
}

#[test]
fn readers_during_a_flush_with_part_commits_see_one_state() {
    let disk = Disk::new();
    let db = Arc::new(disk.open(flush_parts_options()));
    let model = Arc::new(fill(&db, BYTES));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (db, model, done) = (db.clone(), model.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) || reads == 0 {
                let txn = db.begin_read().unwrap();
                let t = txn.open_table(b"t", bytewise).unwrap().unwrap();
                assert_eq!(txn.len(&t).unwrap(), model.len() as u64, "len() during the flush");
                for key in (reads % 7..FLUSH_PARTS_KEYS + 600).step_by(97) {
                    let got = txn.get(&t, &key.to_be_bytes()).unwrap();
                    assert_eq!(
                        got.as_ref().map(|v| v.as_bytes()),
                        model.get(&key).map(|v| &v[..]),
                        "key {key}"
                    );
                }
                reads += 1;
            }
            reads
        })
    };
    let parts = db.stats().flush_part_commits;
    db.checkpoint().unwrap();
    done.store(true, Ordering::Release);
    assert!(reader.join().unwrap() > 0);
    assert!(db.stats().flush_part_commits > parts, "the flush made no part commit");
    check(&db, BYTES, &model, "after the flush");
}
