//! Online backup: a consistent, compact copy of a database from one read
//! snapshot while writers go on.
//!
//! # How
//! 1. One read snapshot is taken: the copy holds every commit up to its
//!    sequence and none after, whatever writers do meanwhile (a snapshot never
//!    changes, see `engine::state`).
//! 2. A new database is created beside the destination, at
//!    `<dest>.backup-partial` (with its WAL in `<dest>.backup-partial-wal/`),
//!    and every table of the snapshot is copied into it in key order, in
//!    batches of about [`BATCH_BYTES`] committed without waiting for sync.
//!    Sorted batches make the copy's tree dense (compact).
//! 3. The copy is checkpointed (everything flushed into its data file and
//!    synced) and closed; its WAL, which then covers nothing the data file
//!    lacks, is deleted.
//! 4. The data file is synced and renamed to `dest`, and the directory is
//!    synced.
//!
//! # Crash safety
//! Invariant: `dest` exists only once it is complete. A crash (or an error)
//! before the rename leaves only the `.backup-partial` files, which are
//! plainly incomplete; the rename is atomic and made durable by the directory
//! sync. A later backup to the same `dest` removes stale partial files first;
//! a destination that would share files with the source (inside its WAL
//! directory, or with the source inside `<dest>.backup-partial-wal/`, which
//! that removal deletes) is refused before anything is made.
//!
//! # Key order
//! Tables are copied in their own key order. A table with a custom order
//! (not byte order) can be copied only if this process knows the order, i.e.
//! the table was opened through the typed API first; otherwise the backup
//! refuses before writing anything.

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use crate::btree::Comparator;
use crate::db::{Builder, Database, lock, wal_dir};
use crate::engine::{Durability, ReadTxn};
use crate::error::StorageError;
use crate::io::{FileBackend, FsLogDir, LogDir, StorageBackend, sync_dir};

/// A batch of the copy is committed once it holds about this many bytes of
/// keys and values: bounds the memory a backup uses beside its memtable.
pub const BATCH_BYTES: usize = 4 << 20;

/// What a backup copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupReport {
    /// The sequence of the snapshot copied: the copy holds every commit up
    /// to it and none after.
    pub sequence: u64,
    /// Tables copied.
    pub tables: u64,
    /// Entries copied.
    pub entries: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

fn invalid(message: String) -> StorageError {
    StorageError::Io(io::Error::new(io::ErrorKind::InvalidInput, message))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn taken_error(path: &Path) -> StorageError {
    StorageError::Io(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("backup destination {} exists", path.display()),
    ))
}

/// Refuses a destination whose file or `-wal` directory exists, as
/// anything (a dangling symbolic link too: `symlink_metadata` does not
/// follow it).
fn refuse_taken(dest: &Path) -> Result<(), StorageError> {
    for taken in [dest.to_path_buf(), wal_dir(dest)] {
        if std::fs::symlink_metadata(&taken).is_ok() {
            return Err(taken_error(&taken));
        }
    }
    Ok(())
}

/// `path` with the symbolic links of its directory resolved (the directory
/// must exist; the last component is kept as it is).
fn resolved(path: &Path) -> Result<PathBuf, StorageError> {
    let dir = std::fs::canonicalize(parent_dir(path))?;
    Ok(match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    })
}

/// Refuses a destination that would share files with the source: one
/// inside the source's WAL directory (the source's log would take a file of
/// the copy for a segment or a spare of its own and delete it, after the
/// backup had returned `Ok`), or one whose `.backup-partial-wal` directory,
/// which a backup removes as a failed backup's leftovers, holds the source.
/// Both found by review (`tests/backup_kill_review.rs`): the second deleted
/// the database being backed up.
fn refuse_overlap(source_wal: &Path, dest: &Path, partial_wal: &Path) -> Result<(), StorageError> {
    // Through its directory if it does not exist (yet: a database checked
    // before its open).
    let source_wal = std::fs::canonicalize(source_wal).or_else(|_| resolved(source_wal))?;
    let dest = resolved(dest)?;
    if dest.starts_with(&source_wal) {
        return Err(invalid(format!(
            "backup destination {} lies inside the database's WAL directory {}",
            dest.display(),
            source_wal.display()
        )));
    }
    let partial_wal = resolved(partial_wal)?;
    if source_wal.starts_with(&partial_wal) {
        return Err(invalid(format!(
            "the database lies inside {}, which a backup to {} uses for its copy's WAL",
            partial_wal.display(),
            dest.display()
        )));
    }
    Ok(())
}

fn in_progress(partial: &Path, e: io::Error) -> StorageError {
    match e.kind() {
        io::ErrorKind::AlreadyExists => invalid(format!(
            "another backup to this destination is in progress ({} exists and is locked)",
            partial.display()
        )),
        _ => StorageError::Io(e),
    }
}

