//! The database handle, its builder, and the read entry point.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, EngineOptions, Stats};
use crate::error::{CompactionError, DatabaseError, StorageError, TransactionError};
use crate::io::{FileBackend, FsLogDir, LogDir, StorageBackend};
use crate::page::MAGIC;
use crate::read_only::ReadOnlyDatabase;
use crate::transaction::{LiveToken, ReadTransaction, WriteTransaction};
use crate::types::resolve;

/// Begins read transactions; implemented by [`Database`].
pub trait ReadableDatabase {
    /// A snapshot of everything published so far. Never blocks on a writer.
    fn begin_read(&self) -> Result<ReadTransaction, TransactionError>;

    /// The page cache's counters since the database opened, as redb's
    /// (which counts them only with its `cache_metrics` feature; sluicedb
    /// always does): page reads served from the cache and from storage,
    /// page writes that replaced a cached page or entered the cache anew,
    /// pages evicted, and the bytes of pages held now. Reads of the tree's
    /// upper levels that point lookups keep decoded beside the cache are not
    /// page reads and are not counted.
    fn cache_stats(&self) -> CacheStats;
}

/// Counters of the page cache (see [`ReadableDatabase::cache_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    evictions: u64,
    read_hits: u64,
    read_misses: u64,
    write_hits: u64,
    write_misses: u64,
    used_bytes: usize,
}

impl CacheStats {
    pub(crate) fn of(engine: &Engine) -> Self {
        let c = engine.inner.trees.cache_stats();
        Self {
            evictions: c.evictions,
            read_hits: c.read_hits,
            read_misses: c.read_misses,
            write_hits: c.write_hits,
            write_misses: c.write_misses,
            used_bytes: c.used_bytes,
        }
    }

    /// Pages evicted from the cache.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Reads served by the cache.
    pub fn read_hits(&self) -> u64 {
        self.read_hits
    }

    /// Reads that went to storage.
    pub fn read_misses(&self) -> u64 {
        self.read_misses
    }

    /// Writes to pages already cached.
    pub fn write_hits(&self) -> u64 {
        self.write_hits
    }

    /// Writes to pages not cached.
    pub fn write_misses(&self) -> u64 {
        self.write_misses
    }

    /// Bytes the cache holds.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }
}

/// An open database: a data file at the user's path and its WAL in the
/// sibling directory `<path>-wal/`.
///
/// ```
/// use sluicedb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
///
/// const SCORES: TableDefinition<&str, u64> = TableDefinition::new("scores");
///
/// # fn main() -> Result<(), sluicedb::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = Database::create(dir.path().join("game.sluice"))?;
/// let txn = db.begin_write()?;
/// {
///     let mut scores = txn.open_table(SCORES)?;
///     scores.insert("ada", 30)?;
///     scores.insert("alan", 25)?;
/// }
/// txn.commit()?;
///
/// let read = db.begin_read()?;
/// let scores = read.open_table(SCORES)?;
/// assert_eq!(scores.get("ada")?.unwrap().value(), 30);
/// # Ok(())
/// # }
/// ```
pub struct Database {
    pub(crate) engine: Engine,
    /// The WAL directory, for a database on files (`stats` measures it;
    /// `backup` refuses destinations that would share files with it).
    pub(crate) wal_path: Option<PathBuf>,
    /// Counts the live transactions (and read-only tables) this handle began.
    live: LiveToken,
    /// Whether dropping the handle checkpoints (see the `Drop` impl).
    checkpoint_on_drop: bool,
}

/// Configures and opens a [`Database`].
#[derive(Clone)]
pub struct Builder {
    options: EngineOptions,
    /// Whether the database's handle checkpoints when dropped.
    checkpoint_on_drop: bool,
    /// See [`Builder::set_repair_callback`].
    repair_callback: Option<RepairCallback>,
    /// See [`Builder::set_check_integrity_on_open`].
    check_integrity_on_open: bool,
}

