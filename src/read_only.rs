//! [`ReadOnlyDatabase`]: a database opened without a writer, which never
//! changes its files.
//!
//! Opening a sluicedb database always replays the WAL written since the
//! last checkpoint: that is where its newest commits are (a drop without
//! [`Database::close`](crate::Database::close) leaves them there). So a
//! read-only open does replay it, but into memory only:
//! - the WAL segments are copied into an in-memory log directory, so
//!   recovery's bookkeeping (a fresh segment) never touches the WAL
//!   directory (which is not even created if missing);
//! - the data file sits behind an [`Overlay`]: reads see the file, writes
//!   (a checkpoint of the replayed commits, which the apply thread may take)
//!   land in memory and are dropped with the database.
//!
//! The file gets a shared lock: any number of read-only handles may share
//! it, and none may be open while a [`Database`](crate::Database) holds its
//! exclusive lock (either order fails with
//! [`DatabaseError::DatabaseAlreadyOpen`]), as in redb.

use std::collections::HashMap;
use std::io;

use parking_lot::Mutex;

use crate::db::ReadableDatabase;
use crate::engine::Engine;
use crate::error::{DatabaseError, StorageError, TransactionError};
use crate::io::{LogDir, MemLogDir, StorageBackend};
use crate::transaction::{LiveToken, ReadTransaction};

/// A database opened read-only, with
/// [`Builder::open_read_only`](crate::Builder::open_read_only) or
/// [`ReadOnlyDatabase::open`]: it reads, and its files are never written.
///
/// ```
/// use sluicedb::{Database, ReadOnlyDatabase, ReadableDatabase, TableDefinition};
///
/// const T: TableDefinition<u64, u64> = TableDefinition::new("t");
///
/// # fn main() -> Result<(), sluicedb::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("db");
/// let db = Database::create(&path)?;
/// let txn = db.begin_write()?;
/// txn.open_table(T)?.insert(0, 7)?;
/// txn.commit()?;
/// drop(db);
///
/// let db = ReadOnlyDatabase::open(&path)?;
/// let txn = db.begin_read()?;
/// assert_eq!(txn.open_table(T)?.get(0)?.unwrap().value(), 7);
/// # Ok(())
/// # }
/// ```
pub struct ReadOnlyDatabase {
    pub(crate) engine: Engine,
    pub(crate) live: LiveToken,
}

impl ReadOnlyDatabase {
    /// Opens the existing database at `path` read-only.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<ReadOnlyDatabase, DatabaseError> {
        crate::Builder::new().open_read_only(path)
    }

    pub(crate) fn new(engine: Engine) -> Self {
        Self {
            engine,
            live: LiveToken::new(),
        }
    }

    /// The engine under this database, for tools that work below the typed
    /// API (the `sluice` CLI's inspecting commands). Internal: only with the
    /// `internals` feature, outside the stable API.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Closes the database. Nothing is written, so nothing can fail to be;
    /// a failure the engine latched while it ran is reported.
    pub fn close(self) -> Result<(), DatabaseError> {
        Ok(self.engine.inner.check_poison()?)
    }
}

impl Drop for ReadOnlyDatabase {
    fn drop(&mut self) {
        // As redb's: live read transactions read nothing more.
        self.live.close();
    }
}

impl std::fmt::Debug for ReadOnlyDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyDatabase").finish_non_exhaustive()
    }
}

impl ReadableDatabase for ReadOnlyDatabase {
    fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        Ok(ReadTransaction::new(self.engine.begin_read()?, self.live.clone()))
    }

    fn cache_stats(&self) -> crate::CacheStats {
        crate::CacheStats::of(&self.engine)
    }
}

/// An in-memory view of the segments in the WAL directory `dir` (empty if
/// there is none): recovery reads the same records and writes nothing to
/// disk. Something else at that path (a file, a dangling link) is an
/// error, as it is for a writable open: read past, it would hide the
/// commits in the real log.
///
/// Each segment is an [`Overlay`] of its file: read through, any change
/// kept in memory. A copy of each whole segment trusted the file's length:
/// a segment stretched to 1 TiB of unwritten zeros (a sparse file, which a
/// writable open reads to its clean end) aborted a read-only open
/// allocating it (found by a review, fifty-fourth session).
pub(crate) fn copy_log(dir: &std::path::Path) -> Result<MemLogDir, StorageError> {
    let copy = MemLogDir::new();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(copy),
        Err(e) => return Err(e.into()),
        Ok(_) if !dir.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is not a WAL directory", dir.display()),
            )
            .into());
        }
        Ok(_) => {}
    }
    // `FsLogDir::open` creates only a missing directory; this one exists.
    let fs = crate::io::FsLogDir::open(dir)?;
    // Segments only: recovery reads nothing else (a spare left by a crash
    // is megabytes of zeros, not worth a copy).
    for name in fs
        .list()?
        .into_iter()
        .filter(|name| crate::wal::segment_first_seq(name).is_some())
    {
        copy.insert(&name, std::sync::Arc::new(Overlay::new(fs.open(&name)?)?));
    }
    Ok(copy)
}

/// Bytes per overlay chunk.
const CHUNK: u64 = 4096;

