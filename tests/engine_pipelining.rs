//! The pipeline, shown by counting events rather than timing: while commit N
//! waits for its fsync (held shut by a gate), commit N+1 is built and
//! appended by another writer.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use common::engine::resolver;
use sluicedb::btree::bytewise;
use sluicedb::engine::{Engine, EngineOptions};
use sluicedb::io::{HeldSyncs, MemLogDir, MemoryBackend};

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
    // A log directory whose fsyncs wait while held.
    let dir = HeldSyncs::new(MemLogDir::new());
    let gate = dir.clone();
    let options = EngineOptions {
        resolver,
        ..EngineOptions::default()
    };
    let db = Arc::new(Engine::open(MemoryBackend::new(), dir, options).unwrap());
    // The open's own syncs (the segment it starts) are behind it.
    let opened = gate.syncs_started();
    gate.hold();

    // Commit N: waits at the held gate inside its fsync.
    let first = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut w = db.begin_write().unwrap();
            let t = w.open_table(b"t", b"bytes", bytewise).unwrap();
            w.insert(t, b"n", b"first").unwrap();
            w.commit().unwrap();
        })
    };
    while gate.syncs_started() == opened {
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

    gate.release();
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