/// The callback of [`Builder::set_repair_callback`].
type RepairCallback = Arc<dyn Fn(&mut RepairSession)>;

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("options", &self.options)
            .field("repair_callback", &self.repair_callback.is_some())
            .field("check_integrity_on_open", &self.check_integrity_on_open)
            .finish()
    }
}

/// The handle a repair callback gets (see [`Builder::set_repair_callback`]).
#[derive(Debug)]
pub struct RepairSession {
    progress: f64,
    aborted: bool,
}

impl RepairSession {
    /// Aborts the open: it returns [`DatabaseError::RepairAborted`].
    pub fn abort(&mut self) {
        self.aborted = true;
    }

    /// An estimate of the repair's progress in `[0.0, 1.0]`. sluicedb calls
    /// the callback once, after recovery has run, so this is `1.0`.
    pub fn progress(&self) -> f64 {
        self.progress
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// The WAL directory of the database at `path`: `<path>-wal`, beside the
/// data file itself when `path` is a symbolic link to it. Beside the link,
/// an open through it found no WAL (and made an empty one), so a database
/// that crashed with commits in its WAL opened without them
/// (`tests/open_mishaps_review.rs`); every name of the data file now finds
/// the same log.
pub(crate) fn wal_dir(path: &Path) -> PathBuf {
    let path = link_target(path);
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push("-wal");
    path.with_file_name(name)
}

/// Where `path` leads once the symbolic links of its last component are
/// followed (a relative link from the directory holding it); `path` itself
/// if it is none, cannot be read, or the chain runs too long (the open then
/// meets the error, as it would have).
fn link_target(path: &Path) -> PathBuf {
    let mut at = path.to_path_buf();
    // Linux's own limit on a chain of links.
    for _ in 0..40 {
        let is_link = std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return at;
        }
        let Ok(target) = std::fs::read_link(&at) else {
            return at;
        };
        at = match at.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    path.to_path_buf()
}

/// Locks the data file so a second open, from this process or another,
/// fails cleanly. The lock lives as long as the file handle.
pub(crate) fn lock(file: &File) -> Result<(), DatabaseError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(TryLockError::WouldBlock) => Err(DatabaseError::DatabaseAlreadyOpen),
        Err(TryLockError::Error(e)) => Err(DatabaseError::Storage(StorageError::Io(e))),
    }
}

impl Builder {
    /// Default settings: 1 GiB page cache, 64 MiB memtables growing with
    /// the tree to 256 MiB, 256 MiB of frozen memtables (as much again for
    /// each growth) before writers stall, 20 ms sync interval.
    pub fn new() -> Self {
        Self {
            options: EngineOptions {
                resolver: resolve,
                max_memtable_bytes: 256 << 20,
                ..EngineOptions::default()
            },
            checkpoint_on_drop: true,
            repair_callback: None,
            check_integrity_on_open: false,
        }
    }

    /// Verifies the whole data file at every open (not read-only ones), as
    /// redb's: what [`Database::check_integrity`] checks. A damaged file
    /// then fails to open with a corruption error. Off by default: pages are
    /// verified by their checksums as they are read anyway.
    pub fn set_check_integrity_on_open(&mut self, enabled: bool) -> &mut Self {
        self.check_integrity_on_open = enabled;
        self
    }

