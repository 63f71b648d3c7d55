//! Every copy of a data file writes a log of its own. A closed database is
//! its data file alone (its WAL retired), so two copies of it can each go
//! on writing; before log ids both numbered their logs from the same
//! checkpoint, and a copy put back beside the other's log replayed that log
//! onto itself: a state neither copy ever held (found by review: the
//! original's later commits mixed into the copy). Now every writable open
//! records a new log id in the data file (keeping the one it found as the
//! previous, still readable) before it writes a segment, every segment
//! carries its log's id, and recovery refuses a record after the
//! checkpoint in a segment of another log, with an error that says what to
//! do. The cases here: copies taken alone or with their WAL, a copy written
//! through an in-memory WAL, `sluice wal` beside a put-back copy, a crash
//! while a new log starts, crashes one after another, and a deleted
//! segment that a power cut brings back.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sluicedb::io::{CrashBackend, CrashLogDir, LogDir, StorageBackend as LogFile, TearMode};
use sluicedb::{Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition};

const TABLE: TableDefinition<&str, &str> = TableDefinition::new("t");

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

fn wal_dir(data: &Path) -> PathBuf {
    data.with_file_name(format!("{}-wal", data.file_name().unwrap().to_str().unwrap()))
}

/// A closed database copied, each copy written on its own (the original's
/// process ends with its commits in its log), and the copy put back over
/// the original's data file, beside the original's log. Returns the
/// original's path.
fn copy_put_back_beside_the_originals_log(dir: &Path) -> PathBuf {
    let original = dir.join("db");
    let copy = dir.join("copy");
    let db = Database::create(&original).unwrap();
    put(&db, "base", "0");
    db.close().unwrap();
    std::fs::copy(&original, &copy).unwrap();

    let db = Database::open(&original).unwrap();
    put(&db, "a", "original");
    put(&db, "b", "original");
    db.close_without_checkpoint();

    // The copy goes its own way and is closed (its data file alone).
    let db = Database::open(&copy).unwrap();
    put(&db, "a", "copy");
    db.close().unwrap();

    std::fs::copy(&copy, &original).unwrap();
    original
}

#[test]
fn a_copy_put_back_beside_the_originals_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let original = copy_put_back_beside_the_originals_log(dir.path());
    let Err(err) = Database::open(&original) else {
        panic!("the original's log is not the copy's, yet the pair opened");
    };
    let message = err.to_string();
    assert!(
        message.contains("another copy of this database") && message.contains("move the WAL directory away"),
        "unclear refusal: {message}"
    );
    // Refusing changed nothing: the copy's state is all in its data file,
    // and with the other log moved away it opens as the copy left it.
    std::fs::rename(wal_dir(&original), dir.path().join("originals-log")).unwrap();
    let db = Database::open(&original).unwrap();
    assert_eq!(contents(&db), state(&[("a", "copy"), ("base", "0")]));
}

/// `sluice wal` says where recovery would stop, changing nothing, so it
/// reads the log as `Database::open` does: it refuses the other copy's log
/// too (found by review: it read segments of any log id and reported the
/// other copy's records as the ones recovery replays).
#[test]
fn sluice_wal_refuses_another_copys_log_as_open_does() {
    let dir = tempfile::tempdir().unwrap();
    let original = copy_put_back_beside_the_originals_log(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["wal", original.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !out.status.success() && stderr.contains("another copy"),
        "`sluice wal` accepted another copy's log (exit {:?}):\n{}{stderr}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Copies taken with their WAL (a process that ended without closing, a
/// file-system snapshot of a running service) share the log they found;
/// each writable open starts a new one, so the copy put back beside the
/// original's log is refused all the same (found by review: before every
/// open renewed, these copies kept the same id and mixed).
#[test]
fn copies_taken_with_their_wal_are_refused_beside_each_others_logs() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("db");
    let copy = dir.path().join("copy");

    let db = Database::create(&original).unwrap();
    put(&db, "base", "0");
    db.close_without_checkpoint();
    std::fs::copy(&original, &copy).unwrap();
    std::fs::create_dir(wal_dir(&copy)).unwrap();
    for entry in std::fs::read_dir(wal_dir(&original)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), wal_dir(&copy).join(entry.file_name())).unwrap();
    }

    let db = Database::open(&original).unwrap();
    put(&db, "a", "original");
    put(&db, "b", "original");
    db.close_without_checkpoint();

    let db = Database::open(&copy).unwrap();
    assert_eq!(
        contents(&db),
        state(&[("base", "0")]),
        "the copy replays the log it was taken with"
    );
    put(&db, "a", "copy");
    db.close().unwrap();

    std::fs::copy(&copy, &original).unwrap();
    let Err(err) = Database::open(&original) else {
        panic!("the original's records after the copy's checkpoint were replayed onto the copy");
    };
    assert!(err.to_string().contains("another copy of this database"), "{err}");
}