/// Removes the partial file of a backup that crashed or failed: one that
/// nobody holds locked. A locked one belongs to a backup running now, and
/// is left alone (an error for this one).
fn remove_stale_partial(partial: &Path) -> Result<(), StorageError> {
    match OpenOptions::new().read(true).write(true).open(partial) {
        Ok(file) => {
            if lock(&file).is_err() {
                return Err(in_progress(partial, io::ErrorKind::AlreadyExists.into()));
            }
            std::fs::remove_file(partial)?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Database {
    /// Writes a consistent, compact copy of this database to `dest` (a new
    /// path: refused if it or its `-wal` directory exists) from one read
    /// snapshot, while writers go on. Returns what was copied; the copy
    /// opens with every commit up to [`BackupReport::sequence`] and none
    /// after. See the module docs of `backup` for the crash protocol: `dest`
    /// appears only once complete.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport, StorageError> {
        self.backup_with_progress(dest, |_| {})
    }

    /// What [`backup`](Self::backup) checks of `dest` before it copies
    /// anything, without a database: refused if it or its `-wal` directory
    /// exists, or if its directory does not. A tool that opens the database
    /// only to back it up asks this first, so a bad destination is refused
    /// before the open writes to the database (a writable open records a
    /// new log in it).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let taken = dir.path().join("taken.db");
    /// std::fs::write(&taken, b"")?;
    /// assert!(sluicedb::Database::check_backup_destination(&taken).is_err());
    /// assert!(sluicedb::Database::check_backup_destination(dir.path().join("new.db")).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_backup_destination(dest: impl AsRef<Path>) -> Result<(), StorageError> {
        let dest = dest.as_ref();
        refuse_taken(dest)?;
        let parent = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(StorageError::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("backup destination's directory {} does not exist", parent.display()),
            )));
        }
        Ok(())
    }

    /// [`check_backup_destination`](Self::check_backup_destination), and
    /// what a backup of the database at `source` to `dest` checks of the
    /// two paths together: the destination does not lie inside the
    /// database's WAL directory, and the database does not lie inside the
    /// directory the backup's copy writes its WAL into (which a backup
    /// removes as a failed backup's leftovers). A tool that opens a
    /// database only to back it up asks this first, so that no such backup
    /// writes to the database it then refuses.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let source = dir.path().join("my.db");
    /// let inside = dir.path().join("my.db-wal").join("copy.db");
    /// std::fs::create_dir(dir.path().join("my.db-wal"))?;
    /// assert!(sluicedb::Database::check_backup_paths(&source, &inside).is_err());
    /// assert!(sluicedb::Database::check_backup_paths(&source, dir.path().join("copy.db")).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_backup_paths(source: impl AsRef<Path>, dest: impl AsRef<Path>) -> Result<(), StorageError> {
        let dest = dest.as_ref();
        Self::check_backup_destination(dest)?;
        let source_wal = wal_dir(source.as_ref());
        if !parent_dir(&source_wal).is_dir() {
            // No database there for anything to overlap: its open says so.
            return Ok(());
        }
        let partial_wal = wal_dir(&with_suffix(dest, ".backup-partial"));
        refuse_overlap(&source_wal, dest, &partial_wal)
    }

    /// [`backup`](Self::backup), calling `progress` with the entries copied
    /// so far after each batch.
    pub fn backup_with_progress(
        &self,
        dest: impl AsRef<Path>,
        progress: impl FnMut(u64),
    ) -> Result<BackupReport, StorageError> {
        let dest = dest.as_ref();
        refuse_taken(dest)?;
        // Refused (an order this process does not know) before any file
        // is made.
        let plan = self.backup_plan()?;
        let partial = with_suffix(dest, ".backup-partial");
        let partial_wal = wal_dir(&partial);
        if let Some(source_wal) = &self.wal_path {
            refuse_overlap(source_wal, dest, &partial_wal)?;
        }
        remove_stale_partial(&partial)?;
        // `create_new`: of two backups to one destination, one gets the
        // file and the other an error, never the first one's copy.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&partial)
            .map_err(|e| in_progress(&partial, e))?;
        lock(&file).map_err(|e| invalid(format!("cannot lock {}: {e}", partial.display())))?;
        // Holding the partial file, this backup owns its WAL directory too:
        // one there now is a failed backup's.
        if partial_wal.exists() {
            std::fs::remove_dir_all(&partial_wal)?;
        }
        let report = {
            let wal = FsLogDir::open(&partial_wal)?;
            let data = FileBackend::new(file.try_clone()?);
            copy(plan, data, wal, progress)?
        };
        // The copy is checkpointed and closed: its data file alone holds it.
        std::fs::remove_dir_all(&partial_wal)?;
        file.sync_all()?;
        // Published by a link, not a rename: a link never replaces what
        // appeared at `dest` meanwhile (a rename would, silently). A crash
        // between the link and the unlink leaves `dest` complete and a
        // stale partial file, which the next backup removes.
        refuse_taken(dest)?;
        std::fs::hard_link(&partial, dest).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => taken_error(dest),
            _ => StorageError::Io(e),
        })?;
        drop(file);
        std::fs::remove_file(&partial)?;
        sync_dir(&parent_dir(dest))?;
        Ok(report)
    }

    /// The copy itself, into any data backend and WAL directory (the crash
    /// tests use the simulating ones). On `Ok`, the copy is checkpointed: the
    /// data backend alone holds every entry. Writes nothing that marks the
    /// copy complete; [`backup`](Self::backup)'s rename does that.
    pub fn backup_to_backends(
        &self,
        data: impl StorageBackend,
        wal: impl LogDir,
        progress: impl FnMut(u64),
    ) -> Result<BackupReport, StorageError> {
        copy(self.backup_plan()?, data, wal, progress)
    }

    /// The snapshot a backup copies and every table's order, settled
    /// before anything is written (refused if this process does not know
    /// one).
    fn backup_plan(&self) -> Result<BackupPlan, StorageError> {
        let read = self.engine.begin_read()?;
        let tables = backup_tables(&read)?;
        Ok(BackupPlan { read, tables })
    }
}