    /// Whether dropping the [`Database`] checkpoints it (the default: yes).
    /// Internal (the `internals` feature): the `sluice` tool opens
    /// databases with `false`, so that inspecting one leaves its WAL as
    /// it found it.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn set_checkpoint_on_drop(&mut self, checkpoint: bool) -> &mut Self {
        self.checkpoint_on_drop = checkpoint;
        self
    }

    /// Bytes of page cache. Zero (or less than a page) caches nothing:
    /// every page read goes to the backend, as with redb's.
    pub fn set_cache_size(&mut self, bytes: usize) -> &mut Self {
        self.options.cache_bytes = bytes;
        self
    }

    /// Bytes a memtable holds before it is frozen and flushed into the tree.
    /// While writes keep coming, a frozen memtable waits for a second one
    /// and the two are flushed together (each leaf of the tree rewritten
    /// once for both); after 20 ms without a commit it is flushed alone.
    ///
    /// By default (64 MiB) a memtable grows with the tree, to an eighth of
    /// its size and at most 256 MiB, so that a flush into a large tree
    /// rewrites each leaf for more keys; a size set here is kept whatever
    /// the tree's size.
    pub fn set_memtable_size(&mut self, bytes: usize) -> &mut Self {
        self.options.memtable_bytes = bytes.max(1);
        self.options.max_memtable_bytes = self.options.memtable_bytes;
        self
    }

    /// Commits whose log record would reach this many bytes (default
    /// 64 MiB) skip the WAL and the memtable: they are written straight
    /// into the tree and checkpointed, which costs a checkpoint of the
    /// commits before them but keeps a bulk load out of memory and out of
    /// the way of the writers after it. Such a commit is durable when it
    /// returns, whatever its `Durability`.
    pub fn set_tree_commit_size(&mut self, bytes: usize) -> &mut Self {
        self.options.tree_commit_bytes = bytes;
        self
    }

    /// The longest a `Durability::None` commit may stay unsynced.
    pub fn set_sync_interval(&mut self, interval: Duration) -> &mut Self {
        self.options.sync_interval = interval;
        self
    }

    /// Bytes of frozen memtables allowed to wait behind the one being flushed
    /// before writers are slowed and then blocked. The memtable being
    /// flushed does not count, so one large transaction does not stall the
    /// commits after it.
    pub fn set_max_frozen_bytes(&mut self, bytes: usize) -> &mut Self {
        self.options.max_frozen_bytes = bytes;
        self
    }

    /// Bytes of WAL records that may wait in memory to be written (default
    /// 64 MiB). A commit whose record would pass it waits until the log's
    /// writer catches up (`Durability::None` commits that outrun the disk);
    /// a single larger record waits only for the queue to empty.
    /// `Database::stats()` counts the waits (`wal_queue_stalls`).
    pub fn set_max_wal_queue_bytes(&mut self, bytes: usize) -> &mut Self {
        self.options.max_wal_queue_bytes = bytes;
        self
    }

    /// Whether opening may discard WAL records behind damage in the middle
    /// of the log (bit rot, a lost block), keeping every commit before it.
    /// Off by default: such damage is then a `Corrupted` error at open and
    /// nothing is changed, so acknowledged commits never vanish silently. A
    /// torn tail, which a crash during a write leaves, needs no repair.
    /// `Database::stats().recovery` reports what was discarded.
    pub fn set_repair_wal(&mut self, repair: bool) -> &mut Self {
        self.options.repair_wal = repair;
        self
    }

    /// Sets a callback invoked when opening finds the database in need of
    /// repair, as redb's.
    ///
    /// When it is called: a reopen of a database whose log was not cleanly
    /// ended, that is, recovery found a torn WAL tail (a crash during a WAL
    /// write) or discarded records behind mid-log damage
    /// ([`set_repair_wal`](Self::set_repair_wal)). It is called once, after
    /// recovery ran (sluicedb's recovery is a WAL replay bounded by the
    /// checkpoint thresholds, not a walk of the whole file, so there is no
    /// progress to report along the way). Replaying committed WAL records is
    /// not a repair: it is how every reopen after a drop without
    /// [`Database::close`] finds its newest commits, so it does not call the
    /// callback. A new database never calls it.
    ///
    /// If the callback calls [`RepairSession::abort`], the open returns
    /// [`DatabaseError::RepairAborted`]; recovery made no change that the
    /// next open would not make again (acknowledged commits are untouched).
    pub fn set_repair_callback(&mut self, callback: impl Fn(&mut RepairSession) + 'static) -> &mut Self {
        self.repair_callback = Some(Arc::new(callback));
        self
    }

    /// Opens the database at `path`, creating it if it does not exist (an
    /// existing empty file counts as new).
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Database, DatabaseError> {
        let path = path.as_ref();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        self.open_file(path, file)
    }

    /// Opens the existing database at `path`.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Database, DatabaseError> {
        let path = path.as_ref();
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        refuse_empty(path, &file)?;
        self.open_file(path, file)
    }

    fn open_file(&self, path: &Path, file: File) -> Result<Database, DatabaseError> {
        lock(&file)?;
        let lock_file = file.try_clone().map_err(io)?;
        let file = FileBackend::new(file);
        refuse_foreign(&first_bytes(&file)?)?;
        let wal = FsLogDir::open(wal_dir(path)).map_err(io)?;
        let mut db = self.create_with_backends(file, wal)?;
        db.wal_path = Some(wal_dir(path));
        db.live.unlock_on_close(lock_file);
        Ok(db)
    }

    /// Opens a database over any of the engine's data backends and WAL
    /// directories (memory, fault-injecting, crash-simulating: the tests'
    /// seam). No file lock is taken. Internal: its traits are the engine's
    /// (the `internals` feature); users open a single redb-shaped backend
    /// with [`create_with_backend`](Self::create_with_backend).
    #[doc(hidden)]
    pub fn create_with_backends(&self, data: impl StorageBackend, wal: impl LogDir) -> Result<Database, DatabaseError> {
        self.create_with_options(data, wal, self.options)
    }

    /// [`create_with_backends`](Self::create_with_backends) with the engine
    /// options given.
    fn create_with_options(
        &self,
        data: impl StorageBackend,
        wal: impl LogDir,
        options: EngineOptions,
    ) -> Result<Database, DatabaseError> {
        // The callback decides before the open changes anything: an
        // aborted repair leaves the files as they were, and the next open
        // finds the same log to repair.
        let aborted = std::cell::Cell::new(false);
        let engine = Engine::open_checked(data, wal, options, |recovery| {
            if self.repair_aborted(recovery) {
                aborted.set(true);
                return Err(StorageError::Internal("the repair callback aborted the open".into()));
            }
            Ok(())
        });
        let engine = match engine {
            Err(_) if aborted.get() => return Err(DatabaseError::RepairAborted),
            opened => opened?,
        };
        crate::savepoint::drop_orphan_pins(&engine)?;
        if self.check_integrity_on_open {
            engine.check_integrity()?;
        }
        Ok(Database {
            engine,
            wal_path: None,
            live: LiveToken::new(),
            checkpoint_on_drop: self.checkpoint_on_drop,
        })
    }

    /// Opens, or creates if `backend` is empty, a database stored in one
    /// redb-shaped [`StorageBackend`](crate::StorageBackend), as redb's.
    ///
    /// sluicedb keeps a WAL beside the data, which a single backend has no
    /// room for; so here the WAL lives in memory and durability comes from
    /// the backend alone, as in redb: a `Durability::Immediate` commit
    /// is written to the backend's tree and returns (and becomes visible to
    /// readers) once it is durable there (two syncs per commit, as redb's),
    /// [`Database::sync`] checkpoints, and
    /// dropping the database checkpoints (so `Durability::None` commits
    /// reach the backend then, at the latest). A crash loses at most the
    /// commits since the last checkpoint that were not acknowledged as
    /// durable. A [`WriteTransaction::commit_pipelined`] commit reaches the
    /// backend with the next checkpoint, and waiting for its
    /// [`PendingCommit`](crate::PendingCommit) (or awaiting it) takes that
    /// checkpoint if none has yet: it returns once the commit is durable, as
    /// everywhere.
    /// For the WAL's write speed, use [`create`](Self::create) with a path
    /// or [`create_with_backends`](Self::create_with_backends).
    ///
    /// A [`FileBackend`](crate::backends::FileBackend) whose path is known
    /// is the exception: the database then opens as
    /// [`create`](Self::create) with that path does (the file lock, and the
    /// WAL in `<path>-wal`), on the file given.
    pub fn create_with_backend(&self, backend: impl crate::StorageBackend) -> Result<Database, DatabaseError> {
        if let Some(path) = backend.as_file_backend().and_then(|f| f.path()).map(Path::to_path_buf) {
            let file = backend
                .as_file_backend()
                .map(|f| f.file().try_clone())
                .transpose()
                .map_err(io)?;
            if let Some(file) = file {
                lock(&file)?;
                let backend = crate::backends::Adapted(backend);
                refuse_foreign(&first_bytes(&backend)?)?;
                let wal = FsLogDir::open(wal_dir(&path)).map_err(io)?;
                let mut db = self.create_with_backends(backend, wal)?;
                db.wal_path = Some(wal_dir(&path));
                db.live.unlock_on_close(file);
                return Ok(db);
            }
        }
        let backend = crate::backends::Adapted(backend);
        refuse_foreign(&first_bytes(&backend)?)?;
        clear_torn_creation(&backend)?;
        let options = EngineOptions {
            volatile_wal: true,
            ..self.options
        };
        self.create_with_options(backend, crate::io::MemLogDir::new(), options)
    }

    /// Opens, or creates if empty, a database in `file`, as redb's
    /// deprecated `create_file`: the same as
    /// [`create_with_backend`](Self::create_with_backend) with a
    /// [`FileBackend`](crate::backends::FileBackend) (an in-memory WAL;
    /// every durable commit checkpoints). Prefer [`create`](Self::create)
    /// with a path, which keeps the WAL beside the file.
    #[deprecated(note = "use `create_with_backend(FileBackend::new(file)?)` instead, as in redb 4.5")]
    pub fn create_file(&self, file: File) -> Result<Database, DatabaseError> {
        self.create_with_backend(crate::backends::FileBackend::new(file)?)
    }

    /// Opens the existing database at `path` read-only: see
    /// [`ReadOnlyDatabase`] for what that means with a WAL. Fails with
    /// [`DatabaseError::DatabaseAlreadyOpen`] while a [`Database`] has it
    /// open.
    pub fn open_read_only(&self, path: impl AsRef<Path>) -> Result<ReadOnlyDatabase, DatabaseError> {
        let path = path.as_ref();
        let file = OpenOptions::new().read(true).open(path).map_err(io)?;
        refuse_empty(path, &file)?;
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(DatabaseError::DatabaseAlreadyOpen),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let lock_file = file.try_clone().map_err(io)?;
        let file = FileBackend::new(file);
        refuse_foreign(&first_bytes(&file)?)?;
        let wal = crate::read_only::copy_log(&wal_dir(path))?;
        let data = crate::read_only::Overlay::new(file).map_err(io)?;
        let db = ReadOnlyDatabase::new(Engine::open(data, wal, self.read_only_options())?);
        db.live.unlock_on_close(lock_file);
        Ok(db)
    }

    /// Opens the existing database in `backend` read-only, without
    /// modifying it (see [`ReadOnlyDatabase`]).
    pub fn open_read_only_with_backend(
        &self,
        backend: impl crate::StorageBackend,
    ) -> Result<ReadOnlyDatabase, DatabaseError> {
        if backend.len().map_err(io)? == 0 {
            return Err(not_a_database("the backend is empty"));
        }
        // A file with a known path: its WAL, and the shared lock, as
        // `open_read_only` takes them.
        let path = backend.as_file_backend().and_then(|f| f.path()).map(Path::to_path_buf);
        let mut lock_file = None;
        if let Some(file) = backend.as_file_backend() {
            match file.file().try_lock_shared() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Err(DatabaseError::DatabaseAlreadyOpen),
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            lock_file = Some(file.file().try_clone().map_err(io)?);
        }
        let wal = match &path {
            Some(path) => crate::read_only::copy_log(&wal_dir(path))?,
            None => crate::io::MemLogDir::new(),
        };
        let backend = crate::backends::Adapted(backend);
        refuse_foreign(&first_bytes(&backend)?)?;
        let data = crate::read_only::Overlay::new(backend).map_err(io)?;
        let db = ReadOnlyDatabase::new(Engine::open(data, wal, self.read_only_options())?);
        if let Some(file) = lock_file {
            db.live.unlock_on_close(file);
        }
        Ok(db)
    }

    /// The engine options of a read-only open: nothing written at open.
    fn read_only_options(&self) -> EngineOptions {
        EngineOptions {
            read_only: true,
            ..self.options
        }
    }

    /// Calls the repair callback if recovery is to repair the log (a torn
    /// tail to drop, records behind damage to discard, or a missing segment
    /// to accept the loss of; see
    /// [`set_repair_callback`](Self::set_repair_callback)); whether it
    /// aborted the open.
    fn repair_aborted(&self, recovery: &crate::wal::Recovery) -> bool {
        let Some(callback) = &self.repair_callback else {
            return false;
        };
        let repairs = recovery.torn_tail
            || recovery.discarded_records > 0
            || recovery.discarded_bytes > 0
            || recovery.missing_segment.is_some();
        if !repairs {
            return false;
        }
        let mut session = RepairSession {
            progress: 1.0,
            aborted: false,
        };
        callback(&mut session);
        session.aborted
    }
}

