//! `Builder::create_with_backend` with redb-shaped backends (issue 14,
//! item 4). The WAL is in memory there, so durability comes from the
//! backend: the backend's bytes right after a durable `commit` returns
//! (what a crash then leaves) open to a database holding that commit, and
//! dropping the database leaves every commit in the backend, and readers
//! see a durable commit only once the backend holds it durably. A backend
//! written the redb way (writes only inside `set_len`) works.

use std::io::ErrorKind;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use sluicedb::backends::{FileBackend, InMemoryBackend};
use sluicedb::{Builder, Database, Durability, ReadableDatabase, StorageBackend, TableDefinition};

const T: TableDefinition<u64, &str> = TableDefinition::new("t");

/// redb's test backend: shares its bytes, refuses writes past the length.
#[derive(Clone, Debug, Default)]
struct Shared(Arc<RwLock<Vec<u8>>>);

impl Shared {
    fn image(&self) -> Shared {
        Shared(Arc::new(RwLock::new(self.0.read().unwrap().clone())))
    }
}

impl StorageBackend for Shared {
    fn len(&self) -> Result<u64, std::io::Error> {
        Ok(self.0.read().unwrap().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        let (start, bytes) = (offset as usize, self.0.read().unwrap());
        let src = bytes.get(start..start + out.len()).ok_or(ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.0.write().unwrap().resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        let (start, mut bytes) = (offset as usize, self.0.write().unwrap());
        let dst = bytes
            .get_mut(start..start + data.len())
            .ok_or(ErrorKind::UnexpectedEof)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

fn get(db: &Database, key: u64) -> Option<String> {
    let read = db.begin_read().unwrap();
    let t = read.open_table(T).unwrap();
    t.get(key).unwrap().map(|v| v.value().to_string())
}

fn put(db: &Database, key: u64, value: &str, durability: Durability) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(durability).unwrap();
    txn.open_table(T).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_durable_commit_is_in_the_backend_when_commit_returns() {
    let backend = Shared::default();
    let db = Builder::new().create_with_backend(backend.clone()).unwrap();
    put(&db, 1, "one", Durability::Immediate);
    // What a crash now would leave: the backend alone.
    let crashed = Builder::new().create_with_backend(backend.image()).unwrap();
    assert_eq!(get(&crashed, 1).as_deref(), Some("one"));
    drop(crashed);

    put(&db, 2, "two", Durability::None);
    assert_eq!(get(&db, 2).as_deref(), Some("two"));
    db.sync().unwrap();
    let synced = Builder::new().create_with_backend(backend.image()).unwrap();
    assert_eq!(get(&synced, 2).as_deref(), Some("two"));
    drop(synced);

    put(&db, 3, "three", Durability::None);
    drop(db);
    let reopened = Builder::new().create_with_backend(backend).unwrap();
    assert_eq!(get(&reopened, 3).as_deref(), Some("three"));
}

#[test]
fn in_memory_and_file_backends_work_and_a_file_backend_reopens_by_path() {
    let db = Builder::new().create_with_backend(InMemoryBackend::new()).unwrap();
    put(&db, 1, "mem", Durability::Immediate);
    assert_eq!(get(&db, 1).as_deref(), Some("mem"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap()
    };
    let db = Builder::new()
        .create_with_backend(FileBackend::new(open()).unwrap())
        .unwrap();
    put(&db, 1, "file", Durability::Immediate);
    drop(db);
    let db = Builder::new()
        .create_with_backend(FileBackend::new(open()).unwrap())
        .unwrap();
    assert_eq!(get(&db, 1).as_deref(), Some("file"));
    drop(db);
    // The same database opens by path (its WAL is beside the file).
    let db = Database::open(&path).unwrap();
    assert_eq!(get(&db, 1).as_deref(), Some("file"));
}

/// A `Shared` whose next `sync_data` can be held until released, as redb's
/// `BlockingSyncBackend`.
#[derive(Clone, Debug, Default)]
struct Gated {
    bytes: Shared,
    /// (block the next sync, a sync is held now), and its signal.
    gate: Arc<(Mutex<(bool, bool)>, Condvar)>,
}

impl Gated {
    fn hold_next_sync(&self) {
        self.gate.0.lock().unwrap().0 = true;
    }

    fn wait_until_held(&self) {
        let (lock, signal) = &*self.gate;
        let _held = signal.wait_while(lock.lock().unwrap(), |(_, held)| !*held).unwrap();
    }

    fn release(&self) {
        let (lock, signal) = &*self.gate;
        *lock.lock().unwrap() = (false, false);
        signal.notify_all();
    }
}

impl StorageBackend for Gated {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.bytes.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.bytes.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.bytes.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        let (lock, signal) = &*self.gate;
        let mut state = lock.lock().unwrap();
        if state.0 {
            state.1 = true;
            signal.notify_all();
            let _released = signal.wait_while(state, |(block, _)| *block).unwrap();
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.bytes.write(offset, data)
    }
}

#[test]
fn readers_see_a_durable_commit_only_once_the_backend_synced_it() {
    let backend = Gated::default();
    let db = Arc::new(Builder::new().create_with_backend(backend.clone()).unwrap());
    put(&db, 1, "old", Durability::Immediate);

    backend.hold_next_sync();
    let committer = {
        let db = db.clone();
        std::thread::spawn(move || put(&db, 1, "new", Durability::Immediate))
    };
    backend.wait_until_held();
    // The commit waits for the backend's sync: a reader that starts now
    // (without waiting for that sync) sees the state before it, which is
    // also all that a crash now would leave.
    let (seen, seen_rx) = mpsc::channel();
    {
        let db = db.clone();
        std::thread::spawn(move || seen.send(get(&db, 1)).unwrap());
    }
    let during = seen_rx.recv_timeout(Duration::from_secs(30));
    let crashed = Builder::new().create_with_backend(backend.bytes.image()).unwrap();
    let after_crash = get(&crashed, 1);
    drop(crashed);
    backend.release();
    committer.join().unwrap();
    assert_eq!(
        during.expect("begin_read waited for the commit's sync").as_deref(),
        Some("old")
    );
    assert_eq!(after_crash.as_deref(), Some("old"));
    assert_eq!(get(&db, 1).as_deref(), Some("new"));
}
