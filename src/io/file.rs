use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use super::StorageBackend;

/// A [`StorageBackend`] over a regular file, using positioned reads and writes
/// (`pread`/`pwrite`), so readers never share a file cursor.
#[derive(Debug)]
pub struct FileBackend {
    file: File,
}

impl FileBackend {
    /// Wraps an open file, which must be readable and writable.
    pub fn new(file: File) -> Self {
        Self { file }
    }

    /// The underlying file, for locking.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl StorageBackend for FileBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Extends the file to `len` as a sparse hole (`ftruncate`): no blocks
    /// are written, and the size is fixed before the appends that follow.
    fn preallocate(&self, len: u64) -> io::Result<()> {
        if self.file.metadata()?.len() < len {
            self.file.set_len(len)?;
        }
        Ok(())
    }
}
