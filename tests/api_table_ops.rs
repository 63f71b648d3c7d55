//! Every table method, in a write transaction and through a read-only table.

use sluicedb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

const NUMBERS: TableDefinition<u64, &str> = TableDefinition::new("numbers");

fn db() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    (dir, db)
}

fn keys<'a>(
    range: impl Iterator<
        Item = Result<
            (sluicedb::AccessGuard<'a, u64>, sluicedb::AccessGuard<'a, &'static str>),
            sluicedb::StorageError,
        >,
    >,
) -> Vec<u64> {
    range.map(|e| e.unwrap().0.value()).collect()
}

#[test]
fn insert_get_remove_return_old_values() {
    let (_dir, db) = db();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUMBERS).unwrap();
        assert!(t.insert(1, "one").unwrap().is_none());
        assert_eq!(t.insert(1, "uno").unwrap().unwrap().value(), "one");
        assert_eq!(t.get(1).unwrap().unwrap().value(), "uno");
        assert!(t.get(2).unwrap().is_none());
        assert_eq!(t.remove(1).unwrap().unwrap().value(), "uno");
        assert!(t.remove(1).unwrap().is_none());
        assert!(t.is_empty().unwrap());
    }
    txn.commit().unwrap();
}

#[test]
fn ranges_in_both_directions_with_every_bound_kind() {
    let (_dir, db) = db();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUMBERS).unwrap();
        for i in 0..20u64 {
            t.insert(i * 10, "x").unwrap();
        }
        assert_eq!(keys(t.range(30..60).unwrap()), [30, 40, 50]);
        assert_eq!(keys(t.range(30..=60).unwrap()), [30, 40, 50, 60]);
        assert_eq!(keys(t.range(35..61).unwrap().rev()), [60, 50, 40]);
        assert_eq!(keys(t.range(..25).unwrap()), [0, 10, 20]);
        assert_eq!(keys(t.range(175..).unwrap()), [180, 190]);
        let (high, low) = (60u64, 30u64); // an inverted range is empty, not an error
        assert_eq!(keys(t.range(high..low).unwrap()), Vec::<u64>::new());
        assert_eq!(t.iter().unwrap().count(), 20);
        // Meeting in the middle: alternate ends.
        let mut both = t.range(0..50).unwrap();
        assert_eq!(both.next().unwrap().unwrap().0.value(), 0);
        assert_eq!(both.next_back().unwrap().unwrap().0.value(), 40);
        assert_eq!(keys(both), [10, 20, 30]);
        assert_eq!(t.first().unwrap().unwrap().0.value(), 0);
        assert_eq!(t.last().unwrap().unwrap().0.value(), 190);
        assert_eq!(t.len().unwrap(), 20);
    }
    txn.commit().unwrap();
    // The same through a read-only table, after the commit.
    let read = db.begin_read().unwrap();
    let t = read.open_table(NUMBERS).unwrap();
    assert_eq!(keys(t.range(30..=60).unwrap().rev()), [60, 50, 40, 30]);
    assert_eq!(t.len().unwrap(), 20);
    assert!(!t.is_empty().unwrap());
    assert_eq!(t.first().unwrap().unwrap().0.value(), 0);
    assert_eq!(t.last().unwrap().unwrap().0.value(), 190);
}

#[test]
fn pop_retain_and_extract_if() {
    let (_dir, db) = db();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(NUMBERS).unwrap();
        for i in 0..10u64 {
            t.insert(i, "v").unwrap();
        }
        let (k, v) = t.pop_first().unwrap().unwrap();
        assert_eq!((k.value(), v.value()), (0, "v"));
        drop((k, v));
        assert_eq!(t.pop_last().unwrap().unwrap().0.value(), 9);
        t.retain(|k, _| k % 2 == 1).unwrap();
        assert_eq!(keys(t.iter().unwrap()), [1, 3, 5, 7]);
        t.retain_in(4..8, |k, _| k != 5).unwrap();
        assert_eq!(keys(t.iter().unwrap()), [1, 3, 7]);
        let extracted: Vec<u64> = t
            .extract_if(|k, _| k > 2)
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        assert_eq!(extracted, [3, 7]);
        assert_eq!(keys(t.iter().unwrap()), [1]);
        // An extract_if dropped early removes only what it yielded.
        for i in 10..15u64 {
            t.insert(i, "w").unwrap();
        }
        let mut partial = t.extract_if(|k, _| k >= 10).unwrap();
        assert_eq!(partial.next().unwrap().unwrap().0.value(), 10);
        drop(partial);
        assert_eq!(keys(t.iter().unwrap()), [1, 11, 12, 13, 14]);
    }
    txn.commit().unwrap();
}
