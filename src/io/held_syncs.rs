//! A [`LogDir`] whose syncs a test holds back: the seam for what happens
//! while a WAL sync is in flight, and for a power cut during one.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use super::{LogDir, StorageBackend};

/// Wraps a [`LogDir`]: every file's `sync_data` passes a gate shared by the
/// directory, which lets syncs run, holds them (they wait), or fails them
/// (the machine is gone). Writes are never held: they land, unsynced, in
/// the inner directory (a [`CrashLogDir`](super::CrashLogDir) then shows
/// what a crash keeps). Cloning shares the directory and the gate.
#[derive(Clone)]
pub struct HeldSyncs<D> {
    inner: D,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    state: Mutex<Syncs>,
    changed: Condvar,
    /// `sync_data` calls begun, held or not.
    started: AtomicU64,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Syncs {
    #[default]
    Run,
    Held,
    Fail,
}

impl Gate {
    fn set(&self, syncs: Syncs) {
        *self.state.lock() = syncs;
        self.changed.notify_all();
    }

    /// Waits while syncs are held; `Err` once they fail.
    fn pass(&self) -> io::Result<()> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock();
        while *state == Syncs::Held {
            self.changed.wait(&mut state);
        }
        match *state {
            Syncs::Fail => Err(io::Error::other("syncs failed by the test (the power is off)")),
            Syncs::Run | Syncs::Held => Ok(()),
        }
    }
}

impl<D: LogDir> HeldSyncs<D> {
    /// `inner`, its syncs running.
    pub fn new(inner: D) -> Self {
        Self {
            inner,
            gate: Arc::default(),
        }
    }

    /// The wrapped directory.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// From now on syncs wait (one already past the gate finishes).
    pub fn hold(&self) {
        self.gate.set(Syncs::Held);
    }

    /// Syncs run again, the waiting ones included.
    pub fn release(&self) {
        self.gate.set(Syncs::Run);
    }

    /// Syncs fail from now on, the waiting ones included.
    pub fn fail(&self) {
        self.gate.set(Syncs::Fail);
    }

    /// `sync_data` calls begun so far, held or not.
    pub fn syncs_started(&self) -> u64 {
        self.gate.started.load(Ordering::SeqCst)
    }

    fn gated(&self, inner: Box<dyn StorageBackend>) -> Box<dyn StorageBackend> {
        Box::new(HeldFile {
            inner,
            gate: self.gate.clone(),
        })
    }
}

struct HeldFile {
    inner: Box<dyn StorageBackend>,
    gate: Arc<Gate>,
}

impl StorageBackend for HeldFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write(offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass()?;
        self.inner.sync_data()
    }
}

impl<D: LogDir> LogDir for HeldSyncs<D> {
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(self.gated(self.inner.create(name)?))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageBackend>> {
        Ok(self.gated(self.inner.open(name)?))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.inner.remove(name)
    }

    fn spare_segments(&self) -> bool {
        self.inner.spare_segments()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.inner.rename(from, to)
    }
}
