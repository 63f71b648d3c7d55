use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use super::{Failure, StorageBackend};
use crate::error::RefusedAfterFailure;

/// Makes a backend's first failure sticky.
///
/// After any call fails (a read too, unless it only ran past the end of the
/// file), every later call fails with an error naming the first cause, and
/// nothing more reaches the inner backend. This is the page store's
/// half of the "never retry a failed write or fsync" invariant: after a failed
/// `fsync` the kernel may already have dropped the dirty pages, so a retry that
/// succeeds would claim durability for data that is gone. The WAL journal
/// latches its own log files the same way.
///
/// The call that fails returns its own error; a refused later call returns
/// one that converts to `StorageError::PreviousIo` (see
/// [`RefusedAfterFailure`]), as [`Failure::later_error`] answers.
#[derive(Debug)]
pub(crate) struct LatchedBackend<B> {
    inner: B,
    /// The first failure (always [`Failure::Io`]); `None` while healthy.
    failed: Mutex<Option<Failure>>,
    /// Set once `failed` holds the failure: the engine asks before every
    /// transaction, and a healthy backend answers without the lock.
    has_failed: AtomicBool,
}

impl<B: StorageBackend> LatchedBackend<B> {
    pub(crate) fn new(inner: B) -> Self {
        Self {
            inner,
            failed: Mutex::new(None),
            has_failed: AtomicBool::new(false),
        }
    }

    /// The first failure, if the backend has failed.
    pub(crate) fn failure(&self) -> Option<Failure> {
        if !self.has_failed.load(Ordering::Acquire) {
            return None;
        }
        self.failed.lock().clone()
    }

    fn check(&self) -> io::Result<()> {
        if !self.has_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        match &*self.failed.lock() {
            None => Ok(()),
            Some(failure) => {
                let kind = match failure {
                    Failure::Io { kind, .. } => *kind,
                    Failure::Other(_) => io::ErrorKind::Other,
                };
                Err(io::Error::new(kind, RefusedAfterFailure(failure.to_string())))
            }
        }
    }

    fn guard<T>(&self, what: &str, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            let mut failed = self.failed.lock();
            if failed.is_none() {
                *failed = Some(Failure::Io {
                    kind: e.kind(),
                    message: format!("{what}: {e}"),
                });
                self.has_failed.store(true, Ordering::Release);
            }
        }
        result
    }
}

impl<B: StorageBackend> StorageBackend for LatchedBackend<B> {
    fn len(&self) -> io::Result<u64> {
        self.check()?;
        self.guard("len", self.inner.len())
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check()?;
        match self.inner.read(offset, buf) {
            // A short read is a property of the data (a truncated file), not
            // of the device: it is reported but does not latch.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(e),
            // Any other failed read latches, as redb's: the device is failing,
            // and what it holds is unknown.
            result => self.guard("read", result),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check()?;
        self.guard("write", self.inner.write(offset, data))
    }

    fn write_parts(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
        self.check()?;
        self.guard("write", self.inner.write_parts(offset, parts))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.guard("set_len", self.inner.set_len(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.check()?;
        self.guard("sync_data", self.inner.sync_data())
    }

    fn preallocate(&self, len: u64) -> io::Result<()> {
        self.check()?;
        self.guard("preallocate", self.inner.preallocate(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::CrashBackend;

    #[test]
    fn first_failure_is_sticky() {
        let crash = CrashBackend::new();
        crash.fail_op(1, io::ErrorKind::Other);
        let latched = LatchedBackend::new(crash);
        latched.write(0, b"ok").unwrap();
        let first = latched.sync_data().unwrap_err();
        assert!(first.to_string().contains("injected"));
        // The inner backend would accept this write; the latch refuses it.
        let later = latched.write(0, b"again").unwrap_err();
        assert!(later.to_string().contains("earlier operation failed"));
        assert!(matches!(crate::StorageError::from(later), crate::StorageError::PreviousIo));
        let failure = latched.failure().unwrap();
        assert!(failure.is_io() && failure.to_string().contains("sync_data"), "{failure}");
    }

    /// A backend whose reads fail with `EIO`-like errors.
    struct UnreadableBackend(CrashBackend);

    impl StorageBackend for UnreadableBackend {
        fn len(&self) -> io::Result<u64> {
            self.0.len()
        }
        fn read(&self, _: u64, _: &mut [u8]) -> io::Result<()> {
            Err(io::Error::other("unreadable sector"))
        }
        fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.0.write(offset, data)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.0.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.0.sync_data()
        }
    }

    #[test]
    fn a_failed_read_latches_but_a_short_read_does_not() {
        let short = LatchedBackend::new(CrashBackend::new());
        let err = short.read(0, &mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(short.failure().is_none());
        short.write(0, b"ok").unwrap();

        let failing = LatchedBackend::new(UnreadableBackend(CrashBackend::new()));
        let first = failing.read(0, &mut [0; 8]).unwrap_err();
        assert!(matches!(crate::StorageError::from(first), crate::StorageError::Io(_)));
        let later = failing.write(0, b"refused").unwrap_err();
        assert!(matches!(crate::StorageError::from(later), crate::StorageError::PreviousIo));
        assert!(failing.failure().unwrap().to_string().contains("unreadable sector"));
    }
}
