//! A database in one redb-shaped backend (`Builder::create_with_backend`:
//! the WAL in memory) under the crash model, committed pipelined: a
//! `PendingCommit` that was waited for or awaited is durable, so the power
//! cut right after keeps its commit, whatever happened to unsynced writes.
//!
//! The memory WAL's "sync" keeps nothing through a crash; only a checkpoint
//! of the backend does. Waiting used to return at that sync, and the
//! sluicedb-raft stores, which take a waited `PendingCommit` as their proof
//! of durability, then acknowledged votes and log entries that a crash lost.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use common::Crashing;
use sluicedb::io::{CrashBackend, TearMode};
use sluicedb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Commits `key -> value` pipelined with `durability`.
fn commit(db: &Database, durability: Durability, key: u64) -> sluicedb::PendingCommit {
    let mut txn = db.begin_write().expect("a write");
    txn.set_durability(durability).expect("durability");
    txn.open_table(T)
        .expect("the table")
        .insert(key, key)
        .expect("an insert");
    txn.commit_pipelined().expect("the commit")
}

/// Polls `future` to its end on this thread: `PendingCommit` needs no runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// What a power cut now leaves: the keys the reopened database holds.
fn after_power_cut(backend: &CrashBackend) -> Vec<u64> {
    let image = Arc::new(CrashBackend::from_bytes(backend.crash_image(TearMode::DropAll)));
    let db = Builder::new()
        .create_with_backend(Crashing(image))
        .expect("the image opens");
    let read = db.begin_read().expect("a read");
    let Ok(table) = read.open_table(T) else {
        return Vec::new();
    };
    table
        .iter()
        .expect("a scan")
        .map(|entry| entry.expect("an entry").0.value())
        .collect()
}

#[test]
fn a_waited_pipelined_commit_survives_a_power_cut() {
    for durability in [Durability::None, Durability::Immediate] {
        let backend = Arc::new(CrashBackend::new());
        let db = Builder::new()
            .create_with_backend(Crashing(backend.clone()))
            .expect("the database");

        // An `Immediate` commit has nothing to pipeline with here: it is in
        // the backend, durable, when `commit_pipelined` returns (readers
        // see it then, and must not before). A `None` one is not yet.
        let first = commit(&db, durability, 1);
        assert_eq!(
            first.is_durable(),
            durability == Durability::Immediate,
            "{durability:?}: what has reached the backend"
        );
        first.wait().expect("the wait");
        assert_eq!(after_power_cut(&backend), [1], "{durability:?}: a waited commit");

        let second = commit(&db, durability, 2);
        block_on(second).expect("the await");
        assert_eq!(after_power_cut(&backend), [1, 2], "{durability:?}: an awaited commit");

        // A commit covered by a later checkpoint is durable without another.
        let third = commit(&db, durability, 3);
        db.checkpoint().expect("a checkpoint");
        assert!(third.is_durable(), "{durability:?}: the checkpoint holds it");
        third.wait().expect("the wait");
        assert_eq!(after_power_cut(&backend), [1, 2, 3], "{durability:?}");
    }
}
