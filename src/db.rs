//! The database handle, its builder, and the read entry point.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{Engine, EngineOptions, Stats};
use crate::error::{CompactionError, DatabaseError, StorageError, TransactionError};
use crate::io::{FileBackend, FsLogDir, LogDir, StorageBackend};
use crate::transaction::{LiveToken, ReadTransaction, WriteTransaction};
use crate::types::resolve;

/// Begins read transactions; implemented by [`Database`].
pub trait ReadableDatabase {
    /// A snapshot of everything published so far. Never blocks on a writer.
    fn begin_read(&self) -> Result<ReadTransaction, TransactionError>;
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
    engine: Engine,
    /// The WAL directory, for a database on files (`stats` measures it).
    wal_path: Option<PathBuf>,
    /// Counts the live transactions (and read-only tables) this handle began.
    live: LiveToken,
}

/// Configures and opens a [`Database`].
#[derive(Clone)]
pub struct Builder {
    options: EngineOptions,
    /// See [`Builder::set_repair_callback`].
    repair_callback: Option<RepairCallback>,
}

/// The callback of [`Builder::set_repair_callback`].
type RepairCallback = Arc<dyn Fn(&mut RepairSession)>;

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("options", &self.options)
            .field("repair_callback", &self.repair_callback.is_some())
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

/// The WAL directory of the database at `path`: `<path>-wal`.
pub(crate) fn wal_dir(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push("-wal");
    path.with_file_name(name)
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
    /// Default settings: 1 GiB page cache, 64 MiB memtables, 256 MiB of
    /// frozen memtables before writers stall, 20 ms sync interval.
    pub fn new() -> Self {
        Self {
            options: EngineOptions {
                resolver: resolve,
                ..EngineOptions::default()
            },
            repair_callback: None,
        }
    }

    /// Bytes of page cache.
    pub fn set_cache_size(&mut self, bytes: usize) -> &mut Self {
        self.options.cache_bytes = bytes;
        self
    }

    /// Bytes a memtable holds before it is frozen and flushed into the tree.
    pub fn set_memtable_size(&mut self, bytes: usize) -> &mut Self {
        self.options.memtable_bytes = bytes.max(1);
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
        if file.metadata().map_err(io)?.len() == 0 {
            return Err(DatabaseError::Storage(StorageError::corrupted(format!(
                "{} is empty: not a database (use create to make one)",
                path.display()
            ))));
        }
        self.open_file(path, file)
    }

    fn open_file(&self, path: &Path, file: File) -> Result<Database, DatabaseError> {
        lock(&file)?;
        let wal = FsLogDir::open(wal_dir(path)).map_err(io)?;
        let mut db = self.create_with_backends(FileBackend::new(file), wal)?;
        db.wal_path = Some(wal_dir(path));
        Ok(db)
    }

    /// Opens a database over any data backend and WAL directory (memory,
    /// fault-injecting, ...). No file lock is taken.
    pub fn create_with_backends(&self, data: impl StorageBackend, wal: impl LogDir) -> Result<Database, DatabaseError> {
        let engine = Engine::open(data, wal, self.options)?;
        self.run_repair_callback(&engine)?;
        Ok(Database {
            engine,
            wal_path: None,
            live: LiveToken::new(),
        })
    }

    /// Calls the repair callback if recovery repaired the log (see
    /// [`set_repair_callback`](Self::set_repair_callback)).
    fn run_repair_callback(&self, engine: &Engine) -> Result<(), DatabaseError> {
        let Some(callback) = &self.repair_callback else {
            return Ok(());
        };
        let recovery = engine.stats().recovery;
        if !recovery.torn_tail && recovery.discarded_records == 0 && recovery.discarded_bytes == 0 {
            return Ok(());
        }
        let mut session = RepairSession {
            progress: 1.0,
            aborted: false,
        };
        callback(&mut session);
        if session.aborted {
            return Err(DatabaseError::RepairAborted);
        }
        Ok(())
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

    /// A [`Builder`] for settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// Begins the write transaction, waiting while another one is being
    /// built (not while one waits for its sync).
    pub fn begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        Ok(WriteTransaction::new(self.engine.begin_write()?, self.live.clone()))
    }

    /// Begins the write transaction without waiting:
    /// [`TransactionError::WouldBlock`] where [`begin_write`](Self::begin_write)
    /// would wait, i.e. while another write transaction is being built.
    pub fn try_begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        match self.engine.try_begin_write()? {
            Some(txn) => Ok(WriteTransaction::new(txn, self.live.clone())),
            None => Err(TransactionError::WouldBlock),
        }
    }

    /// Verifies the data file: every page's checksum, every tree's key order
    /// and entry count, and that every page is used or free exactly once.
    /// `Ok(true)` when all holds; a corruption error otherwise.
    pub fn check_integrity(&mut self) -> Result<bool, DatabaseError> {
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
        // Exact, not racy: `&mut self` stops any transaction from beginning
        // until we return, and every live one holds a token (see `LiveToken`).
        if self.live.others_live() {
            return Err(CompactionError::TransactionInProgress);
        }
        Ok(self.engine.compact()?)
    }

    /// Flushes everything committed into the data file, makes it durable,
    /// and deletes the WAL segments it covers.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        self.engine.checkpoint()
    }

    /// Makes every commit so far durable (including `Durability::None` ones).
    pub fn sync(&self) -> Result<(), StorageError> {
        self.engine.sync()
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
    /// The file lock stays with this `Database`.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Closes the database explicitly: makes every commit durable (the
    /// `Durability::None` ones too), checkpoints it into the data file, and
    /// returns any error on the way, which dropping the handle can only
    /// swallow. After `Ok`, the data file alone holds every commit and the
    /// next open replays nothing.
    ///
    /// Transactions still alive keep the engine running until they end
    /// (they share it); commits they make after this call are not covered.
    pub fn close(self) -> Result<(), StorageError> {
        self.engine.sync()?;
        self.engine.checkpoint()?;
        // The apply thread is stopped and joined by the drop; a failure the
        // background work latched before then is reported, not swallowed.
        self.engine.inner.check_poison()
    }
}

impl ReadableDatabase for Database {
    fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        Ok(ReadTransaction::new(self.engine.begin_read()?, self.live.clone()))
    }
}
