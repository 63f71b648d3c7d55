//! `Range::clone`, as redb's: a clone stands where its original stands and
//! moves on its own, from either end, in write and read transactions (the
//! write transaction's own uncommitted writes included), over the
//! memtable and the tree.

use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn keys<'a>(
    range: impl Iterator<
        Item = Result<(sluicedb::AccessGuard<'a, u64>, sluicedb::AccessGuard<'a, u64>), sluicedb::StorageError>,
    >,
) -> Vec<u64> {
    range.map(|e| e.unwrap().0.value()).collect()
}

#[test]
fn a_clone_resumes_where_its_original_stands() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    // Even keys flushed to the tree, odd keys in the memtable, and 5 removed.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in (0..20).step_by(2) {
            t.insert(k, k * 10).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in (1..20).step_by(2) {
            t.insert(k, k * 10).unwrap();
        }
        t.remove(5).unwrap();
    }
    txn.commit().unwrap();

    let all: Vec<u64> = (0..20).filter(|&k| k != 5).collect();
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let mut range = table.range(2..18).unwrap();
    let fresh = range.clone();
    assert_eq!(keys(fresh), all[2..17].to_vec(), "a clone before any step");
    assert_eq!(range.next().unwrap().unwrap().0.value(), 2);
    assert_eq!(range.next().unwrap().unwrap().0.value(), 3);
    assert_eq!(range.next_back().unwrap().unwrap().0.value(), 17);
    let mut clone = range.clone();
    assert_eq!(clone.next().unwrap().unwrap().0.value(), 4);
    assert_eq!(clone.next_back().unwrap().unwrap().0.value(), 16);
    // The original is not moved by its clone.
    assert_eq!(keys(range), vec![4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    assert_eq!(keys(clone), vec![6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);

    // A write transaction's range, with its own uncommitted writes.
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        t.insert(5, 50).unwrap();
        t.insert(100, 1000).unwrap();
        t.remove(8).unwrap();
        let mut range = t.iter().unwrap();
        for expected in [0, 1, 2, 3, 4, 5] {
            assert_eq!(range.next().unwrap().unwrap().0.value(), expected);
        }
        assert_eq!(range.next_back().unwrap().unwrap().0.value(), 100);
        let clone = range.clone();
        let rest: Vec<u64> = (6..20).filter(|&k| k != 8).collect();
        assert_eq!(keys(clone), rest);
        assert_eq!(keys(range), rest);
    }
    txn.abort().unwrap();
}

#[test]
fn a_clone_of_a_finished_range_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, 1).unwrap();
    txn.commit().unwrap();
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let mut range = table.iter().unwrap();
    assert!(range.next().is_some());
    assert!(range.next().is_none());
    assert!(range.clone().next().is_none());
    assert!(range.clone().next_back().is_none());
}
