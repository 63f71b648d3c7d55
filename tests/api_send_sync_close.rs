//! Thread-safety markers and `ReadTransaction::close` as redb 4.6's: a
//! write transaction is `Sync` (so its tables are `Send`), read
//! transactions and tables are `Send + Sync`, their ranges `Send`, errors
//! are `Send + Sync`;
//! `close` refuses while a table or owned guard of the transaction lives,
//! handing the transaction back.

use sluicedb::{
    Database, Error, ReadTransaction, ReadableDatabase, TableDefinition, TransactionError, WriteTransaction,
};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn require_send<T: Send>(_: &T) {}
fn require_sync<T: Sync>(_: &T) {}
fn require_error<E: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn handles_have_redbs_thread_safety() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    require_sync(&db);
    let txn = db.begin_write().unwrap();
    {
        let table = txn.open_table(T).unwrap();
        require_send(&table);
        require_sync(&txn);
    }
    require_send(&txn);
    txn.commit().unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(T).unwrap();
    require_sync(&table);
    require_send(&table);
    // A range may move to another thread (its merge holds the
    // tree's and the memtables' sources by value).
    let range = table.range(0..).unwrap();
    require_send(&range);
    drop(range);
    require_sync(&txn);
    require_error::<Error>();
    require_error::<TransactionError>();
    let _: Option<&WriteTransaction> = None;
}

#[test]
fn close_refuses_while_tables_or_owned_guards_live() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(5, 5).unwrap();
    txn.commit().unwrap();

    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let guard = table.get_owned(5).unwrap().unwrap();
    drop(table);
    let read: ReadTransaction = match read.close() {
        Err(TransactionError::ReadTransactionStillInUse(read)) => *read,
        other => panic!("expected ReadTransactionStillInUse, got {other:?}"),
    };
    drop(guard);
    read.close().unwrap();
    db.begin_read().unwrap().close().unwrap();
}

#[test]
fn handles_print_as_redbs_do() {
    assert_eq!(T.to_string(), "t<u64, u64>");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = Database::create(&path);
    let second = Database::open(&path);
    // Results of opens print (redb's tests format them with `{:?}`).
    assert!(format!("{second:?}").contains("DatabaseAlreadyOpen"));
    let db = first.unwrap();
    let txn = db.begin_write().unwrap();
    let table = txn.open_table(T).unwrap();
    assert_eq!(format!("{table:?}"), r#"Table { name: "t", len: Some(0) }"#);
}
