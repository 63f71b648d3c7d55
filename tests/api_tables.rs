//! Table management: creation on first open, deletion, renaming, listing,
//! and the errors for mismatched types, missing tables and double opens.

use sluicedb::{Database, Error, ReadableDatabase, TableDefinition, TableError, TableHandle};

const A: TableDefinition<u64, u64> = TableDefinition::new("a");
const B: TableDefinition<u64, u64> = TableDefinition::new("b");
const A_AS_STRINGS: TableDefinition<&str, u64> = TableDefinition::new("a");

fn names(iter: impl Iterator<Item = sluicedb::UntypedTableHandle>) -> Vec<String> {
    iter.map(|h| h.name().to_string()).collect()
}

#[test]
fn open_delete_rename_list() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(A).unwrap().insert(1, 10).unwrap();
    txn.open_table(B).unwrap();
    assert_eq!(names(txn.list_tables().unwrap()), ["a", "b"]);
    txn.commit().unwrap();

    let txn = db.begin_write().unwrap();
    assert!(txn.delete_table(B).unwrap());
    assert!(!txn.delete_table(B).unwrap());
    txn.rename_table(A, "renamed").unwrap();
    assert!(matches!(
        txn.rename_table(A, "x"),
        Err(TableError::TableDoesNotExist(_))
    ));
    assert_eq!(names(txn.list_tables().unwrap()), ["renamed"]);
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    assert_eq!(names(read.list_tables().unwrap()), ["renamed"]);
    let renamed: TableDefinition<u64, u64> = TableDefinition::new("renamed");
    assert_eq!(read.open_table(renamed).unwrap().get(1).unwrap().unwrap().value(), 10);
    assert!(matches!(read.open_table(A), Err(TableError::TableDoesNotExist(name)) if name == "a"));
}

#[test]
fn renaming_onto_an_existing_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(A).unwrap();
    txn.open_table(B).unwrap();
    assert!(matches!(txn.rename_table(A, B), Err(TableError::TableExists(name)) if name == "b"));
}

#[test]
fn type_mismatch_and_double_open_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(A).unwrap();
    match txn.open_table(A_AS_STRINGS) {
        Err(TableError::TableTypeMismatch { table, key, value }) => {
            assert_eq!((table.as_str(), key.name(), value.name()), ("a", "u64", "u64"));
        }
        other => panic!("expected a type mismatch, got {:?}", other.err()),
    }
    let open = txn.open_table(A).unwrap();
    assert!(matches!(txn.open_table(A), Err(TableError::TableAlreadyOpen(_, _))));
    assert!(matches!(txn.delete_table(A), Err(TableError::TableAlreadyOpen(_, _))));
    drop(open);
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let err: Error = read.open_table(A_AS_STRINGS).err().unwrap().into();
    assert!(matches!(err, Error::TableTypeMismatch { .. }), "{err}");
}
