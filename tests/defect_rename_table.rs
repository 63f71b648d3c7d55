//! `rename_table`'s checks, in redb's order: the source must not be open
//! (`TableAlreadyOpen`), then must exist (`TableDoesNotExist`); renaming a
//! table to its own name is then a no-op `Ok`; only then is an existing
//! destination refused (`TableExists`), open or not.

use sluicedb::{Database, ReadableDatabase, TableDefinition, TableError};

const X: TableDefinition<u64, u64> = TableDefinition::new("x");
const Y: TableDefinition<u64, u64> = TableDefinition::new("y");

#[test]
fn rename_checks_the_source_first_and_to_itself_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(X).unwrap().insert(1, 10).unwrap();

    let same = txn.rename_table(X, X);
    assert!(same.is_ok(), "renaming x to x: {same:?}");
    let missing = txn.rename_table("missing", X);
    assert!(
        matches!(&missing, Err(TableError::TableDoesNotExist(n)) if n == "missing"),
        "renaming a missing table onto an existing one: {missing:?}"
    );
    let missing_same = txn.rename_table("missing", "missing");
    assert!(
        matches!(&missing_same, Err(TableError::TableDoesNotExist(n)) if n == "missing"),
        "{missing_same:?}"
    );
    {
        let _open = txn.open_table(X).unwrap();
        let open_same = txn.rename_table(X, X);
        assert!(
            matches!(&open_same, Err(TableError::TableAlreadyOpen(n, _)) if n == "x"),
            "{open_same:?}"
        );
    }
    {
        let _open_destination = txn.open_table(Y).unwrap();
        let onto_open = txn.rename_table(X, Y);
        assert!(
            matches!(&onto_open, Err(TableError::TableExists(n)) if n == "y"),
            "{onto_open:?}"
        );
    }
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    assert_eq!(read.open_table(X).unwrap().get(1).unwrap().unwrap().value(), 10);
}
