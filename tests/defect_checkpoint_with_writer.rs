//! `Database::checkpoint` while the calling thread holds the write
//! transaction must return, not wait for the writer slot that thread holds.
//! The call runs on a helper thread with a hang guard so a regression fails
//! the test instead of hanging CI.

use std::sync::mpsc;
use std::time::Duration;

use sluicedb::{Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Generous: a hang guard, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[test]
fn checkpoint_returns_while_this_thread_holds_a_write_transaction() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        let first = db.begin_write().unwrap();
        first.open_table(T).unwrap().insert(1, 1).unwrap();
        first.commit().unwrap();

        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(2, 2).unwrap();
        let checkpointed = db.checkpoint().map_err(|e| e.to_string());
        txn.commit().unwrap();
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let values = (
            table.get(1).unwrap().map(|g| g.value()),
            table.get(2).unwrap().map(|g| g.value()),
        );
        let _ = tx.send((checkpointed, values));
    });
    let outcome = rx
        .recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("checkpoint with a live writer: no answer within {HANG_GUARD:?} (deadlock?)"));
    assert_eq!(outcome, (Ok(()), (Some(1), Some(2))));
}
