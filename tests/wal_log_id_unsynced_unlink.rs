//! A segment delete whose directory fsync failed, then an open and a power
//! cut: the database still opens (found by review of the first log ids).
//!
//! `FsLogDir::remove` unlinks, then syncs the directory. When that sync
//! fails the unlink is done but not durable; the journal counts the failure
//! and goes on (`Journal::remove_segment`: "Should the unlink be undone by
//! a crash, recovery skips the file"). The next open lists no segment, so
//! it starts a new log (`continued_log`) while the unlink is still not
//! durable; a power cut brings the segment back with the old log id. It
//! holds nothing after the checkpoint, so recovery must skip it, not refuse
//! it as another copy's: only a record after the checkpoint in another
//! log's segment is refused (`reader::foreign_log`).
//!
//! The directory here is `CrashLogDir` with one difference: a remove while
//! `fail_dir_sync` is set unlinks (the name is gone) and then reports the
//! directory sync's failure, and a power cut before the next create (which
//! syncs the directory) brings the file back.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use sluicedb::io::{CrashBackend, CrashLogDir, LogDir, StorageBackend, TearMode};
use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const TABLE: TableDefinition<u64, u64> = TableDefinition::new("t");

#[derive(Clone, Default)]
struct UnsyncedUnlinkDir {
    inner: CrashLogDir,
    /// Files unlinked by a remove whose directory sync failed: a power cut
    /// before the directory is synced again brings them back.
    ghosts: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    fail_dir_sync: Arc<AtomicBool>,
}

impl UnsyncedUnlinkDir {
    fn crash(&self, mode: TearMode) -> CrashLogDir {
        let dir = self.inner.crash(mode);
        for (name, bytes) in self.ghosts.lock().iter() {
            dir.put_file(name, bytes.clone());
        }
        dir
    }
}

impl LogDir for UnsyncedUnlinkDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        let file = self.inner.create(name)?;
        // The create synced the directory: earlier unlinks are durable now.
        self.ghosts.lock().clear();
        Ok(file)
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        self.inner.open(name)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        if !self.fail_dir_sync.load(Ordering::SeqCst) {
            return self.inner.remove(name);
        }
        let bytes = self.inner.file_bytes(name);
        self.inner.remove(name)?;
        if let Some(bytes) = bytes {
            self.ghosts.lock().insert(name.to_string(), bytes);
        }
        Err(io::Error::other(format!(
            "injected: syncing the directory after unlinking {name}"
        )))
    }
}

fn contents(db: &Database) -> BTreeMap<u64, u64> {
    let read = db.begin_read().unwrap();
    let table = read.open_table(TABLE).unwrap();
    table
        .iter()
        .unwrap()
        .map(|e| {
            let (k, v) = e.unwrap();
            (k.value(), v.value())
        })
        .collect()
}

#[test]
fn a_power_cut_after_an_unsynced_segment_unlink_and_an_open_still_opens() {
    let data = Arc::new(CrashBackend::new());
    let wal = UnsyncedUnlinkDir::default();
    let db = Database::builder()
        .create_with_backends(data.clone(), wal.clone())
        .unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(TABLE).unwrap().insert(1, 10).unwrap();
    txn.commit().unwrap();
    // The close's checkpoint covers the commit; deleting the log's segment
    // fails at the directory sync (counted, not an error).
    wal.fail_dir_sync.store(true, Ordering::SeqCst);
    db.close().unwrap();
    assert!(!wal.ghosts.lock().is_empty(), "the close unlinked a segment");
    wal.fail_dir_sync.store(false, Ordering::SeqCst);

    // The next open (any process) finds no segment; it reads, then the
    // power fails before anything is committed.
    let db = Database::builder()
        .create_with_backends(data.clone(), wal.clone())
        .unwrap();
    assert_eq!(contents(&db), BTreeMap::from([(1, 10)]));
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(7)] {
        let image = CrashBackend::from_bytes(data.crash_image(mode));
        let reopened = Database::builder().create_with_backends(image, wal.crash(mode));
        match reopened {
            Ok(db) => assert_eq!(contents(&db), BTreeMap::from([(1, 10)]), "{mode:?}"),
            Err(e) => panic!("a database used normally is refused after a power cut ({mode:?}): {e}"),
        }
    }
    drop(db);
}
