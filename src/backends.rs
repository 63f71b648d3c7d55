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

use parking_lot::RwLock;

use crate::error::DatabaseError;

/// Storage for a database's data, as redb's `StorageBackend` (without
/// redb's byte-range lock methods: sluicedb opens a database in one process
/// only, so it never locks through a backend).
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
}

impl FileBackend {
    /// A backend storing the database in `file` (opened for reading, and
    /// for writing unless the database is opened read-only).
    pub fn new(file: File) -> Result<Self, DatabaseError> {
        let path = path_of(&file);
        Ok(Self { file, path })
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
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)
    }

    /// Releases the file lock the database took, even if the caller keeps
    /// another handle to the same open file (a lock belongs to the open
    /// file, not to this handle).
    fn close(&self) -> Result<(), io::Error> {
        self.file.unlock()
    }

    fn as_file_backend(&self) -> Option<&FileBackend> {
        Some(self)
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
