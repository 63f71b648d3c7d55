//! A failure of the gathered page writes reaches the caller of the
//! operation that issued them. `PageStore` gathers consecutive page writes
//! and issues them before any other use of the file; the file's length
//! was asked through the store's backend handle, which issued them,
//! dropped the result and read past the error latch: `Engine::file_len`
//! and `Engine::compact` answered `Ok` (with the length of a file lacking
//! the pages) for an operation whose write had just failed.

mod common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{TREE, key, numeric};
use sluicedb::btree::{TreeStore, TreeStoreOptions};
use sluicedb::io::{CrashBackend, StorageBackend};

/// A backend whose writes fail while `fail_writes` is set, counting the
/// writes that reach it.
#[derive(Clone, Default)]
struct Switched {
    inner: Arc<CrashBackend>,
    fail_writes: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
}

impl StorageBackend for Switched {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected write failure"));
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

/// The file length asked while a published commit's pages are still
/// gathered: their write fails, and the caller hears of it rather than
/// getting `Ok` with a length that lacks them.
#[test]
fn a_failed_gathered_write_fails_the_file_length() {
    let backend = Switched::default();
    let store = TreeStore::create(backend.clone(), 1, TreeStoreOptions::default()).unwrap();
    let mut writer = store.writer().unwrap();
    writer.create_tree(TREE, b"numeric").unwrap();
    for k in 0..200u16 {
        writer.insert(TREE, numeric, &key(k), &[k as u8; 100]).unwrap();
    }
    let writes_before = backend.writes.load(Ordering::SeqCst);
    writer.non_durable_commit().unwrap();
    assert_eq!(
        backend.writes.load(Ordering::SeqCst),
        writes_before,
        "precondition: the commit's pages are still gathered"
    );
    backend.fail_writes.store(true, Ordering::SeqCst);
    let len_before = backend.inner.len().unwrap();

    let answered = store.file_len();
    let failure = store.failure();
    assert!(
        backend.writes.load(Ordering::SeqCst) > writes_before,
        "file_len issued the gathered pages"
    );
    // The write failed and latched the store ...
    assert!(failure.is_some(), "the gathered write failed and latched");
    // ... yet the call that issued it reports success, with the length of
    // a file that lacks the pages.
    assert!(
        answered.is_err(),
        "file_len answered {answered:?} (file length before: {len_before}) although issuing \
         the gathered pages failed: {failure:?}"
    );
}

/// The same through the engine: once a flush has published its tree
/// (its pages gathered, no checkpoint yet), `Engine::file_len` issues them;
/// their write fails and latches the data file, and `file_len` reports it,
/// then and on every later call, as the next checkpoint does.
#[test]
fn engine_file_len_reports_the_failed_flush_write() {
    use common::engine::small_options;
    use sluicedb::btree::bytewise;
    use sluicedb::engine::{Durability, Engine, EngineOptions};
    use sluicedb::io::CrashLogDir;

    let backend = Switched::default();
    let options = EngineOptions {
        // Flushes, but no checkpoint on its own.
        checkpoint_wal_bytes: 1 << 40,
        checkpoint_interval: std::time::Duration::from_secs(3600),
        flush_commit_bytes: 1 << 40,
        ..small_options()
    };
    let db = Engine::open(backend.clone(), CrashLogDir::new(), options).unwrap();
    let mut txn = db.begin_write().unwrap();
    let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
    for k in 0..2_000u32 {
        txn.insert(t, &k.to_be_bytes(), &[7u8; 40]).unwrap();
    }
    txn.set_durability(Durability::None);
    txn.commit().unwrap();
    // A few small commits, so the big memtable is frozen and flushed.
    for k in 0..200u32 {
        let mut txn = db.begin_write().unwrap();
        let t = txn.open_table(b"t", b"bytes", bytewise).unwrap();
        txn.insert(t, &(10_000 + k).to_be_bytes(), &[9u8; 100]).unwrap();
        txn.set_durability(Durability::None);
        txn.commit().unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while db.stats().flushes == 0 || db.stats().frozen_memtables > 0 {
        assert!(std::time::Instant::now() < deadline, "no flush");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(
        db.stats().checkpoints,
        0,
        "precondition: no checkpoint issued the flush's pages"
    );
    let writes_before = backend.writes.load(Ordering::SeqCst);
    backend.fail_writes.store(true, Ordering::SeqCst);

    let first = db.file_len();
    let issued = backend.writes.load(Ordering::SeqCst) > writes_before;
    let second = db.file_len();
    let checkpoint = db.checkpoint();
    assert!(issued, "precondition: file_len issued the flush's gathered pages");
    assert!(checkpoint.is_err(), "the failure is latched: {checkpoint:?}");
    assert!(
        first.is_err() && second.is_err(),
        "Engine::file_len answered {first:?} then {second:?} although the flush's page write it \
         issued failed (the checkpoint after it: {checkpoint:?})"
    );
}
