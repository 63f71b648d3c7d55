//! `Database::compact` after a bulk load must not grow the file (it doubled
//! it: 2.37 MB to 4.75 MB), and keeps every entry.

use sluicedb::{Database, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

#[test]
fn compact_after_a_bulk_load_does_not_grow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut db = Database::create(&path).unwrap();
    for chunk in 0..20u64 {
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(T).unwrap();
            for k in chunk * 1000..(chunk + 1) * 1000 {
                table.insert(k, [k as u8; 100].as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    db.checkpoint().unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    db.compact().unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after <= before,
        "compaction grew the file from {before} to {after} bytes"
    );
    assert!(db.check_integrity().unwrap());
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    for k in (0..20_000u64).step_by(113) {
        assert_eq!(table.get(k).unwrap().unwrap().value(), [k as u8; 100].as_slice());
    }
}
