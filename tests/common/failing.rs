//! A redb-shaped backend over shared memory whose reads or syncs fail on
//! demand, as the `FailingBackend` of redb's integration tests: for
//! `Builder::create_with_backend`, where durable commits and `close` sync
//! the backend itself.

#![allow(dead_code)]

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Clones share the bytes and the switches.
#[derive(Clone, Debug)]
pub struct FailingBackend {
    bytes: Arc<RwLock<Vec<u8>>>,
    /// While set, every read fails.
    pub fail_reads: Arc<AtomicBool>,
    /// While set, every sync fails.
    pub fail_syncs: Arc<AtomicBool>,
    /// Syncs allowed before they start failing (each sync takes one); once
    /// it reaches zero every sync fails.
    pub syncs_left: Arc<AtomicU64>,
    /// Syncs attempted so far.
    pub syncs: Arc<AtomicU64>,
}

impl FailingBackend {
    pub fn new() -> Self {
        Self {
            bytes: Arc::default(),
            fail_reads: Arc::default(),
            fail_syncs: Arc::default(),
            syncs_left: Arc::new(AtomicU64::new(u64::MAX)),
            syncs: Arc::default(),
        }
    }

    /// A healthy backend holding a copy of these bytes: what a reopen finds.
    pub fn image(&self) -> FailingBackend {
        let copy = Self::new();
        *copy.bytes.write().unwrap() = self.bytes.read().unwrap().clone();
        copy
    }

    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }
}

impl sluicedb::StorageBackend for FailingBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.bytes.read().unwrap().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        if self.fail_reads.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected read failure"));
        }
        let bytes = self.bytes.read().unwrap();
        let start = usize::try_from(offset).map_err(|_| ErrorKind::UnexpectedEof)?;
        let src = bytes.get(start..start + out.len()).ok_or(ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| ErrorKind::OutOfMemory)?;
        self.bytes.write().unwrap().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let exhausted = self
            .syncs_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_err();
        if exhausted || self.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected sync failure"));
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut bytes = self.bytes.write().unwrap();
        let start = usize::try_from(offset).map_err(|_| ErrorKind::UnexpectedEof)?;
        let dst = bytes
            .get_mut(start..start + data.len())
            .ok_or(ErrorKind::UnexpectedEof)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}
