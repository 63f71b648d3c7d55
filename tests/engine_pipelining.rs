//! The pipeline, shown by counting events rather than timing: while commit N
//! waits for its fsync (held shut by a gate), commit N+1 is built and
//! appended by another writer.

mod common;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common::engine::resolver;
use parking_lot::{Condvar, Mutex};
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{LogDir, MemLogDir, MemoryBackend, StorageBackend};

#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    syncs_started: AtomicU64,
}

impl Gate {
    fn set(&self, open: bool) {
        *self.open.lock() = open;
        self.opened.notify_all();
    }
}

/// A log directory whose fsyncs wait at the gate.
#[derive(Clone)]
struct GatedDir {
    inner: MemLogDir,
    gate: Arc<Gate>,
}

struct GatedFile {
    inner: Box<dyn StorageBackend>,
    gate: Arc<Gate>,
}

impl StorageBackend for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write(offset, data)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.syncs_started.fetch_add(1, Ordering::SeqCst);
        let mut open = self.gate.open.lock();
        while !*open {
            self.gate.opened.wait(&mut open);
        }
        self.inner.sync_data()
    }
}

impl LogDir for GatedDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(GatedFile {
            inner: self.inner.create(name)?,
            gate: self.gate.clone(),
        }))
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(Box::new(GatedFile {
            inner: self.inner.open(name)?,
            gate: self.gate.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }
}

/// Runs `f` on another thread; fails the test if it does not finish (a
/// broken pipeline would block it forever, not slow it down).
fn must_finish<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} blocked"))
}

#[test]
fn the_next_commit_is_built_and_appended_while_the_previous_one_syncs() {
    let gate = Arc::new(Gate::default());
    gate.set(true);
    let dir = GatedDir {
        inner: MemLogDir::new(),
        gate: gate.clone(),
    };
    let options = EngineOptions {
        resolver,
        ..EngineOptions::default()
    };
    let db = Arc::new(Engine::open(MemoryBackend::new(), dir, options).unwrap());
    gate.set(false);

    // Commit N: waits at the closed gate inside its fsync.
    let first = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut w = db.begin_write().unwrap();
            let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
            w.insert(t, b"n", b"first").unwrap();
            w.commit().unwrap();
        })
    };
    while gate.syncs_started.load(Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    let before = db.stats();
    assert_eq!(before.wal_records, 1);
    assert_eq!(before.fsyncs, 0, "commit N's fsync has not finished");

    // Commit N+1: the writer slot is free, so it is built and appended now.
    let db2 = db.clone();
    let pending = must_finish("begin_write while commit N syncs", move || {
        let mut w = db2.begin_write().unwrap();
        let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
        w.insert(t, b"n+1", b"second").unwrap();
        w.commit_pipelined().unwrap()
    });
    let during = db.stats();
    assert_eq!(during.wal_records, 2, "commit N+1 reached the WAL");
    assert_eq!(during.fsyncs, 0, "...while commit N's fsync was still running");
    assert_eq!(pending.sequence(), 2);
    assert!(!pending.is_durable());
    // Neither is visible to readers yet: both wait for durability.
    assert!(db.begin_read().unwrap().open_table(b"t", bytewise).unwrap().is_none());

    gate.set(true);
    first.join().unwrap();
    pending.wait().unwrap();
    let txn = db.begin_read().unwrap();
    let t = txn.open_table(b"t", bytewise).unwrap().unwrap();
    assert_eq!(txn.get(&t, b"n+1").unwrap().unwrap().as_bytes(), b"second");
    let after = db.stats();
    assert!(after.fsyncs <= 2, "{after:?}");
    assert_eq!(after.durable_seq, 2);
}

#[test]
fn a_pending_commit_is_a_future() {
    let db = Engine::open(
        MemoryBackend::new(),
        MemLogDir::new(),
        EngineOptions {
            resolver,
            ..EngineOptions::default()
        },
    )
    .unwrap();
    let mut w = db.begin_write().unwrap();
    let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
    w.insert(t, b"k", b"v").unwrap();
    let pending = w.commit_pipelined().unwrap();
    // A minimal executor: poll, park until woken, poll again.
    let thread = std::thread::current();
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(thread)));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut pending = std::pin::pin!(pending);
    loop {
        match pending.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(result) => break result.unwrap(),
            std::task::Poll::Pending => std::thread::park(),
        }
    }
    assert_eq!(db.stats().durable_seq, 1);
}
