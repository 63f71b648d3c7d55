//! redb's `compaction` test with the one step a WAL-first engine needs: a
//! checkpoint after the big commit, so its values reach the data file
//! before 90% of them are removed (without it they never leave the WAL and
//! memtable, and the file has nothing to give back). `compact()` then
//! reports that the file shrank, and it did.

use sluicedb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};

#[test]
fn compact_gives_back_the_space_of_removed_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let definition: TableDefinition<u32, &[u8]> = TableDefinition::new("x");
    let big_value = vec![0u8; 100 * 1024];

    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(definition).unwrap();
        for i in 0..100 {
            table.insert(&i, big_value.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
    db.checkpoint().unwrap();

    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(definition).unwrap();
        for i in 0..90 {
            table.remove(&i).unwrap();
        }
    }
    txn.commit().unwrap();
    let txn = db.begin_write().unwrap();
    txn.commit().unwrap();

    drop(db);
    let file_size = std::fs::metadata(&path).unwrap().len();
    let mut db = Database::open(&path).unwrap();
    assert!(db.compact().unwrap());
    drop(db);
    let file_size2 = std::fs::metadata(&path).unwrap().len();
    assert!(file_size2 < file_size, "{file_size2} >= {file_size}");

    let db = Database::open(&path).unwrap();
    let read = db.begin_read().unwrap();
    let table = read.open_table(definition).unwrap();
    assert_eq!(table.len().unwrap(), 10);
    assert_eq!(table.get(&95).unwrap().unwrap().value(), big_value.as_slice());
}
