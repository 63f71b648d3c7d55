//! A write transaction poisoned as redb's (`CommitError::TransactionPoisoned`):
//! a `retain` or `extract_if` predicate that panics, or a leaked table,
//! makes `commit` refuse and change nothing; the writer slot is free after.

use std::panic::{AssertUnwindSafe, catch_unwind};

use sluicedb::{CommitError, Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn setup() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..4 {
            t.insert(i, i).unwrap();
        }
    }
    txn.commit().unwrap();
    (dir, db)
}

fn len(db: &Database) -> u64 {
    db.begin_read().unwrap().open_table(T).unwrap().len().unwrap()
}

#[test]
fn a_panicking_predicate_poisons_the_transaction() {
    let (_dir, db) = setup();
    for extract in [false, true] {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            t.insert(10, 10).unwrap();
            let result = catch_unwind(AssertUnwindSafe(|| {
                let pred = |k: u64, _: u64| {
                    assert_ne!(k, 2, "predicate panic");
                    k == 0
                };
                if extract {
                    let mut it = t.extract_if(pred).unwrap();
                    assert_eq!(it.next().unwrap().unwrap().0.value(), 0);
                    let _ = it.next();
                } else {
                    t.retain(pred).unwrap();
                }
            }));
            assert!(result.is_err());
        }
        assert!(matches!(txn.commit(), Err(CommitError::TransactionPoisoned)));
        assert_eq!(len(&db), 4, "nothing of a poisoned transaction is committed");
    }
    // The writer slot was released.
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(20, 20).unwrap();
    txn.commit().unwrap();
    assert_eq!(len(&db), 5);
}

#[test]
fn a_leaked_table_poisons_the_transaction() {
    let (_dir, db) = setup();
    let txn = db.begin_write().unwrap();
    let mut t = txn.open_table(T).unwrap();
    t.insert(9, 9).unwrap();
    std::mem::forget(t);
    assert!(matches!(txn.commit_pipelined(), Err(CommitError::TransactionPoisoned)));
    assert_eq!(len(&db), 4);
}
