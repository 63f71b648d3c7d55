//! Closing or dropping the database handle ends its read transactions, as
//! redb's (`StorageError::DatabaseClosed`), while a live write transaction
//! stays usable and the close takes effect when it ends.

use sluicedb::{Database, ReadOnlyDatabase, ReadableDatabase, ReadableTableMetadata, StorageError, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn filled(path: &std::path::Path) -> Database {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, 1).unwrap();
    txn.commit().unwrap();
    db
}

#[test]
fn reads_after_close_or_drop_fail_with_database_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    for close in [false, true] {
        let db = filled(&path);
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        let owned = table.get_owned(1).unwrap().unwrap();
        assert_eq!(table.get(1).unwrap().unwrap().value(), 1);
        if close {
            db.close().unwrap();
        } else {
            drop(db);
        }
        assert!(matches!(table.get(1), Err(StorageError::DatabaseClosed)));
        assert!(matches!(table.len(), Err(StorageError::DatabaseClosed)));
        assert!(matches!(read.list_tables().err(), Some(StorageError::DatabaseClosed)));
        // What was read already stays readable.
        assert_eq!(owned.value(), 1);
        // The file is free for another open, though `read` is alive.
        drop(Database::open(&path).unwrap());
    }

    let ro = ReadOnlyDatabase::open(&path).unwrap();
    let read = ro.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    ro.close().unwrap();
    assert!(matches!(table.get(1), Err(StorageError::DatabaseClosed)));
    drop(Database::open(&path).unwrap());
}

#[test]
fn a_live_write_transaction_defers_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let db = filled(&dir.path().join("db"));
    let write = db.begin_write().unwrap();
    let read = db.begin_read().unwrap();
    drop(db);
    assert!(read.list_tables().is_ok());
    write.open_table(T).unwrap().insert(2, 2).unwrap();
    write.commit().unwrap();
    assert!(matches!(read.list_tables().err(), Some(StorageError::DatabaseClosed)));
}