/// A backend that reads through to `base` and keeps every change in memory:
/// `base` is never written.
///
/// Invariant: the logical content at offset `o < len` is the chunk holding
/// `o` if one is overlaid, else `base` at `o` if `o < base_visible`, else
/// zero. `base_visible` only shrinks (a truncation hides the base bytes
/// past it, so growing again reads zeros there), and every overlaid chunk's
/// bytes at or past `len` are zero.
pub(crate) struct Overlay {
    base: Box<dyn StorageBackend>,
    state: Mutex<OverlayState>,
}

struct OverlayState {
    len: u64,
    base_visible: u64,
    chunks: HashMap<u64, Vec<u8>>,
}

impl Overlay {
    pub(crate) fn new(base: impl StorageBackend) -> io::Result<Self> {
        let len = base.len()?;
        Ok(Self {
            base: Box::new(base),
            state: Mutex::new(OverlayState {
                len,
                base_visible: len,
                chunks: HashMap::new(),
            }),
        })
    }

    /// Fills `out` with the logical bytes of chunk `index` from `start`
    /// (an offset inside the chunk).
    fn read_chunk(&self, state: &OverlayState, index: u64, start: u64, out: &mut [u8]) -> io::Result<()> {
        if let Some(chunk) = state.chunks.get(&index) {
            let start = start as usize;
            out.copy_from_slice(&chunk[start..start + out.len()]);
            return Ok(());
        }
        let offset = index * CHUNK + start;
        let from_base = state.base_visible.saturating_sub(offset).min(out.len() as u64) as usize;
        let (base, zeros) = out.split_at_mut(from_base);
        if !base.is_empty() {
            self.base.read(offset, base)?;
        }
        zeros.fill(0);
        Ok(())
    }
}

/// The chunk pieces covering `len` bytes at `offset`: (chunk index, offset
/// in the chunk, offset in the caller's buffer, length).
fn pieces(offset: u64, len: usize) -> impl Iterator<Item = (u64, u64, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = offset + done as u64;
        let (index, start) = (at / CHUNK, at % CHUNK);
        let n = ((CHUNK - start) as usize).min(len - done);
        let piece = (index, start, done, n);
        done += n;
        Some(piece)
    })
}

impl StorageBackend for Overlay {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().len)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let state = self.state.lock();
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > state.len) {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        for (index, start, at, n) in pieces(offset, buf.len()) {
            self.read_chunk(&state, index, start, &mut buf[at..at + n])?;
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        for (index, start, at, n) in pieces(offset, data.len()) {
            if !state.chunks.contains_key(&index) {
                let mut chunk = vec![0u8; CHUNK as usize];
                // Only the part below `len` has content; the rest is zero.
                let live = state.len.saturating_sub(index * CHUNK).min(CHUNK) as usize;
                self.read_chunk(&state, index, 0, &mut chunk[..live])?;
                state.chunks.insert(index, chunk);
            }
            if let Some(chunk) = state.chunks.get_mut(&index) {
                chunk[start as usize..start as usize + n].copy_from_slice(&data[at..at + n]);
            }
        }
        state.len = state.len.max(end);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        if len < state.len {
            state.base_visible = state.base_visible.min(len);
            state.chunks.retain(|index, _| index * CHUNK < len);
            if let Some(chunk) = state.chunks.get_mut(&(len / CHUNK)) {
                chunk[(len % CHUNK) as usize..].fill(0);
            }
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryBackend;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64, Vec<u8>),
        SetLen(u64),
        Read(u64, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..20_000, prop::collection::vec(any::<u8>(), 0..6000)).prop_map(|(o, d)| Op::Write(o, d)),
            (0u64..20_000).prop_map(Op::SetLen),
            (0u64..20_000, 0usize..9000).prop_map(|(o, n)| Op::Read(o, n)),
        ]
    }

    proptest! {
        /// The overlay behaves as a plain memory backend starting from the
        /// same bytes, and never changes its base.
        #[test]
        fn overlay_matches_a_memory_backend_and_leaves_its_base_alone(
            initial in prop::collection::vec(any::<u8>(), 0..12_000),
            ops in prop::collection::vec(op(), 1..40),
        ) {
            let base = std::sync::Arc::new(MemoryBackend::from_bytes(initial.clone()));
            let overlay = Overlay::new(base.clone()).unwrap();
            let model = MemoryBackend::from_bytes(initial.clone());
            for op in ops {
                match op {
                    Op::Write(o, d) => {
                        overlay.write(o, &d).unwrap();
                        model.write(o, &d).unwrap();
                    }
                    Op::SetLen(n) => {
                        overlay.set_len(n).unwrap();
                        model.set_len(n).unwrap();
                    }
                    Op::Read(o, n) => {
                        let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                        let (ra, rb) = (overlay.read(o, &mut a), model.read(o, &mut b));
                        prop_assert_eq!(ra.is_ok(), rb.is_ok());
                        prop_assert_eq!(a, b);
                    }
                }
                prop_assert_eq!(overlay.len().unwrap(), model.len().unwrap());
            }
            let len = model.len().unwrap() as usize;
            let mut all = vec![0u8; len];
            overlay.read(0, &mut all).unwrap();
            prop_assert_eq!(all, model.to_bytes());
            prop_assert_eq!(base.to_bytes(), initial);
        }
    }
}
