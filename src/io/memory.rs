use std::io;

use parking_lot::RwLock;

use super::StorageBackend;

/// A [`StorageBackend`] held in memory: fast, and lost when dropped. Useful for
/// tests and for temporary databases.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    bytes: RwLock<Vec<u8>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend holding a copy of `bytes` (for example a crash image).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self {
            bytes: RwLock::new(bytes),
        }
    }

    /// A copy of the current contents.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.read().clone()
    }
}

/// Reads `buf.len()` bytes at `offset` from `bytes`, or fails with `UnexpectedEof`.
pub(crate) fn read_slice(bytes: &[u8], offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(|_| eof())?;
    let end = start.checked_add(buf.len()).ok_or_else(eof)?;
    let src = bytes.get(start..end).ok_or_else(eof)?;
    buf.copy_from_slice(src);
    Ok(())
}

/// Writes `data` at `offset` into `bytes`, zero-filling any gap.
pub(crate) fn write_slice(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(|_| too_large())?;
    let end = start.checked_add(data.len()).ok_or_else(too_large)?;
    if bytes.len() < end {
        bytes.resize(end, 0);
    }
    bytes[start..end].copy_from_slice(data);
    Ok(())
}

fn eof() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of storage")
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "offset too large for memory")
}

impl StorageBackend for MemoryBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.read().len() as u64)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        read_slice(&self.bytes.read(), offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        write_slice(&mut self.bytes.write(), offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| too_large())?;
        self.bytes.write().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}
