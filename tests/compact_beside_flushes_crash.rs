//! `Engine::compact` beside the apply thread's flushes, then a crash: the
//! data file's durable commits must claim the sequence their tree holds.
//!
//! A writer commits a new key at a time (a quarter of them durable) into
//! tiny memtables, so the apply thread flushes all along, while the test
//! compacts forty times and takes a crash image (unsynced writes lost)
//! right after each compaction. Every image must open with each value
//! whole, the last acknowledged commit present and `len()` equal to the
//! entries. Compaction's two durable commits claimed the old checkpoint
//! sequence even when a flush had committed (not durably) since the
//! checkpoint before them; recovery then replayed the flushed records
//! over a tree that already held them and counted their keys twice (4 of
//! 40 images in the run that found it; every run failed). Found by an
//! adversarial review in the fifty-fourth session.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::engine::{Disk, durable_tree_facts, read_u64_model, small_options};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Durability, Engine, EngineOptions};
use sluicedb::io::TearMode;

fn compact_options() -> EngineOptions {
    EngineOptions {
        memtable_bytes: 1 << 10,
        max_frozen_bytes: 4 << 10,
        checkpoint_wal_bytes: 1 << 20,
        segment_bytes: 4 << 10,
        ..small_options()
    }
}

/// Keys cycle through this many (every commit writes a new key).
const COMPACT_KEYS: u64 = 1 << 40;

fn compact_value(i: u64) -> Vec<u8> {
    format!("{i:010} {}", "x".repeat((i % 7 * 20) as usize)).into_bytes()
}

/// Commits `i = next, next + 1, ...` (key `i % COMPACT_KEYS`, value naming
/// `i`) while `i < budget`, until `stop`; every fourth waits and is
/// recorded in `acked`.
fn compact_writer(db: &Engine, next: &AtomicU64, budget: &AtomicU64, acked: &AtomicU64, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let i = next.load(Ordering::Relaxed);
        if i >= budget.load(Ordering::Acquire) {
            std::thread::yield_now();
            continue;
        }
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        w.insert(t, &(i % COMPACT_KEYS).to_be_bytes(), &compact_value(i))
            .unwrap();
        let durable = i.is_multiple_of(4);
        w.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        });
        w.commit().unwrap();
        next.store(i + 1, Ordering::Release);
        if durable {
            acked.store(i, Ordering::Release);
        }
    }
}

#[test]
fn compaction_beside_flushes_keeps_counts_exact_after_a_crash() {
    const ROUNDS: u64 = 40;
    let disk = Disk::new();
    let db = Arc::new(disk.open(compact_options()));
    let next = Arc::new(AtomicU64::new(1));
    let budget = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, next, budget, acked, stop) = (db.clone(), next.clone(), budget.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || compact_writer(&db, &next, &budget, &acked, &stop))
    };
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        // The writer runs on while compaction does: 400 commits ahead of it.
        budget.store(round * 400 + 800, Ordering::Release);
        while next.load(Ordering::Acquire) < round * 400 + 400 {
            std::thread::yield_now();
        }
        db.compact().unwrap();
        let acked_now = acked.load(Ordering::Acquire);
        let image = disk.crashed(TearMode::DropAll);
        let data_before_open = image.data.durable_image();
        let reopened = Engine::open(image.data.clone(), image.wal.clone(), compact_options())
            .unwrap_or_else(|e| panic!("round {round}: the crash image does not open: {e}"));
        if round % 10 == 9 {
            reopened
                .check_integrity()
                .unwrap_or_else(|e| panic!("round {round}: integrity: {e}"));
        }
        let (model, len) = read_u64_model(&reopened, b"t", bytewise).unwrap_or_default();
        let version = |k: u64| {
            model
                .get(&k)
                .map_or(0, |v| String::from_utf8_lossy(&v[..10]).parse::<u64>().unwrap())
        };
        for (k, v) in &model {
            let i = version(*k);
            assert_eq!(v, &compact_value(i), "round {round}: key {k} damaged");
            assert_eq!(i % COMPACT_KEYS, *k, "round {round}: key {k} holds commit {i}");
        }
        if acked_now > 0 {
            assert!(
                version(acked_now % COMPACT_KEYS) >= acked_now,
                "round {round}: acknowledged commit {acked_now} lost"
            );
        }
        if len != model.len() as u64 {
            failures.push(format!(
                "round {round}: len() {len} but {} entries; durable data file before reopen: {}",
                model.len(),
                durable_tree_facts(data_before_open)
            ));
        }
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {ROUNDS} crash images miscount: {failures:?}",
        failures.len()
    );
}
