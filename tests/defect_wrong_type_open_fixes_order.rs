//! A read-only `open_table` with the wrong key type, in a process that has
//! not opened the table yet, must not fix that type's order as the table's.
//! Before the fix, `ReadTransaction::open_table` opened the table (which
//! fixes its key order for the process) and only then compared the types:
//! the refused open left `CaseInsensitive`'s order registered for a
//! `Reversed` table, and the right open then read its recovered records in
//! that order: `iter()` gave a b c d, not d c b a.

mod common;

use common::keys::{CaseInsensitive, Reversed};
use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

const T: TableDefinition<Reversed, u32> = TableDefinition::new("t");
const WRONG: TableDefinition<CaseInsensitive, u32> = TableDefinition::new("t");

#[test]
fn a_refused_open_leaves_the_table_order_unfixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for (i, k) in ["b", "d", "a", "c"].into_iter().enumerate() {
                t.insert(k, i as u32).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    // A new process: no key order is known, the records are deferred.
    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    assert!(matches!(
        read.open_table(WRONG),
        Err(TableError::TableTypeMismatch { .. })
    ));
    let table = read.open_table(T).unwrap();
    let keys: Vec<String> = table
        .iter()
        .unwrap()
        .map(|e| e.unwrap().0.value().to_string())
        .collect();
    assert_eq!(keys, ["d", "c", "b", "a"]);
}