/// Crashes one after another, each before any checkpoint: every open finds
/// records of the previous log still needed, so it keeps the ids, and every
/// commit replays. Once a checkpoint retires that log, the next open starts
/// a new one again.
#[test]
fn crash_after_crash_replays_every_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path).unwrap();
    put(&db, "k0", "v");
    db.close_without_checkpoint();
    for round in 1..4 {
        let db = Database::open(&path).unwrap();
        assert_eq!(contents(&db).len(), round, "round {round}");
        put(&db, &format!("k{round}"), "v");
        db.close_without_checkpoint();
    }
    let db = Database::open(&path).unwrap();
    assert_eq!(contents(&db).len(), 4);
    db.close().unwrap();
    let db = Database::open(&path).unwrap();
    put(&db, "k4", "v");
    db.close_without_checkpoint();
    assert_eq!(contents(&Database::open(&path).unwrap()).len(), 5);
}

/// Each open starts a new log, and a crash after it replays that log as
/// usual (the new id is in the data file).
#[test]
fn a_reopened_database_replays_its_own_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    for round in 0..3 {
        let db = if round == 0 {
            Database::create(&path)
        } else {
            Database::open(&path)
        }
        .unwrap();
        put(&db, &format!("k{round}"), "v");
        // A process exit: the commit lives only in the log just started.
        db.close_without_checkpoint();
        let db = Database::open(&path).unwrap();
        assert_eq!(contents(&db).len(), round + 1);
        db.close().unwrap();
    }
}

/// A power cut at every operation on the data file of an open that starts
/// a new log, and of the durable commit after it (unsynced writes torn):
/// the reopened database holds everything committed before, and the new
/// commit if it was acknowledged. (Were the new id's slot not durable
/// before the first segment, an acknowledged commit would sit in a segment
/// the data file calls another log's, and be refused.)
#[test]
fn a_power_cut_while_a_new_log_starts_loses_nothing() {
    // Whether the commit after the open was acknowledged, and what the
    // crash image holds.
    type Outcome = (bool, BTreeMap<String, String>);
    let run = |cut: Option<u64>| -> (u64, Option<Outcome>) {
        let (data, wal) = (Arc::new(CrashBackend::new()), CrashLogDir::new());
        let db = Database::builder()
            .create_with_backends(data.clone(), wal.clone())
            .unwrap();
        put(&db, "before", "1");
        db.close().unwrap();
        let before = data.ops();
        if let Some(k) = cut {
            data.cut_power_after(before + k);
        }
        let acknowledged = Database::builder()
            .create_with_backends(data.clone(), wal.clone())
            .is_ok_and(|db| {
                let mut txn = db.begin_write().unwrap();
                txn.set_durability(Durability::Immediate).unwrap();
                let inserted = txn
                    .open_table(TABLE)
                    .and_then(|mut t| t.insert("after", "2").map(|_| ()).map_err(Into::into))
                    .is_ok();
                let committed = inserted && txn.commit().is_ok();
                db.close_without_checkpoint();
                committed
            });
        let ops = data.ops() - before;
        let Some(k) = cut else {
            assert!(acknowledged, "without a power cut the commit succeeds");
            return (ops, None);
        };
        let mode = TearMode::Random(k);
        let reopened = Database::builder()
            .create_with_backends(CrashBackend::from_bytes(data.crash_image(mode)), wal.crash(mode))
            .unwrap();
        (ops, Some((acknowledged, contents(&reopened))))
    };
    let (ops, _) = run(None);
    assert!(ops > 0, "the open records the new log in the data file");
    for k in 0..=ops {
        let (_, found) = run(Some(k));
        let (acknowledged, found) = found.unwrap();
        let mut want = state(&[("before", "1")]);
        if acknowledged {
            want.insert("after".into(), "2".into());
        }
        if !acknowledged {
            // Not acknowledged: it may or may not have reached the log.
            want.extend(found.get("after").map(|v| ("after".to_string(), v.clone())));
        }
        assert_eq!(found, want, "power cut after {k} of {ops} data-file operations");
    }
}

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