/// `(apparent, allocated)` bytes of the files in `dir`; files that vanish
/// while listed (a checkpoint deleting a segment) are skipped.
fn dir_bytes(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .fold((0, 0), |(len, alloc), m| (len + m.len(), alloc + m.blocks() * 512))
}

/// The error for a file that holds no database, as redb's:
/// `StorageError::Io` of kind `InvalidData`.
pub(crate) fn not_a_database(why: impl Into<String>) -> DatabaseError {
    io(std::io::Error::new(std::io::ErrorKind::InvalidData, why.into()))
}

/// Refuses a file that cannot be a sluicedb database, as redb refuses a
/// foreign file: `StorageError::Io` of kind `InvalidData`. Every database,
/// and every unfinished creation (see design/format.md), starts with a
/// prefix of the magic followed by zeros; the engine refuses any other file
/// too, with a corruption error, which this only names as redb does.
/// Damaged sluicedb files stay corruption errors.
fn refuse_foreign(first: &[u8]) -> Result<(), DatabaseError> {
    let first = &first[..first.len().min(MAGIC.len())];
    let same = first.iter().zip(MAGIC).take_while(|(a, b)| **a == *b).count();
    if first[same..].iter().any(|&b| b != 0) {
        return Err(not_a_database("not a sluicedb database (bad magic number)"));
    }
    Ok(())
}

