//! A snapshot reports the key bytes of the version it sees, not of a newer
//! one that is equal under the table's order (correctness issue, defect 6).
//! On the unmodified engine a reader that began before "APPLE" replaced
//! "apple" iterated `[("APPLE", 1)]` forward and `[("apple", 1)]` backward.

mod common;

use common::keys::CaseInsensitive;
use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<CaseInsensitive, u32> = TableDefinition::new("ci");

fn entries(iter: impl Iterator<Item = (String, u32)>) -> Vec<(String, u32)> {
    iter.collect()
}

#[test]
fn both_directions_give_the_visible_versions_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert("apple", 1).unwrap();
    txn.commit().unwrap();

    let before = db.begin_read().unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert("APPLE", 2).unwrap();
    txn.commit().unwrap();
    let after = db.begin_read().unwrap();

    for (read, want) in [(&before, ("apple", 1)), (&after, ("APPLE", 2))] {
        let table = read.open_table(T).unwrap();
        let pairs = |e: Result<
            (
                sluicedb::AccessGuard<'_, CaseInsensitive>,
                sluicedb::AccessGuard<'_, u32>,
            ),
            _,
        >| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value())
        };
        let want = vec![(want.0.to_string(), want.1)];
        assert_eq!(entries(table.iter().unwrap().map(pairs)), want);
        assert_eq!(entries(table.iter().unwrap().rev().map(pairs)), want);
        assert_eq!(entries(table.range("A".."b").unwrap().map(pairs)), want);
    }
    // The same once the memtable is flushed into the tree.
    db.checkpoint().unwrap();
    let table = after.open_table(T).unwrap();
    let (k, v) = table.first().unwrap().unwrap();
    assert_eq!((k.value(), v.value()), ("APPLE", 2));
}
