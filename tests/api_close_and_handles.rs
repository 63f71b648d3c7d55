//! redb 4.6 behaviours around handles (issue 14): `Database::close` refuses
//! while a write transaction is live (which stays usable);
//! `TableAlreadyOpen` names where the table was opened; an open `Table` can
//! be passed to `delete_table` and `rename_table` (it is dropped first);
//! `ExtractIf::close`; an empty table name panics as in redb.

use sluicedb::{Database, DatabaseError, ReadableDatabase, ReadableTable, TableDefinition, TableError, TableHandle};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

#[test]
fn close_refuses_while_a_write_transaction_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    assert!(matches!(db.close(), Err(DatabaseError::TransactionInProgress)));
    txn.open_table(T).unwrap().insert(1, 1).unwrap();
    assert!(matches!(Database::open(&path), Err(DatabaseError::DatabaseAlreadyOpen)));
    txn.commit().unwrap();

    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    assert_eq!(read.open_table(T).unwrap().get(1).unwrap().unwrap().value(), 1);
    drop(read);
    db.close().unwrap();
}

#[test]
fn table_already_open_names_where_it_was_opened() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    let line = line!() + 1;
    let table = txn.open_table(T).unwrap();
    match txn.open_table(T) {
        Err(TableError::TableAlreadyOpen(name, at)) => {
            assert_eq!(name, "t");
            assert!(at.file().ends_with("api_close_and_handles.rs"), "{at}");
            assert_eq!(at.line(), line);
        }
        other => panic!("expected TableAlreadyOpen, got {:?}", other.err()),
    }
    assert!(matches!(txn.delete_table(T), Err(TableError::TableAlreadyOpen(_, _))));
    // Passing the open table itself drops it first.
    assert_eq!(table.name(), "t");
    txn.rename_table(table, "u").unwrap();
    let u: TableDefinition<u64, u64> = TableDefinition::new("u");
    let mut table = txn.open_table(u).unwrap();
    table.insert(5, 5).unwrap();
    assert!(txn.delete_table(table).unwrap());
    txn.commit().unwrap();
}

#[test]
fn extract_if_close_keeps_the_entries_not_reached() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..10 {
            t.insert(i, i).unwrap();
        }
        let mut extracted = t.extract_if(|k, _| k >= 5).unwrap();
        assert_eq!(extracted.next().unwrap().unwrap().0.value(), 5);
        extracted.close().unwrap();
        let keys: Vec<u64> = t.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
        assert_eq!(keys, [0, 1, 2, 3, 4, 6, 7, 8, 9]);
    }
    txn.commit().unwrap();
}

#[test]
#[should_panic(expected = "assertion failed: !name.is_empty()")]
fn an_empty_table_name_panics() {
    let name = String::new();
    let _ = TableDefinition::<u64, u64>::new(&name);
}

#[test]
fn check_integrity_refuses_while_a_transaction_is_live() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(dir.path().join("db")).unwrap();
    let read = db.begin_read().unwrap();
    assert!(matches!(
        db.check_integrity(),
        Err(DatabaseError::TransactionInProgress)
    ));
    drop(read);
    assert!(db.check_integrity().unwrap());
}

#[test]
fn a_file_backend_releases_its_lock_even_if_the_file_is_still_held() {
    use sluicedb::Builder;
    use sluicedb::backends::FileBackend;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    for foreign in [false, true] {
        std::fs::write(&path, if foreign { vec![0xff; 512] } else { Vec::new() }).unwrap();
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let retained = file.try_clone().unwrap();
        let result = Builder::new().create_with_backend(FileBackend::new(file).unwrap());
        assert_eq!(result.is_err(), foreign);
        drop(result);
        if foreign {
            retained.set_len(0).unwrap();
        }
        // The lock went with the database, though `retained` shares the file.
        drop(Database::create(&path).unwrap());
        drop(retained);
        let _ = std::fs::remove_dir_all(dir.path().join("db-wal"));
    }
}
