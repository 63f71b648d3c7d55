//! redb's storage-backend seam: the [`StorageBackend`] trait (at the crate
//! root) and its two implementations, [`FileBackend`] and
//! [`InMemoryBackend`], for
//! [`Builder::create_with_backend`](crate::Builder::create_with_backend) and
//! [`Builder::open_read_only_with_backend`](crate::Builder::open_read_only_with_backend).
//!
//! The engine's own seam is the internal `io::StorageBackend`;
//! an adapter puts a redb-shaped backend behind it. The two differ in one
//! rule: redb's `write` must stay inside the current length (callers grow the
//! storage with `set_len` first), sluicedb's grows it. The adapter grows the
//! storage before a write that would end past it.

use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::ops::Bound;

use parking_lot::RwLock;

use crate::error::DatabaseError;

/// Storage for a database's data, as redb's `StorageBackend`.
///
/// The byte-range lock methods are redb's, with its defaults
/// ([`BackendError::Unsupported`]); sluicedb itself never calls them (it
/// opens a database in one process only, under a whole-file lock), so a
/// backend needs them only for its own users.
#[expect(clippy::len_without_is_empty, reason = "redb's trait, item for item")]
pub trait StorageBackend: 'static + Debug + Send + Sync {
    /// The current length of the storage.
    fn len(&self) -> Result<u64, io::Error>;

    /// Fills `out` from `offset`; reading past the end is an error.
    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error>;

    /// Sets the length of the storage; new bytes read as zero.
    fn set_len(&self, len: u64) -> Result<(), io::Error>;

    /// Makes every completed write and length change durable.
    fn sync_data(&self) -> Result<(), io::Error>;

    /// Writes `data` at `offset`, inside the current length.
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error>;

    /// Releases the backend's resources. Called once, when the database
    /// that owns the backend is gone (the last transaction included), or
    /// when opening it fails.
    fn close(&self) -> Result<(), io::Error> {
        Ok(())
    }

    /// Tries to take an exclusive lock on the bytes from `start` to `end`:
    /// `Ok(true)` if taken, `Ok(false)` if a conflicting lock is held.
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        let _ = (start, end);
        Err(BackendError::Unsupported)
    }

    /// Tries to take a shared lock on the bytes from `start` to `end`:
    /// `Ok(true)` if taken, `Ok(false)` if a conflicting lock is held.
    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        let _ = (start, end);
        Err(BackendError::Unsupported)
    }

    /// Takes an exclusive lock on the bytes from `start` to `end`, waiting
    /// for conflicting locks to be released.
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let _ = (start, end);
        Err(BackendError::Unsupported)
    }

    /// Takes a shared lock on the bytes from `start` to `end`, waiting for
    /// conflicting locks to be released.
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let _ = (start, end);
        Err(BackendError::Unsupported)
    }

    /// Releases the lock taken over exactly this range.
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let _ = (start, end);
        Err(BackendError::Unsupported)
    }

    /// Whether an exclusive lock on the bytes from `start` to `end` would
    /// conflict with a lock held elsewhere.
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        let _ = (start, end);
        Err(BackendError::Unsupported)
    }

    /// sluicedb's extension, not redb's: the [`FileBackend`] this backend
    /// is, if it is one. A database on a `FileBackend` whose path is known
    /// keeps its WAL beside the file, as a database opened by path does.
    /// Other backends keep the default, `None`.
    #[doc(hidden)]
    fn as_file_backend(&self) -> Option<&FileBackend> {
        None
    }
}

/// A [`StorageBackend`] over a file.
///
/// On Linux it learns the file's path when made (from `/proc/self/fd`), so
/// that a database opened on it finds its WAL in `<path>-wal`, exactly as
/// [`Database::open`](crate::Database::open) with the path does, and takes
/// the same file lock: the two ways to open a file are interchangeable.
/// Where the path cannot be learned, the database keeps its WAL in memory
/// (see [`Builder::create_with_backend`](crate::Builder::create_with_backend)).
#[derive(Debug)]
pub struct FileBackend {
    file: File,
    path: Option<std::path::PathBuf>,
    write_behind: crate::io::WriteBehind,
}

