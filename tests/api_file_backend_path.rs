//! A `backends::FileBackend` knows its file's path (Linux), so a database
//! opened on it is the database at that path: the same file lock, and the
//! WAL in `<path>-wal` (commits not yet checkpointed included). Opening
//! by path and by backend are interchangeable, either way round.

use sluicedb::backends::FileBackend;
use sluicedb::{Builder, Database, DatabaseError, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

fn file(path: &std::path::Path) -> FileBackend {
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    FileBackend::new(f).unwrap()
}

fn get(db: &impl ReadableDatabase, k: u64) -> Option<u64> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    t.get(k).unwrap().map(|v| v.value())
}

#[test]
fn a_file_backend_opens_the_database_at_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        // Committed by path, left in the WAL (no checkpoint, no close).
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(1, 10).unwrap();
        txn.commit().unwrap();
        // The file is locked for every other way in.
        assert!(matches!(
            Builder::new().create_with_backend(file(&path)),
            Err(DatabaseError::DatabaseAlreadyOpen)
        ));
        assert!(matches!(
            Builder::new().open_read_only_with_backend(file(&path)),
            Err(DatabaseError::DatabaseAlreadyOpen)
        ));
    }
    {
        let ro = Builder::new().open_read_only_with_backend(file(&path)).unwrap();
        assert_eq!(get(&ro, 1), Some(10), "the read-only backend open found the WAL");
    }
    {
        let db = Builder::new().create_with_backend(file(&path)).unwrap();
        assert_eq!(get(&db, 1), Some(10));
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(2, 20).unwrap();
        txn.commit().unwrap();
        assert!(matches!(Database::open(&path), Err(DatabaseError::DatabaseAlreadyOpen)));
    }
    assert!(dir.path().join("db-wal").is_dir());
    let db = Database::open(&path).unwrap();
    assert_eq!((get(&db, 1), get(&db, 2)), (Some(10), Some(20)));
}
