//! Owned reads of redb 4.6 (issue 14, item 3): `ReadOnlyTable::get` and
//! `range` return guards and ranges that do not borrow the table,
//! `get_owned` and `range_owned` outlive the table and its transaction and
//! keep their snapshot (compaction waits for them), and a later commit does
//! not change what they read.

use sluicedb::{CompactionError, Database, OwnedAccessGuard, OwnedRange, ReadableDatabase, TableDefinition};

const T: TableDefinition<u32, &str> = TableDefinition::new("t");

fn fill(db: &Database, value: &str) {
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for i in 0..10 {
            t.insert(i, value).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn owned(db: &Database) -> (OwnedAccessGuard<&'static str>, OwnedRange<u32, &'static str>) {
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let guard = table.get_owned(5).unwrap().unwrap();
    let range = table.range_owned(5..).unwrap();
    // Neither borrows the table nor the transaction, which drop here.
    (guard, range)
}

#[test]
fn owned_guards_and_ranges_outlive_their_table_and_pin_their_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Database::create(dir.path().join("db")).unwrap();
    fill(&db, "old");
    let (guard, mut range) = owned(&db);
    fill(&db, "new");
    assert_eq!(guard.value(), "old");
    let (k, v) = range.next_back().unwrap().unwrap();
    assert_eq!((k.value(), v.value()), (9, "old"));
    assert_eq!(range.by_ref().count(), 4);

    // The snapshot is live while any of them is.
    drop(range);
    assert!(matches!(db.compact(), Err(CompactionError::TransactionInProgress)));
    drop(guard);
    assert!(matches!(db.compact(), Err(CompactionError::TransactionInProgress)));
    drop(k);
    assert!(matches!(db.compact(), Err(CompactionError::TransactionInProgress)));
    drop(v);
    db.compact().unwrap();
}

#[test]
fn read_only_get_and_range_do_not_borrow_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    fill(&db, "v");
    let read = db.begin_read().unwrap();
    let (guard, range) = {
        let table = read.open_table(T).unwrap();
        (table.get(&3).unwrap().unwrap(), table.range(2..4).unwrap())
    };
    assert_eq!(guard.value(), "v");
    let keys: Vec<u32> = range.map(|e| e.unwrap().0.value()).collect();
    assert_eq!(keys, [2, 3]);
}
