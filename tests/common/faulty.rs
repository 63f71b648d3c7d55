//! A data-file backend over a `CrashBackend` that fails one
//! chosen operation (write / set_len / sync_data / read, counted together),
//! once or from then on, optionally tearing the failed write.

#![allow(dead_code)]

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sluicedb::io::{CrashBackend, StorageBackend};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only operation `at` fails.
    Once,
    /// Operation `at` and every later one fail.
    FromThenOn,
    /// Operation `at` fails; if it is a write, its first half lands first.
    TornOnce,
}

#[derive(Clone, Debug)]
pub struct Faulty {
    pub inner: Arc<CrashBackend>,
    pub ops: Arc<AtomicU64>,
    pub fail_at: Arc<AtomicU64>,
    pub mode: Mode,
    pub count_reads: bool,
    pub failed: Arc<AtomicBool>,
}

impl Faulty {
    pub fn new(inner: Arc<CrashBackend>, fail_at: u64, mode: Mode, count_reads: bool) -> Self {
        Self {
            inner,
            ops: Arc::default(),
            fail_at: Arc::new(AtomicU64::new(fail_at)),
            mode,
            count_reads,
            failed: Arc::default(),
        }
    }

    pub fn ops(&self) -> u64 {
        self.ops.load(Ordering::SeqCst)
    }

    fn begin(&self, what: &str) -> io::Result<bool> {
        let op = self.ops.fetch_add(1, Ordering::SeqCst);
        let at = self.fail_at.load(Ordering::SeqCst);
        let fail = match self.mode {
            Mode::Once | Mode::TornOnce => op == at,
            Mode::FromThenOn => op >= at,
        };
        if fail {
            self.failed.store(true, Ordering::SeqCst);
            return Ok(true);
        }
        let _ = what;
        Ok(false)
    }

    fn err(what: &str) -> io::Error {
        io::Error::other(format!("review: injected {what} failure"))
    }
}

impl StorageBackend for Faulty {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if self.count_reads && self.begin("read")? {
            return Err(Self::err("read"));
        }
        self.inner.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.begin("write")? {
            if self.mode == Mode::TornOnce && data.len() > 1 {
                let _ = self.inner.write(offset, &data[..data.len() / 2]);
            }
            return Err(Self::err("write"));
        }
        self.inner.write(offset, data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.begin("set_len")? {
            return Err(Self::err("set_len"));
        }
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.begin("sync")? {
            return Err(Self::err("sync"));
        }
        self.inner.sync_data()
    }
}

/// Runs `f` on a thread; panics if it does not finish within `secs`.
pub fn within<T: Send + 'static>(secs: u64, what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("HANG: {what} did not finish in {secs}s"),
        Err(_) => match handle.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!(),
        },
    }
}