impl crate::ReadOnlyDatabase {
    /// Whether a backup of this database taken by this process would be
    /// refused for a key order the process does not know, checked without
    /// writing anything: a tool asks it before the writable open a backup
    /// needs (`sluice backup`). The refusal is [`Database::backup`]'s own.
    pub fn check_backup_orders(&self) -> Result<(), StorageError> {
        backup_tables(&self.engine.begin_read()?).map(drop)
    }
}

/// The tables a backup of `read` copies, each with its metadata and order:
/// refused for an order this process does not know, before anything is
/// written.
fn backup_tables(read: &ReadTxn) -> Result<Vec<BackupTable>, StorageError> {
    let mut tables = Vec::new();
    for (name, meta) in read.list_tables()? {
        // Persistent savepoints are not copied: a backup holds the data as
        // of one sequence (see design/savepoints.md).
        if crate::savepoint::is_reserved(&name) {
            continue;
        }
        let cmp = read.table_order(&name)?.flatten().ok_or_else(|| {
            invalid(format!(
                "table {:?} has a custom key order that this process does not know: \
                 open it through its typed definition before the backup",
                String::from_utf8_lossy(&name)
            ))
        })?;
        tables.push((name, meta, cmp));
    }
    Ok(tables)
}

/// What a backup copies: one snapshot, and each table's name, metadata and
/// order.
struct BackupPlan {
    read: ReadTxn,
    tables: Vec<BackupTable>,
}

/// A table a backup copies: its name, metadata and key order.
type BackupTable = (Vec<u8>, Vec<u8>, Comparator);

/// Copies `plan` into a new database on `data` and `wal`, checkpointed and
/// closed.
fn copy(
    plan: BackupPlan,
    data: impl StorageBackend,
    wal: impl LogDir,
    mut progress: impl FnMut(u64),
) -> Result<BackupReport, StorageError> {
    let BackupPlan { read, tables } = plan;
    let mut report = BackupReport {
        sequence: read.sequence(),
        ..BackupReport::default()
    };
    let copy = Builder::new().create_with_backends(data, wal).map_err(|e| match e {
        crate::DatabaseError::Storage(e) => e,
        other => invalid(other.to_string()),
    })?;
    let engine = &copy.engine;
    for (name, meta, cmp) in tables {
        let Some(table) = read.open_table(&name, cmp)? else {
            continue;
        };
        let mut txn = engine.begin_write()?;
        txn.set_durability(Durability::None);
        let mut out = txn.open_table(&name, &meta, cmp)?;
        let mut batch = 0usize;
        for entry in read.range(&table, Bound::Unbounded, Bound::Unbounded)? {
            let (key, value) = entry?;
            txn.insert(out, &key, value.as_bytes())?;
            let size = key.len() + value.as_bytes().len();
            batch += size;
            report.entries += 1;
            report.bytes += size as u64;
            if batch >= BATCH_BYTES {
                txn.commit()?;
                progress(report.entries);
                txn = engine.begin_write()?;
                txn.set_durability(Durability::None);
                out = txn.open_table(&name, &meta, cmp)?;
                batch = 0;
            }
        }
        txn.commit()?;
        progress(report.entries);
        report.tables += 1;
    }
    copy.close_engine()?;
    Ok(report)
}
