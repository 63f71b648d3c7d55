//! `ReadOnlyDatabase` (issue 14, item 4): a read-only open sees every
//! commit, including those only in the WAL, and writes nothing: the data
//! file and the WAL directory keep their exact bytes. It shares the file
//! with other read-only handles and excludes a writer, either way round.

use std::collections::BTreeMap;
use std::path::Path;

use sluicedb::backends::FileBackend;
use sluicedb::{Builder, Database, DatabaseError, ReadOnlyDatabase, ReadableDatabase, TableDefinition};

const T: TableDefinition<u64, u64> = TableDefinition::new("t");

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            for (name, bytes) in snapshot(&path) {
                files.insert(format!("{}/{name}", path.file_name().unwrap().to_string_lossy()), bytes);
            }
        } else {
            files.insert(
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).unwrap(),
            );
        }
    }
    files
}

fn keys(db: &impl ReadableDatabase) -> Vec<u64> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    t.range(0..).unwrap().map(|e| e.unwrap().0.value()).collect()
}

#[test]
fn read_only_open_replays_the_wal_in_memory_and_changes_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        for i in 0..50 {
            let txn = db.begin_write().unwrap();
            txn.open_table(T).unwrap().insert(i, i).unwrap();
            txn.commit().unwrap();
            if i == 20 {
                db.checkpoint().unwrap();
            }
        }
    }
    let before = snapshot(dir.path());
    {
        let a = ReadOnlyDatabase::open(&path).unwrap();
        let b = Builder::new().open_read_only(&path).unwrap();
        assert_eq!(keys(&a), (0..50).collect::<Vec<_>>());
        assert_eq!(keys(&b), (0..50).collect::<Vec<_>>());
        let stats = a.cache_stats();
        assert!(stats.read_misses() > 0 && stats.used_bytes() > 0, "{stats:?}");
        assert_eq!(
            stats.write_hits() + stats.write_misses(),
            0,
            "a read-only database wrote pages"
        );
        // Held off while a reader has the file, as redb.
        assert!(matches!(Database::open(&path), Err(DatabaseError::DatabaseAlreadyOpen)));
        drop(a);
        b.close().unwrap();
    }
    assert_eq!(
        snapshot(dir.path()),
        before,
        "a read-only open wrote to the database's files"
    );

    let db = Database::open(&path).unwrap();
    assert!(matches!(
        ReadOnlyDatabase::open(&path),
        Err(DatabaseError::DatabaseAlreadyOpen)
    ));
    assert_eq!(keys(&db), (0..50).collect::<Vec<_>>());
}

#[test]
fn read_only_open_with_a_backend_leaves_it_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(T).unwrap().insert(1, 1).unwrap();
        txn.commit().unwrap();
        db.close().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let db = Builder::new()
        .open_read_only_with_backend(FileBackend::new(file).unwrap())
        .unwrap();
    assert_eq!(keys(&db), [1]);
    drop(db);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Something other than a directory at `<path>-wal` (a file, a dangling
/// link) is an error, as for a writable open, not an empty log: read past,
/// it hid every commit of the real log (found by the twenty-third
/// session's review).
#[test]
fn a_wal_path_that_is_not_a_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(T).unwrap().insert(1, 1).unwrap();
    txn.commit().unwrap();
    db.close().unwrap();
    let wal = dir.path().join("db-wal");
    // The close checkpointed everything: the (empty) WAL directory can go.
    if wal.exists() {
        std::fs::remove_dir_all(&wal).unwrap();
    }
    std::fs::write(&wal, b"not a directory").unwrap();
    assert!(ReadOnlyDatabase::open(&path).is_err(), "a file at the WAL path");
    assert!(Database::open(&path).is_err(), "the writable open agrees");
    std::fs::remove_file(&wal).unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &wal).unwrap();
    assert!(
        ReadOnlyDatabase::open(&path).is_err(),
        "a dangling link at the WAL path"
    );
    std::fs::remove_file(&wal).unwrap();
    let db = ReadOnlyDatabase::open(&path).unwrap();
    let r = db.begin_read().unwrap();
    assert_eq!(r.open_table(T).unwrap().get(1).unwrap().map(|v| v.value()), Some(1));
}