/// Empties a single backend that a power cut left as a creation's first
/// extension and nothing more: a redb-shaped backend grows (`set_len`)
/// before it writes past its end, so a creation cut between the two leaves
/// up to a page of zeros, which no open recognises. Nothing was ever
/// acknowledged in it and its WAL was in memory, so it is created again.
/// (A data file with a WAL directory that is all zeros stays refused: its
/// WAL may hold commits; `tests/defect_torn_creation.rs`.)
fn clear_torn_creation(backend: &dyn crate::io::StorageBackend) -> Result<(), DatabaseError> {
    let len = backend.len().map_err(io)?;
    if len == 0 || len > crate::page::MIN_PAGE_SIZE as u64 {
        return Ok(());
    }
    let mut bytes = vec![0u8; len as usize];
    backend.read(0, &mut bytes).map_err(io)?;
    if bytes.iter().all(|&b| b == 0) {
        backend.set_len(0).map_err(io)?;
        backend.sync_data().map_err(io)?;
    }
    Ok(())
}

/// The first bytes of `backend` (up to the magic's length).
fn first_bytes(backend: &dyn crate::io::StorageBackend) -> Result<Vec<u8>, DatabaseError> {
    let len = backend.len().map_err(io)?.min(MAGIC.len() as u64) as usize;
    let mut first = vec![0u8; len];
    backend.read(0, &mut first).map_err(io)?;
    Ok(first)
}

