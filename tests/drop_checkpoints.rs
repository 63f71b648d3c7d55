//! Dropping a `Database` checkpoints it: afterwards the data file alone holds
//! every commit, as a redb file does once its handle is dropped (a user who
//! copies the file after closing the program must not lose the WAL's part).

use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

const T: TableDefinition<u64, &str> = TableDefinition::new("t");

fn write(db: &Database, keys: std::ops::Range<u64>, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    {
        let mut t = txn.open_table(T).unwrap();
        for k in keys {
            t.insert(k, "v").unwrap();
        }
    }
    txn.commit().unwrap();
}

fn keys(db: &Database) -> Vec<u64> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    t.iter().unwrap().map(|e| e.unwrap().0.value()).collect()
}

#[test]
fn after_a_drop_the_data_file_alone_holds_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        write(&db, 0..100, Durability::Immediate);
        // A non-durable commit too: the drop makes it durable first.
        write(&db, 100..110, Durability::None);
    }
    // Only the data file: the WAL directory is gone.
    std::fs::remove_dir_all(dir.path().join("db-wal")).unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(db.stats().recovery.replayed_records, 0);
    assert_eq!(keys(&db), (0..110).collect::<Vec<_>>());
}

#[test]
fn a_database_left_without_checkpoint_replays_its_wal() {
    // The contrast: a process that exits without dropping the handle (here
    // simulated) leaves the commits in the WAL, and the next open replays
    // them.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    write(&db, 0..100, Durability::Immediate);
    db.close_without_checkpoint();
    let db = Database::open(&path).unwrap();
    assert!(db.stats().recovery.replayed_records > 0);
    assert_eq!(keys(&db), (0..100).collect::<Vec<_>>());
}
