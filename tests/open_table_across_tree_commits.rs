//! Opening a table reads what the state's own tree commit says about it,
//! whichever commit the states sharing the engine's memo of table lookups
//! asked about before (`engine::state::TableMemo`): a reader that began
//! before a flush renamed, deleted and recreated tables still opens the
//! tables of its commit, before and after newer transactions open theirs,
//! and they open the new ones.

use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};

const A: TableDefinition<u64, u64> = TableDefinition::new("a");
const RENAMED: TableDefinition<u64, u64> = TableDefinition::new("renamed");
const B: TableDefinition<u64, u64> = TableDefinition::new("b");

fn value_in(db: &Database, table: TableDefinition<u64, u64>) -> Result<u64, TableError> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(table)?;
    Ok(table.get(1).unwrap().unwrap().value())
}

fn put(db: &Database, table: TableDefinition<u64, u64>, value: u64) {
    let txn = db.begin_write().unwrap();
    txn.open_table(table).unwrap().insert(1, value).unwrap();
    txn.commit().unwrap();
}

#[test]
fn readers_of_each_tree_commit_open_that_commits_tables() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    put(&db, A, 10);
    put(&db, B, 30);
    // Flushed: the bindings and the data are in the tree (commit 1).
    db.checkpoint().unwrap();

    // One reader of commit 1 opens its tables before anything changes...
    let first = db.begin_read().unwrap();
    assert_eq!(first.open_table(A).unwrap().get(1).unwrap().unwrap().value(), 10);
    // ...another opens them only after newer transactions opened theirs.
    let second = db.begin_read().unwrap();

    // Commit 2: `a` renamed, a new `a`, `b` deleted; flushed.
    let txn = db.begin_write().unwrap();
    txn.rename_table(A, "renamed").unwrap();
    assert!(txn.delete_table(B).unwrap());
    txn.open_table(A).unwrap().insert(1, 20).unwrap();
    txn.commit().unwrap();
    db.checkpoint().unwrap();

    assert_eq!(value_in(&db, A).unwrap(), 20);
    assert_eq!(value_in(&db, RENAMED).unwrap(), 10);
    assert!(matches!(value_in(&db, B), Err(TableError::TableDoesNotExist(_))));
    let txn = db.begin_write().unwrap();
    assert_eq!(txn.open_table(A).unwrap().get(1).unwrap().unwrap().value(), 20);
    drop(txn);

    for old in [&first, &second] {
        assert_eq!(old.open_table(A).unwrap().get(1).unwrap().unwrap().value(), 10);
        assert_eq!(old.open_table(B).unwrap().get(1).unwrap().unwrap().value(), 30);
        assert!(matches!(old.open_table(RENAMED), Err(TableError::TableDoesNotExist(_))));
    }

    // Commit 3 changes `a` again; the reader of commit 2 opens it after
    // the newest state did, and the newest sees commit 3.
    let of_two = db.begin_read().unwrap();
    put(&db, A, 21);
    db.checkpoint().unwrap();
    assert_eq!(value_in(&db, A).unwrap(), 21);
    assert_eq!(of_two.open_table(A).unwrap().get(1).unwrap().unwrap().value(), 20);
    assert_eq!(of_two.open_table(RENAMED).unwrap().get(1).unwrap().unwrap().value(), 10);
    assert_eq!(first.open_table(A).unwrap().get(1).unwrap().unwrap().value(), 10);
    assert_eq!(value_in(&db, A).unwrap(), 21);
}

#[test]
fn a_table_changed_since_the_flush_is_opened_as_the_memtables_say() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    put(&db, A, 10);
    db.checkpoint().unwrap();
    assert_eq!(value_in(&db, A).unwrap(), 10);

    // Not flushed: the memtable's bindings answer before the tree's.
    let txn = db.begin_write().unwrap();
    assert!(txn.delete_table(A).unwrap());
    txn.commit().unwrap();
    assert!(matches!(value_in(&db, A), Err(TableError::TableDoesNotExist(_))));
    put(&db, A, 11);
    assert_eq!(value_in(&db, A).unwrap(), 11);
    db.checkpoint().unwrap();
    assert_eq!(value_in(&db, A).unwrap(), 11);
}