/// Opening (not creating) refuses an empty file.
fn refuse_empty(path: &Path, file: &File) -> Result<(), DatabaseError> {
    if file.metadata().map_err(io)?.len() == 0 {
        return Err(not_a_database(format!(
            "{} is empty: not a database (use create to make one)",
            path.display()
        )));
    }
    Ok(())
}

fn io(e: std::io::Error) -> DatabaseError {
    DatabaseError::Storage(StorageError::Io(e))
}

impl Database {
    /// Opens the database at `path`, creating it if missing.
    pub fn create(path: impl AsRef<Path>) -> Result<Database, DatabaseError> {
        Builder::new().create(path)
    }

    /// Opens the existing database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Database, DatabaseError> {
        Builder::new().open(path)
    }

    /// Whether the WAL is in memory (`Builder::create_with_backend`):
    /// durable commits, `sync`, waiting for a `PendingCommit` and the drop
    /// checkpoint instead.
    fn volatile_wal(&self) -> bool {
        self.engine.is_volatile_wal()
    }

    /// A [`Builder`] for settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Begins the write transaction, waiting while another one is being
    /// built (not while one waits for its sync).
    pub fn begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        Ok(WriteTransaction::new(self.engine.begin_write()?, self.live.clone())
            .with_checkpoint_on_commit(self.volatile_wal()))
    }

    /// Begins the write transaction without waiting:
    /// [`TransactionError::WouldBlock`] where [`begin_write`](Self::begin_write)
    /// would wait, i.e. while another write transaction is being built.
    pub fn try_begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        match self.engine.try_begin_write()? {
            Some(txn) => {
                Ok(WriteTransaction::new(txn, self.live.clone()).with_checkpoint_on_commit(self.volatile_wal()))
            }
            None => Err(TransactionError::WouldBlock),
        }
    }

    /// Verifies the data file: every page's checksum, every tree's key order
    /// and entry count, and that every page is used or free exactly once.
    /// `Ok(true)` when all holds; a corruption error otherwise.
    ///
    /// Refused with [`DatabaseError::TransactionInProgress`] while a
    /// transaction (or a table read through one) is live, as redb's.
    pub fn check_integrity(&mut self) -> Result<bool, DatabaseError> {
        // Exact for the reason `compact`'s check is (see `LiveToken`).
        if self.live.others_live() {
            return Err(DatabaseError::TransactionInProgress);
        }
        self.engine.check_integrity()?;
        Ok(true)
    }

    /// Checkpoints, moves every live page toward the start of the file, and
    /// gives the free end back to the file system; returns whether the file
    /// shrank.
    ///
    /// Refuses with [`CompactionError::TransactionInProgress`] while any
    /// transaction, or a table read through one, is live (as redb does):
    /// compaction needs the writer slot, which a live write transaction on
    /// this very thread would never give back, and a live snapshot pins the
    /// pages compaction would move.
    pub fn compact(&mut self) -> Result<bool, CompactionError> {
        // Savepoints first, as redb reports them (they hold tokens too).
        crate::savepoint::check_compaction(&self.engine)?;
        // Exact, not racy: `&mut self` stops any transaction from beginning
        // until we return, and every live one holds a token (see `LiveToken`).
        if self.live.others_live() {
            return Err(CompactionError::TransactionInProgress);
        }
        // No savepoint exists: a pin left is an orphan (its deletion was not
        // committed with `commit`), and would keep its pages in place.
        crate::savepoint::drop_orphan_pins(&self.engine)?;
        Ok(self.engine.compact()?)
    }

    /// Flushes everything committed into the data file, makes it durable,
    /// and deletes the WAL segments it covers.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        self.engine.checkpoint()
    }

    /// Makes every commit so far durable (including `Durability::None` ones).
    /// With a volatile WAL ([`Builder::create_with_backend`]) that takes a
    /// checkpoint.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.engine.sync()?;
        if self.volatile_wal() {
            self.engine.checkpoint()?;
        }
        Ok(())
    }

    /// Counters: commits, WAL bytes and fsyncs, group sizes, memtable bytes,
    /// frozen memtables, apply lag, checkpoints, stalls.
    /// See [`Stats`] for each field; `wal_disk_bytes` and
    /// `wal_allocated_bytes` are measured here for a database on files.
    pub fn stats(&self) -> Stats {
        let mut stats = self.engine.stats();
        if let Some(dir) = &self.wal_path {
            (stats.wal_disk_bytes, stats.wal_allocated_bytes) = dir_bytes(dir);
        }
        stats
    }

    /// The engine under this database, for tools that work below the typed
    /// API (the `sluice` CLI, [`backup`](Self::backup)): byte-level tables
    /// through [`Engine::begin_read`] and [`Engine::begin_write`]. Tables
    /// opened there must be given their true key order: ask
    /// [`ReadTxn::table_order`](crate::engine::ReadTxn::table_order) first.
    /// The file lock stays with this `Database`. Internal: only with the
    /// `internals` feature, outside the stable API.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Drops the handle as a process exit would leave it: the WAL holds the
    /// commits since the last checkpoint, for the next open to replay.
    /// Internal (the `internals` feature): tests of recovery and of tools
    /// that read the WAL use it.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn close_without_checkpoint(mut self) {
        self.checkpoint_on_drop = false;
    }

    /// Closes the database explicitly: makes every commit durable (the
    /// `Durability::None` ones too), checkpoints it into the data file, and
    /// returns any error on the way, which dropping the handle can only
    /// swallow. After `Ok`, the data file alone holds every commit: the
    /// WAL's segments are deleted (unless a write transaction still alive
    /// commits after the checkpoint), so the file can be copied or moved
    /// by itself, and the next open replays nothing. Every writable open
    /// starts a WAL of its own: a copy put back beside another copy's WAL
    /// is refused with an error rather than mixed with it
    /// (`design/wal.md`, "Log identity").
    ///
    /// Refused with [`DatabaseError::TransactionInProgress`] while a write
    /// transaction is being built, as redb's (the handle is dropped then;
    /// the transaction stays usable). Read transactions still alive keep
    /// the engine running until they end (they share it).
    pub fn close(self) -> Result<(), DatabaseError> {
        if self.engine.inner.writer_busy() {
            return Err(DatabaseError::TransactionInProgress);
        }
        Ok(self.close_engine()?)
    }

    /// [`close`](Self::close) without the check for a live writer.
    pub(crate) fn close_engine(mut self) -> Result<(), StorageError> {
        // The drop need not checkpoint again (on success nothing is left;
        // on failure it could only fail the same way, silently).
        self.checkpoint_on_drop = false;
        self.engine.sync()?;
        self.engine.checkpoint()?;
        self.engine.retire_log()?;
        // The apply thread is stopped and joined by the drop; a failure the
        // background work latched before then is reported, not swallowed.
        self.engine.inner.check_poison()
    }
}

