//! `ReadTransaction::open_untyped_table` and `ReadOnlyUntypedTable` (redb
//! 4.6): a table's size and storage figures by name. A table whose custom
//! key order this database handle has not learned yet (no typed open since
//! it was opened) refuses the figures with an error rather than computing
//! them in a wrong order; after a typed open they are available.

mod common;

use common::keys::Reversed;
use sluicedb::{
    Database, ReadableDatabase, ReadableTableMetadata, StorageError, TableDefinition, TableError, TableHandle,
};

const T: TableDefinition<u64, &str> = TableDefinition::new("t");
const R: TableDefinition<Reversed, u64> = TableDefinition::new("r");

#[test]
fn untyped_tables_report_what_typed_ones_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for i in 0..100 {
                t.insert(i, "value").unwrap();
            }
            let mut r = txn.open_table(R).unwrap();
            r.insert("a", 1).unwrap();
            r.insert("b", 2).unwrap();
        }
        txn.commit().unwrap();
        db.checkpoint().unwrap();
    }
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let untyped = read.open_untyped_table(T).unwrap();
    assert_eq!(untyped.name(), "t");
    assert_eq!(untyped.len().unwrap(), 100);
    assert_eq!(untyped.stats().unwrap(), read.open_table(T).unwrap().stats().unwrap());
    assert!(matches!(
        read.open_untyped_table("missing"),
        Err(TableError::TableDoesNotExist(_))
    ));

    // The custom order is unknown to this handle until a typed open.
    let r = read.open_untyped_table("r").unwrap();
    assert!(matches!(r.len(), Err(StorageError::Internal(_))));
    drop(read);
    assert_eq!(db.begin_read().unwrap().open_table(R).unwrap().len().unwrap(), 2);
    let read = db.begin_read().unwrap();
    let r = read.open_untyped_table("r").unwrap();
    assert_eq!(r.len().unwrap(), 2);
    assert_eq!(r.stats().unwrap().stored_bytes(), 2 * (1 + 8));
}
