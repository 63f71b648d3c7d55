//! A copy of the data file opened with an in-memory WAL (a single-backend
//! database: `Builder::create_with_backend` on the user's own backend)
//! starts a log of its own like any writable open (found by review: it kept
//! the file's log id, so its data file, put back beside the original's log,
//! replayed the original's later records onto its own diverged state).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;

use sluicedb::{Database, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition};

const TABLE: TableDefinition<&str, &str> = TableDefinition::new("t");

/// A user's own backend over a file (as a redb user writes one): the
/// database gets an in-memory WAL and checkpoints every durable commit.
#[derive(Debug)]
struct UserFile(File);

impl StorageBackend for UserFile {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.0.read_exact_at(out, offset)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.write_all_at(data, offset)
    }
}

fn put(db: &Database, key: &str, value: &str) {
    let txn = db.begin_write().unwrap();
    txn.open_table(TABLE).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

fn contents(db: &Database) -> BTreeMap<String, String> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(TABLE).unwrap();
    table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value().to_string(), v.value().to_string())
        })
        .collect()
}

fn state(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_copy_written_through_an_in_memory_wal_never_replays_the_originals_log() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("db");
    let copy = dir.path().join("copy");

    let db = Database::create(&original).unwrap();
    put(&db, "base", "0");
    db.close().unwrap();

    // The original goes on (a new log); its process ends with the commits
    // in that log.
    let db = Database::open(&original).unwrap();
    put(&db, "a", "original");
    put(&db, "b", "original");
    db.close_without_checkpoint();
    let original_state = state(&[("a", "original"), ("b", "original"), ("base", "0")]);

    // A file-level copy of the data file alone (the original's log is not
    // in it), written through the user's own backend.
    std::fs::copy(&original, &copy).unwrap();
    let file = OpenOptions::new().read(true).write(true).open(&copy).unwrap();
    let db = Database::builder().create_with_backend(UserFile(file)).unwrap();
    assert_eq!(contents(&db), state(&[("base", "0")]));
    put(&db, "c", "copy");
    db.close().unwrap();
    let copy_state = state(&[("base", "0"), ("c", "copy")]);

    // The copy put back over the original's data file, beside its log.
    std::fs::copy(&copy, &original).unwrap();
    match Database::open(&original) {
        Err(_refused) => {}
        Ok(db) => {
            let found = contents(&db);
            assert!(
                found == copy_state || found == original_state,
                "the copy put back beside the original's log opened as a state neither held: {found:?}"
            );
        }
    }
}
