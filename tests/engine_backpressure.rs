//! Backpressure and background failures: past the frozen-memtable budget a
//! writer waits for the flush (and the stall is counted); a panic in the
//! apply thread poisons the database instead of hanging anyone.

mod common;

use std::sync::Arc;

use common::engine::{resolver, small_options};
use sluicedb::StorageError;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{CrashBackend, MemLogDir, MemoryBackend};

#[test]
fn writers_stall_past_the_frozen_budget_and_lose_nothing() {
    // Every commit freezes its memtable, and a one-byte budget lets no
    // memtable queue behind the one being flushed: unsynced commits arrive
    // far faster than flushes (each waits for a sync), so writers stall.
    let options = EngineOptions {
        memtable_bytes: 1,
        max_frozen_bytes: 1,
        ..small_options()
    };
    let db = Engine::open(MemoryBackend::new(), MemLogDir::new(), options).unwrap();
    for i in 0..2000u64 {
        let mut w = db.begin_write().unwrap();
        w.set_durability(sluicedb::engine::Durability::None);
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        w.insert(t, &i.to_be_bytes(), &[1u8; 64]).unwrap();
        w.commit().unwrap();
    }
    let stats = db.stats();
    assert!(stats.stalls > 0, "{stats:?}");
    assert!(stats.flushes > 0);
    assert_eq!(entries(&db), 2000);
}

/// Entries in table `t`, as a reader sees them.
fn entries(db: &Engine) -> usize {
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"t", bytewise).unwrap().unwrap();
    txn.range(&t, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .unwrap()
        .count()
}

#[test]
fn a_flush_gives_way_to_the_commit_path_while_no_writer_is_held_back() {
    // A roomy frozen budget: a flush yields between its slices, and what it
    // flushes is all there afterwards.
    let db = Engine::open(MemoryBackend::new(), MemLogDir::new(), small_options()).unwrap();
    for batch in 0..20u64 {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        for i in 0..200u64 {
            w.insert(t, &(batch * 200 + i).to_be_bytes(), &[3u8; 64]).unwrap();
        }
        w.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let stats = db.stats();
    assert!(stats.flushes > 0, "{stats:?}");
    assert!(stats.flush_yields > 0, "{stats:?}");
    assert_eq!(entries(&db), 4000);
}

#[test]
fn a_large_transaction_does_not_stall_the_commits_after_it() {
    // issue 12: one transaction far above the memtable size and the frozen
    // budget used to stall (or slow) every writer after it until its flush
    // finished; durable commits right after a bulk load ran at ~1K/s.
    let options = small_options();
    let db = Engine::open(MemoryBackend::new(), MemLogDir::new(), options).unwrap();
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
    for i in 0..20_000u64 {
        w.insert(t, &i.to_be_bytes(), &[7u8; 100]).unwrap();
    }
    w.commit().unwrap();
    assert!(db.stats().frozen_bytes as usize > 4 * options.max_frozen_bytes);
    for i in 0..50u64 {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        w.insert(t, &(1_000_000 + i).to_be_bytes(), b"small").unwrap();
        w.commit().unwrap();
    }
    let stats = db.stats();
    assert_eq!((stats.stalls, stats.slowdowns), (0, 0), "{stats:?}");
    db.checkpoint().unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"t", bytewise).unwrap().unwrap();
    let all = txn.range(&t, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded);
    assert_eq!(all.unwrap().count(), 20_050);
}

#[test]
fn a_panic_in_the_apply_thread_poisons_the_database() {
    let data = Arc::new(CrashBackend::new());
    let options = EngineOptions {
        resolver,
        ..small_options()
    };
    let db = Engine::open(data.clone(), MemLogDir::new(), options).unwrap();
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
    w.insert(t, b"k", b"v").unwrap();
    w.commit().unwrap();
    // The next data-file write panics: it is the checkpoint's flush.
    data.panic_at_op(data.ops());
    let err = db.checkpoint().unwrap_err();
    assert!(
        matches!(&err, StorageError::Poisoned(cause) if cause.contains("panicked")),
        "{err}"
    );
    let later = db.begin_write().err().expect("poisoned").to_string();
    assert!(later.contains("injected panic"), "{later}");
}
