//! `Database::close` returns the I/O error whichever of its syncs fails, as
//! redb's (`DatabaseError::Storage(StorageError::Io(_))`, not `PreviousIo`:
//! close is the operation that met it), and the backend then opens to a
//! consistent database holding every durable commit. Here close has work to
//! do: a `Durability::None` commit that only its checkpoint makes durable
//! in a single redb-shaped backend.

mod common;

use std::sync::atomic::Ordering;

use common::failing::FailingBackend;
use sluicedb::{Builder, Database, DatabaseError, Durability, ReadableDatabase, StorageError, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// A database holding a durable commit of key 1 and a non-durable one of
/// key 2, which only a checkpoint writes into the backend.
fn open() -> (Database, FailingBackend) {
    let backend = FailingBackend::new();
    let db = Builder::new().create_with_backend(backend.clone()).unwrap();
    for (key, durability) in [(1, Durability::Immediate), (2, Durability::None)] {
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(durability).unwrap();
        txn.open_table(T).unwrap().insert(key, key).unwrap();
        txn.commit().unwrap();
    }
    (db, backend)
}

#[test]
fn close_returns_the_io_error_whichever_sync_fails() {
    let (db, backend) = open();
    let before = backend.syncs();
    db.close().unwrap();
    let syncs = backend.syncs() - before;
    assert!(
        syncs >= 2,
        "the checkpoint syncs its pages, then its commit slot: {syncs} syncs"
    );

    for failing in 0..syncs {
        let (db, backend) = open();
        backend.syncs_left.store(failing, Ordering::SeqCst);
        match db.close() {
            Err(DatabaseError::Storage(StorageError::Io(e))) => {
                assert!(
                    e.to_string().contains("injected sync failure"),
                    "sync {failing} of {syncs}: {e}"
                );
            }
            other => panic!("sync {failing} of {syncs}: expected the I/O error, got {other:?}"),
        }

        let mut reopened = Builder::new().create_with_backend(backend.image()).unwrap();
        assert!(reopened.check_integrity().unwrap(), "sync {failing} of {syncs}");
        let read = reopened.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        assert_eq!(
            table.get(1).unwrap().map(|v| v.value()),
            Some(1),
            "sync {failing} of {syncs}"
        );
    }
}
