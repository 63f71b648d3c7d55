//! Damage in the middle of the WAL is an error at open, never a silent
//! truncation, unless the user asks for repair; then the prefix before the
//! damage opens and `stats().recovery` says what was discarded (correctness
//! issue, suspected item "recovery stops at a bad record in the middle of
//! the log"; the journal-level tests are in `wal_mid_log_corruption.rs`).

mod common;

use common::keys::CrashDisk;
use sluicedb::io::LogDir;
use sluicedb::{Builder, DatabaseError, ReadableDatabase, ReadableTable, StorageError, TableDefinition};

const T: TableDefinition<u32, u32> = TableDefinition::new("t");

/// A disk whose WAL holds 60 commits, with one byte flipped about a third
/// of the way into the log.
fn damaged() -> CrashDisk {
    let disk = CrashDisk::new();
    {
        let db = disk.open(&Builder::new());
        for i in 0..60u32 {
            let txn = db.begin_write().unwrap();
            txn.open_table(T).unwrap().insert(i, i).unwrap();
            txn.commit().unwrap();
        }
        // As a process exit leaves it: the commits only in the WAL.
        db.close_without_checkpoint();
    }
    let names = disk.wal.list().unwrap();
    assert_eq!(names.len(), 1, "{names:?}");
    let mut bytes = disk.wal.file_bytes(&names[0]).unwrap();
    let used = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[used / 3] ^= 0x40;
    disk.wal.put_file(&names[0], bytes);
    disk
}

#[test]
fn mid_log_damage_is_an_error_unless_repair_is_asked_for() {
    let disk = damaged();
    let err = Builder::new()
        .create_with_backends(disk.data.clone(), disk.wal.clone())
        .expect_err("damage in the middle of the log must not open silently");
    assert!(
        matches!(&err, DatabaseError::Storage(StorageError::Corrupted(_))),
        "{err}"
    );
    // Refusing changed nothing: repair still finds the damage and the records after it.
    let db = Builder::new()
        .set_repair_wal(true)
        .create_with_backends(disk.data.clone(), disk.wal.clone())
        .unwrap();
    let recovery = db.stats().recovery;
    assert!(recovery.discarded_records > 0, "{recovery:?}");
    let kept = recovery.replayed_records;
    assert!(kept > 0 && kept < 61, "{recovery:?}");
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    // A prefix of the commits: 0.. up to the damage, nothing after it.
    let keys: Vec<u32> = t.iter().unwrap().map(|e| e.unwrap().0.value()).collect();
    assert_eq!(keys, (0..keys.len() as u32).collect::<Vec<_>>());
    assert!(keys.len() < 60);
}
