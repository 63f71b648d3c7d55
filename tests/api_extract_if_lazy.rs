//! `extract_if` is lazy, as redb's: the predicate runs on an entry only when
//! the iterator reaches it, and what the iterator never reaches stays (issue
//! 13: it ran the predicate over the whole table and collected every match
//! before yielding the first).

use std::cell::Cell;

use sluicedb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};

const T: TableDefinition<u32, u32> = TableDefinition::new("t");

#[test]
fn the_predicate_runs_only_as_far_as_the_iterator_goes() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in 0..100u32 {
            t.insert(k, k * 10).unwrap();
        }
        let calls = Cell::new(0);
        let taken: Vec<(u32, u32)> = t
            .extract_if(|k, _| {
                calls.set(calls.get() + 1);
                k % 3 == 0
            })
            .unwrap()
            .take(4)
            .map(|e| e.map(|(k, v)| (k.value(), v.value())).unwrap())
            .collect();
        assert_eq!(taken, [(0, 0), (3, 30), (6, 60), (9, 90)]);
        // Keys 0..=9 were looked at, nothing after.
        assert_eq!(calls.get(), 10);
        assert_eq!(t.len().unwrap(), 96);
        assert!(t.get(12).unwrap().is_some());
        // Run to the end: every other multiple of 3 goes.
        let rest = t.extract_if(|k, _| k % 3 == 0).unwrap().count();
        assert_eq!(rest, 30);
        assert_eq!(t.len().unwrap(), 66);
        assert!(t.iter().unwrap().all(|e| e.unwrap().0.value() % 3 != 0));
    }
    txn.commit().unwrap();
}