/// A copy of the data file opened with an in-memory WAL (a single-backend
/// database) starts a log of its own like any writable open (found by
/// review: it kept the file's log id, so its data file, put back beside
/// the original's log, replayed the original's later records onto its own
/// diverged state).
#[test]
fn a_copy_written_through_an_in_memory_wal_is_refused_beside_the_originals_log() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("db");
    let copy = dir.path().join("copy");
    let db = Database::create(&original).unwrap();
    put(&db, "base", "0");
    db.close().unwrap();
    let db = Database::open(&original).unwrap();
    put(&db, "a", "original");
    put(&db, "b", "original");
    db.close_without_checkpoint();

    // The data file alone, copied while the original's log holds records,
    // written through the user's own backend: refused (the commits only
    // the log holds are missing), then opened accepting the loss.
    std::fs::copy(&original, &copy).unwrap();
    let file = OpenOptions::new().read(true).write(true).open(&copy).unwrap();
    let Err(err) = Database::builder().create_with_backend(UserFile(file.try_clone().unwrap())) else {
        panic!("a data file copied without the commits its log holds opened silently");
    };
    assert!(err.to_string().contains("is missing"), "{err}");
    let db = Database::builder()
        .set_repair_wal(true)
        .create_with_backend(UserFile(file))
        .unwrap();
    assert_eq!(contents(&db), state(&[("base", "0")]));
    put(&db, "c", "copy");
    db.close().unwrap();

    std::fs::copy(&copy, &original).unwrap();
    let Err(err) = Database::open(&original) else {
        panic!("the original's records were replayed onto the copy's diverged state");
    };
    assert!(err.to_string().contains("another copy of this database"), "{err}");
}

/// A log directory that loses unlinks: a remove while `fail_dir_sync` is
/// set unlinks (the name is gone) and then reports the directory sync's
/// failure, and a power cut before the next create (which syncs the
/// directory) brings the file back.
#[derive(Clone, Default)]
struct UnsyncedUnlinkDir {
    inner: CrashLogDir,
    ghosts: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    fail_dir_sync: Arc<AtomicBool>,
}

impl UnsyncedUnlinkDir {
    fn crash(&self, mode: TearMode) -> CrashLogDir {
        let dir = self.inner.crash(mode);
        for (name, bytes) in self.ghosts.lock().unwrap().iter() {
            dir.put_file(name, bytes.clone());
        }
        dir
    }
}

impl LogDir for UnsyncedUnlinkDir {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let file = self.inner.create(name)?;
        // The create synced the directory: earlier unlinks are durable now.
        self.ghosts.lock().unwrap().clear();
        Ok(file)
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        self.inner.open(name)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        if !self.fail_dir_sync.load(Ordering::SeqCst) {
            return self.inner.remove(name);
        }
        let bytes = self.inner.file_bytes(name);
        self.inner.remove(name)?;
        if let Some(bytes) = bytes {
            self.ghosts.lock().unwrap().insert(name.to_string(), bytes);
        }
        Err(io::Error::other(format!(
            "injected: syncing the directory after unlinking {name}"
        )))
    }
}

/// A segment delete whose directory sync failed (counted, not an error:
/// `Journal::remove_segment`), then an open, which starts a new log, and a
/// power cut: the segment comes back with the old log's id. It holds
/// nothing after the checkpoint, so recovery skips it instead of refusing
/// it as another copy's (found by review: every open was refused, though
/// no copy was ever made).
#[test]
fn a_deleted_segment_brought_back_by_a_power_cut_is_skipped() {
    let data = Arc::new(CrashBackend::new());
    let wal = UnsyncedUnlinkDir::default();
    let db = Database::builder()
        .create_with_backends(data.clone(), wal.clone())
        .unwrap();
    put(&db, "k", "v");
    wal.fail_dir_sync.store(true, Ordering::SeqCst);
    db.close().unwrap();
    assert!(!wal.ghosts.lock().unwrap().is_empty(), "the close unlinked a segment");
    wal.fail_dir_sync.store(false, Ordering::SeqCst);

    let db = Database::builder()
        .create_with_backends(data.clone(), wal.clone())
        .unwrap();
    assert_eq!(contents(&db), state(&[("k", "v")]));
    for mode in [TearMode::DropAll, TearMode::KeepAll, TearMode::Random(7)] {
        let image = CrashBackend::from_bytes(data.crash_image(mode));
        match Database::builder().create_with_backends(image, wal.crash(mode)) {
            Ok(reopened) => assert_eq!(contents(&reopened), state(&[("k", "v")]), "{mode:?}"),
            Err(e) => panic!("a database nobody copied is refused after a power cut ({mode:?}): {e}"),
        }
    }
    drop(db);
}