impl FileBackend {
    /// A backend storing the database in `file` (opened for reading, and
    /// for writing unless the database is opened read-only).
    pub fn new(file: File) -> Result<Self, DatabaseError> {
        let path = path_of(&file);
        Ok(Self {
            file,
            path,
            write_behind: crate::io::WriteBehind::default(),
        })
    }

    /// The file's path, if known (see the type's docs).
    pub(crate) fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }
}

/// The path `file` was opened at, if the system says and it still names a
/// file (not one since deleted).
fn path_of(file: &File) -> Option<std::path::PathBuf> {
    use std::os::fd::AsRawFd;
    let path = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    path.is_file().then_some(path)
}

impl StorageBackend for FileBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, out, offset)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.write_behind.synced();
        self.file.sync_data()
    }

    /// Writes `data`, then starts the write-back of what has gathered
    /// unsynced past a MiB, as the engine's own file backend does
    /// (`crate::io::FileBackend`: the write-behind).
    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)?;
        self.write_behind.wrote(&self.file, data.len())
    }

    /// Releases the file lock the database took and every byte-range lock
    /// taken through this backend, even if the caller keeps another handle
    /// to the same open file (a lock belongs to the open file, not to this
    /// handle).
    fn close(&self) -> Result<(), io::Error> {
        #[cfg(target_os = "linux")]
        range_lock::fcntl(&self.file, libc::F_OFD_SETLK, libc::F_UNLCK, (0, 0))?;
        self.file.unlock()
    }

    #[cfg(target_os = "linux")]
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        range_lock::try_lock(&self.file, libc::F_WRLCK, range_lock::span(start, end)?)
    }

    #[cfg(target_os = "linux")]
    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        range_lock::try_lock(&self.file, libc::F_RDLCK, range_lock::span(start, end)?)
    }

    #[cfg(target_os = "linux")]
    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let span = range_lock::span(start, end)?;
        range_lock::fcntl(&self.file, libc::F_OFD_SETLKW, libc::F_WRLCK, span)?;
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let span = range_lock::span(start, end)?;
        range_lock::fcntl(&self.file, libc::F_OFD_SETLKW, libc::F_RDLCK, span)?;
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        let span = range_lock::span(start, end)?;
        range_lock::fcntl(&self.file, libc::F_OFD_SETLK, libc::F_UNLCK, span)?;
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        let span = range_lock::span(start, end)?;
        let found = range_lock::fcntl(&self.file, libc::F_OFD_GETLK, libc::F_WRLCK, span)?;
        Ok(found.l_type != libc::F_UNLCK as libc::c_short)
    }

    fn as_file_backend(&self) -> Option<&FileBackend> {
        Some(self)
    }
}

/// An error of a [`StorageBackend`]'s lock methods, as redb's.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackendError {
    /// The storage operation failed (`ErrorKind::InvalidInput` for a range
    /// that is empty or does not fit the file's offsets).
    Io(io::Error),
    /// The backend failed with an error that is not an I/O error.
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// The backend does not support the operation.
    Unsupported,
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(err) => write!(f, "storage backend I/O error: {err}"),
            Self::Other(err) => write!(f, "storage backend error: {err}"),
            Self::Unsupported => f.write_str("the storage backend does not support this operation"),
        }
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(err) => Some(err),
            Self::Other(err) => Some(err.as_ref()),
            Self::Unsupported => None,
        }
    }
}

impl From<io::Error> for BackendError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

/// [`FileBackend`]'s byte-range locks: Linux open-file-description locks
/// (`fcntl(F_OFD_*)`), which belong to the open file, so two backends on
/// two opens of one file conflict even in one process (classic POSIX
/// record locks would not), and are released when that open file closes.
#[cfg(target_os = "linux")]
mod range_lock {
    use std::fs::File;
    use std::io;
    use std::ops::Bound;
    use std::os::fd::AsRawFd;

    use super::BackendError;