impl ReadableDatabase for Database {
    fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        Ok(ReadTransaction::new(self.engine.begin_read()?, self.live.clone()))
    }

    fn cache_stats(&self) -> CacheStats {
        CacheStats::of(&self.engine)
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

/// Dropping the handle does what [`Database::close`] does (every commit made
/// durable and checkpointed into the data file, so the file alone holds the
/// database, as a redb file does after its handle is dropped), but can only
/// swallow the errors `close` returns. A poisoned database is left as it
/// is: the next open recovers it from the WAL.
impl Drop for Database {
    fn drop(&mut self) {
        // Every commit made durable and checkpointed, so the data file alone
        // holds the database (a volatile WAL, moreover, dies with the
        // engine). There is no one to report a failure to; `close` reports
        // it. A poisoned engine is left for the next open to recover.
        if (self.checkpoint_on_drop || self.volatile_wal()) && self.engine.inner.check_poison().is_ok() {
            let _ = self.engine.sync();
            if self.engine.checkpoint().is_ok() {
                let _ = self.engine.retire_log();
            }
        }
        // The WAL's spare segment goes before the file lock does: the next
        // open at this path makes its own under the same name, which this
        // engine's journal, kept alive by a read transaction, would
        // otherwise delete when it drops.
        self.engine.stop_wal_spares();
        // As redb's: live read transactions read nothing more (see
        // `Closing`); a live write transaction finishes first.
        self.live.close();
    }
}
