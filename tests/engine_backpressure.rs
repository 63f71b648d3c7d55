//! Backpressure and background failures: past the frozen-memtable budget a
//! writer waits for the flush (and the stall is counted); a panic in the
//! apply thread poisons the database instead of hanging anyone.

mod common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::engine::{resolver, small_options};
use sluicedb::StorageError;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{MemLogDir, MemoryBackend, StorageBackend};

#[test]
fn writers_stall_past_the_frozen_budget_and_lose_nothing() {
    // A one-byte budget: every frozen memtable blocks the next writer until
    // the apply thread has flushed it.
    let options = EngineOptions {
        max_frozen_bytes: 1,
        ..small_options()
    };
    let db = Engine::open(MemoryBackend::new(), MemLogDir::new(), options).unwrap();
    for i in 0..2000u64 {
        let mut w = db.begin_write().unwrap();
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        w.insert(t, &i.to_be_bytes(), &[1u8; 64]).unwrap();
        w.commit().unwrap();
    }
    let stats = db.stats();
    assert!(stats.stalls > 0, "{stats:?}");
    assert!(stats.flushes > 0);
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"t", bytewise).unwrap().unwrap();
    assert_eq!(
        txn.range(&t, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
            .unwrap()
            .count(),
        2000
    );
}

/// A data file whose `armed`-th write after arming panics, like a bug in
/// the code under the apply thread would.
struct PanicsOnWrite {
    inner: MemoryBackend,
    countdown: Arc<AtomicU64>,
}

impl StorageBackend for PanicsOnWrite {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.countdown.fetch_sub(1, Ordering::SeqCst) == 1 {
            panic!("injected panic in a data-file write");
        }
        self.inner.write(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
}

#[test]
fn a_panic_in_the_apply_thread_poisons_the_database() {
    let countdown = Arc::new(AtomicU64::new(u64::MAX));
    let data = PanicsOnWrite {
        inner: MemoryBackend::new(),
        countdown: countdown.clone(),
    };
    let db = Engine::open(
        data,
        MemLogDir::new(),
        EngineOptions {
            resolver,
            ..small_options()
        },
    )
    .unwrap();
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
    w.insert(t, b"k", b"v").unwrap();
    w.commit().unwrap();
    countdown.store(1, Ordering::SeqCst);
    let err = db.checkpoint().unwrap_err();
    assert!(
        matches!(&err, StorageError::Poisoned(cause) if cause.contains("panicked")),
        "{err}"
    );
    let later = db.begin_write().err().expect("poisoned").to_string();
    assert!(later.contains("injected panic"), "{later}");
}