    /// `(first byte, length)` of a range as `fcntl` takes it (length 0:
    /// to the end of any file); an empty range, or one past the largest
    /// offset (`i64::MAX`), is `InvalidInput`.
    pub(super) fn span(start: Bound<u64>, end: Bound<u64>) -> Result<(i64, i64), BackendError> {
        let invalid = || BackendError::Io(io::Error::new(io::ErrorKind::InvalidInput, "invalid lock range"));
        let first = match start {
            Bound::Included(at) => at,
            Bound::Excluded(at) => at.checked_add(1).ok_or_else(invalid)?,
            Bound::Unbounded => 0,
        };
        let first = i64::try_from(first).map_err(|_| invalid())?;
        let past = match end {
            Bound::Included(at) => Some(at.checked_add(1).ok_or_else(invalid)?),
            Bound::Excluded(at) => Some(at),
            Bound::Unbounded => None,
        };
        let Some(past) = past else {
            return Ok((first, 0));
        };
        let past = i64::try_from(past).map_err(|_| invalid())?;
        if past <= first {
            return Err(invalid());
        }
        Ok((first, past - first))
    }

    /// `fcntl(file, command)` with a lock of `kind` over `span`; the lock
    /// structure as the call left it (`F_OFD_GETLK` fills it in).
    #[expect(unsafe_code, reason = "the fcntl system call, on a descriptor the file keeps open")]
    pub(super) fn fcntl(
        file: &File,
        command: libc::c_int,
        kind: libc::c_int,
        span: (i64, i64),
    ) -> io::Result<libc::flock> {
        // SAFETY: `flock` is plain data, valid when zeroed (l_pid must be
        // 0 for the OFD commands).
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind as libc::c_short;
        lock.l_whence = libc::SEEK_SET as libc::c_short;
        lock.l_start = span.0;
        lock.l_len = span.1;
        loop {
            // SAFETY: a valid descriptor (the file outlives the call) and
            // a pointer to a live `flock`, as these commands take.
            if unsafe { libc::fcntl(file.as_raw_fd(), command, &mut lock) } != -1 {
                return Ok(lock);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// A lock of `kind` without waiting: `Ok(false)` if a conflicting lock
    /// is held.
    pub(super) fn try_lock(file: &File, kind: libc::c_int, span: (i64, i64)) -> Result<bool, BackendError> {
        match fcntl(file, libc::F_OFD_SETLK, kind, span) {
            Ok(_) => Ok(true),
            Err(err) if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

/// A [`StorageBackend`] in memory: the database lives as long as the
/// [`Database`](crate::Database) that owns it.
#[derive(Default)]
pub struct InMemoryBackend(RwLock<Vec<u8>>);

impl InMemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Debug for InMemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the bytes: only the length.
        let len = self.0.read().len();
        f.debug_struct("InMemoryBackend").field("len", &len).finish()
    }
}

/// `offset + len` as a `usize` range end, or an error if it does not fit.
fn end_of(offset: u64, len: usize) -> Result<(usize, usize), io::Error> {
    let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok((start, end))
}

impl StorageBackend for InMemoryBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.read().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let (start, end) = end_of(offset, out.len())?;
        let bytes = self.0.read();
        let src = bytes
            .get(start..end)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        self.0.write().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let (start, end) = end_of(offset, data.len())?;
        let mut bytes = self.0.write();
        let dst = bytes
            .get_mut(start..end)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

/// A redb-shaped backend behind the engine's seam. Closes the backend when
/// dropped (the engine drops its backend once, when it is gone).
pub(crate) struct Adapted<B: StorageBackend>(pub(crate) B);

impl<B: StorageBackend> crate::io::StorageBackend for Adapted<B> {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        // The engine's writes may grow the storage; redb's may not.
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if end > self.0.len()? {
            self.0.set_len(end)?;
        }
        self.0.write(offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl<B: StorageBackend> Drop for Adapted<B> {
    fn drop(&mut self) {
        // Nothing to report to: the database is gone. A backend that must
        // flush on close does it in `sync_data`, which checkpoints call.
        let _ = self.0.close();
    }
}
