use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StorageBackend;

/// Bytes a [`FileBackend`] lets gather unsynced before it starts their
/// write-back (see [`FileBackend`]'s write-behind).
pub const WRITE_BEHIND_BYTES: u64 = 1 << 20;

/// A [`StorageBackend`] over a regular file, using positioned reads and writes
/// (`pread`/`pwrite`), so readers never share a file cursor.
///
/// **Write-behind.** After every MiB (`WRITE_BEHIND_BYTES`) written since the last
/// sync it waits for the write-back it started before, then starts writing
/// back the file's dirty pages (`sync_file_range` with `WAIT_BEFORE |
/// WRITE`, on Linux; elsewhere nothing): RocksDB's `bytes_per_sync`. Left to
/// the kernel, a flush's or checkpoint's tens of MiB reach the disk at once,
/// when its `fdatasync` comes, and every WAL sync queued behind them waits
/// for all of it. Measured on this project's VM (`design/benchmarks.md`,
/// thirteenth session): the batch durable writes' p99 22-24 -> 11-15 ms;
/// waiting for each MiB's write-back as well (adding `WAIT_AFTER`) cut the
/// one-transaction loads by a fifth, since their tree commit then stops
/// producing pages while the disk writes; 256 KiB steps were no better.
/// Durability is unchanged: only [`sync_data`](StorageBackend::sync_data)
/// promises anything. WAL segments, synced at every group commit, rarely
/// reach the threshold.
#[derive(Debug)]
pub struct FileBackend {
    file: File,
    write_behind: WriteBehind,
}

impl FileBackend {
    /// Wraps an open file, which must be readable and writable.
    pub fn new(file: File) -> Self {
        Self {
            file,
            write_behind: WriteBehind::default(),
        }
    }

    /// The underlying file, for locking.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// The write-behind of a file backend (see [`FileBackend`]): counts the bytes
/// written since the last sync and writes them back past the threshold.
#[derive(Debug, Default)]
pub(crate) struct WriteBehind {
    unsynced: AtomicU64,
}

impl WriteBehind {
    /// Notes `len` bytes written to `file`; once [`WRITE_BEHIND_BYTES`] have
    /// gathered since the last sync, starts their write-back. Its error
    /// is the write's: the kernel reports a write-back error once per open
    /// file, so a later `fdatasync` would not see it.
    pub(crate) fn wrote(&self, file: &File, len: usize) -> io::Result<()> {
        let unsynced = self.unsynced.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        if unsynced >= WRITE_BEHIND_BYTES {
            self.unsynced.store(0, Ordering::Relaxed);
            write_back(file)?;
        }
        Ok(())
    }

    /// Notes a sync of the file: nothing is unsynced.
    pub(crate) fn synced(&self) {
        self.unsynced.store(0, Ordering::Relaxed);
    }
}

/// Waits for the write-back of `file` started before, then starts writing
/// back its dirty pages: no device cache flush, no metadata.
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "a system call on an open descriptor")]
fn write_back(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE;
    // SAFETY: the descriptor is open for the borrow of `file`; offset 0 and
    // length 0 name the whole file; no memory is passed.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// One `pwritev` of (a prefix of) `slices` at `offset`: the bytes written,
/// retried if a signal interrupted it.
#[cfg(target_os = "linux")]
#[expect(unsafe_code, reason = "a system call on an open descriptor and borrowed buffers")]
fn pwritev(file: &File, slices: &[io::IoSlice<'_>], offset: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // At most `IOV_MAX` (1024 on Linux) buffers per call.
    let count = slices.len().min(1024) as libc::c_int;
    let offset = libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: the descriptor is open for the borrow of `file`; an
        // `IoSlice` is ABI-compatible with `iovec` on Unix, and the first
        // `count` of them are borrowed, valid buffers for the call.
        let rc = unsafe { libc::pwritev(file.as_raw_fd(), slices.as_ptr().cast::<libc::iovec>(), count, offset) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn write_back(_file: &File) -> io::Result<()> {
    Ok(())
}

impl StorageBackend for FileBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Writes `data`, then the write-behind ([`WriteBehind::wrote`]).
    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)?;
        self.write_behind.wrote(&self.file, data.len())
    }

    /// Writes the parts with `pwritev` (in pieces of at most `IOV_MAX`
    /// parts, resumed after a short write), then the write-behind.
    #[cfg(target_os = "linux")]
    fn write_parts(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|part| io::IoSlice::new(part)).collect();
        let mut rest = &mut slices[..];
        let mut at = offset;
        while !rest.is_empty() {
            let written = pwritev(&self.file, rest, at)?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += written as u64;
            io::IoSlice::advance_slices(&mut rest, written);
        }
        self.write_behind.wrote(&self.file, (at - offset) as usize)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.write_behind.synced();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend over a new, empty file in `dir`.
    fn scratch_backend(dir: &tempfile::TempDir) -> FileBackend {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("data"))
            .unwrap();
        FileBackend::new(file)
    }

    /// Writes past the write-behind threshold, in pieces and in one piece
    /// larger than it, read back as written, before and after a sync.
    #[test]
    fn writes_through_write_behind_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let backend = scratch_backend(&dir);
        let piece: Vec<u8> = (0..64 << 10).map(|i: u32| (i % 251) as u8).collect();
        let pieces = 3 * WRITE_BEHIND_BYTES / piece.len() as u64;
        for i in 0..pieces {
            backend.write(i * piece.len() as u64, &piece).unwrap();
        }
        let big = vec![0xA5u8; 2 * WRITE_BEHIND_BYTES as usize + 17];
        let big_at = pieces * piece.len() as u64;
        backend.write(big_at, &big).unwrap();
        assert!(backend.write_behind.unsynced.load(Ordering::Relaxed) < WRITE_BEHIND_BYTES);
        for round in 0..2 {
            let mut buf = vec![0u8; piece.len()];
            for i in [0, pieces / 2, pieces - 1] {
                backend.read(i * piece.len() as u64, &mut buf).unwrap();
                assert_eq!(buf, piece, "round {round}, piece {i}");
            }
            let mut back = vec![0u8; big.len()];
            backend.read(big_at, &mut back).unwrap();
            assert_eq!(back, big, "round {round}");
            assert_eq!(backend.len().unwrap(), big_at + big.len() as u64);
            backend.sync_data().unwrap();
        }
    }

    /// Parts written as one: more of them than one `pwritev` takes, of
    /// uneven lengths, from an offset past the end, read back in order.
    #[test]
    fn written_parts_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let backend = scratch_backend(&dir);
        let parts: Vec<Vec<u8>> = (0..2_500u32).map(|i| vec![(i % 253) as u8; 1 + (i as usize * 7) % 300]).collect();
        let borrowed: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        backend.write_parts(1_000, &borrowed).unwrap();
        let expected: Vec<u8> = parts.concat();
        let mut back = vec![0u8; expected.len()];
        backend.read(1_000, &mut back).unwrap();
        assert_eq!(back, expected);
        assert_eq!(backend.len().unwrap(), 1_000 + expected.len() as u64);
        let mut hole = [1u8; 1_000];
        backend.read(0, &mut hole).unwrap();
        assert_eq!(hole, [0u8; 1_000]);
    }
}
